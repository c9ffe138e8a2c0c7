package host

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
)

func TestLogs(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)
	p := busyboxPod("talker", `for i in 1 2 3; do echo "out $i"; echo "err $i" >&2; sleep 0.3; done`)
	p.HostNetwork = true
	p.RestartPolicy = reconciler.RestartNever
	if err := tr.CreatePod(ctx, p); err != nil {
		t.Fatalf("CreatePod: %v", err)
	}
	// Following from the start returns when the container exits, with
	// everything it wrote, stdout and stderr, each line whole.
	var out bytes.Buffer
	start := time.Now()
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := tr.Logs(fctx, p.Namespace, p.Name, "", true, &out); err != nil {
		t.Fatalf("Logs -f: %v", err)
	}
	if fctx.Err() != nil {
		t.Fatalf("Logs -f did not return when the container exited (after %s)", time.Since(start))
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 6 {
		t.Errorf("followed %d lines, want 6: %q", len(lines), out.String())
	}
	for _, want := range []string{"out 1", "err 1", "out 3", "err 3"} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("logs lack %q: %q", want, out.String())
		}
	}
	// Reading again gives the same.
	var again bytes.Buffer
	if err := tr.Logs(ctx, p.Namespace, p.Name, "main", false, &again); err != nil || again.String() != out.String() {
		t.Errorf("Logs = %q, %v; want %q", again.String(), err, out.String())
	}
	// The last two lines only.
	var tail bytes.Buffer
	if err := tr.LogsTail(ctx, p.Namespace, p.Name, "main", LogFilter{Tail: 2}, false, &tail); err != nil || tail.String() != strings.Join(lines[4:], "\n")+"\n" {
		t.Errorf("LogsTail 2 = %q, %v; want the last two of %q", tail.String(), err, lines)
	}
	// A restart appends.
	if err := tr.RestartContainer(ctx, p, "main"); err != nil {
		t.Fatal(err)
	}
	again.Reset()
	if err := tr.Logs(fctx, p.Namespace, p.Name, "main", true, &again); err != nil || strings.Count(again.String(), "out 1\n") != 2 {
		t.Errorf("logs after a restart = %q, %v", again.String(), err)
	}

	if err := tr.Logs(ctx, p.Namespace, "nosuch", "", false, &out); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Logs of a missing pod = %v, want errdefs.ErrNotFound", err)
	}
	if err := tr.Logs(ctx, p.Namespace, p.Name, "nosuch", false, &out); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Logs of a missing container = %v, want errdefs.ErrNotFound", err)
	}
}

func TestLogsNeedsContainerName(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)
	p := busyboxPod("pair", "exec sleep 1000")
	p.HostNetwork = true
	second := p.Containers[0]
	second.Name = "second"
	p.Containers = append(p.Containers, second)
	if err := tr.CreatePod(ctx, p); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := tr.Logs(ctx, p.Namespace, p.Name, "", false, &out)
	if err == nil || !strings.Contains(err.Error(), "main, second") {
		t.Errorf("Logs without a name = %v, want the names", err)
	}
	// Following a running container stops with ctx.
	fctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := tr.Logs(fctx, p.Namespace, p.Name, "main", true, &out); err != nil {
		t.Errorf("Logs -f ended by ctx = %v, want nil", err)
	}
}
