package sops

import (
	"bytes"
	"fmt"

	"filippo.io/age"
)

// ParseIdentities parses an age identity file, the kind age-keygen writes
// and sops reads (SOPS_AGE_KEY_FILE): one AGE-SECRET-KEY-1… line per key,
// blank lines and # comments ignored. Errors never quote a key.
func ParseIdentities(data []byte) ([]age.Identity, error) {
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("age identity file: %w", err)
	}
	return ids, nil
}
