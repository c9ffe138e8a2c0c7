package source

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// keyring is the set of OpenPGP public keys whose commit signatures are
// trusted, read once from an armored file.
type keyring struct {
	file string // where it came from, for messages
	keys openpgp.EntityList
}

// loadKeyring reads an armored OpenPGP key file. It may hold several armored
// blocks (files of single keys concatenated, as well as `gpg --export
// --armor A B`); it must hold at least one public key.
func loadKeyring(file string) (*keyring, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	k := &keyring{file: file}
	for _, text := range armoredBlocks(string(b)) {
		block, err := armor.Decode(strings.NewReader(text))
		if err != nil {
			return nil, fmt.Errorf("%s: not an armored OpenPGP public key file: %w", file, err)
		}
		if block.Type != openpgp.PublicKeyType {
			return nil, fmt.Errorf("%s: holds a %q block; only public keys (%q) belong there",
				file, block.Type, openpgp.PublicKeyType)
		}
		keys, err := openpgp.ReadKeyRing(block.Body)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		k.keys = append(k.keys, keys...)
	}
	if len(k.keys) == 0 {
		return nil, fmt.Errorf("%s: not an armored OpenPGP public key file: no keys", file)
	}
	return k, nil
}

// armoredBlocks splits text into its armored blocks, each from "-----BEGIN "
// to the end of its "-----END …-----" line: armor.Decode reads past the end
// of the first block. Files concatenated without a final newline still split.
func armoredBlocks(text string) []string {
	const begin, end, dashes = "-----BEGIN ", "-----END ", "-----"
	var blocks []string
	for {
		i := strings.Index(text, begin)
		if i < 0 {
			return blocks
		}
		text = text[i:]
		j := strings.Index(text, end)
		if j < 0 {
			return append(blocks, text) // truncated: Decode says so
		}
		k := strings.Index(text[j+len(end):], dashes)
		if k < 0 {
			return append(blocks, text)
		}
		stop := j + len(end) + k + len(dashes)
		blocks = append(blocks, text[:stop]+"\n")
		text = text[stop:]
	}
}

// verify checks that commit c carries one OpenPGP signature, made by a key of
// the keyring over the commit as it is. Any failure wraps ErrUntrusted and
// names the commit. It is go-git's Commit.Verify, which reads only the first
// armored block of a key file.
func (k *keyring) verify(c *object.Commit) error {
	sig := strings.TrimSpace(c.PGPSignature)
	switch {
	case sig == "":
		return fmt.Errorf("%w: commit %s is not signed", ErrUntrusted, c.Hash)
	case !strings.HasPrefix(sig, "-----BEGIN PGP SIGNATURE-----"):
		return fmt.Errorf("%w: commit %s has a signature that is not OpenPGP (ssh and x509 signatures are not supported)",
			ErrUntrusted, c.Hash)
	case strings.Count(sig, "-----BEGIN PGP SIGNATURE-----") > 1:
		return fmt.Errorf("%w: commit %s carries several signatures", ErrUntrusted, c.Hash)
	}
	signed := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(signed); err != nil {
		return fmt.Errorf("encode commit %s: %w", c.Hash, err)
	}
	rd, err := signed.Reader()
	if err != nil {
		return fmt.Errorf("encode commit %s: %w", c.Hash, err)
	}
	defer rd.Close()
	if _, err := openpgp.CheckArmoredDetachedSignature(k.keys, rd, strings.NewReader(c.PGPSignature), nil); err != nil {
		reason := "bad signature: " + err.Error()
		if errors.Is(err, pgperrors.ErrUnknownIssuer) {
			reason = "signed by a key that is not in " + k.file
		}
		return fmt.Errorf("%w: commit %s: %s", ErrUntrusted, c.Hash, reason)
	}
	return nil
}
