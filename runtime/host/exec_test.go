package host

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
)

// safeBuffer is a bytes.Buffer safe for one writer and one reader.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestExec: a command runs in the container with its streams, stdin
// included, and its exit status comes back; with TTY it runs on a
// terminal; a passed signal reaches it; a pod or container that is not
// there, or not running, is an error that says so.
func TestExec(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)
	p := busyboxPod("shell", `echo started; exec sleep 3600`)
	p.HostNetwork = true
	p.Containers[0].Env = []reconciler.EnvVar{{Name: "GREETING", Value: "hello from the spec"}}
	if err := tr.CreatePod(ctx, p); err != nil {
		t.Fatalf("CreatePod: %v", err)
	}
	run := func(cmd []string, eio ExecIO) int {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		code, err := tr.Exec(cctx, p.Namespace, p.Name, "", cmd, eio)
		if err != nil {
			t.Fatalf("Exec %v: %v", cmd, err)
		}
		return code
	}

	var out, errOut bytes.Buffer
	code := run([]string{"sh", "-c", `echo "$GREETING"; echo to-stderr >&2; exit 3`}, ExecIO{Stdout: &out, Stderr: &errOut})
	if code != 3 || out.String() != "hello from the spec\n" || errOut.String() != "to-stderr\n" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 3, the container's env, and the stderr line", code, out.String(), errOut.String())
	}

	out.Reset()
	code = run([]string{"cat"}, ExecIO{Stdin: strings.NewReader("line one\nline two\n"), Stdout: &out, Stderr: &errOut})
	if code != 0 || out.String() != "line one\nline two\n" {
		t.Errorf("cat with stdin: exit %d, stdout %q: the end of stdin must reach the command", code, out.String())
	}

	out.Reset()
	code = run([]string{"sh", "-c", "tty; stty size"}, ExecIO{Stdout: &out, TTY: true, Size: TermSize{Width: 100, Height: 40}})
	if code != 0 || !strings.Contains(out.String(), "/dev/pts/") || !strings.Contains(out.String(), "40 100") {
		t.Errorf("with a terminal: exit %d, output %q; want a /dev/pts terminal of 40 rows, 100 columns", code, out.String())
	}

	sigs := make(chan syscall.Signal, 1)
	trapped := &safeBuffer{}
	go func() {
		// Once the trap is set (the command says so), send SIGTERM.
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(trapped.String(), "trapped") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		sigs <- syscall.SIGTERM
	}()
	code = run([]string{"sh", "-c", `trap "exit 7" TERM; echo trapped; while true; do sleep 0.1; done`}, ExecIO{Stdout: trapped, Signals: sigs})
	if code != 7 {
		t.Errorf("a passed SIGTERM: exit %d, want 7 (the command's trap)", code)
	}

	if _, err := tr.Exec(ctx, p.Namespace, "nosuch", "", []string{"true"}, ExecIO{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Exec in a missing pod = %v, want ErrNotFound", err)
	}
	if _, err := tr.Exec(ctx, p.Namespace, p.Name, "other", []string{"true"}, ExecIO{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Exec in a missing container = %v, want ErrNotFound", err)
	}
	if _, err := tr.Exec(ctx, p.Namespace, p.Name, "", nil, ExecIO{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Exec of no command = %v, want ErrInvalidArgument", err)
	}
	done := busyboxPod("done", `exit 0`)
	done.HostNetwork = true
	done.RestartPolicy = reconciler.RestartNever
	if err := tr.CreatePod(ctx, done); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := tr.Exec(ctx, done.Namespace, done.Name, "", []string{"true"}, ExecIO{})
		if errors.Is(err, errdefs.ErrFailedPrecondition) && strings.Contains(err.Error(), "not running") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Exec in an exited container = %v, want ErrFailedPrecondition, not running", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
