package dnsserver

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// upstreams are the resolvers forwarded queries go to: fixed, or the
// nameservers of the host's resolv.conf, read again whenever the file
// changes (a DHCP client or systemd-resolved rewrites it).
type upstreams struct {
	path  string
	fixed []string
	log   *slog.Logger
	self  netip.AddrPort // the server's own address: never an upstream

	mu    sync.Mutex
	stamp fileStamp
	addrs []string
	err   error
}

// fileStamp tells whether a file changed.
type fileStamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

func newUpstreams(path string, fixed []string, log *slog.Logger) *upstreams {
	return &upstreams{path: path, fixed: fixed, log: log}
}

// get returns the upstream addresses ("IP:PORT"), at most three, never the
// server's own.
func (u *upstreams) get() ([]string, error) {
	if len(u.fixed) > 0 {
		return u.withoutSelf(u.fixed), nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	st, err := os.Stat(u.path)
	if err != nil {
		u.stamp, u.addrs, u.err = fileStamp{}, nil, fmt.Errorf("read upstream resolvers: %w", err)
		return nil, u.err
	}
	stamp := fileStamp{mod: st.ModTime(), size: st.Size(), ino: inode(st)}
	if stamp == u.stamp {
		return u.addrs, u.err
	}
	b, err := os.ReadFile(u.path)
	if err != nil {
		u.stamp, u.addrs, u.err = fileStamp{}, nil, fmt.Errorf("read upstream resolvers: %w", err)
		return nil, u.err
	}
	addrs := u.withoutSelf(parseResolvConf(b))
	if !slices.Equal(addrs, u.addrs) {
		u.log.Info("dns upstream resolvers", "from", u.path, "upstreams", addrs)
	}
	u.stamp, u.addrs, u.err = stamp, addrs, nil
	return addrs, nil
}

// withoutSelf drops the server's own address, and keeps three at most.
func (u *upstreams) withoutSelf(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		if ap, err := netip.ParseAddrPort(a); err == nil && ap == u.self {
			continue
		}
		if len(out) == maxUpstreams {
			break
		}
		out = append(out, a)
	}
	return out
}

// parseResolvConf returns the nameservers of a resolv.conf, as
// "IP:53", in order.
func parseResolvConf(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		ip, err := netip.ParseAddr(f[1])
		if err != nil {
			continue
		}
		out = append(out, netip.AddrPortFrom(ip.Unmap(), 53).String())
	}
	return out
}
