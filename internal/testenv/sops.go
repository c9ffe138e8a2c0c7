package testenv

import (
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// SOPSVersion is the sops release the interoperability tests encrypt with;
// scripts/deps.sh installs it.
const SOPSVersion = "v3.13.3"

// SOPS returns the path of the real sops binary (getsops/sops), from PATH
// or from the Go bin directory where scripts/deps.sh installs it (`go
// install github.com/getsops/sops/v3/cmd/sops@` SOPSVersion; Debian has no
// package), or ends the test through Missing. Run it with SOPSEnv: sops
// must not look for updates on the network.
func SOPS(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("sops"); err == nil {
		return p
	}
	gobin := os.Getenv("GOBIN")
	if gobin == "" {
		gopath := os.Getenv("GOPATH")
		if gopath == "" {
			gopath = build.Default.GOPATH
		}
		gobin = filepath.Join(strings.Split(gopath, string(os.PathListSeparator))[0], "bin")
	}
	p := filepath.Join(gobin, "sops")
	if _, err := os.Stat(p); err != nil {
		Missing(t, "sops not found in PATH or %s: run scripts/deps.sh (it runs go install github.com/getsops/sops/v3/cmd/sops@%s)", gobin, SOPSVersion)
		return ""
	}
	return p
}

// SOPSEnv is the environment to run sops in: the test's, with the update
// check off (it would reach for the network) and no key from the user's
// environment.
func SOPSEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SOPS_") {
			continue
		}
		env = append(env, kv)
	}
	return append(append(env, "SOPS_DISABLE_VERSION_CHECK=true"), extra...)
}
