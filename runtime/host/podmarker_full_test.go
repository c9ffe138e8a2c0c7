package host

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// TestWritePodMarkerFullDisk: on a full file system the pod's marker
// cannot be written; the directory made for it is removed again, since
// Observe, which finds pods by their markers, would never see it.
func TestWritePodMarkerFullDisk(t *testing.T) {
	testenv.Root(t)
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "kelpie-test", dir).CombinedOutput(); err != nil {
		testenv.Missing(t, "mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); errors.Is(err, syscall.ENOSPC) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	c := &Containerd{podsDir: dir}
	p := busyboxPod("full", "exec sleep 1000")
	if _, err := c.writePodMarker(&p); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("writePodMarker on a full disk = %v, want ENOSPC", err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "filler" {
			left, _ := exec.Command("find", filepath.Join(dir, e.Name())).CombinedOutput()
			t.Errorf("%s left in the pods dir after the failed create:\n%s", e.Name(), left)
		}
	}
}
