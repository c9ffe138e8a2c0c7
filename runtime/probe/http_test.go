package probe

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
)

// serverAddr splits a test server's URL into its IP and port.
func serverAddr(t *testing.T, rawURL string) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(rawURL, "http://"), "https://"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return host, n
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// TestHTTPResets: an HTTP probe resets its connection once the response
// is read (no FIN handshake, no TIME_WAIT on the server's side): the
// server, which did not close, reads a reset, not an end of file.
func TestHTTPResets(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		if _, err := c.Read(buf); err != nil { // the request: one small write
			got <- err
			return
		}
		if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")); err != nil {
			got <- err
			return
		}
		_, err = c.Read(buf)
		got <- err
	}()
	if ok, out := HTTP(context.Background(), "127.0.0.1", reconciler.HTTPGet{Path: "/", Port: l.Addr().(*net.TCPAddr).Port}, time.Second); !ok {
		t.Fatalf("probe failed: %s", out)
	}
	if err := <-got; err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("the server read %v after the response, want a connection reset", err)
	}
}

// request is what the test server saw of a request.
type request struct {
	host, userAgent, accept, custom, query, connection string
}

func TestHTTP(t *testing.T) {
	// Another host on loopback: a redirect to it must not be followed.
	elsewhereHits := atomic.Int32{}
	elsewhereL, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.2: %v", err)
	}
	elsewhere := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhereHits.Add(1) }))
	elsewhere.Listener.Close()
	elsewhere.Listener = elsewhereL
	elsewhere.Start()
	defer elsewhere.Close()

	var mu sync.Mutex
	var last request
	mux := http.NewServeMux()
	mux.HandleFunc("/code/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.PathValue("code"))
		w.WriteHeader(code)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		last = request{host: r.Host, userAgent: r.Header.Get("User-Agent"), accept: r.Header.Get("Accept"),
			custom: r.Header.Get("X-Custom"), query: r.URL.RawQuery, connection: r.Header.Get("Connection")}
		mu.Unlock()
	})
	mux.HandleFunc("/redirect/here", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/code/204", http.StatusFound)
	})
	mux.HandleFunc("/redirect/failing", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/code/500", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/redirect/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/", http.StatusFound)
	})
	mux.HandleFunc("/redirect/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/redirect/loop", http.StatusFound)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	mux.HandleFunc("/slow-body", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	var bigWritten atomic.Int64
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("x", 4096))
		for range 1024 { // 4 MiB, more than the socket buffers hold
			n, err := w.Write(chunk)
			bigWritten.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tlsSrv := httptest.NewTLSServer(mux)
	defer tlsSrv.Close()
	ip, port := serverAddr(t, srv.URL)
	_, tlsPort := serverAddr(t, tlsSrv.URL)

	for _, tc := range []struct {
		name    string
		get     reconciler.HTTPGet
		timeout time.Duration
		ok      bool
		output  string
		saw     *request // what /echo must have seen
	}{
		{name: "200", get: reconciler.HTTPGet{Path: "/code/200", Port: port}, ok: true, output: "HTTP 200"},
		{name: "399", get: reconciler.HTTPGet{Path: "/code/399", Port: port}, ok: true, output: "HTTP 399"},
		{name: "400", get: reconciler.HTTPGet{Path: "/code/400", Port: port}, output: "HTTP 400"},
		{name: "503", get: reconciler.HTTPGet{Path: "/code/503", Port: port}, output: "HTTP 503"},
		{name: "path without slash", get: reconciler.HTTPGet{Path: "code/201", Port: port}, ok: true, output: "HTTP 201"},
		{name: "404 at the root", get: reconciler.HTTPGet{Port: port}, output: "HTTP 404"},
		{name: "redirect followed", get: reconciler.HTTPGet{Path: "/redirect/here", Port: port}, ok: true, output: "HTTP 204"},
		{name: "redirect to a failure", get: reconciler.HTTPGet{Path: "/redirect/failing", Port: port}, output: "HTTP 500"},
		{name: "redirect elsewhere not followed", get: reconciler.HTTPGet{Path: "/redirect/elsewhere", Port: port}, ok: true, output: "HTTP 302"},
		{name: "redirect loop", get: reconciler.HTTPGet{Path: "/redirect/loop", Port: port}, output: "stopped after 10 redirects"},
		{name: "slow answer", get: reconciler.HTTPGet{Path: "/slow", Port: port}, timeout: 200 * time.Millisecond, output: "timeout after 200ms"},
		{name: "slow body", get: reconciler.HTTPGet{Path: "/slow-body", Port: port}, timeout: 200 * time.Millisecond, output: "timeout after 200ms"},
		{name: "big body", get: reconciler.HTTPGet{Path: "/big", Port: port}, ok: true, output: "HTTP 200"},
		{name: "connection refused", get: reconciler.HTTPGet{Path: "/", Port: closedPort(t)}, output: "connection refused"},
		{name: "bad port", get: reconciler.HTTPGet{Path: "/", Port: 0}, output: "port 0 out of range"},
		{name: "bad scheme", get: reconciler.HTTPGet{Path: "/", Port: port, Scheme: "FTP"}, output: "scheme FTP not supported"},
		{name: "HTTPS without verification", get: reconciler.HTTPGet{Path: "/code/200", Port: tlsPort, Scheme: "HTTPS"}, ok: true, output: "HTTP 200"},
		{name: "HTTP to an HTTPS port", get: reconciler.HTTPGet{Path: "/code/200", Port: tlsPort, Scheme: "HTTP"}, output: "HTTP 400"},
		{
			name: "default headers", get: reconciler.HTTPGet{Path: "/echo?a=1&b=2", Port: port}, ok: true, output: "HTTP 200",
			saw: &request{host: net.JoinHostPort(ip, strconv.Itoa(port)), userAgent: UserAgent, accept: "*/*", query: "a=1&b=2", connection: "close"},
		},
		{
			name: "headers set", ok: true, output: "HTTP 200",
			get: reconciler.HTTPGet{Path: "/echo", Port: port, Headers: []reconciler.Header{
				{Name: "host", Value: "web.example"}, {Name: "User-Agent", Value: "mine/1"},
				{Name: "Accept", Value: "application/json"}, {Name: "X-Custom", Value: "v"},
			}},
			saw: &request{host: "web.example", userAgent: "mine/1", accept: "application/json", custom: "v", connection: "close"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			last = request{}
			mu.Unlock()
			start := time.Now()
			ok, output := HTTP(context.Background(), ip, tc.get, tc.timeout)
			if ok != tc.ok || output != tc.output {
				t.Errorf("HTTP = %v, %q; want %v, %q", ok, output, tc.ok, tc.output)
			}
			if limit := timeoutOf(tc.timeout) + time.Second; time.Since(start) > limit {
				t.Errorf("HTTP took %s, more than its timeout", time.Since(start))
			}
			if tc.saw != nil {
				mu.Lock()
				got := last
				mu.Unlock()
				if got != *tc.saw {
					t.Errorf("the server saw %+v, want %+v", got, *tc.saw)
				}
			}
		})
	}
	if n := elsewhereHits.Load(); n != 0 {
		t.Errorf("a redirect to another host was followed %d times", n)
	}
	if n := bigWritten.Load(); n >= 4<<20 {
		t.Errorf("the server wrote the whole big body (%d bytes): the probe read it all", n)
	}
}

