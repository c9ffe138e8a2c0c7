package nethost

import (
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// BuildKelpie builds the kelpie binary into a temporary directory, for
// tests that run it as a process of its own (an agent on a host, an apply
// killed mid-way).
func BuildKelpie(t *testing.T) string {
	t.Helper()
	goBin := testenv.Binary(t, "go", "golang-go")
	bin := filepath.Join(t.TempDir(), "kelpie")
	out, err := exec.Command(goBin, "build", "-o", bin, "github.com/kelpie-dev/kelpie/cmd/kelpie").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// Get GETs url, retrying until it answers or wait has passed, and returns
// the body: how a test reads what a pod serves once it is up.
func Get(url string, wait time.Duration) (string, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(wait)
	for {
		resp, err := client.Get(url)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil {
				return string(body), nil
			}
			err = rerr
		}
		if time.Now().After(deadline) {
			return "", err
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
}
