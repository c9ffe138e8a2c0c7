// Package testenv gives tests the real components they need (a containerd, a
// local image registry, OS binaries) and decides what happens when one is
// missing: locally the test is skipped with a message that says how to get the
// component, but under CI (CI=true) it fails, so CI can never pass by skipping.
//
// It never starts containerd itself: scripts/containerd.sh does, and .ci/run
// exports its socket as KELPIE_CONTAINERD_ADDRESS.
package testenv

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// AddressEnv names the environment variable that holds the containerd socket
// the tests use (the same one `kelpie --containerd-address` reads).
const AddressEnv = "KELPIE_CONTAINERD_ADDRESS"

// InCI reports whether the tests run under CI (CI=true, as .ci/run is started).
func InCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// Missing ends the test because something it needs is not there: a skip with
// the message locally, a failure under CI.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true, so this test may not be skipped: "+format, args...)
		return
	}
	t.Skipf(format, args...)
}

// ContainerdAddress returns the socket of the test containerd from
// KELPIE_CONTAINERD_ADDRESS, or ends the test through Missing when it is unset
// or the socket does not exist.
func ContainerdAddress(t testing.TB) string {
	t.Helper()
	addr := os.Getenv(AddressEnv)
	if addr == "" {
		Missing(t, "%s is not set: this test needs a real containerd; run `bash scripts/containerd.sh start` "+
			"and `eval \"$(bash scripts/containerd.sh env)\"`", AddressEnv)
		return ""
	}
	if _, err := os.Stat(addr); err != nil {
		Missing(t, "%s=%s: %v (is the test containerd running? `bash scripts/containerd.sh status`)", AddressEnv, addr, err)
		return ""
	}
	return addr
}

// Root ends the test through Missing unless it runs as root (containerd,
// network namespaces and mounts need it).
func Root(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root (euid is %d)", os.Geteuid())
	}
}

// Binary returns the path of an executable, looked up as exec.LookPath does,
// or ends the test through Missing naming the Debian package that ships it.
func Binary(t testing.TB, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s not found (apt-get install %s): %v", name, debianPackage, err)
		return ""
	}
	return path
}
