package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
)

// TestRawConn: a raw connection to a real listener, over IPv4 and IPv6,
// writes, reads to the end, and resets the connection when aborted.
func TestRawConn(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			host := "127.0.0.1"
			if network == "tcp6" {
				host = "::1"
			}
			ln, err := net.Listen(network, net.JoinHostPort(host, "0"))
			if err != nil {
				t.Skipf("no %s loopback: %v", network, err)
			}
			defer ln.Close()
			got := make(chan string, 1)
			after := make(chan error, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					got <- err.Error()
					return
				}
				defer c.Close()
				buf := make([]byte, 5)
				if _, err := io.ReadFull(c, buf); err != nil {
					got <- err.Error()
					return
				}
				got <- string(buf)
				c.Write([]byte("pong"))
				c.(*net.TCPConn).CloseWrite()
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, err = c.Read(buf)
				after <- err
			}()

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, ok, err := dialRaw(ctx, ln.Addr().String())
			if err != nil || !ok {
				t.Fatalf("dialRaw = %v, %v", ok, err)
			}
			if n, err := c.Write([]byte("ping!")); n != 5 || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			if s := <-got; s != "ping!" {
				t.Fatalf("the server read %q", s)
			}
			b, err := io.ReadAll(c)
			if err != nil || string(b) != "pong" {
				t.Fatalf("ReadAll = %q, %v", b, err)
			}
			if err := c.Abort(); err != nil {
				t.Fatal(err)
			}
			if err := <-after; !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("the server read %v after the abort, want a connection reset", err)
			}
		})
	}
}

// TestRawConnErrors: a refused connection, a deadline and an address that
// is not an IP say so as net's connections would; a name is left to net.
func TestRawConnErrors(t *testing.T) {
	ctx := context.Background()
	for _, hostport := range []string{"localhost:80", "[fe80::1%lo]:80"} {
		if _, ok, err := dialRaw(ctx, hostport); ok || err != nil {
			t.Errorf("dialRaw(%s) = %v, %v; want net to dial it", hostport, ok, err)
		}
	}

	c, ok, err := dialRaw(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(closedPort(t))))
	if err != nil || !ok {
		t.Fatalf("dialRaw = %v, %v", ok, err)
	}
	_, err = c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	c.Abort()
	var op *net.OpError
	if !errors.Is(err, syscall.ECONNREFUSED) || !errors.As(err, &op) {
		t.Errorf("write to a closed port: %v (%T), want a net.OpError for connection refused", err, err)
	}

	// A listener that never answers: the read waits for the deadline.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, _, err = dialRaw(ctx, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Abort()
	if err := c.SetDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err = c.Read(make([]byte, 10))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read past the deadline: %v", err)
	}
	if got := describe(ctx, ctx, err, time.Second); got != "timeout after 1s" {
		t.Errorf("describe = %q", got)
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := dialRaw(canceled, ln.Addr().String()); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "dial tcp") {
		t.Errorf("dialRaw with a canceled context: %v", err)
	}
}

// TestHTTPManyAtOnce: probes made all at once through the shared poller
// each get their own answer, and leave no descriptor open.
func TestHTTPManyAtOnce(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		w.WriteHeader(code)
	}))
	defer srv.Close()
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	fds := func() int {
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip(err)
		}
		return len(entries)
	}
	HTTP(context.Background(), host, reconciler.HTTPGet{Path: "/200", Port: p}, time.Second) // the poller's own descriptor
	before := fds()
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			code := 200 + i%3*100 // 200, 300, 400
			ok, out := HTTP(context.Background(), host, reconciler.HTTPGet{Path: "/" + strconv.Itoa(code), Port: p}, 10*time.Second)
			if want := "HTTP " + strconv.Itoa(code); ok != (code < 400) || out != want {
				errs <- fmt.Sprintf("probe %d: %v, %q; want %q", i, ok, out, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	srv.CloseClientConnections()
	// The server's side of a connection is closed by its goroutines, a
	// little after the probe ended: wait for them, not for a leak.
	after := fds()
	for deadline := time.Now().Add(10 * time.Second); after > before && time.Now().Before(deadline); after = fds() {
		time.Sleep(50 * time.Millisecond)
	}
	if after > before {
		t.Errorf("%d descriptors open after %d probes, %d before", after, n, before)
	}
}

// TestTCPTimesOutOnAFullBacklog: a listener whose accept queue is full
// drops the SYN, so the probe's connect stays pending until the timeout.
func TestTCPTimesOutOnAFullBacklog(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*syscall.SockaddrInet4).Port
	// Fill the queue (never accepted).
	for range 2 {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 200*time.Millisecond)
		if err != nil {
			break // full already
		}
		defer c.Close()
	}
	ok, out := TCP(context.Background(), "127.0.0.1", port, 200*time.Millisecond)
	if ok || out != "timeout after 200ms" {
		t.Errorf("TCP = %v, %q; want false, timeout after 200ms", ok, out)
	}
}
