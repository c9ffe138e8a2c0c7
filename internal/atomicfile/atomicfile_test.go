package atomicfile

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the test binary a writer that replaces the file it names
// forever, until it is killed (see TestKilledWriter).
const childEnv = "ATOMICFILE_TEST_WRITER"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		runWriter(path)
		return
	}
	os.Exit(m.Run())
}

// content is generation gen of the test file: a header naming its
// generation, length and checksum, then a payload that depends on gen, so
// that a torn, short, empty or mixed file fails checkContent.
func content(gen int) []byte {
	n := 1 + (gen*7919)%(256<<10)
	payload := bytes.Repeat([]byte{byte('a' + gen%26)}, n)
	sum := sha256.Sum256(payload)
	return append([]byte(fmt.Sprintf("gen=%d len=%d sum=%x\n", gen, n, sum)), payload...)
}

// checkContent returns the generation of a whole file made by content.
func checkContent(b []byte) (int, error) {
	line, payload, ok := bytes.Cut(b, []byte("\n"))
	if !ok {
		return 0, fmt.Errorf("no header in %d bytes", len(b))
	}
	var gen, n int
	var sum string
	if _, err := fmt.Sscanf(string(line), "gen=%d len=%d sum=%s", &gen, &n, &sum); err != nil {
		return 0, fmt.Errorf("header %q: %v", line, err)
	}
	if !bytes.Equal(b, content(gen)) {
		return 0, fmt.Errorf("generation %d torn: %d payload bytes, want %d", gen, len(payload), n)
	}
	return gen, nil
}

// runWriter replaces path with generation after generation, alternately
// with WriteFile and with Write in small chunks (a long window for a kill
// mid-way), and never returns.
func runWriter(path string) {
	for gen := 1; ; gen++ {
		data := content(gen)
		var err error
		if gen%2 == 0 {
			err = WriteFile(path, data, 0o640)
		} else {
			err = Write(path, 0o640, func(w io.Writer) error {
				for b := data; len(b) > 0; {
					k := min(len(b), 4096)
					if _, err := w.Write(b[:k]); err != nil {
						return err
					}
					b = b[k:]
				}
				return nil
			})
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
}

// TestKilledWriter SIGKILLs a writer at random points, many times, and
// checks after each kill that the file holds a whole generation (the one
// before the writer started, or one it wrote), never a torn or empty one,
// that only temporary files are left beside it, and that later writes
// cope with them. It proves atomicity against a crash of the process; the
// syncs that make it hold across a power cut are not observable here.
func TestKilledWriter(t *testing.T) {
	iterations, budget := 60, 20*time.Second
	if testing.Short() {
		iterations = 15
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := WriteFile(path, content(0), 0o640); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(budget)
	advanced := 0
	for i := 0; i < iterations && time.Now().Before(deadline); i++ {
		before, _ := os.ReadFile(path)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+path)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.IntN(40_000)) * time.Microsecond) // the random kill point, not a wait for anything
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("iteration %d: writer ended by itself (%v): %s", i, err, stderr.String())
		}

		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
		gen, err := checkContent(b)
		if err != nil {
			t.Fatalf("iteration %d: file is neither old nor new: %v", i, err)
		}
		if !bytes.Equal(b, before) {
			advanced++
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() != filepath.Base(path) && !IsTemp(e.Name()) {
				t.Fatalf("iteration %d: unexpected file %s beside generation %d", i, e.Name(), gen)
			}
		}
	}
	t.Logf("%d kills, the file changed before %d of them", iterations, advanced)

	// Later writes cope with the leftovers; RemoveTemps clears them.
	if err := WriteFile(path, content(1_000_000), 0o640); err != nil {
		t.Fatalf("write after the kills: %v", err)
	}
	if err := RemoveTemps(dir); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("after RemoveTemps: %d entries, want only %s", len(entries), filepath.Base(path))
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, content(1_000_000)) {
		t.Fatal("last write lost")
	}
}

func TestWriteFile(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	for _, tc := range []struct {
		name  string
		perm  os.FileMode
		exist bool
	}{
		{"new 0644", 0o644, false},
		{"new 0600", 0o600, false},
		{"replace 0755", 0o755, true},
		{"replace 0444", 0o444, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			if tc.exist {
				if err := os.WriteFile(path, []byte("old content, longer than the new"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFile(path, []byte("new"), tc.perm); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil || string(b) != "new" {
				t.Fatalf("read %q, %v; want %q", b, err, "new")
			}
			fi, _ := os.Stat(path)
			if fi.Mode().Perm() != tc.perm {
				t.Errorf("mode %v, want %v (the umask must not apply)", fi.Mode().Perm(), tc.perm)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("%d entries in the directory, want 1", len(entries))
			}
		})
	}
}

func TestWriteFails(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, dir string) string // returns the path to write
		write   func(io.Writer) error
		wantErr error
		keep    string // the content path must keep, "" when it must not exist
	}{
		{
			name:  "missing directory",
			setup: func(t *testing.T, dir string) string { return filepath.Join(dir, "nodir", "f") },
			write: func(w io.Writer) error { _, err := io.WriteString(w, "x"); return err },
		},
		{
			name: "write fails",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "f")
				if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
					t.Fatal(err)
				}
				return p
			},
			write:   func(w io.Writer) error { _, _ = io.WriteString(w, "partial"); return boom },
			wantErr: boom,
			keep:    "old",
		},
		{
			name: "target is a directory",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "d")
				if err := os.MkdirAll(filepath.Join(p, "x"), 0o755); err != nil {
					t.Fatal(err)
				}
				return p
			},
			write: func(w io.Writer) error { _, err := io.WriteString(w, "x"); return err },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := tc.setup(t, dir)
			err := Write(path, 0o644, tc.write)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if tc.keep != "" {
				if b, _ := os.ReadFile(path); string(b) != tc.keep {
					t.Errorf("content %q, want %q kept", b, tc.keep)
				}
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if IsTemp(e.Name()) {
					t.Errorf("temporary file %s left behind", e.Name())
				}
			}
		})
	}
}

func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"keep", TempPrefix + "keep-123", ".hidden"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, TempPrefix+"dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := RemoveTemps(dir); err != nil {
		t.Fatal(err)
	}
	var got []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		got = append(got, e.Name())
	}
	want := []string{".hidden", TempPrefix + "dir", "keep"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("left %v, want %v", got, want)
	}
}
