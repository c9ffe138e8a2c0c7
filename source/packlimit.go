package source

import (
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage"
)

// Limits on what a git pack from elsewhere (a bundle, a fetch) may inflate
// to. go-git holds a whole object in memory while it indexes a pack, and
// reads it whole again when asked for it: a 2 MB pack holding one 2 GiB
// blob of zeros took 3 GB. Every pack kelpie takes passes through a guard
// that reads each object's header, and inflates its data into nothing,
// before go-git sees those bytes: an object whose header, delta or content
// goes over a limit is refused with an error wrapping ErrTooLarge, having
// cost kilobytes.
const (
	// MaxObjectSize is the largest git object, inflated, that a bundle or
	// a fetch may bring (for a delta, the object it makes).
	MaxObjectSize = 100 << 20 // GitHub refuses files above 100 MiB; manifests are kilobytes
	// MaxPackInflated bounds the inflated size of all the objects of one
	// pack. Memory stays bounded by MaxObjectSize whatever the pack; this
	// bounds the time a hostile pack of many large objects costs.
	MaxPackInflated = 8 << 30 // a site repository's whole history is megabytes
)

// ErrTooLarge is wrapped by the error of a pack holding an object larger
// than MaxObjectSize, or objects larger than MaxPackInflated together.
var ErrTooLarge = errors.New("git pack too large")

// packLimits are the limits a packGuard applies; tests lower them.
type packLimits struct {
	object, pack int64
}

// defaultPackLimits are the documented limits; a test may lower them.
var defaultPackLimits = packLimits{object: MaxObjectSize, pack: MaxPackInflated}

// packGuard checks a pack stream chunk by chunk, in step with its consumer:
// check returns only once the guard has parsed every byte of the chunk
// (object headers, and each object's data inflated into a counter), so the
// consumer never holds a byte the guard has not passed. The parsing runs
// on a goroutine of its own, because compress/zlib pulls its input; the
// goroutine ends when the pack does, at the first fault, or at close.
//
// A packGuard is used from one goroutine at a time.
type packGuard struct {
	in    chan []byte
	reply chan error // errNeedMore, or the guard's verdict (nil: the pack ended well)
	done  bool
	err   error
}

// errNeedMore is the guard's reply to a chunk it has consumed.
var errNeedMore = errors.New("need more")

func newPackGuard(l packLimits) *packGuard {
	g := &packGuard{in: make(chan []byte), reply: make(chan error, 1)}
	go func() {
		f := &feeder{in: g.in, reply: g.reply}
		g.reply <- scanPack(f, l)
	}()
	return g
}

// check hands p to the guard and waits until it has parsed all of it. It
// returns the guard's fault, for this chunk and every later one. Bytes
// after the end of the pack are not checked.
func (g *packGuard) check(p []byte) error {
	if g.done || len(p) == 0 {
		return g.err
	}
	g.in <- p
	if err := <-g.reply; err != errNeedMore { //nolint:errorlint // a sentinel sent as is
		g.done, g.err = true, err
	}
	return g.err
}

// finish tells the guard the stream has ended and returns its verdict: a
// pack cut short is a fault.
func (g *packGuard) finish() error {
	if !g.done {
		g.done = true
		close(g.in)
		g.err = <-g.reply
	}
	return g.err
}

// close stops the guard's goroutine.
func (g *packGuard) close() {
	if !g.done {
		g.done = true
		close(g.in)
	}
}

// feeder is the guard goroutine's side: a reader of the chunks handed to
// check, byte by byte where zlib asks (so that it never reads ahead of the
// object it inflates).
type feeder struct {
	in      <-chan []byte
	reply   chan<- error
	cur     []byte
	started bool
	closed  bool
}

func (f *feeder) fill() bool {
	for len(f.cur) == 0 {
		if f.closed {
			return false
		}
		if f.started {
			f.reply <- errNeedMore
		}
		f.started = true
		b, ok := <-f.in
		if !ok {
			f.closed = true
			return false
		}
		f.cur = b
	}
	return true
}

