package mirror

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/source"
)

// TestImportBombRefused: the audit's reproduction, a 2 MB bundle holding
// one 2 GiB blob of zeros, took 3 GB of memory before anything was
// verified. A bundle with a 512 MiB blob (0.6 MB) is refused now, from
// the blob's header, at the real limit (source.MaxObjectSize), without
// the heap growing and without changing the mirror.
func TestImportBombRefused(t *testing.T) {
	site, _ := newSite(t)
	dir := filepath.Join(t.TempDir(), "mirror")
	full := filepath.Join(t.TempDir(), "full.kbundle")
	mustCreate(t, CreateConfig{Repo: site.Dir, Out: full})
	importOK(t, ImportConfig{File: full, Dir: dir})
	before := testenv.TreeDigest(t, dir)

	pack, blob := testenv.ZeroBlobPack(t, 512<<20)
	x := &Index{Format: Format, Created: time.Unix(0, 0).UTC(), Path: "deploy",
		Refs: []source.BundleRef{{Name: "refs/heads/main", Commit: blob}}}
	bomb := writeBundleFile(t, x, map[string][]byte{GitPart: testenv.GitBundle(pack, blob+" refs/heads/main")})

	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	_, err := Import(context.Background(), ImportConfig{File: bomb, Dir: dir})
	runtime.ReadMemStats(&m1)
	grew := m1.TotalAlloc - m0.TotalAlloc
	t.Logf("import allocated %d KiB: %v", grew>>10, err)
	if !errors.Is(err, source.ErrTooLarge) || !strings.Contains(err.Error(), "source.MaxObjectSize") {
		t.Fatalf("err = %v, want source.ErrTooLarge naming the limit", err)
	}
	if grew > 32<<20 {
		t.Errorf("a refused import allocated %d MiB", grew>>20)
	}
	if testenv.TreeDigest(t, dir) != before {
		t.Fatal("refused import changed the mirror")
	}
}
