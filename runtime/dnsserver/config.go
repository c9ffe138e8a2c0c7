package dnsserver

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"
)

// Config configures a Server.
type Config struct {
	// Addr is where the server listens, UDP and TCP: an IP address and a
	// port ("10.244.3.1:53", the pod bridge's gateway). Port 0 picks a
	// free one (tests). The unspecified address is refused: the server
	// listens on the gateway only.
	Addr string
	// FreeBind lets the server listen before Addr is on any interface
	// (IP_FREEBIND): the CNI bridge plugin gives the bridge its gateway
	// address only when the first pod joins. Without it Start fails when
	// the address is not this host's.
	FreeBind bool
	// Clients are the source address ranges the server answers: the
	// cluster pod range (and whatever else the host should be able to ask,
	// e.g. loopback). Queries from elsewhere are dropped (UDP, so that
	// forged sources cannot make it reflect) or REFUSED (TCP). Required.
	Clients []netip.Prefix
	// Namespace returns the namespace of the pod at a client address, for
	// short names ("web" in the asking pod's namespace). nil, or "" for an
	// address it does not know, means "default". It must be fast and safe
	// for concurrent use: every query calls it.
	Namespace func(netip.Addr) string
	// ResolvConf is the host's resolv.conf, whose nameservers (the first
	// three, port 53) take forwarded queries; it is read again when it
	// changes. Default /etc/resolv.conf.
	ResolvConf string
	// Upstreams, when set, replaces ResolvConf: "IP:PORT" of the resolvers
	// to forward to, in order.
	Upstreams []string
	// ForwardTimeout bounds one exchange with one upstream. Default 2 s:
	// with three upstreams a client (glibc waits 5 s) still gets the
	// SERVFAIL before it gives up.
	ForwardTimeout time.Duration
	// MaxForwards bounds the forwards in flight; a query beyond it is
	// REFUSED at once. Default 256.
	MaxForwards int
	// MaxTCPConns bounds the open TCP connections; more wait in the
	// kernel's accept queue. Default 128.
	MaxTCPConns int
	// Log receives the upstream changes and failures. nil discards.
	Log *slog.Logger
}

// Defaults of Config.
const (
	DefaultResolvConf     = "/etc/resolv.conf"
	DefaultForwardTimeout = 2 * time.Second // glibc's whole query timeout is 5 s
	DefaultMaxForwards    = 256             // a few hundred pods resolving at once; CoreDNS's max_concurrent is of that order per upstream
	DefaultMaxTCPConns    = 128             // TCP is the rare fallback for large answers
	maxUpstreams          = 3               // as glibc's MAXNS
)

// validate fills the defaults and rejects nonsense.
func (c *Config) validate() error {
	ap, err := netip.ParseAddrPort(c.Addr)
	if err != nil {
		return fmt.Errorf("dns server config: Addr %q: %w", c.Addr, err)
	}
	if ap.Addr().IsUnspecified() {
		return fmt.Errorf("dns server config: Addr %q: listen on the gateway address, not on every address", c.Addr)
	}
	if len(c.Clients) == 0 {
		return fmt.Errorf("dns server config: Clients is empty: name the ranges to answer (the cluster pod range)")
	}
	for _, p := range c.Clients {
		if !p.IsValid() {
			return fmt.Errorf("dns server config: Clients has an invalid prefix")
		}
	}
	for _, u := range c.Upstreams {
		if _, err := netip.ParseAddrPort(u); err != nil {
			return fmt.Errorf("dns server config: Upstreams %q: %w", u, err)
		}
	}
	if c.ResolvConf == "" {
		c.ResolvConf = DefaultResolvConf
	}
	if c.ForwardTimeout == 0 {
		c.ForwardTimeout = DefaultForwardTimeout
	}
	if c.MaxForwards == 0 {
		c.MaxForwards = DefaultMaxForwards
	}
	if c.MaxTCPConns == 0 {
		c.MaxTCPConns = DefaultMaxTCPConns
	}
	if c.ForwardTimeout < 0 || c.MaxForwards < 0 || c.MaxTCPConns < 0 {
		return fmt.Errorf("dns server config: ForwardTimeout, MaxForwards and MaxTCPConns must not be negative")
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}
