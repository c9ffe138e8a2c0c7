package agent

import (
	"context"
	"log/slog"
	"time"

	"github.com/kelpie-dev/kelpie/runtime/host"
)

// EventSource is the runtime's stream of events that can mean drift
// (host.Containerd): see host.Containerd.Events for the contract.
type EventSource interface {
	Events(ctx context.Context) (<-chan host.Event, <-chan error)
}

// eventReconnect is how long WatchEvents waits before subscribing again
// after the stream broke (containerd restarted, upgraded).
const eventReconnect = 2 * time.Second

// WatchEvents subscribes to the runtime's events (a task exited, a
// container or task was removed behind kelpie's back) and sends a value
// to out for each (without blocking: one pending value is enough, the
// agent observes the whole host anyway). The agent then checks for drift
// within Config.EventDelay, so a killed container is back in seconds
// instead of at the next drift tick.
//
// It subscribes again when the stream breaks, sending one value after each
// new subscription (events may have been missed), and returns when ctx
// ends.
func WatchEvents(ctx context.Context, src EventSource, out chan<- struct{}, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	first := true
	for {
		err := watchOnce(ctx, src, out, !first)
		if ctx.Err() != nil {
			return
		}
		first = false
		log.Warn("runtime events: subscription ended; drift checks fall back to the drift interval until it is back", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(eventReconnect):
		}
	}
}

// watchOnce subscribes and forwards events until the stream ends.
func watchOnce(ctx context.Context, src EventSource, out chan<- struct{}, notify bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, errs := src.Events(ctx)
	if notify {
		offer(out)
	}
	for {
		select {
		case <-events:
			offer(out)
		case err, ok := <-errs:
			if err == nil || !ok {
				return ctx.Err()
			}
			return err
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
