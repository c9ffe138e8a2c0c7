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
	everyInterval(ctx, LogRotateInterval, log, "container log rotation failed", func() error {
		n, err := rt.RotateLogs(r)
		if n > 0 {
			log.Debug("container logs rotated", "files", n)
		}
		return err
	})
}

// logTimeRecorder is the runtime's time index of container logs
// (host.Containerd).
type logTimeRecorder interface {
	RecordLogTimes(now time.Time) error
}

// recordLogTimes samples the containers' logs for their time index (what
// `kelpie logs --since` reads) every LogTimesInterval until ctx is done.
// A failure is logged once for as long as it repeats.
func recordLogTimes(ctx context.Context, rt logTimeRecorder, clk Clock, log *slog.Logger) {
	everyInterval(ctx, LogTimesInterval, log, "recording the times of container logs failed; kelpie logs --since is less exact", func() error {
		return rt.RecordLogTimes(clk.Now())
	})
}

// everyInterval calls f every d until ctx is done, and logs its error as
// a warning (msg) when it differs from the last call's: a failure that
// repeats is logged once, and again after a success.
func everyInterval(ctx context.Context, d time.Duration, log *slog.Logger, msg string, f func() error) {
	t := time.NewTicker(d)
	defer t.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := f()
		text := ""
		if err != nil {
			text = err.Error()
		}
		if text != last && err != nil {
			log.Warn(msg, "err", err)
		}
		last = text
	}
}
