package mirror

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"testing"
)

// bundleParts reads a bundle file into its index and its parts' bytes, as
// someone altering it in transit would.
func bundleParts(t testing.TB, file string) (*Index, map[string][]byte) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	entries := tarFiles(t, b)
	var x Index
	if err := json.Unmarshal(entries[IndexName], &x); err != nil {
		t.Fatal(err)
	}
	delete(entries, IndexName)
	return &x, entries
}

// tarFiles returns the regular files of a tar by name.
func tarFiles(t testing.TB, b []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = data
	}
}

// tarOf writes files as a tar, in the order of names.
func tarOf(t testing.TB, names []string, files map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: int64(len(files[n]))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(files[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// bundleBytes makes a bundle of x and parts, with the index's checksums
// made to match the parts: what a forger who can alter a bundle can do.
func bundleBytes(t testing.TB, x *Index, parts map[string][]byte) []byte {
	t.Helper()
	names := []string{IndexName}
	x.Parts = nil
	for _, n := range []string{GitPart, ImagesPart} {
		p, ok := parts[n]
		if !ok {
			continue
		}
		sum := sha256.Sum256(p)
		x.Parts = append(x.Parts, Part{Name: n, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(p))})
		names = append(names, n)
	}
	ix, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{IndexName: ix}
	for n, p := range parts {
		files[n] = p
	}
	return tarOf(t, names, files)
}

// writeBundleFile writes bundleBytes to a new file and returns its name.
func writeBundleFile(t testing.TB, x *Index, parts map[string][]byte) string {
	t.Helper()
	file := t.TempDir() + "/forged.kbundle"
	if err := os.WriteFile(file, bundleBytes(t, x, parts), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}
