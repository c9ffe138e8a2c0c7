package cli

import (
	"fmt"
	"os"

	"filippo.io/age"
	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/specs/sops"
)

// maxAgeKeyFile bounds the identity file read (a key line is 74 bytes).
const maxAgeKeyFile = 1 << 20

// ageKeyFileFlag names the age identities that decrypt SOPS-encrypted
// manifests, as Flux's sops-age Secret does.
func ageKeyFileFlag() cli.Flag {
	return &cli.StringFlag{Name: "age-key-file", Usage: "age identity file (age-keygen's, the one sops reads as SOPS_AGE_KEY_FILE) that decrypts SOPS-encrypted manifests; must be readable by its owner only", EnvVars: envVars("age-key-file")}
}

// ageIdentities reads --age-key-file: nil without the flag. A file that
// group or others may read or write is refused, as ssh refuses such a key.
func ageIdentities(c *cli.Context) ([]age.Identity, error) {
	path := c.String("age-key-file")
	if path == "" {
		return nil, nil
	}
	return readAgeKeyFile(path)
}

// readAgeKeyFile reads and parses an age identity file owned by its reader.
func readAgeKeyFile(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("age key file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("age key file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("age key file %s: not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("age key file %s: mode %04o lets group or others read or write the key; chmod 600 it", path, perm)
	}
	if info.Size() > maxAgeKeyFile {
		return nil, fmt.Errorf("age key file %s: larger than %d bytes", path, maxAgeKeyFile)
	}
	data := make([]byte, info.Size())
	if _, err := f.ReadAt(data, 0); err != nil && info.Size() > 0 {
		return nil, fmt.Errorf("age key file %s: %w", path, err)
	}
	ids, err := sops.ParseIdentities(data)
	clear(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ids, nil
}
