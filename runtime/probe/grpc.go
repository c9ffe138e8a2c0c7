package probe

import (
	"context"
	"net"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/kelpie-dev/kelpie/reconciler"
)

// maxGRPCMessage bounds the health response a gRPC probe accepts; a real
// one is a few bytes.
const maxGRPCMessage = 4 << 10

// GRPC makes a grpc probe g of the server at addr (an IP address, from
// Target.Address): one call of grpc.health.v1.Health/Check for g.Service,
// in plain text (no TLS, as the kubelet), within timeout (DefaultTimeout
// when not positive). SERVING is success; any other status is a failure
// whose output is the status's name ("NOT_SERVING", "SERVICE_UNKNOWN"),
// and so is a server without the health service.
func GRPC(ctx context.Context, addr string, g reconciler.GRPC, timeout time.Duration) (ok bool, output string) {
	timeout = timeoutOf(timeout)
	if g.Port <= 0 || g.Port > 65535 {
		return false, "port " + strconv.Itoa(g.Port) + " out of range"
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// The connection is dialled here, so that a refused one says so
	// rather than gRPC's "Unavailable" (and no proxy is ever used).
	var mu sync.Mutex
	var dialErr error
	dial := func(ctx context.Context, a string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, "tcp", a)
		if err != nil {
			mu.Lock()
			dialErr = err
			mu.Unlock()
		}
		return c, err
	}
	conn, err := grpc.DialContext(pctx, net.JoinHostPort(addr, strconv.Itoa(g.Port)),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(dial),
		grpc.WithNoProxy(),
		grpc.WithUserAgent(UserAgent),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxGRPCMessage)),
	)
	if err != nil {
		return false, describe(pctx, ctx, err, timeout)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(pctx, &healthpb.HealthCheckRequest{Service: g.Service})
	if err != nil {
		mu.Lock()
		derr := dialErr
		mu.Unlock()
		st, _ := status.FromError(err)
		switch {
		case ctx.Err() != nil:
			return false, "canceled"
		case st.Code() == codes.DeadlineExceeded || pctx.Err() != nil:
			return false, TimedOut(timeout)
		case st.Code() == codes.Unavailable && derr != nil:
			return false, describe(pctx, ctx, derr, timeout)
		case st.Code() == codes.Unimplemented:
			return false, "no health service"
		}
		return false, short(st.Code().String() + ": " + st.Message())
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return false, s.String()
	}
	return true, healthpb.HealthCheckResponse_SERVING.String()
}
