package probe

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
)

// UserAgent is the User-Agent of HTTP and gRPC probes, unless a probe's
// headers set one (the kubelet sends kube-probe/VERSION).
const UserAgent = "kelpie-probe"

// maxBody bounds how much of an HTTP probe's response body is read (the
// kubelet reads 10 KiB); the rest is left unread, and the connection
// closed.
const maxBody = 10 << 10

// maxRedirects bounds the redirects an HTTP probe follows, as Go's client
// and the kubelet do.
const maxRedirects = 10

// maxHeaderBytes bounds the response headers of an HTTP probe.
const maxHeaderBytes = 64 << 10

// HTTP makes an httpGet probe g of the server at addr (an IP address, from
// Target.Address) and returns whether it succeeded and what happened. A
// status of 200 to 399 is success. Redirects to the same host are
// followed, up to 10; a redirect to another host is not, and counts as
// success, as with the kubelet. The request carries g's headers (a Host
// header sets the request's host), UserAgent unless they set one, and
// "Accept: */*". At most 10 KiB of the body is read. The whole probe takes
// at most timeout (DefaultTimeout when not positive): then the output is
// "timeout after 1s".
func HTTP(ctx context.Context, addr string, g reconciler.HTTPGet, timeout time.Duration) (ok bool, output string) {
	timeout = timeoutOf(timeout)
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	u, err := probeURL(addr, g)
	if err != nil {
		return false, short(err.Error())
	}
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, short(err.Error())
	}
	for _, h := range g.Headers {
		req.Header.Add(h.Name, h.Value)
	}
	if h := req.Header.Get("Host"); h != "" {
		req.Host = h
		req.Header.Del("Host") // Go sends req.Host; a Host in Header is ignored
	}
	if _, set := req.Header["User-Agent"]; !set {
		req.Header.Set("User-Agent", UserAgent)
	}
	if _, set := req.Header["Accept"]; !set {
		req.Header.Set("Accept", "*/*")
	}
	client := &http.Client{Transport: oneShot{}, CheckRedirect: sameHostRedirects}
	res, err := client.Do(req)
	if err != nil {
		return false, describe(pctx, ctx, err, timeout)
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(res.Body, maxBody)); err != nil {
		return false, describe(pctx, ctx, err, timeout)
	}
	return res.StatusCode >= 200 && res.StatusCode < 400, statusOutput(res.StatusCode)
}

// probeURL is the URL an httpGet probe requests at addr. The path may
// carry a query, as the kubelet allows.
func probeURL(addr string, g reconciler.HTTPGet) (*url.URL, error) {
	scheme := strings.ToLower(g.Scheme)
	switch scheme {
	case "":
		scheme = "http"
	case "http", "https":
	default:
		return nil, errors.New("scheme " + g.Scheme + " not supported")
	}
	if g.Port <= 0 || g.Port > 65535 {
		return nil, errors.New("port " + strconv.Itoa(g.Port) + " out of range")
	}
	path := g.Path
	if path != "" && !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u, err := url.Parse(path)
	if err != nil || u.Scheme != "" || u.Host != "" {
		u = &url.URL{Path: path}
	}
	u.Scheme = scheme
	u.Host = net.JoinHostPort(addr, strconv.Itoa(g.Port))
	return u, nil
}

// sameHostRedirects follows redirects to the probed host only (another
// port or scheme on it is fine): a redirect elsewhere ends the probe with
// the redirect's own status, a success.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= maxRedirects {
		return errors.New("stopped after " + strconv.Itoa(maxRedirects) + " redirects")
	}
	return nil
}
