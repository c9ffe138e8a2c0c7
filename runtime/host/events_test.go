package host

import (
	"context"
	"testing"
	"time"
)

// TestEventsSeeTaskExit subscribes, runs a container that exits at once,
// and expects its exit in the runtime's namespace; ending the context
// closes the error channel without an error.
func TestEventsSeeTaskExit(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)
	sub, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, errs := tr.Events(sub)

	p := busyboxPod("exits", "exit 3")
	p.HostNetwork = true
	if err := tr.CreatePod(ctx, p); err != nil {
		t.Fatalf("CreatePod: %v", err)
	}
	deadline := time.After(30 * time.Second)
	for seen := false; !seen; {
		select {
		case ev := <-events:
			if ev.Namespace != tr.ns {
				t.Errorf("event %+v from another namespace than %s", ev, tr.ns)
			}
			if ev.Timestamp.IsZero() {
				t.Errorf("event %+v without a timestamp", ev)
			}
			seen = ev.Topic == "/tasks/exit"
		case err := <-errs:
			t.Fatalf("event stream ended: %v", err)
		case <-deadline:
			t.Fatal("no /tasks/exit event within 30 s of a container that exits at once")
		}
	}

	cancel()
	select {
	case err, ok := <-errs:
		if ok && err != nil {
			t.Errorf("after the context ended: %v, want no error", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the error channel is still open 10 s after the context ended")
	}
}
