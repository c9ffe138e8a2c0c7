package agent

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"golang.org/x/time/rate"

	"github.com/kelpie-dev/kelpie/internal/httpauth"
)

// Limits on requests that start work: a sync costs a fetch and a plan, so a
// flood of them (from a script gone wrong, or a webhook sender) is answered
// with 429 rather than queued.
const (
	syncRate    = rate.Limit(1) // POST /api/v1/sync per second, after the burst
	syncBurst   = 5
	webhookRate = rate.Limit(2) // /hooks/git per second, after the burst
	hookBurst   = 10
)

// httpGuard checks every request to the agent before its handler runs:
//   - on a loopback listen address, the Host header must name loopback, so
//     a web page cannot read the API through DNS rebinding;
//   - a request whose Origin is another site is refused, so a page in the
//     operator's browser cannot post to the API;
//   - mutating API requests, and on a non-loopback address every request
//     but /healthz, /metrics, the dashboard's stylesheet and icon
//     (/static/), the webhook (HMAC) and /mirror/ (its own token), must
//     carry the API token;
//   - with a client CA (--tls-client-ca), /mirror/ needs a client
//     certificate it signed, beside the mirror token;
//   - a pod's log and exec (/api/v1/pods/) need a token on every address:
//     the API token (the operator), or the peer token (a member
//     forwarding the request), which with a client CA also needs a client
//     certificate it signed;
//   - syncs and webhooks are rate-limited.
type httpGuard struct {
	token    string
	loopback bool
	peerCert bool     // /mirror/ needs a verified client certificate (--tls-client-ca)
	peer     []string // the peer tokens a member forwarding a pod's log or exec presents
	sync     *rate.Limiter
	hook     *rate.Limiter
}

// newHTTPGuard guards an agent listening on listen (HOST:PORT) with token.
func newHTTPGuard(listen, token string, peerCert bool) *httpGuard {
	host, _, _ := net.SplitHostPort(listen)
	return &httpGuard{
		token:    token,
		peerCert: peerCert,
		loopback: isLoopbackName(host),
		sync:     rate.NewLimiter(syncRate, syncBurst),
		hook:     rate.NewLimiter(webhookRate, hookBurst),
	}
}

// isLoopbackName reports whether host (no port) is localhost or a
// loopback IP.
func isLoopbackName(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// tokenFree reports whether path is served without the API token on any
// address: health, metrics, the dashboard's static files (the same for
// every agent), and the routes that check their own secret.
func tokenFree(path string) bool {
	return path == "/healthz" || path == "/metrics" || path == "/hooks/git" || strings.HasPrefix(path, "/mirror/") ||
		strings.HasPrefix(path, "/static/")
}

// wrap returns next behind the guard.
func (g *httpGuard) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.loopback {
			host := r.Host
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			if !isLoopbackName(host) {
				http.Error(w, "host "+r.Host+" is not this agent's loopback address", http.StatusMisdirectedRequest)
				return
			}
		}
		if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) {
			http.Error(w, "cross-origin request refused", http.StatusForbidden)
			return
		}
		if g.peerCert && strings.HasPrefix(r.URL.Path, "/mirror/") && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
			http.Error(w, "the mirror needs a client certificate signed by this agent's --tls-client-ca", http.StatusUnauthorized)
			return
		}
		mutating := r.Method != http.MethodGet && r.Method != http.MethodHead
		podIO := strings.HasPrefix(r.URL.Path, "/api/v1/pods/")
		if podIO && !httpauth.TokenAuthorized(r, g.token) && httpauth.TokenAuthorized(r, g.peer...) {
			if g.peerCert && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
				http.Error(w, "a forwarded request needs a client certificate signed by this agent's --tls-client-ca", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r) // a peer forwarding: no rate limit of the operator's
			return
		}
		needToken := podIO || (!g.loopback && !tokenFree(r.URL.Path)) || (mutating && strings.HasPrefix(r.URL.Path, "/api/"))
		if needToken && !httpauth.TokenAuthorized(r, g.token) {
			w.Header().Set("WWW-Authenticate", `Basic realm="kelpie agent"`)
			http.Error(w, "this request needs the agent's API token (kelpie --api-token, or the agent's state dir file agent/api-token)", http.StatusUnauthorized)
			return
		}
		var lim *rate.Limiter
		switch {
		case (r.URL.Path == "/api/v1/sync" || strings.HasPrefix(r.URL.Path, "/api/v1/cronjobs/")) && mutating:
			lim = g.sync
		case r.URL.Path == "/hooks/git":
			lim = g.hook
		}
		if lim != nil && !lim.Allow() {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "too many sync requests; one is already queued", http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin reports whether an Origin header names the host the request
// was sent to (scheme aside: the agent serves plain HTTP behind proxies too).
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false // "null" and garbage: an opaque origin is never ours
	}
	return strings.EqualFold(u.Host, host)
}
