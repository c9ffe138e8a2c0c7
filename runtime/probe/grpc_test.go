package probe

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/kelpie-dev/kelpie/reconciler"
)

// serveGRPC serves s on a loopback port until the test ends and returns
// the port.
func serveGRPC(t *testing.T, s *grpc.Server) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l) //nolint:errcheck // ends with Stop
	t.Cleanup(s.Stop)
	return l.Addr().(*net.TCPAddr).Port
}

// stuckHealth is a health service whose Check never answers.
type stuckHealth struct {
	healthpb.UnimplementedHealthServer
}

func (stuckHealth) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestGRPC(t *testing.T) {
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("db", healthpb.HealthCheckResponse_NOT_SERVING)
	hs.SetServingStatus("cache", healthpb.HealthCheckResponse_UNKNOWN)
	healthy := grpc.NewServer()
	healthpb.RegisterHealthServer(healthy, hs)
	port := serveGRPC(t, healthy)

	stuck := grpc.NewServer()
	healthpb.RegisterHealthServer(stuck, stuckHealth{})
	stuckPort := serveGRPC(t, stuck)

	bare := serveGRPC(t, grpc.NewServer()) // no health service

	for _, tc := range []struct {
		name    string
		g       reconciler.GRPC
		timeout time.Duration
		ok      bool
		output  string
	}{
		{name: "server serving", g: reconciler.GRPC{Port: port}, ok: true, output: "SERVING"},
		{name: "service not serving", g: reconciler.GRPC{Port: port, Service: "db"}, output: "NOT_SERVING"},
		{name: "service unknown status", g: reconciler.GRPC{Port: port, Service: "cache"}, output: "UNKNOWN"},
		{name: "service the server does not know", g: reconciler.GRPC{Port: port, Service: "nope"}, output: "NotFound: unknown service"},
		{name: "no health service", g: reconciler.GRPC{Port: bare}, output: "no health service"},
		{name: "stuck", g: reconciler.GRPC{Port: stuckPort}, timeout: 200 * time.Millisecond, output: "timeout after 200ms"},
		{name: "connection refused", g: reconciler.GRPC{Port: closedPort(t)}, output: "connection refused"},
		{name: "bad port", g: reconciler.GRPC{}, output: "port 0 out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			ok, output := GRPC(context.Background(), "127.0.0.1", tc.g, tc.timeout)
			if ok != tc.ok || output != tc.output {
				t.Errorf("GRPC = %v, %q; want %v, %q", ok, output, tc.ok, tc.output)
			}
			if limit := timeoutOf(tc.timeout) + time.Second; time.Since(start) > limit {
				t.Errorf("GRPC took %s, more than its timeout", time.Since(start))
			}
		})
	}

	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	if ok, output := GRPC(context.Background(), "127.0.0.1", reconciler.GRPC{Port: port}, 0); ok || output != "NOT_SERVING" {
		t.Errorf("after the server stopped serving: GRPC = %v, %q; want false, NOT_SERVING", ok, output)
	}
}
