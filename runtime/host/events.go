package host

import (
	"context"
	"errors"
	"fmt"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/typeurl/v2"

	"github.com/kelpie-dev/kelpie/runtime/image"
)

// Event is something containerd saw happen in the runtime's namespace on
// its own, that can mean drift: a task exited (crash, OOM kill, kill by
// hand) or a container or task was removed behind kelpie's back.
type Event struct {
	// Topic is containerd's topic: one of driftTopics ("/tasks/exit", ...).
	Topic string
	// Namespace is the containerd namespace it happened in: the runtime's.
	Namespace string
	// Timestamp is when containerd published it.
	Timestamp time.Time
}

// driftTopics are the containerd events that can mean drift.
var driftTopics = []string{"/tasks/exit", "/tasks/oom", "/tasks/delete", "/containers/delete"}

// execExit reports that an event is the exit of an exec process (an exec
// probe's, most often), not of a container's task: no drift. Without it an
// agent running exec probes observed the whole host at every probe's end.
func execExit(topic string, event typeurl.Any) bool {
	if topic != "/tasks/exit" || event == nil {
		return false
	}
	v, err := typeurl.UnmarshalAny(event)
	if err != nil {
		return false
	}
	e, ok := v.(*apievents.TaskExit)
	return ok && e.ID != "" && e.ID != e.ContainerID
}

// errEventsClosed is sent when containerd ends the event stream without an
// error.
var errEventsClosed = errors.New("containerd event stream closed")

// Events subscribes to containerd's events that can mean drift in the
// runtime's namespace, on the runtime's own connection. Events arrive on
// the first channel until ctx ends or the stream breaks (containerd went
// away); then the second channel receives the error, unless ctx ended,
// and is closed. The event channel is never closed. The caller must drain
// the events until then; to subscribe again, call Events again.
func (c *Containerd) Events(ctx context.Context) (<-chan Event, <-chan error) {
	ns := c.client.Namespace()
	filters := make([]string, len(driftTopics))
	for i, t := range driftTopics {
		filters[i] = fmt.Sprintf("topic==%q,namespace==%q", t, ns)
	}
	ctx, cancel := context.WithCancel(ctx)
	envs, cerrs := c.cd.Subscribe(ctx, filters...)
	out := make(chan Event)
	errs := make(chan error, 1)
	go func() {
		defer cancel()
		defer close(errs)
		for {
			select {
			case env := <-envs:
				if execExit(env.Topic, env.Event) {
					continue
				}
				ev := Event{Topic: env.Topic, Namespace: env.Namespace, Timestamp: env.Timestamp}
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			case err := <-cerrs:
				if ctx.Err() != nil {
					return
				}
				if err == nil {
					err = errEventsClosed
				}
				errs <- fmt.Errorf("containerd events: %w", image.ConvertErr(err))
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, errs
}
