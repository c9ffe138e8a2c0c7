package agent

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/containerd/containerd"
)

// eventTopics are the containerd events that can mean drift: a task that
// exited (crash, OOM kill, kill by hand) or a container or task removed
// behind kelpie's back.
var eventTopics = []string{"/tasks/exit", "/tasks/oom", "/tasks/delete", "/containers/delete"}

// eventReconnect is how long WatchContainerd waits before subscribing
// again after containerd went away (restarted, upgraded).
const eventReconnect = 2 * time.Second

// WatchContainerd subscribes to containerd's task exit and container
// removal events in namespace and sends a value to out for each (without
// blocking: one pending value is enough, the agent observes the whole host
// anyway). The agent then checks for drift within Config.EventDelay, so a
// killed container is back in seconds instead of at the next drift tick.
//
// It reconnects when containerd goes away, sending one value after each
// reconnection (events may have been missed), and returns nil when ctx
// ends. It returns an error only when it cannot make a client at all.
//
// This is a second connection to containerd, apart from the runtime's: the
// runtime package does not expose its event stream.
func WatchContainerd(ctx context.Context, address, namespace string, out chan<- struct{}, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	filters := make([]string, len(eventTopics))
	for i, t := range eventTopics {
		filters[i] = fmt.Sprintf("topic==%q,namespace==%q", t, namespace)
	}
	first := true
	for {
		err := watchOnce(ctx, address, filters, out, !first)
		if ctx.Err() != nil {
			return nil
		}
		first = false
		log.Warn("containerd events: subscription ended; drift checks fall back to the drift interval until it is back", "address", address, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(eventReconnect):
		}
	}
}

// watchOnce connects, subscribes and forwards events until the stream
// ends.
func watchOnce(ctx context.Context, address string, filters []string, out chan<- struct{}, notify bool) error {
	client, err := containerd.New(address, containerd.WithTimeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("connect to containerd at %s: %w", address, err)
	}
	defer client.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, errs := client.Subscribe(ctx, filters...)
	if notify {
		offer(out)
	}
	for {
		select {
		case <-events:
			offer(out)
		case err := <-errs:
			if err == nil {
				return fmt.Errorf("event stream closed")
			}
			return fmt.Errorf("event stream: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// offer sends to out without blocking.
func offer(out chan<- struct{}) {
	select {
	case out <- struct{}{}:
	default:
	}
}
