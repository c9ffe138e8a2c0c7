package testimage

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// startPID1 runs argv as PID 1 of a new PID namespace (unshare --pid
// --fork), as a container's process is, and returns the command and the
// host pid of that PID 1. It skips the test where that is not allowed.
func startPID1(t *testing.T, argv ...string) (*exec.Cmd, int) {
	t.Helper()
	NeedBusybox(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		testenv.Missing(t, "unshare: %v", err)
	}
	cmd := exec.Command("unshare", append([]string{"--pid", "--fork", "--kill-child"}, argv...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	path := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/task/" + strconv.Itoa(cmd.Process.Pid) + "/children"
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(path)
		if err != nil {
			break
		}
		if f := strings.Fields(string(data)); len(f) > 0 {
			pid, _ := strconv.Atoi(f[0])
			return cmd, pid
		}
		time.Sleep(20 * time.Millisecond)
	}
	testenv.Missing(t, "no PID 1 under unshare --pid (not permitted here?)")
	return nil, 0
}

// exited waits up to d for cmd to end and returns whether it did and its
// exit code.
func exited(cmd *exec.Cmd, d time.Duration) (bool, int) {
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
		return true, cmd.ProcessState.ExitCode()
	case <-time.After(d):
		return false, 0
	}
}

// TestExitOnTerm checks the wrapper of the server images as PID 1: busybox
// sleep alone ignores SIGTERM there, wrapped it ends at once with status 0,
// and a command that ends by itself passes its status on.
func TestExitOnTerm(t *testing.T) {
	t.Run("bare applet ignores SIGTERM", func(t *testing.T) {
		cmd, pid := startPID1(t, DefaultBusybox, "sleep", "100")
		// Wait until PID 1 is busybox (unshare's child has exec'd it).
		bb, err := filepath.EvalSymlinks(DefaultBusybox)
		if err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 5*time.Second, "PID 1 to exec busybox", func() bool {
			exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
			return err == nil && exe == bb
		})
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if done, _ := exited(cmd, 500*time.Millisecond); done {
			testenv.Missing(t, "PID 1 ended on SIGTERM without a handler: this kernel does not protect PID 1 here")
		}
	})
	t.Run("wrapped exits on SIGTERM", func(t *testing.T) {
		argv := ExitOnTerm(DefaultBusybox, "sleep", "100")
		cmd, pid := startPID1(t, append([]string{DefaultBusybox}, argv...)...) // busybox sh outside an image
		done := make(chan struct{})
		var code int
		go func() { _ = cmd.Wait(); code = cmd.ProcessState.ExitCode(); close(done) }()
		deadline := time.After(5 * time.Second)
		// The trap is in place a moment after the shell starts: until it
		// is, PID 1 ignores SIGTERM, so repeat it.
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				if code != 0 {
					t.Errorf("exit status %d on SIGTERM, want 0", code)
				}
				return
			case <-tick.C:
				_ = syscall.Kill(pid, syscall.SIGTERM)
			case <-deadline:
				t.Fatal("the wrapped command did not exit within 5s of SIGTERM")
			}
		}
	})
	t.Run("status passed on", func(t *testing.T) {
		// The command ends at once, so there is no PID 1 to look for:
		// unshare --fork passes its child's status on.
		NeedBusybox(t)
		if _, err := exec.LookPath("unshare"); err != nil {
			testenv.Missing(t, "unshare: %v", err)
		}
		argv := ExitOnTerm(DefaultBusybox, "sh", "-c", "exit 7")
		cmd := exec.Command("unshare", append([]string{"--pid", "--fork", "--kill-child", DefaultBusybox}, argv...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if done, code := exited(cmd, 5*time.Second); !done || code != 7 {
			if !done {
				_ = cmd.Process.Kill()
			}
			t.Errorf("exited %v with %d, want 7", done, code)
		}
	})
}
