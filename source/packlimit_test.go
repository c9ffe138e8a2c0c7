package source

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// heapGrowth runs f and returns the bytes it allocated on the heap (an upper
// bound of how much the peak heap grew), with f's error.
func heapGrowth(f func() error) (uint64, error) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, err
}

// TestBundleBombRefused: the audit's reproduction, a 2 MB bundle with one
// 2 GiB zero blob, took 3 GB of memory before anything was checked. A
// 512 MiB blob (0.6 MB in the bundle) took 512 MiB; it is refused from its
// header now, at the real limit.
func TestBundleBombRefused(t *testing.T) {
	pack, blob := testenv.ZeroBlobPack(t, 512<<20)
	bundle := testenv.GitBundle(pack, blob+" refs/heads/main")
	t.Logf("bundle of %d bytes", len(bundle))
	staging := filepath.Join(t.TempDir(), "staging.git")
	grew, err := heapGrowth(func() error {
		s, err := StageBundle(filepath.Join(t.TempDir(), "site.git"), staging, bytes.NewReader(bundle))
		if err == nil {
			s.Close()
		}
		return err
	})
	t.Logf("StageBundle allocated %d KiB: %v", grew>>10, err)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "source.MaxObjectSize") {
		t.Errorf("err = %v, want ErrTooLarge naming source.MaxObjectSize", err)
	}
	if grew > 32<<20 {
		t.Errorf("StageBundle allocated %d MiB for a refused bundle", grew>>20)
	}
	if _, err := os.Stat(staging); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused bundle left %s", staging)
	}
}

// zeros is a reader of n zero bytes.
func zeros(n int64) io.Reader { return bytes.NewReader(make([]byte, n)) }

// pack writes a crafted pack.
func pack(t *testing.T, objs ...testenv.PackObject) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := testenv.WritePack(&b, objs...); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// delta is the data of a delta from a base of base bytes to an object of
// target bytes (the sizes only: the guard reads no further).
func delta(base, target int64) []byte {
	var b []byte
	for _, v := range []int64{base, target} {
		for v >= 0x80 {
			b = append(b, byte(v)|0x80)
			v >>= 7
		}
		b = append(b, byte(v))
	}
	return b
}

func TestPackGuard(t *testing.T) {
	const mib = 1 << 20
	limits := packLimits{object: mib, pack: 4 * mib}
	r := testenv.NewGitRepo(t)
	r.Write("a.yaml", strings.Repeat("a: 1\n", 1000))
	c1 := r.Commit("one")
	r.Write("a.yaml", strings.Repeat("a: 1\n", 1001))
	c2 := r.Commit("two")
	file, _ := writeBundleFile(t, r.Dir, []BundleRef{{Name: "refs/heads/main", Commit: c2}}, c1)
	real, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	real = real[bytes.Index(real, []byte("PACK")):]

	blob := func(size int64, data io.Reader) testenv.PackObject {
		return testenv.PackObject{Type: testenv.PackBlob, Size: size, Data: data}
	}
	refDelta := func(d []byte) testenv.PackObject {
		return testenv.PackObject{Type: testenv.PackRefDelta, Size: int64(len(d)), Base: make([]byte, 20), Data: bytes.NewReader(d)}
	}
	cases := []struct {
		name string
		pack []byte
		want error // nil: passes
	}{
		{"a real incremental pack", real, nil},
		{"an empty pack", pack(t), nil},
		{"a blob at the limit", pack(t, blob(mib, zeros(mib))), nil},
		{"a blob over the limit", pack(t, blob(mib+1, zeros(mib+1))), ErrTooLarge},
		{"a header claiming 2^55 bytes", pack(t, blob(1<<55, nil)), ErrTooLarge},
		{"a blob inflating beyond its header", pack(t, blob(10, zeros(mib+1))), ErrBundle},
		{"a blob inflating short of its header", pack(t, blob(100, zeros(10))), ErrBundle},
		{"a delta making an object over the limit", pack(t, refDelta(delta(10, 2<<30))), ErrTooLarge},
		{"a delta within the limit", pack(t, refDelta(delta(10, 20))), nil},
		{"objects over the pack limit together", pack(t, blob(mib, zeros(mib)), blob(mib, zeros(mib)),
			blob(mib, zeros(mib)), blob(mib, zeros(mib)), blob(mib, zeros(mib))), ErrTooLarge},
		{"an object of type 5", pack(t, testenv.PackObject{Type: 5, Size: 1, Data: zeros(1)}), ErrBundle},
		{"truncated", real[:len(real)/2], ErrBundle},
		{"not a pack", []byte("PUCK\x00\x00\x00\x02\x00\x00\x00\x00"), ErrBundle},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// One byte at a time: the guard must fault before a byte of
			// the offending object's data passes.
			g := newGuardedReader(iotest.OneByteReader(bytes.NewReader(tc.pack)), limits)
			defer g.close()
			got, err := io.ReadAll(g)
			if tc.want == nil {
				if err != nil || !bytes.Equal(got, tc.pack) {
					t.Fatalf("passed %d of %d bytes, err = %v", len(got), len(tc.pack), err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			t.Logf("refused after %d bytes: %v", len(got), err)
		})
	}

	// A header over the limit stops the stream within that header.
	g := newGuardedReader(iotest.OneByteReader(bytes.NewReader(pack(t, blob(64*mib, zeros(64*mib))))), limits)
	defer g.close()
	got, err := io.ReadAll(g)
	if !errors.Is(err, ErrTooLarge) || len(got) > 12+4 {
		t.Fatalf("passed %d bytes before refusing (%v): the pack header and part of the object's", len(got), err)
	}
}

// TestFetchRefusesLargeObject: the agent's fetch passes the pack through the
// same guard; a refused fetch leaves no partial pack and no ref behind.
func TestFetchRefusesLargeObject(t *testing.T) {
	old := defaultPackLimits
	defaultPackLimits = packLimits{object: 1 << 20, pack: 1 << 30}
	t.Cleanup(func() { defaultPackLimits = old })

	up := newUpstream(t)
	small := up.commitPush("deploy/web.yaml", "kind: Pod\n")
	rem := newTestRemote(t, RemoteConfig{URLs: []string{"file://" + up.bare}})
	mustFetch(t, rem, "", small)
	before := treeFiles(t, rem.cfg.CacheDir)

	up.Write("big.bin", strings.Repeat("\x00", 32<<20))
	big := up.Commit("a big file")
	up.push()
	grew, err := heapGrowth(func() error {
		return fetchErr(t, rem, small, ErrTooLarge, "source.MaxObjectSize")
	})
	t.Logf("refused fetch allocated %d KiB: %v", grew>>10, err)
	if grew > 16<<20 {
		t.Errorf("a fetch refused for a 32 MiB blob allocated %d MiB", grew>>20)
	}
	if after := treeFiles(t, rem.cfg.CacheDir); len(after) != len(before) {
		t.Errorf("refused fetch changed the cache: %d files, were %d", len(after), len(before))
	}

	// At the documented limit the same history is taken.
	defaultPackLimits = old
	mustFetch(t, rem, small, big)
}
