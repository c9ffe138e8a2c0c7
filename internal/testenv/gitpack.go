package testenv

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1" //nolint:gosec // git's object and pack hashes
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
)

// Git pack object types (git's Documentation/gitformat-pack.txt).
const (
	PackCommit   = 1
	PackTree     = 2
	PackBlob     = 3
	PackTag      = 4
	PackOfsDelta = 6
	PackRefDelta = 7
)

// PackObject is one object of a pack that WritePack writes as given, valid
// or not: crafted packs test what a reader does with hostile input.
type PackObject struct {
	Type int   // one of the Pack* types
	Size int64 // the inflated size its header declares
	// Base follows the header of a delta: the encoded offset of an
	// ofs-delta, the 20-byte base hash of a ref-delta.
	Base []byte
	// Data is the content, deflated as it is read.
	Data io.Reader
}

// WritePack writes a version 2 git pack of objs to w, with its trailing
// SHA-1.
func WritePack(w io.Writer, objs ...PackObject) error {
	h := sha1.New() //nolint:gosec
	mw := io.MultiWriter(w, h)
	hdr := []byte("PACK\x00\x00\x00\x02\x00\x00\x00\x00")
	binary.BigEndian.PutUint32(hdr[8:], uint32(len(objs)))
	if _, err := mw.Write(hdr); err != nil {
		return err
	}
	for _, o := range objs {
		if _, err := mw.Write(packObjectHeader(o.Type, o.Size)); err != nil {
			return err
		}
		if _, err := mw.Write(o.Base); err != nil {
			return err
		}
		zw, _ := zlib.NewWriterLevel(mw, zlib.BestSpeed)
		if o.Data != nil {
			if _, err := io.Copy(zw, o.Data); err != nil {
				return err
			}
		}
		if err := zw.Close(); err != nil {
			return err
		}
	}
	_, err := w.Write(h.Sum(nil))
	return err
}

// packObjectHeader encodes an object's type and size: 3 bits of type and 4
// of size in the first byte, 7 bits of size in each next one.
func packObjectHeader(typ int, size int64) []byte {
	b := []byte{byte(typ<<4) | byte(size&0x0f)}
	size >>= 4
	for size > 0 {
		b[len(b)-1] |= 0x80
		b = append(b, byte(size&0x7f))
		size >>= 7
	}
	return b
}

// GitObjectHash is the hash git gives an object of type ("blob", "tree",
// "commit", "tag") and content.
func GitObjectHash(typ string, content []byte) string {
	h := sha1.New() //nolint:gosec
	fmt.Fprintf(h, "%s %d\x00", typ, len(content))
	h.Write(content)
	return hex.EncodeToString(h.Sum(nil))
}

// zeroReader reads zeros.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

var zeroPacks sync.Map // size → zeroPack

type zeroPack struct {
	pack []byte
	hash string
}

// ZeroBlobPack returns a pack holding one blob of size zero bytes, and the
// blob's hash: 512 MiB deflate to about 0.5 MB, the bomb a reader must not
// inflate into memory. Packs are made once per test binary and size.
func ZeroBlobPack(tb testing.TB, size int64) ([]byte, string) {
	tb.Helper()
	if p, ok := zeroPacks.Load(size); ok {
		return p.(zeroPack).pack, p.(zeroPack).hash
	}
	h := sha1.New() //nolint:gosec
	fmt.Fprintf(h, "blob %d\x00", size)
	if _, err := io.Copy(h, io.LimitReader(zeroReader{}, size)); err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WritePack(&buf, PackObject{Type: PackBlob, Size: size, Data: io.LimitReader(zeroReader{}, size)}); err != nil {
		tb.Fatal(err)
	}
	p := zeroPack{pack: buf.Bytes(), hash: hex.EncodeToString(h.Sum(nil))}
	zeroPacks.Store(size, p)
	return p.pack, p.hash
}

// GitBundle returns a v2 git bundle of pack whose header names refs, each
// "HASH refs/…".
func GitBundle(pack []byte, refs ...string) []byte {
	var b bytes.Buffer
	b.WriteString("# v2 git bundle\n" + strings.Join(refs, "\n") + "\n\n")
	b.Write(pack)
	return b.Bytes()
}
