package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kelpie-dev/kelpie/internal/testenv/nethost"
)

// openPTY opens a pseudo-terminal pair: the master the test drives and
// the slave the command gets as its terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the pty's slave: %v", err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// execArgs is `exec` with the host's flags, then args: flags after "--"
// would be the command's.
func execArgs(h *hostEnv, args ...string) []string {
	return append(append([]string{"exec"}, h.flags...), args...)
}

// ptyOutput collects what a pty's master reads.
type ptyOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *ptyOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// waitFor waits until the output holds want.
func (o *ptyOutput) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(o.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q; it showed:\n%q", want, o.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestExecTerminalEndToEnd runs `kelpie exec -it` on a real terminal (a
// pty the test drives, the process's controlling terminal) into a pod on
// a real containerd: the command sees a terminal of the window's size,
// follows a resize, reads what is typed, and kelpie exits with its
// status. Without -t, the command's status passes through too.
func TestExecTerminalEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: not in -short")
	}
	h := newHostEnv(t, "10.248.4.0/24")
	h.write(`apiVersion: v1
kind: Pod
metadata: {name: shell, namespace: exectest}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox:1.36
    command: ["sleep", "3600"]
`)
	if res := h.run("apply"); res.code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	bin := nethost.BuildKelpie(t)

	// Without a terminal: output and exit status.
	out, err := exec.Command(bin, execArgs(h, "exectest/shell", "--", "sh", "-c", "echo plain; exit 4")...).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 4 || !strings.Contains(string(out), "plain") {
		t.Fatalf("exec without -t: %v (want exit 4)\n%s", err, out)
	}
	// -t without a terminal on stdin is refused, naming the flag.
	out, err = exec.Command(bin, execArgs(h, "-t", "exectest/shell", "--", "true")...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "-t needs a terminal") {
		t.Fatalf("exec -t without a terminal: %v\n%s", err, out)
	}

	master, slave := openPTY(t)
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 30, Col: 90}); err != nil {
		t.Fatal(err)
	}
	script := `tty; stty size; while [ "$(stty size)" = "30 90" ]; do sleep 0.1; done; echo "resized to $(stty size)"; read x; echo "got $x"; exit 5`
	cmd := exec.Command(bin, execArgs(h, "-it", "exectest/shell", "--", "sh", "-c", script)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var term ptyOutput
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			term.mu.Lock()
			term.buf.Write(b[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	term.waitFor(t, "30 90")
	if !strings.Contains(term.String(), "/dev/pts/") {
		t.Errorf("the command's tty: %q, want a /dev/pts terminal", term.String())
	}
	// The window grows: the kernel sends SIGWINCH to kelpie, which resizes
	// the command's terminal.
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	term.waitFor(t, "resized to 40 120")
	if _, err := master.Write([]byte("hello\r")); err != nil {
		t.Fatal(err)
	}
	term.waitFor(t, "got hello")
	select {
	case err := <-done:
		if !errors.As(err, &ee) || ee.ExitCode() != 5 {
			t.Fatalf("kelpie exec -it exited %v, want status 5\n%q", err, term.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("kelpie exec -it did not exit after the command did\n%q", term.String())
	}
}
