package image

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/containerd/containerd/leases"

	"github.com/kelpie-dev/kelpie/internal/testimage"
)

func TestOwnerAlive(t *testing.T) {
	if !ownerAlive(leaseOwner()) {
		t.Errorf("ownerAlive(%q) = false for this process", leaseOwner())
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	self := strconv.Itoa(os.Getpid())
	for _, tok := range []string{
		strconv.Itoa(cmd.Process.Pid) + ":1", // exited (or a reused pid, with another start time)
		self + ":1",                          // this pid, another start time: a previous holder of the pid
		self, "", "x:1", "-1:1",
	} {
		if ownerAlive(tok) {
			t.Errorf("ownerAlive(%q) = true, want false", tok)
		}
	}
}

// TestImageLeasesReaped checks that imports leave no lease behind, and that
// the lease of an import whose process died is removed at the next image
// operation while a live process's lease is kept.
func TestImageLeasesReaped(t *testing.T) {
	testimage.NeedBusybox(t)
	c := newTestClient(t)
	ctx, cancel := context.WithTimeout(c.WithNamespace(context.Background()), time.Minute)
	defer cancel()
	ls := c.cd.LeasesService()
	mk := func(id, owner string) {
		t.Helper()
		if _, err := ls.Create(ctx, leases.WithID(id), leases.WithLabels(map[string]string{labelLeaseOwner: owner})); err != nil {
			t.Fatal(err)
		}
	}
	mk("dead-holder", strconv.Itoa(os.Getpid())+":1")
	mk("live-holder", leaseOwner())

	archive, err := testimage.Build(t.TempDir(), testimage.Busybox())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportArchive(ctx, archive); err != nil {
		t.Fatal(err)
	}
	lss, err := ls.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range lss {
		ids = append(ids, l.ID)
	}
	if len(ids) != 1 || ids[0] != "live-holder" {
		t.Errorf("leases after import %v, want [live-holder]", ids)
	}
	if err := ls.Delete(ctx, leases.Lease{ID: "live-holder"}); err != nil {
		t.Fatal(err)
	}
}
