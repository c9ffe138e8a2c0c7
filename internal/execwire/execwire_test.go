package execwire

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		t    Type
		p    []byte
	}{
		{"stdout", Stdout, []byte("hello\n")},
		{"empty eof", StdinEOF, nil},
		{"resize", Resize, Uint32s(80, 24)},
		{"exit", Exit, ExitCode(-1)},
		{"error", Error, []byte("no such pod")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := NewWriter(&b).Write(tt.t, tt.p); err != nil {
				t.Fatal(err)
			}
			f, err := Read(&b)
			if err != nil {
				t.Fatal(err)
			}
			if f.Type != tt.t || !bytes.Equal(f.Payload, tt.p) {
				t.Fatalf("got %v %q, want %v %q", f.Type, f.Payload, tt.t, tt.p)
			}
			if _, err := Read(&b); !errors.Is(err, io.EOF) {
				t.Fatalf("after the frame: %v, want EOF", err)
			}
		})
	}
}

func TestExitCodes(t *testing.T) {
	for _, code := range []int{0, 1, 7, 255, -1} {
		got, err := ParseExitCode(ExitCode(code))
		if err != nil || got != code {
			t.Errorf("exit code %d: got %d, %v", code, got, err)
		}
	}
	if _, err := ParseExitCode([]byte{1}); err == nil {
		t.Error("a 1-byte exit payload was accepted")
	}
}

func TestSplitsLargeWrites(t *testing.T) {
	var b bytes.Buffer
	big := bytes.Repeat([]byte("x"), MaxPayload+10)
	if _, err := NewWriter(&b).Stream(Stdout).Write(big); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for {
		f, err := Read(&b)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f.Payload...)
	}
	if !bytes.Equal(got, big) {
		t.Fatalf("got %d bytes back, want %d", len(got), len(big))
	}
}

func TestRefusesCorrupt(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"too long", []byte{1, 0xff, 0xff, 0xff, 0xff}},
		{"truncated payload", []byte{1, 0, 0, 0, 5, 'a'}},
		{"truncated header", []byte{1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Read(bytes.NewReader(tt.in)); err == nil || errors.Is(err, io.EOF) {
				t.Fatalf("Read = %v, want an error other than EOF", err)
			}
		})
	}
}
