package gossip

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/memberlist"
)

// ErrNoKey is returned by New when neither a key nor Insecure is set: an
// unencrypted cluster must be asked for by name.
var ErrNoKey = errors.New("gossip is not encrypted: set --gossip-key (or --gossip-key-file; make one with `kelpie keygen`), or --insecure-gossip to run without encryption")

// KeySize is the size in bytes of the keys GenerateKey makes (AES-256).
const KeySize = 32

// GenerateKey returns a new random gossip key, base64-encoded as
// --gossip-key takes it (as Consul's `consul keygen`).
func GenerateKey() (string, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return "", fmt.Errorf("generate gossip key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(k), nil
}

// ParseKeys decodes a keyring written as base64 keys separated by commas or
// white space, or as a JSON array of base64 strings (Consul's keyring
// file). Each key is 16, 24 or 32 bytes (AES-128, -192 or -256). The first
// key is the primary: it encrypts what this node sends; every key decrypts.
// Several keys let a cluster rotate: install the new key second on every
// node, then first, then remove the old one.
func ParseKeys(s string) ([][]byte, error) {
	s = strings.TrimSpace(s)
	var fields []string
	if strings.HasPrefix(s, "[") {
		if err := json.Unmarshal([]byte(s), &fields); err != nil {
			return nil, fmt.Errorf("parse gossip keyring as a JSON array: %w", err)
		}
	} else {
		fields = strings.FieldsFunc(s, func(r rune) bool {
			return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r'
		})
	}
	if len(fields) == 0 {
		return nil, errors.New("gossip keyring is empty")
	}
	keys := make([][]byte, 0, len(fields))
	for i, f := range fields {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("gossip key %d: not base64: %w", i+1, err)
		}
		if err := memberlist.ValidateKey(k); err != nil {
			return nil, fmt.Errorf("gossip key %d is %d bytes: want 16, 24 or 32: %w", i+1, len(k), err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// ReadKeyFile reads a keyring file (see ParseKeys for its format).
func ReadKeyFile(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read gossip key file: %w", err)
	}
	keys, err := ParseKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("gossip key file %s: %w", path, err)
	}
	return keys, nil
}

// newKeyring builds memberlist's keyring, the first key primary.
func newKeyring(keys [][]byte) (*memberlist.Keyring, error) {
	kr, err := memberlist.NewKeyring(keys, keys[0])
	if err != nil {
		return nil, fmt.Errorf("gossip keyring: %w", err)
	}
	return kr, nil
}
