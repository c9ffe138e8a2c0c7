package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"sync"
)

// baseFiles are the files every image has besides busybox: enough of /etc for
// `id`, runAsUser and httpd to behave.
var baseFiles = map[string]string{
	"/etc/passwd":   "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
	"/etc/group":    "root:x:0:\nnobody:x:65534:\n",
	"/etc/hostname": "kelpie-test\n",
}

// baseDirs are created in every image, with their modes.
var baseDirs = map[string]int64{
	"/bin":  0o755,
	"/etc":  0o755,
	"/root": 0o700,
	"/tmp":  0o1777,
	"/var":  0o755,
}

// buildLayer returns the image's single layer, uncompressed and gzipped.
func buildLayer(spec Spec) (raw, gz []byte, err error) {
	bb, err := os.ReadFile(spec.Busybox)
	if err != nil {
		return nil, nil, fmt.Errorf("read busybox (apt-get install busybox-static): %w", err)
	}
	wanted := spec.Applets
	if wanted == nil {
		wanted = DefaultApplets
	}
	have, err := applets(spec.Busybox)
	if err != nil {
		return nil, nil, err
	}

	type entry struct {
		hdr  tar.Header
		data []byte
	}
	entries := map[string]entry{} // by clean path without the leading slash
	dir := func(p string, mode int64) {
		name := strings.TrimPrefix(path.Clean(p), "/")
		if name == "" || name == "." {
			return
		}
		if _, ok := entries[name]; !ok {
			entries[name] = entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode}}
		}
	}
	parents := func(p string) {
		var chain []string
		for d := path.Dir(path.Clean(p)); d != "/" && d != "."; d = path.Dir(d) {
			chain = append(chain, d)
		}
		for i := len(chain) - 1; i >= 0; i-- {
			dir(chain[i], 0o755)
		}
	}
	file := func(p string, mode int64, data []byte) error {
		if !path.IsAbs(p) {
			return fmt.Errorf("file %q: path must be absolute", p)
		}
		parents(p)
		name := strings.TrimPrefix(path.Clean(p), "/")
		entries[name] = entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))}, data: data}
		return nil
	}

	for d, mode := range baseDirs {
		dir(d, mode)
	}
	for p, content := range baseFiles {
		if err := file(p, 0o644, []byte(content)); err != nil {
			return nil, nil, err
		}
	}
	if err := file("/bin/busybox", 0o755, bb); err != nil {
		return nil, nil, err
	}
	for _, a := range wanted {
		if !have[a] || a == "busybox" {
			continue
		}
		name := "bin/" + a
		entries[name] = entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: "busybox", Mode: 0o777}}
	}
	for p, content := range spec.Files {
		if err := file(p, 0o644, []byte(content)); err != nil {
			return nil, nil, err
		}
	}

	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names) // a parent sorts before its children

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		e := entries[n]
		h := e.hdr
		h.ModTime = Epoch
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			return nil, nil, fmt.Errorf("layer entry %s: %w", n, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, nil, fmt.Errorf("layer entry %s: %w", n, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, nil, err
	}
	raw = buf.Bytes()

	var zbuf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&zbuf, gzip.BestSpeed) // header has no name and no mtime: reproducible
	if err != nil {
		return nil, nil, err
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, nil, err
	}
	return raw, zbuf.Bytes(), nil
}

var (
	appletsMu    sync.Mutex
	appletsCache = map[string]map[string]bool{}
)

// applets returns the applets the busybox binary at bin provides.
func applets(bin string) (map[string]bool, error) {
	appletsMu.Lock()
	defer appletsMu.Unlock()
	if a, ok := appletsCache[bin]; ok {
		return a, nil
	}
	out, err := exec.Command(bin, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", bin, err)
	}
	a := map[string]bool{}
	for _, name := range strings.Fields(string(out)) {
		a[name] = true
	}
	appletsCache[bin] = a
	return a, nil
}
