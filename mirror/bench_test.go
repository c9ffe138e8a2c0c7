package mirror

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/testimage"
)

// TestWriteBenchFixture writes the fixture bench/mirror.sh measures, when
// KELPIE_MIRROR_BENCH_OUT names a directory: OUT/repo, a git repository
// with 200 Deployments (KELPIE_MIRROR_BENCH_MANIFESTS) under deploy/, each
// using one of 5 images (KELPIE_MIRROR_BENCH_IMAGES), and OUT/images, an OCI
// layout of those images, each busybox plus an incompressible payload of
// KELPIE_MIRROR_BENCH_PAYLOAD_MB (default 8) MiB, so that the images weigh
// what small real ones do.
func TestWriteBenchFixture(t *testing.T) {
	out := os.Getenv("KELPIE_MIRROR_BENCH_OUT")
	if out == "" {
		// Deliberate: a fixture writer for bench/mirror.sh, not a test.
		t.Skip("KELPIE_MIRROR_BENCH_OUT not set (bench/mirror.sh sets it)")
	}
	manifests := envInt(t, "KELPIE_MIRROR_BENCH_MANIFESTS", 200)
	nImages := envInt(t, "KELPIE_MIRROR_BENCH_IMAGES", 5)
	payload := envInt(t, "KELPIE_MIRROR_BENCH_PAYLOAD_MB", 8)

	var specs []testimage.Spec
	for i := 0; i < nImages; i++ {
		data := make([]byte, payload<<20)
		rand.New(rand.NewSource(int64(i))).Read(data)
		s := testimage.Busybox()
		s.Name = fmt.Sprintf("registry.local/bench/app%d:1", i)
		s.Files = map[string]string{"/payload.bin": string(data)}
		specs = append(specs, s)
	}
	if err := testimage.WriteLayout(filepath.Join(out, "images"), specs...); err != nil {
		t.Fatal(err)
	}

	repo := filepath.Join(out, "repo")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	r := &testenv.GitRepo{TB: t, Dir: repo}
	r.Git("init", "-q")
	for i := 0; i < manifests; i++ {
		r.Write(fmt.Sprintf("deploy/app%03d.yaml", i), deployment(fmt.Sprintf("app%03d", i), specs[i%nImages].Name, 2))
	}
	r.Commit("200 apps")
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
