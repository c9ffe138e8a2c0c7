package probe

import (
	"context"
	"net"
	"strconv"
	"time"
)

// TCP makes a tcpSocket probe of port at addr (an IP address, from
// Target.Address): a connection within timeout (DefaultTimeout when not
// positive) is success, and is closed at once.
func TCP(ctx context.Context, addr string, port int, timeout time.Duration) (ok bool, output string) {
	timeout = timeoutOf(timeout)
	if port <= 0 || port > 65535 {
		return false, "port " + strconv.Itoa(port) + " out of range"
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hostport := net.JoinHostPort(addr, strconv.Itoa(port))
	if c, ok, err := dialRaw(pctx, hostport); ok { // as HTTP's, see rawConn
		if err == nil {
			err = c.connected()
			c.close()
		}
		if err != nil {
			return false, describe(pctx, ctx, err, timeout)
		}
		return true, "connected"
	}
	conn, err := dialer.DialContext(pctx, "tcp", hostport)
	if err != nil {
		return false, describe(pctx, ctx, err, timeout)
	}
	conn.Close()
	return true, "connected"
}