func TestHTTPCanceled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer srv.Close()
	ip, port := serverAddr(t, srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	ok, output := HTTP(ctx, ip, reconciler.HTTPGet{Port: port}, 10*time.Second)
	if ok || output != "canceled" {
		t.Errorf("HTTP = %v, %q; want false, canceled", ok, output)
	}
}

func TestTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		name    string
		port    int
		timeout time.Duration
		ok      bool
		output  string
	}{
		{"listening", port, 0, true, "connected"},
		{"closed", closedPort(t), 0, false, "connection refused"},
		{"no time at all", port, time.Nanosecond, false, "timeout after 1ns"},
		{"bad port", 70000, 0, false, "port 70000 out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, output := TCP(context.Background(), "127.0.0.1", tc.port, tc.timeout)
			if ok != tc.ok || output != tc.output {
				t.Errorf("TCP = %v, %q; want %v, %q", ok, output, tc.ok, tc.output)
			}
		})
	}
}

func TestRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	ip, port := serverAddr(t, srv.URL)
	pod := Target{PodIP: ip}
	for _, tc := range []struct {
		name   string
		target Target
		probe  reconciler.Probe
		ok     bool
		output string
	}{
		{"http", pod, reconciler.Probe{HTTPGet: &reconciler.HTTPGet{Port: port}}, true, "HTTP 200"},
		{"http on host loopback", Target{HostNetwork: true}, reconciler.Probe{HTTPGet: &reconciler.HTTPGet{Port: port}}, true, "HTTP 200"},
		{"http to another host", pod, reconciler.Probe{HTTPGet: &reconciler.HTTPGet{Port: port, Host: "127.0.0.2"}}, false, "host 127.0.0.2 not allowed"},
		{"tcp", pod, reconciler.Probe{TCPSocket: &reconciler.TCPSocket{Port: port}}, true, "connected"},
		{"tcp to another host", pod, reconciler.Probe{TCPSocket: &reconciler.TCPSocket{Port: port, Host: "10.1.2.3"}}, false, "host 10.1.2.3 not allowed"},
		{"no IP", Target{}, reconciler.Probe{TCPSocket: &reconciler.TCPSocket{Port: port}}, false, "pod has no IP"},
		{"grpc without IP", Target{}, reconciler.Probe{GRPC: &reconciler.GRPC{Port: port}}, false, "pod has no IP"},
		{"exec", pod, reconciler.Probe{Exec: []string{"true"}}, false, "exec probes run in the container, not from the host"},
		{"nothing", pod, reconciler.Probe{}, false, "probe has no handler"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, output := Run(context.Background(), tc.target, tc.probe)
			if ok != tc.ok || output != tc.output {
				t.Errorf("Run = %v, %q; want %v, %q", ok, output, tc.ok, tc.output)
			}
		})
	}
}

// ExampleRun probes a pod's HTTP endpoint.
func ExampleRun() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	n, _ := strconv.Atoi(port)
	ok, output := Run(context.Background(), Target{PodIP: host}, reconciler.Probe{
		HTTPGet: &reconciler.HTTPGet{Path: "/healthz", Port: n},
		Timeout: time.Second,
	})
	fmt.Println(ok, output)
	// Output: false HTTP 503
}

// BenchmarkHTTP is one httpGet probe of a loopback server, a new
// connection each, as an agent makes a hundred a second: the client's
// share (the server runs in the same process, and counts too).
func BenchmarkHTTP(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	}))
	defer srv.Close()
	host, port, err := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		b.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		b.Fatal(err)
	}
	g := reconciler.HTTPGet{Path: "/healthz", Port: n}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if ok, out := HTTP(ctx, host, g, time.Second); !ok {
			b.Fatal(out)
		}
	}
}
