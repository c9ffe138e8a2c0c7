package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"time"
)

// oneShot is the http.RoundTripper of every HTTP probe: each request gets
// a connection of its own, reset with the response's body (abort; as the
// kubelet's probes do, so that a probe checks that the server still
// accepts connections). Unlike an http.Transport it keeps no pool and
// runs no goroutines: the request is written and the response read by
// the probe's own goroutine, which with a hundred probes a second saves
// most of the client's CPU. No proxy (a probe goes to the pod), no
// certificate verification over HTTPS (a pod's certificate names its
// Service, not its IP, and is often self-signed), no compression, and at
// most maxHeaderBytes of response headers. Plain HTTP to an IP address
// goes through a rawConn (see there why); HTTPS, and hosts that are not
// IP addresses, through net.
type oneShot struct{}

// dialer connects the probes that net makes: without TCP keep-alives, which a
// connection that lives less than a second never sends (Go's default
// costs four setsockopt calls a connection).
var dialer = net.Dialer{KeepAlive: -1}

// errHeadersTooLong is the error of a response whose headers exceed
// maxHeaderBytes.
var errHeadersTooLong = errors.New("response headers too long")

// RoundTrip dials req's host (a rawConn for plain HTTP, net otherwise),
// writes req with "Connection: close" and reads the response; the
// response's body closes the connection. ctx's deadline bounds the
// connection, and ctx's end cuts it short.
func (oneShot) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if req.URL.Scheme == "http" {
		rc, ok, err := dialRaw(ctx, req.URL.Host)
		if err != nil {
			return nil, err
		}
		if ok {
			return exchange(ctx, req, rc, rc.SetDeadline, rc.Abort)
		}
	}
	conn, err := dialer.DialContext(ctx, "tcp", req.URL.Host)
	if err != nil {
		return nil, err
	}
	var c net.Conn = conn
	if req.URL.Scheme == "https" {
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, ServerName: req.URL.Hostname()}) //nolint:gosec // as the kubelet: probes check health, not identity
		if err := handshake(ctx, tc); err != nil {
			conn.Close()
			return nil, err
		}
		c = tc
	}
	return exchange(ctx, req, c, conn.SetDeadline, func() error {
		abort(conn)
		return c.Close()
	})
}

// handshake makes the TLS handshake of tc within ctx.
func handshake(ctx context.Context, tc *tls.Conn) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = tc.SetDeadline(dl)
	}
	return tc.HandshakeContext(ctx)
}

// exchange writes req with "Connection: close" to c, a connected
// connection, and reads the response; the response's body closes the
// connection (closeConn, which resets it). ctx's deadline bounds the
// exchange (setDeadline), and ctx's end cuts it short.
func exchange(ctx context.Context, req *http.Request, c io.ReadWriter, setDeadline func(time.Time) error, closeConn func() error) (*http.Response, error) {
	// Done (canceled or past its deadline): the connection's reads and
	// writes fail at once.
	stop := context.AfterFunc(ctx, func() { _ = setDeadline(time.Unix(1, 0)) })
	fail := func(err error) (*http.Response, error) {
		stop()
		closeConn()
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = setDeadline(dl)
	}
	out := *req // RoundTrip must not change req
	out.Close = true
	bw := bufio.NewWriterSize(c, 512)
	if err := out.Write(bw); err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	lr := &io.LimitedReader{R: c, N: maxHeaderBytes}
	br := bufio.NewReaderSize(lr, 1024)
	var (
		res *http.Response
		err error
	)
	for {
		res, err = http.ReadResponse(br, req)
		if err != nil {
			if lr.N <= 0 {
				err = errHeadersTooLong
			}
			return fail(err)
		}
		if res.StatusCode >= 200 || res.StatusCode == http.StatusSwitchingProtocols {
			break // 1xx but 101 are interim: the answer follows
		}
	}
	lr.N = maxBody + int64(br.Size()) // the body: HTTP reads at most maxBody
	res.Body = &bodyCloser{ReadCloser: res.Body, close: func() error {
		stop()
		return closeConn()
	}}
	return res, nil
}

// abort makes the close of conn, a probe's connection whose response was
// read, reset it (SO_LINGER 0) rather than end it with FINs: the exchange
// is over, and with a hundred probes a second the FIN handshake and the
// TIME_WAIT it leaves on one side or the other (6,000 sockets held for a
// minute) cost more than the probe. The kubelet shortens TIME_WAIT for
// the same reason (SO_LINGER 1). The server, which answered with
// "Connection: close", has usually closed its side already.
func abort(conn net.Conn) {
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
}

// bodyCloser is a response's body that closes its connection.
type bodyCloser struct {
	io.ReadCloser
	close func() error
}

func (b *bodyCloser) Close() error {
	b.ReadCloser.Close()
	return b.close()
}