func (f *feeder) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if !f.fill() {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, f.cur)
	f.cur = f.cur[n:]
	return n, nil
}

func (f *feeder) ReadByte() (byte, error) {
	if !f.fill() {
		return 0, io.ErrUnexpectedEOF
	}
	c := f.cur[0]
	f.cur = f.cur[1:]
	return c, nil
}

// Pack object types (git's Documentation/gitformat-pack.txt).
const (
	packCommit   = 1
	packTag      = 4
	packOfsDelta = 6
	packRefDelta = 7
)

var packTypeNames = map[int]string{1: "commit", 2: "tree", 3: "blob", 4: "tag", 6: "ofs-delta", 7: "ref-delta"}

// scanPack reads a whole pack from f and checks every object against l.
// Faults of form (a pack go-git would refuse as well) wrap ErrBundle, sizes
// over a limit ErrTooLarge.
func scanPack(f *feeder, l packLimits) error {
	var hdr [12]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return fmt.Errorf("%w: pack header: %w", ErrBundle, err)
	}
	if string(hdr[:4]) != "PACK" {
		return fmt.Errorf("%w: not a git pack", ErrBundle)
	}
	if v := binary.BigEndian.Uint32(hdr[4:8]); v != 2 && v != 3 {
		return fmt.Errorf("%w: pack version %d", ErrBundle, v)
	}
	count := binary.BigEndian.Uint32(hdr[8:])
	var total int64
	var zr io.ReadCloser
	for i := uint32(0); i < count; i++ {
		typ, size, err := readPackObjectHeader(f)
		if err != nil {
			return fmt.Errorf("%w: object %d of the pack: %w", ErrBundle, i+1, err)
		}
		name := packTypeNames[typ]
		tooLarge := func(what string, n int64) error {
			return fmt.Errorf("%w: object %d of the pack (a %s) %s %d bytes, above the limit of %d MiB (source.MaxObjectSize)",
				ErrTooLarge, i+1, name, what, n, l.object>>20)
		}
		if size > l.object {
			return tooLarge("declares", size)
		}
		switch typ {
		case packOfsDelta:
			for {
				c, err := f.ReadByte()
				if err != nil {
					return fmt.Errorf("%w: object %d of the pack: %w", ErrBundle, i+1, err)
				}
				if c&0x80 == 0 {
					break
				}
			}
		case packRefDelta:
			var base [20]byte
			if _, err := io.ReadFull(f, base[:]); err != nil {
				return fmt.Errorf("%w: object %d of the pack: %w", ErrBundle, i+1, err)
			}
		default:
			if typ < packCommit || typ > packTag {
				return fmt.Errorf("%w: object %d of the pack has type %d", ErrBundle, i+1, typ)
			}
		}
		if zr == nil {
			zr, err = zlib.NewReader(f)
		} else {
			err = zr.(zlib.Resetter).Reset(f, nil)
		}
		if err != nil {
			return fmt.Errorf("%w: object %d of the pack: %w", ErrBundle, i+1, err)
		}
		data := io.LimitReader(zr, size+1)
		var got int64
		if typ == packOfsDelta || typ == packRefDelta {
			// A delta starts with the sizes of its base and of what it
			// makes.
			br := &countingByteReader{r: data}
			if _, err := readVarint(br); err != nil {
				return fmt.Errorf("%w: object %d of the pack: delta: %w", ErrBundle, i+1, err)
			}
			target, err := readVarint(br)
			if err != nil {
				return fmt.Errorf("%w: object %d of the pack: delta: %w", ErrBundle, i+1, err)
			}
			if target > l.object {
				return tooLarge("makes an object of", target)
			}
			got = br.n
		}
		n, err := io.Copy(io.Discard, data)
		if err != nil {
			return fmt.Errorf("%w: object %d of the pack: %w", ErrBundle, i+1, err)
		}
		switch got += n; {
		case got > size:
			return fmt.Errorf("%w: object %d of the pack inflates to more than the %d bytes its header declares", ErrBundle, i+1, size)
		case got < size:
			return fmt.Errorf("%w: object %d of the pack inflates to %d bytes, its header declares %d", ErrBundle, i+1, got, size)
		}
		total += got
		if total > l.pack {
			return fmt.Errorf("%w: the pack's objects inflate to more than %d MiB (source.MaxPackInflated)", ErrTooLarge, l.pack>>20)
		}
	}
	var sum [20]byte
	if _, err := io.ReadFull(f, sum[:]); err != nil {
		return fmt.Errorf("%w: pack checksum: %w", ErrBundle, err)
	}
	return nil
}

