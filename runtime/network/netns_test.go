package network

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// threadNetNS is the network namespace of the calling goroutine's thread.
func threadNetNS(t *testing.T) string {
	t.Helper()
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	s, err := os.Readlink(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNetnsCreateIsPersistentAndLeavesThreadsAlone(t *testing.T) {
	testenv.Root(t)
	host := threadNetNS(t)
	dir := t.TempDir()
	paths := make([]string, 8)
	var wg sync.WaitGroup
	for i := range paths {
		paths[i] = filepath.Join(dir, fmt.Sprint("ns", i))
		wg.Add(1)
		go func(p string) {
			defer wg.Done()
			if err := netnsCreate(p); err != nil {
				t.Error(err)
			}
		}(paths[i])
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, p := range paths {
			_ = netnsRemove(p)
		}
	})
	// No thread the runtime hands out is left in a pod's namespace.
	for i := 0; i < 64; i++ {
		var got string
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); got = threadNetNS(t) }()
		wg.Wait()
		if got != host {
			t.Fatalf("a goroutine runs in %s, not the host's %s", got, host)
		}
	}
	seen := map[string]bool{}
	for _, p := range paths {
		if ok, err := netnsMounted(p); !ok || err != nil {
			t.Fatalf("%s mounted = %v, %v", p, ok, err)
		}
		// The main thread is never ended, only parked: it must be back home.
		if ns, err := os.Readlink("/proc/self/ns/net"); err != nil || ns != host {
			t.Fatalf("the main thread is in %s (%v), not the host's %s", ns, err, host)
		}
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprint(st.Ino)
		if seen[id] || fmt.Sprintf("net:[%d]", st.Ino) == host {
			t.Errorf("%s is not a namespace of its own (inode %s)", p, id)
		}
		seen[id] = true
	}
	// Again: kept, same namespace.
	var before, after unix.Stat_t
	_ = unix.Stat(paths[0], &before)
	if err := netnsCreate(paths[0]); err != nil {
		t.Fatal(err)
	}
	_ = unix.Stat(paths[0], &after)
	if before.Ino != after.Ino {
		t.Errorf("netnsCreate on a namespace replaced it")
	}
}

func TestNetnsRemove(t *testing.T) {
	testenv.Root(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "ns")
	if err := netnsRemove(p); err != nil {
		t.Errorf("remove a missing netns: %v", err)
	}
	if err := os.WriteFile(p, nil, 0o444); err != nil { // an interrupted creation
		t.Fatal(err)
	}
	if ok, _ := netnsMounted(p); ok {
		t.Fatal("a plain file counts as mounted")
	}
	if err := netnsRemove(p); err != nil {
		t.Errorf("remove an unmounted netns file: %v", err)
	}
	if err := netnsCreate(p); err != nil {
		t.Fatal(err)
	}
	if err := netnsRemove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("netns file left: %v", err)
	}
	if err := withNetNS(p, func() error { return nil }); err == nil {
		t.Errorf("withNetNS on a removed namespace succeeded")
	}
}
