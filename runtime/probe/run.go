package probe

import (
	"context"

	"github.com/kelpie-dev/kelpie/reconciler"
)

// Run makes the network probe p (httpGet, tcpSocket or grpc) of a pod at
// t, at the address Target.Address allows, and returns whether it
// succeeded and what happened. A probe whose host is not allowed fails
// without a connection, its output saying so ("host 10.0.0.1 not
// allowed"). An exec probe, which runs in the container, is not for Run:
// it fails. Run returns within p.Timeout (DefaultTimeout when not
// positive), or once ctx is done. It is safe for concurrent use.
func Run(ctx context.Context, t Target, p reconciler.Probe) (ok bool, output string) {
	switch {
	case p.HTTPGet != nil:
		addr, err := t.Address(p.HTTPGet.Host)
		if err != nil {
			return false, err.Error()
		}
		return HTTP(ctx, addr, *p.HTTPGet, p.Timeout)
	case p.TCPSocket != nil:
		addr, err := t.Address(p.TCPSocket.Host)
		if err != nil {
			return false, err.Error()
		}
		return TCP(ctx, addr, p.TCPSocket.Port, p.Timeout)
	case p.GRPC != nil:
		addr, err := t.Address("")
		if err != nil {
			return false, err.Error()
		}
		return GRPC(ctx, addr, *p.GRPC, p.Timeout)
	case len(p.Exec) > 0:
		return false, "exec probes run in the container, not from the host"
	}
	return false, "probe has no handler"
}
