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

// logTimeRecorder is the runtime's time index of container logs
// (host.Containerd).
type logTimeRecorder interface {
	RecordLogTimes(now time.Time) error
}

// recordLogTimes samples the containers' logs for their time index (what
// `kelpie logs --since` reads) every LogTimesInterval until ctx is done.
// A failure is logged once for as long as it repeats.
func recordLogTimes(ctx context.Context, rt logTimeRecorder, clk Clock, log *slog.Logger) {
	t := time.NewTicker(LogTimesInterval)
	defer t.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := rt.RecordLogTimes(clk.Now())
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if msg != last && err != nil {
			log.Warn("recording the times of container logs failed; kelpie logs --since is less exact", "err", err)
		}
		last = msg
	}
}
