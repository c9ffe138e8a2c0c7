package source

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// DefaultStallTimeout is how long a fetch waits for a remote that sends
// nothing before giving up on that URL (RemoteConfig.StallTimeout). A git
// server sends progress about every second while it counts and compresses
// objects, and pack data after that: 30 s of silence is a dead connection
// or a stuck server, not a slow one. A slow link that keeps sending is
// never cut off.
const DefaultStallTimeout = 30 * time.Second

// ErrStalled is wrapped by the error of a fetch from a URL that sent
// nothing for RemoteConfig.StallTimeout: a server that accepted the
// connection and never answered, or stopped half way through a pack.
var ErrStalled = errors.New("remote stalled")

// stallWatch cancels a fetch's context when nothing has arrived from the
// remote for its timeout; touch says something did. Its methods may be
// called from any goroutine.
type stallWatch struct {
	d       time.Duration
	timer   *time.Timer
	stalled atomic.Bool
	cancel  context.CancelFunc
}

// watchStall returns a context that ends when ctx does or when the
// returned watch has not been touched for d. Call stop when the fetch ends.
func watchStall(ctx context.Context, d time.Duration) (context.Context, *stallWatch) {
	ctx, cancel := context.WithCancel(ctx)
	w := &stallWatch{d: d, cancel: cancel}
	w.timer = time.AfterFunc(d, func() {
		w.stalled.Store(true)
		cancel()
	})
	return ctx, w
}

// touch records that the remote sent something.
func (w *stallWatch) touch() {
	if !w.stalled.Load() {
		w.timer.Reset(w.d)
	}
}

// stop ends the watch and releases its context.
func (w *stallWatch) stop() {
	w.timer.Stop()
	w.cancel()
}

// wrap turns the error of a fetch the watch cut off into one that says
// so; other errors are returned as they are.
func (w *stallWatch) wrap(err error) error {
	if err == nil || !w.stalled.Load() {
		return err
	}
	return fmt.Errorf("%w: nothing received for %v, fetch abandoned (stall timeout): %w", ErrStalled, w.d, context.DeadlineExceeded)
}

// touchWriter is a progress sink (git's sideband messages) that counts as
// activity.
type touchWriter struct{ w *stallWatch }

func (t touchWriter) Write(p []byte) (int, error) {
	t.w.touch()
	return len(p), nil
}
