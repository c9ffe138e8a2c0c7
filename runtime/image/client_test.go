package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/containerd/errdefs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kelpie-dev/kelpie/internal/ctrtest"
	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
)

// newTestClient connects to the test containerd (KELPIE_CONTAINERD_ADDRESS)
// in a fresh namespace of its own, and removes that namespace's images and
// the namespace itself when the test ends.
func newTestClient(t *testing.T, opts ...Option) *Client {
	t.Helper()
	testenv.Root(t)
	addr := testenv.ContainerdAddress(t)
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	ns := "kelpie-test-" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Connect(ctx, addr, ns, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer c.Close()
		if err := ctrtest.RemoveNamespace(c.cd, ns); err != nil {
			t.Errorf("clean up containerd namespace %s: %v", ns, err)
		}
	})
	return c
}

func TestConnectMissingSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "containerd.sock")
	// A long dial timeout: a missing socket must be reported without
	// waiting for it (containerd's dialer alone would wait for the file).
	start := time.Now()
	_, err := Connect(context.Background(), sock, "", WithDialTimeout(time.Minute))
	if err == nil {
		t.Fatal("Connect to a missing socket succeeded")
	}
	if time.Since(start) > 30*time.Second {
		t.Errorf("Connect waited %s for a missing socket", time.Since(start))
	}
	want := "containerd is not reachable at " + sock + ": "
	if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "set --containerd-address") {
		t.Errorf("error = %q, want it to start %q and say how to fix it", err, want)
	}
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("errors.Is(%v, errdefs.ErrUnavailable) = false", err)
	}
}

func TestConnectNotASocket(t *testing.T) {
	p := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Connect(context.Background(), p, "")
	if err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("error = %v, want one saying it is not a socket", err)
	}
}

func TestConnectSilentSocket(t *testing.T) {
	// A socket nobody answers gRPC on: Connect must give up within its timeout.
	sock := filepath.Join(t.TempDir(), "silent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
		}
	}()
	start := time.Now()
	_, err = Connect(context.Background(), sock, "", WithDialTimeout(300*time.Millisecond))
	if err == nil {
		t.Fatal("Connect to a silent socket succeeded")
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("Connect took %s with a 300ms timeout", d)
	}
	if !strings.Contains(err.Error(), "containerd is not reachable at "+sock) {
		t.Errorf("error = %q", err)
	}
}

func TestConnectInvalidNamespace(t *testing.T) {
	_, err := Connect(context.Background(), "/nonexistent.sock", "Bad Namespace!")
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("error = %v, want errdefs.ErrInvalidArgument", err)
	}
}

func TestConnect(t *testing.T) {
	c := newTestClient(t)
	if c.Namespace() == DefaultNamespace || !strings.HasPrefix(c.Namespace(), "kelpie-test-") {
		t.Errorf("namespace = %q", c.Namespace())
	}
	if c.ServerVersion() == "" {
		t.Error("no server version")
	}
	if c.Snapshotter() != DefaultSnapshotter {
		t.Errorf("snapshotter = %q", c.Snapshotter())
	}
}

func TestConnectUnknownSnapshotter(t *testing.T) {
	testenv.Root(t)
	addr := testenv.ContainerdAddress(t)
	_, err := Connect(context.Background(), addr, "kelpie-test-snap", WithSnapshotter("nosuch"))
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), `no snapshotter "nosuch"`) {
		t.Errorf("error = %v, want a missing-snapshotter failure", err)
	}
}

func TestConvertErr(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   error
		want error
	}{
		{"errdefs", fmt.Errorf("image x: %w", cerrdefs.ErrNotFound), errdefs.ErrNotFound},
		{"grpc", status.Error(codes.AlreadyExists, "content sha256:x: already exists"), errdefs.ErrAlreadyExists},
		{"unavailable", status.Error(codes.Unavailable, "connection refused"), errdefs.ErrUnavailable},
		{"precondition", cerrdefs.ErrFailedPrecondition, errdefs.ErrFailedPrecondition},
		{"invalid", cerrdefs.ErrInvalidArgument, errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ConvertErr(tc.in)
			if !errors.Is(got, tc.want) {
				t.Errorf("ConvertErr(%v) does not match %v", tc.in, tc.want)
			}
			if st, ok := status.FromError(tc.in); ok {
				if !strings.Contains(got.Error(), st.Message()) {
					t.Errorf("message lost: %q → %q", tc.in, got)
				}
			} else if got.Error() != tc.in.Error() {
				t.Errorf("message changed: %q → %q", tc.in, got)
			}
		})
	}
	if ConvertErr(nil) != nil {
		t.Error("ConvertErr(nil) != nil")
	}
	plain := errors.New("plain")
	if ConvertErr(plain) != plain {
		t.Error("an unclassified error was changed")
	}
	// Still matches containerd's own class after conversion.
	if !cerrdefs.IsNotFound(ConvertErr(cerrdefs.ErrNotFound)) {
		t.Error("converted error lost its errdefs class")
	}
}

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "127.3.4.5": true, "localhost:80": true, "[::1]:5000": true, "::1": true,
		"10.0.0.1:5000": false, "registry.local": false, "docker.io": false, "128.0.0.1": false,
	} {
		if got := isLoopbackHost(host); got != want {
			t.Errorf("isLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
