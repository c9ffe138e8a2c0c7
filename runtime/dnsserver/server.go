package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/kelpie-dev/kelpie/netplan"
)

// Server is the agent's DNS server. Its methods are safe for concurrent
// use.
type Server struct {
	cfg       Config
	names     atomic.Pointer[netplan.Names]
	upstreams *upstreams
	sem       chan struct{} // a slot per forward in flight
	counts    [numResults]atomic.Uint64

	ctx    context.Context // cancelled by Close: ends forwards in flight
	cancel context.CancelFunc

	mu      sync.Mutex
	udp     *dns.Server
	tcp     *dns.Server
	addr    netip.AddrPort
	served  sync.WaitGroup
	started bool
}

// New returns a Server for cfg; it listens once Start is called.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, sem: make(chan struct{}, cfg.MaxForwards), ctx: ctx, cancel: cancel}
	s.upstreams = newUpstreams(cfg.ResolvConf, cfg.Upstreams, cfg.Log)
	return s, nil
}

// SetNames makes n the names the server answers from, for every query
// from now on. Until the first call every query gets SERVFAIL (the server
// does not know yet which names are the cluster's). Names are immutable,
// so the swap is atomic.
func (s *Server) SetNames(n *netplan.Names) { s.names.Store(n) }

// Start listens on Config.Addr, UDP and TCP, and serves in the background
// until Close. It fails when either socket cannot be bound.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("dns server: already started")
	}
	pc, l, err := listen(s.cfg.Addr, s.cfg.FreeBind)
	if err != nil {
		return err
	}
	s.addr = netip.MustParseAddrPort(pc.LocalAddr().String())
	s.upstreams.self = s.addr
	l = limitListener(l, s.cfg.MaxTCPConns)
	s.udp = &dns.Server{PacketConn: pc, Handler: s, UDPSize: dns.DefaultMsgSize}
	s.tcp = &dns.Server{Listener: l, Handler: s}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		started := make(chan struct{})
		stopped := make(chan error, 1)
		srv.NotifyStartedFunc = func() { close(started) }
		s.served.Add(1)
		go func() {
			defer s.served.Done()
			err := srv.ActivateAndServe()
			if err != nil {
				s.cfg.Log.Error("dns server stopped", "addr", s.addr, "err", err)
			}
			stopped <- err
		}()
		select {
		case <-started:
		case err := <-stopped:
			pc.Close()
			l.Close()
			if s.udp.PacketConn != nil && srv == s.tcp {
				_ = s.udp.Shutdown()
			}
			s.served.Wait()
			return fmt.Errorf("dns server: serve %s: %w", s.addr, err)
		}
	}
	s.started = true
	return nil
}

// listen binds addr for UDP and TCP on the same port (port 0: a free port
// both have), with IP_FREEBIND when freeBind is set.
func listen(addr string, freeBind bool) (net.PacketConn, net.Listener, error) {
	ap := netip.MustParseAddrPort(addr)
	var lc net.ListenConfig
	if freeBind {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1) }); err != nil {
				return err
			}
			return serr
		}
	}
	ctx := context.Background()
	for try := 0; ; try++ {
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dns server: listen udp %s: %w", addr, err)
		}
		port := netip.MustParseAddrPort(pc.LocalAddr().String()).Port()
		l, err := lc.Listen(ctx, "tcp", netip.AddrPortFrom(ap.Addr(), port).String())
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		if ap.Port() != 0 || try == 10 {
			return nil, nil, fmt.Errorf("dns server: listen tcp %s: %w", addr, err)
		}
	}
}

// Addr returns the address the server listens on (the port chosen when
// Config.Addr had port 0); invalid before Start.
func (s *Server) Addr() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Close stops listening, ends the forwards in flight and waits for the
// servers to stop.
func (s *Server) Close() error {
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return nil
	}
	s.started = false
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // a query in flight ends within ForwardTimeout
	defer cancel()
	errs := []error{s.udp.ShutdownContext(ctx), s.tcp.ShutdownContext(ctx)}
	s.served.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("dns server: close: %w", err)
	}
	return nil
}
