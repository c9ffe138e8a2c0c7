package agent

import (
	"context"
	"log/slog"
	"time"

	"github.com/kelpie-dev/kelpie/runtime/host"
)

// logRotator is the runtime's log rotation (host.Containerd).
type logRotator interface {
	RotateLogs(r host.LogRotation) (int, error)
}

// rotateLogs rotates the containers' logs every LogRotateInterval until
// ctx is done. A failure is logged once for as long as it repeats.
func rotateLogs(ctx context.Context, rt logRotator, r host.LogRotation, log *slog.Logger) {
	t := time.NewTicker(LogRotateInterval)
	defer t.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := rt.RotateLogs(r)
		if n > 0 {
			log.Debug("container logs rotated", "files", n)
		}
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if msg != last && err != nil {
			log.Warn("container log rotation failed", "err", err)
		}
		last = msg
	}
}
