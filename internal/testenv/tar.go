package testenv

import (
	"archive/tar"
	"errors"
	"io"
	"testing"
)

// TarEntries lists the entries of the tar read from r, by name, with the
// offset of each one's data (relative to r's start) and its size: what a
// test needs to look into a bundle's parts or to damage one byte of it.
func TarEntries(t testing.TB, r io.ReadSeeker) map[string][2]int64 {
	t.Helper()
	out := map[string][2]int64{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		off, err := r.Seek(0, io.SeekCurrent)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = [2]int64{off, h.Size}
	}
}
