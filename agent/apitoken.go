package agent

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// minAPITokenLen is the shortest API token accepted: shorter is guessable.
const minAPITokenLen = 16

// ReadAPIToken reads an API token file as the agent writes it (one line of
// hex). The cli reads it to talk to a local agent without --api-token.
func ReadAPIToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read API token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < minAPITokenLen {
		return "", fmt.Errorf("read API token %s: %d characters, want at least %d", path, len(tok), minAPITokenLen)
	}
	return tok, nil
}

// loadOrCreateAPIToken returns the token kept at path, making a random one
// (readable by the owner only) when there is none yet.
func loadOrCreateAPIToken(path string) (string, error) {
	tok, err := ReadAPIToken(path)
	if err == nil {
		return tok, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("make API token: %w", err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make API token: %w", err)
	}
	tok = hex.EncodeToString(b)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return ReadAPIToken(path) // another agent of this state dir made it first
	}
	if err != nil {
		return "", fmt.Errorf("make API token: %w", err)
	}
	_, werr := f.WriteString(tok + "\n")
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(path)
		return "", fmt.Errorf("write API token %s: %w", path, werr)
	}
	return tok, nil
}
