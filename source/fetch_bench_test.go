package source

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// fetchBenchFiles is the size of the benchmark repository: 200 manifests of
// about 1 KiB, in 10 directories.
const fetchBenchFiles = 200

// newFetchBench pushes a commit of fetchBenchFiles manifests to a bare
// repository.
func newFetchBench(b *testing.B) *upstream {
	b.Helper()
	u := newUpstream(b)
	for f := range fetchBenchFiles {
		u.Write(benchManifestPath(f), manifest(f, 0))
	}
	u.Commit(fmt.Sprintf("%d manifests", fetchBenchFiles))
	u.push()
	return u
}

func benchManifestPath(f int) string {
	return fmt.Sprintf("apps/app-%02d/obj-%03d.yaml", f/20, f)
}

// change commits a new revision of one manifest and pushes it; the timer is
// stopped meanwhile.
func (u *upstream) change(b *testing.B, rev int) string {
	b.StopTimer()
	defer b.StartTimer()
	f := rev % fetchBenchFiles
	return u.commitPush(benchManifestPath(f), manifest(f, rev+1))
}

// BenchmarkFetchIncremental: one new commit (one manifest changed) per
// iteration, pushed to a local bare repository, then fetched into the cache
// with Remote.Fetch, fast-forward check included. Each fetch writes a pack:
// maintained, Maintain runs (untimed) every 8 iterations, as an agent's
// periodic Maintain keeps the cache; unmaintained, the packs pile up (one per
// iteration), which is what go-git alone does.
func BenchmarkFetchIncremental(b *testing.B) {
	for _, maintained := range []bool{true, false} {
		b.Run(fmt.Sprintf("maintained=%t", maintained), func(b *testing.B) {
			u := newFetchBench(b)
			r := newTestRemote(b, RemoteConfig{URLs: []string{u.bare}})
			ctx := context.Background()
			head := testenv.Git(b, u.bare, "rev-parse", "main")
			mustFetch(b, r, "", head)
			rev := 0
			for b.Loop() {
				want := u.change(b, rev)
				rev++
				f, err := r.Fetch(ctx, head)
				if err != nil {
					b.Fatal(err)
				}
				if f.Commit.Hash != want {
					b.Fatalf("fetched %s, want %s", f.Commit.Hash, want)
				}
				head = want
				if maintained && rev%8 == 0 {
					b.StopTimer()
					if err := r.Maintain(ctx); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			}
			b.ReportMetric(float64(len(packs(b, r.cfg.CacheDir))), "packs")
		})
	}
}

// BenchmarkGitCLIFetch is the baseline of BenchmarkFetchIncremental: `git
// fetch` of the same change into a bare clone.
func BenchmarkGitCLIFetch(b *testing.B) {
	u := newFetchBench(b)
	clone := filepath.Join(b.TempDir(), "clone.git")
	testenv.Git(b, u.Dir, "clone", "-q", "--bare", u.bare, clone)
	rev := 0
	for b.Loop() {
		u.change(b, rev)
		rev++
		testenv.Git(b, clone, "fetch", "-q", "origin", "+refs/heads/main:refs/remotes/origin/main")
	}
	b.ReportMetric(float64(len(packs(b, clone))), "packs")
}

// BenchmarkFetchUnchanged: Fetch of a remote whose ref has not moved, what
// every poll costs between pushes.
func BenchmarkFetchUnchanged(b *testing.B) {
	u := newFetchBench(b)
	r := newTestRemote(b, RemoteConfig{URLs: []string{u.bare}})
	ctx := context.Background()
	head := testenv.Git(b, u.bare, "rev-parse", "main")
	mustFetch(b, r, "", head)
	for b.Loop() {
		if _, err := r.Fetch(ctx, head); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGitCLIFetchUnchanged is the baseline of BenchmarkFetchUnchanged.
func BenchmarkGitCLIFetchUnchanged(b *testing.B) {
	u := newFetchBench(b)
	clone := filepath.Join(b.TempDir(), "clone.git")
	testenv.Git(b, u.Dir, "clone", "-q", "--bare", u.bare, clone)
	for b.Loop() {
		testenv.Git(b, clone, "fetch", "-q", "origin", "+refs/heads/main:refs/remotes/origin/main")
	}
}

// BenchmarkMaintain repacks a cache that fetched a history of 200
// manifests and N commits (one manifest changed each) in 20 fetches, so 20
// packs, into one. Each iteration starts from a copy of that cache.
func BenchmarkMaintain(b *testing.B) {
	for _, bc := range []struct {
		tool string
		n    int
	}{{"git", 100}, {"git", 1000}, {"go-git", 100}, {"go-git", 1000}} {
		n := bc.n
		b.Run(fmt.Sprintf("tool=%s/commits=%d", bc.tool, n), func(b *testing.B) {
			defer func(saved string) { gitBinary = saved }(gitBinary)
			if gitBinary = bc.tool; bc.tool == "go-git" {
				gitBinary = ""
			}
			u := newUpstream(b)
			commits := fastImport(b, u.bare, fetchBenchFiles, n)
			tmpl := filepath.Join(b.TempDir(), "cache")
			r := newTestRemote(b, RemoteConfig{URLs: []string{u.bare}, CacheDir: tmpl})
			applied := ""
			for i := n / 20; i <= n; i += n / 20 {
				c := commits[i-1]
				testenv.Git(b, u.bare, "update-ref", "refs/heads/main", c)
				mustFetch(b, r, applied, c)
				applied = c
			}
			r.Close()
			before := len(packs(b, tmpl))
			var after int
			for b.Loop() {
				b.StopTimer()
				cache := filepath.Join(b.TempDir(), "cache")
				if err := os.CopyFS(cache, os.DirFS(tmpl)); err != nil {
					b.Fatal(err)
				}
				r := newTestRemote(b, RemoteConfig{URLs: []string{u.bare}, CacheDir: cache})
				b.StartTimer()
				if err := r.Maintain(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				after = len(packs(b, cache))
				mustFetch(b, r, applied, applied)
				r.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(before), "packs-before")
			b.ReportMetric(float64(after), "packs-after")
		})
	}
}
