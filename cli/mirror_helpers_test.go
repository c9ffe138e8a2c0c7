package cli

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/testimage"
)

// mirrorDeployment is a one-container Deployment in namespace ns.
func mirrorDeployment(ns, name, image string, replicas int) string {
	return testenv.Deployment{Name: name, Namespace: ns, Replicas: replicas, Container: testenv.Container{Image: image, Grace: new(0)}}.YAML()
}

// pageImage is a test image that no standard image dir holds: busybox
// httpd serving page at / on port 80, named name.
func pageImage(name, page string) testimage.Spec {
	return testimage.Spec{
		Name:         name,
		Cmd:          []string{"httpd", "-f", "-p", "80", "-h", "/www"},
		ExposedPorts: []string{"80/tcp"},
		Files:        map[string]string{"/www/index.html": page},
	}
}

// bundleParts returns the offset and size of every entry of a bundle file
// (a tar), by name.
func bundleParts(t *testing.T, file string) map[string][2]int64 {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return testenv.TarEntries(t, f)
}

// largestBlob returns the offset in the bundle file of the largest image
// blob of its images part, and the blob's size.
func largestBlob(t *testing.T, file string, images [2]int64) (int64, int64) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var off, size int64
	for name, e := range testenv.TarEntries(t, io.NewSectionReader(f, images[0], images[1])) {
		if strings.HasPrefix(name, "blobs/") && e[1] > size {
			off, size = images[0]+e[0], e[1]
		}
	}
	if size == 0 {
		t.Fatalf("bundle %s carries no image blob", file)
	}
	return off, size
}

// writeVariant writes a copy of file changed by edit into a new file and
// returns its path.
func writeVariant(t *testing.T, file, name string, edit func([]byte) []byte) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(out, edit(slices.Clone(data)), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// setFlag replaces the value of flag in flags (name, value pairs), or
// drops the pair when value is "".
func setFlag(flags []string, flag, value string) []string {
	var out []string
	for i := 0; i+1 < len(flags); i += 2 {
		if flags[i] != flag {
			out = append(out, flags[i], flags[i+1])
		}
	}
	if value != "" {
		out = append(out, flag, value)
	}
	return out
}