// readPackObjectHeader reads an object's type and inflated size: 3 bits of
// type and 4 of size in the first byte, 7 bits of size in each next one.
func readPackObjectHeader(r io.ByteReader) (int, int64, error) {
	c, err := r.ReadByte()
	if err != nil {
		return 0, 0, err
	}
	typ := int(c>>4) & 7
	size := int64(c & 0x0f)
	for shift := 4; c&0x80 != 0; shift += 7 {
		if shift > 55 {
			return 0, 0, errors.New("object size overflows")
		}
		if c, err = r.ReadByte(); err != nil {
			return 0, 0, err
		}
		size |= int64(c&0x7f) << shift
	}
	return typ, size, nil
}

// readVarint reads a delta's size: 7 bits a byte, least significant first.
func readVarint(r io.ByteReader) (int64, error) {
	var v int64
	for shift := 0; ; shift += 7 {
		if shift > 55 {
			return 0, errors.New("size overflows")
		}
		c, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		v |= int64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, nil
		}
	}
}

// countingByteReader reads single bytes from r and counts them.
type countingByteReader struct {
	r io.Reader
	n int64
}

func (c *countingByteReader) ReadByte() (byte, error) {
	var b [1]byte
	if _, err := io.ReadFull(c.r, b[:]); err != nil {
		return 0, unexpected(err)
	}
	c.n++
	return b[0], nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// guardedReader passes a pack through a packGuard: Read returns bytes only
// once the guard has passed them, and the end of a stream that held a pack
// only once the guard has seen the whole pack.
type guardedReader struct {
	r    io.Reader
	g    *packGuard
	seen bool
}

func newGuardedReader(r io.Reader, l packLimits) *guardedReader {
	return &guardedReader{r: r, g: newPackGuard(l)}
}

func (r *guardedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.seen = true
		if gerr := r.g.check(p[:n]); gerr != nil {
			return 0, gerr
		}
	}
	if errors.Is(err, io.EOF) && r.seen {
		if gerr := r.g.finish(); gerr != nil {
			return 0, gerr
		}
	}
	return n, err
}

// close stops the guard.
func (r *guardedReader) close() { r.g.close() }

// guardedStorer is a repository storage whose PackfileWriter passes what a
// fetch writes through a packGuard before the storage (and the index
// go-git builds as the pack is written) sees it.
type guardedStorer struct {
	storage.Storer
	limits packLimits
	touch  func() // called on every chunk of pack written; nil for none
}

// PackfileWriter implements storer.PackfileWriter.
func (s guardedStorer) PackfileWriter() (io.WriteCloser, error) {
	pw, ok := s.Storer.(storer.PackfileWriter)
	if !ok {
		return nil, errors.New("repository storage cannot take packs")
	}
	w, err := pw.PackfileWriter()
	if err != nil {
		return nil, err
	}
	return &guardedWriter{w: w, g: newPackGuard(s.limits), touch: s.touch}, nil
}

type guardedWriter struct {
	w     io.WriteCloser
	g     *packGuard
	seen  bool
	touch func()
}

func (w *guardedWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		w.seen = true
		if w.touch != nil {
			w.touch()
		}
	}
	if err := w.g.check(p); err != nil {
		return 0, err
	}
	return w.w.Write(p)
}

// Close closes the storage's writer, which indexes what it was given; a
// pack the guard did not see end is refused.
func (w *guardedWriter) Close() error {
	var gerr error
	if w.seen {
		gerr = w.g.finish()
	}
	w.g.close()
	if err := w.w.Close(); gerr == nil {
		return err
	}
	return gerr
}
