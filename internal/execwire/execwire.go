// Package execwire is the framed protocol of a remote `kelpie exec`: after
// the agent upgrades the HTTP/1.1 connection (Upgrade: kelpie-exec.v1),
// both sides exchange frames of one type byte, a 4-byte big-endian length
// and that many bytes of payload. The client sends stdin, the end of stdin,
// terminal sizes and signals; the agent sends stdout, stderr and, last, the
// exit code or an error. It never touches a container or a socket itself.
package execwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Protocol is the Upgrade header's value.
const Protocol = "kelpie-exec.v1"

// MaxPayload bounds one frame: a larger one is refused as corrupt.
const MaxPayload = 1 << 20

// Type is what a frame carries.
type Type byte

// The frame types. Client to agent: Stdin, StdinEOF, Resize, Signal.
// Agent to client: Stdout, Stderr, Exit, Error (Exit or Error ends the
// session).
const (
	Stdin    Type = 0 // bytes for the command's standard input
	Stdout   Type = 1 // bytes the command wrote to standard output (and, with a terminal, everything)
	Stderr   Type = 2 // bytes it wrote to standard error
	Resize   Type = 3 // width, height: two big-endian uint32
	Exit     Type = 4 // the exit code: a big-endian int32
	Error    Type = 5 // why the command could not run: a UTF-8 message
	StdinEOF Type = 6 // standard input ended (empty payload)
	Signal   Type = 7 // a signal number: a big-endian uint32
)

// Frame is one message.
type Frame struct {
	Type    Type
	Payload []byte
}

// Read reads one frame from r.
func Read(r io.Reader) (Frame, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > MaxPayload {
		return Frame{}, fmt.Errorf("exec frame of %d bytes: more than %d", n, MaxPayload)
	}
	f := Frame{Type: Type(h[0]), Payload: make([]byte, n)}
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	return f, nil
}

// Writer writes frames to one connection; it is safe for concurrent use.
type Writer struct {
	mu sync.Mutex
	w  io.Writer
}

// NewWriter writes frames to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write writes one frame (a payload beyond MaxPayload is split).
func (fw *Writer) Write(t Type, p []byte) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for {
		chunk := p
		if len(chunk) > MaxPayload {
			chunk = chunk[:MaxPayload]
		}
		b := make([]byte, 5+len(chunk))
		b[0] = byte(t)
		binary.BigEndian.PutUint32(b[1:], uint32(len(chunk)))
		copy(b[5:], chunk)
		if _, err := fw.w.Write(b); err != nil {
			return err
		}
		p = p[len(chunk):]
		if len(p) == 0 {
			return nil
		}
	}
}

// Stream is an io.Writer that sends what is written as frames of type t.
func (fw *Writer) Stream(t Type) io.Writer { return streamWriter{fw, t} }

type streamWriter struct {
	fw *Writer
	t  Type
}

func (s streamWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := s.fw.Write(s.t, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Uint32s encodes values as big-endian uint32s (Resize, Signal).
func Uint32s(v ...uint32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.BigEndian.PutUint32(b[4*i:], x)
	}
	return b
}

// ParseUint32s decodes n big-endian uint32s; a payload of another length
// is an error.
func ParseUint32s(p []byte, n int) ([]uint32, error) {
	if len(p) != 4*n {
		return nil, fmt.Errorf("exec frame: %d bytes, want %d", len(p), 4*n)
	}
	out := make([]uint32, n)
	for i := range out {
		out[i] = binary.BigEndian.Uint32(p[4*i:])
	}
	return out, nil
}

// ExitCode encodes an exit code.
func ExitCode(code int) []byte { return Uint32s(uint32(int32(code))) }

// ParseExitCode decodes an Exit payload.
func ParseExitCode(p []byte) (int, error) {
	v, err := ParseUint32s(p, 1)
	if err != nil {
		return 0, err
	}
	return int(int32(v[0])), nil
}
