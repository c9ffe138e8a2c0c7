package specs

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"path"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kelpie-dev/kelpie/specs/sops"
)

// sopsFS is the file system a kustomization is built from. SOPS-encrypted
// YAML files come out of it decrypted (or, without a key when the load
// allows it, masked), before kustomize reads them, as Flux's
// kustomize-controller does: kustomize's changes (a name prefix, labels, a
// namespace) would otherwise break the file's MAC. It records what it
// decrypted, so that objects built from those files are diffed without
// their values and their plaintexts are withheld from messages, as for a
// file loaded on its own. Other SOPS formats (dotenv, INI, binary) are
// refused: kustomize would read their ciphertext as data.
type sopsFS struct {
	fs.FS
	dec  decryption
	max  int64
	name func(string) string // display name of a path of FS
	// files holds, by path, what each SOPS-encrypted file read became.
	files map[string]*decryptedFile
	// errs are the decryption errors, positioned in the encrypted files.
	errs ErrorList
}

// decryptedFile is a SOPS-encrypted file as sopsFS served it.
type decryptedFile struct {
	data       []byte // the documents decrypted or masked, without sops blocks
	mode       encryption
	plaintexts []string
	err        error // set when it could not be decrypted
}

// Open opens p, decrypting a SOPS-encrypted YAML file.
func (s *sopsFS) Open(p string) (fs.File, error) {
	if d, ok := s.files[p]; ok {
		if d.err != nil {
			return nil, d.err
		}
		return s.memFile(p, d.data)
	}
	f, err := s.FS.Open(p)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		if err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
	data, err := io.ReadAll(io.LimitReader(f, s.max+1))
	f.Close()
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > s.max {
		return s.memFile(p, data) // the build's own limit refuses it
	}
	out, err := s.decrypt(p, data)
	if err != nil {
		return nil, err
	}
	return s.memFile(p, out)
}

// decrypt returns data, or the plain documents of a SOPS-encrypted YAML
// file.
func (s *sopsFS) decrypt(p string, data []byte) ([]byte, error) {
	switch path.Ext(p) {
	case ".yaml", ".yml", ".json":
	default:
		if bytes.Contains(data, []byte("sops_mac=ENC[")) {
			const msg = "a SOPS-encrypted dotenv or INI file is not supported by kelpie; keep the values in a SOPS-encrypted Secret manifest instead"
			err := fmt.Errorf("%s: %s", s.name(p), msg)
			s.errs = append(s.errs, &Error{Pos: Position{File: s.name(p)}, Message: msg})
			s.files[p] = &decryptedFile{err: err}
			return nil, err
		}
		return data, nil
	}
	docs, perr := parseDocuments(s.name(p), data)
	if perr != nil || !sops.Encrypted(docs) {
		return data, nil // the build reports what does not parse
	}
	job := &fileJob{name: s.name(p), decrypt: s.dec}
	if !job.decryptDocuments(docs) {
		s.errs = append(s.errs, job.errs...)
		err := fmt.Errorf("%s: cannot be decrypted", s.name(p))
		s.files[p] = &decryptedFile{err: err}
		return nil, err
	}
	var buf bytes.Buffer
	for i, doc := range docs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		b, err := yaml.Marshal(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: re-encode decrypted document %d: %w", s.name(p), i+1, err)
		}
		buf.Write(b)
	}
	d := &decryptedFile{data: buf.Bytes(), plaintexts: job.plaintexts}
	for _, m := range job.encrypted {
		d.mode = m
	}
	s.files[p] = d
	return d.data, nil
}

// encryption is what the objects built from file p held: notEncrypted, or
// how the file's encrypted values were read.
func (s *sopsFS) encryption(p string) (encryption, []string) {
	if d, ok := s.files[p]; ok && d.err == nil {
		return d.mode, d.plaintexts
	}
	return notEncrypted, nil
}

// memFile serves data as the content of regular file p.
func (s *sopsFS) memFile(p string, data []byte) (fs.File, error) {
	return &sopsFile{Reader: bytes.NewReader(data), name: path.Base(p), size: int64(len(data))}, nil
}

// sopsFile is a file served from memory by sopsFS.
type sopsFile struct {
	*bytes.Reader
	name string
	size int64
}

// Stat describes the file: regular, read-only, of its served size.
func (f *sopsFile) Stat() (fs.FileInfo, error) { return f, nil }

// Close does nothing.
func (f *sopsFile) Close() error { return nil }

// Name is the file's base name.
func (f *sopsFile) Name() string { return f.name }

// Size is the size served.
func (f *sopsFile) Size() int64 { return f.size }

// Mode is a read-only regular file.
func (f *sopsFile) Mode() fs.FileMode { return 0o444 }

// ModTime is unknown.
func (f *sopsFile) ModTime() time.Time { return time.Time{} }

// IsDir is false.
func (f *sopsFile) IsDir() bool { return false }

// Sys is nil.
func (f *sopsFile) Sys() any { return nil }

// sopsLinkFS is a sopsFS over a file system that reads symlinks: the build
// follows them itself, inside the file system.
type sopsLinkFS struct {
	*sopsFS
	links fs.ReadLinkFS
}

// ReadLink returns the target of symlink p.
func (s sopsLinkFS) ReadLink(p string) (string, error) { return s.links.ReadLink(p) }

// Lstat describes p without following a symlink.
func (s sopsLinkFS) Lstat(p string) (fs.FileInfo, error) { return s.links.Lstat(p) }

// decryptingFS wraps fsys in a sopsFS, keeping its symlinks readable.
func decryptingFS(fsys fs.FS, dec decryption, max int64, name func(string) string) (fs.FS, *sopsFS) {
	s := &sopsFS{FS: fsys, dec: dec, max: max, name: name, files: map[string]*decryptedFile{}}
	if l, ok := fsys.(fs.ReadLinkFS); ok {
		return sopsLinkFS{sopsFS: s, links: l}, s
	}
	return s, s
}
