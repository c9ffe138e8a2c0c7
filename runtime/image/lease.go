package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/leases"

	"github.com/kelpie-dev/kelpie/internal/proc"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
)

// labelLeaseOwner names the process holding an image lease: its pid and
// the start time the kernel gives it, so a lease whose process is gone is
// told apart from one in use by a concurrent kelpie.
const labelLeaseOwner = "kelpie.dev/lease-owner"

// imageLeaseExpiry bounds the life of an image lease whose holder died
// on a host where nothing reaps it; containerd's own default is 24 hours.
const imageLeaseExpiry = time.Hour

var (
	ownerOnce  sync.Once
	ownerToken string
)

// leaseOwner is this process's owner token, "pid:starttime".
func leaseOwner() string {
	ownerOnce.Do(func() {
		pid := os.Getpid()
		ownerToken = strconv.Itoa(pid) + ":" + proc.StartTicks(pid)
	})
	return ownerToken
}

// ownerAlive reports whether the process an owner token names still runs.
func ownerAlive(token string) bool {
	pid, start, ok := strings.Cut(token, ":")
	if !ok {
		return false
	}
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 {
		return false
	}
	return start != "" && proc.StartTicks(n) == start
}

// withImageLease returns ctx holding a lease of kelpie's own for the
// content and snapshots an import, pull or unpack writes, and a function
// that releases it. containerd's client would otherwise take an unlabelled
// lease that outlives a killed kelpie by a day; this one names its process,
// and reapImageLeases removes it once that process is gone.
func (c *Client) withImageLease(ctx context.Context) (context.Context, func(), error) {
	c.reapOnce.Do(func() { c.reapImageLeases(ctx) })
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, nil, fmt.Errorf("lease id: %w", err)
	}
	id := "kelpie-image-" + hex.EncodeToString(b[:])
	ls := c.cd.LeasesService()
	l, err := ls.Create(ctx, leases.WithID(id), leases.WithExpiration(imageLeaseExpiry), leases.WithLabels(map[string]string{
		reconciler.LabelManaged: reconciler.ManagedValue,
		labelLeaseOwner:         leaseOwner(),
	}))
	if err != nil {
		return nil, nil, fmt.Errorf("image lease: %w", ConvertErr(err))
	}
	done := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := ls.Delete(dctx, l); err != nil && !errors.Is(ConvertErr(err), errdefs.ErrNotFound) {
			slog.Warn("release image lease", "lease", id, "err", err)
		}
	}
	return leases.WithLease(ctx, id), done, nil
}

// reapImageLeases deletes the image leases of kelpie processes that are
// gone (killed while importing or pulling). Failures are logged: the
// leases expire on their own.
func (c *Client) reapImageLeases(ctx context.Context) {
	ls := c.cd.LeasesService()
	lss, err := ls.List(ctx, `labels."`+labelLeaseOwner+`"`)
	if err != nil {
		slog.Debug("list image leases", "err", ConvertErr(err))
		return
	}
	for _, l := range lss {
		if ownerAlive(l.Labels[labelLeaseOwner]) {
			continue
		}
		if err := ls.Delete(ctx, l); err != nil && !errors.Is(ConvertErr(err), errdefs.ErrNotFound) {
			slog.Debug("delete stale image lease", "lease", l.ID, "err", ConvertErr(err))
		}
	}
}
