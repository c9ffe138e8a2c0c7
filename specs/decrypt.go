package specs

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"filippo.io/age"
	"gopkg.in/yaml.v3"

	"github.com/kelpie-dev/kelpie/specs/sops"
)

// decryption says how a load reads SOPS-encrypted files (Options).
type decryption struct {
	ids              []age.Identity
	allowUndecrypted bool
}

// encryption is what a document's encrypted values became.
type encryption int

const (
	notEncrypted    encryption = iota
	encryptedPlain             // decrypted
	encryptedMasked            // placeholders (no key, AllowUndecrypted)
)

// identityFields are the fields that name an object: without the key they
// must be in clear, or the object cannot be checked at all.
var identityFields = map[string]bool{"apiVersion": true, "kind": true, "metadata.name": true, "metadata.namespace": true}

// decryptDocuments decrypts (or, without keys and when allowed, masks) the
// documents of a SOPS-encrypted file in place, and records which documents
// held encrypted values. On failure the whole file is refused: it reports
// false, with the error and every document's key marked failed.
func (job *fileJob) decryptDocuments(docs []*yaml.Node) bool {
	var leaves []sops.Leaf
	var err error
	mode := encryptedPlain
	if len(job.decrypt.ids) == 0 && job.decrypt.allowUndecrypted {
		mode = encryptedMasked
		leaves, err = sops.Mask(docs)
		for _, l := range leaves {
			if err == nil && identityFields[l.Field] {
				err = &sops.Error{Line: l.Node.Line, Column: l.Node.Column, Field: l.Field,
					Message: "encrypted, so the object cannot be checked without the age key (--age-key-file); " +
						"encrypt only the secret values, e.g. sops --encrypted-regex '^(data|stringData)$'"}
			}
		}
	} else {
		leaves, err = sops.Decrypt(docs, job.decrypt.ids)
	}
	if err != nil {
		job.errs = append(job.errs, sopsError(job.name, err))
		for _, doc := range docs {
			kind, _ := topScalar(doc, "kind")
			ki, ok := kinds[kind]
			job.failed = append(job.failed, failedKey(doc, kind, ok && ki.namespaced))
		}
		return false
	}
	if job.encrypted == nil {
		job.encrypted = map[*yaml.Node]encryption{}
	}
	for _, l := range leaves {
		job.encrypted[docs[l.Doc]] = mode
		if mode == encryptedPlain {
			job.plaintexts = append(job.plaintexts, l.Node.Value)
		}
	}
	return true
}

// minWithheld is the shortest decrypted value withholdPlaintexts looks
// for: shorter ones ("1", "on") would blank out unrelated words.
const minWithheld = 3

// withholdPlaintexts replaces every decrypted value quoted in a message
// with "(value withheld)": the decoder withholds values of an encrypted
// document itself, and this catches what validation quotes (a name, an
// image) whatever the check.
func withholdPlaintexts(errs ErrorList, plaintexts []string) {
	var pairs []string
	seen := map[string]bool{}
	for _, p := range plaintexts {
		if len(p) >= minWithheld && !seen[p] {
			seen[p] = true
			pairs = append(pairs, p)
		}
	}
	if len(pairs) == 0 {
		return
	}
	// Longest first, so a value that contains another goes whole.
	sort.Slice(pairs, func(i, j int) bool { return len(pairs[i]) > len(pairs[j]) })
	args := make([]string, 0, 2*len(pairs))
	for _, p := range pairs {
		args = append(args, p, "(value withheld)")
	}
	r := strings.NewReplacer(args...)
	for _, e := range errs {
		e.Message = r.Replace(e.Message)
	}
}

// sopsError positions a decryption error in file.
func sopsError(file string, err error) *Error {
	var se *sops.Error
	if errors.As(err, &se) {
		msg := se.Message
		if !strings.HasPrefix(se.Field, sops.MetadataKey) {
			msg = "SOPS: " + msg
		}
		return &Error{Pos: Position{File: file, Line: se.Line, Column: se.Column}, Field: se.Field, Message: msg}
	}
	return &Error{Pos: Position{File: file}, Message: fmt.Sprintf("SOPS: %v", err)}
}
