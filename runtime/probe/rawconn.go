package probe

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// rawConn is the connection of a plain-HTTP or tcpSocket probe: a
// non-blocking TCP socket whose system calls are all made raw
// (syscall.RawSyscall, none of them blocks), waiting for readiness through
// the probes' own epoll instance (poller). net's connections make a dozen
// calls a probe that enter the scheduler's syscall state, and each burst
// of probes kept the runtime's monitor thread polling: with a hundred
// probes a second that thread alone held 15% of the agent's CPU samples
// (see poller). net's extras are left out too:
// no TCP_NODELAY (the request is one write), no local and remote address
// lookups after the connect.
type rawConn struct {
	fd    int
	ready chan struct{} // signalled by the poller, and by SetDeadline

	mu       sync.Mutex
	deadline time.Time
	timer    *time.Timer // for waits with a deadline; nil until one
}

// dialRaw connects to hostport (an IP address and a port) before ctx's
// deadline; errors are net.OpErrors as net.Dial returns them. ok is false,
// with no error, when hostport is not an IP address and port (or one with
// a zone), or the poller does not work: the caller dials with net instead.
func dialRaw(ctx context.Context, hostport string) (c *rawConn, ok bool, err error) {
	ap, perr := netip.ParseAddrPort(hostport)
	if perr != nil || ap.Addr().Zone() != "" || thePoller.start() != nil {
		return nil, false, nil
	}
	ip := ap.Addr().Unmap()
	family := syscall.AF_INET
	if ip.Is6() {
		family = syscall.AF_INET6
	}
	opErr := func(op string, err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: os.NewSyscallError(op, err)}
	}
	if err := ctx.Err(); err != nil {
		return nil, true, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: err}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0) // a raw call
	if err != nil {
		return nil, true, opErr("socket", err)
	}
	ready, err := thePoller.add(fd)
	if err != nil {
		rawClose(fd)
		return nil, true, opErr("epoll_ctl", err)
	}
	c = &rawConn{fd: fd, ready: ready}
	if err := rawConnect(fd, ip, ap.Port()); err != nil && err != syscall.EINPROGRESS && err != syscall.EINTR {
		c.close()
		return nil, true, opErr("connect", err)
	}
	// The connect goes on; a write waits for it (a write to a socket still
	// connecting fails with EAGAIN, and with the connect's error once it
	// failed).
	if dl, ok := ctx.Deadline(); ok {
		c.deadline = dl // nobody waits yet
	}
	return c, true, nil
}

// rawConnect starts a non-blocking connect of fd to ip:port.
func rawConnect(fd int, ip netip.Addr, port uint16) error {
	var (
		ptr unsafe.Pointer
		n   uintptr
	)
	if ip.Is4() {
		sa := syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: ip.As4()}
		sa.Port = port<<8 | port>>8 // network byte order
		ptr, n = unsafe.Pointer(&sa), unsafe.Sizeof(sa)
	} else {
		sa := syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: ip.As16()}
		sa.Port = port<<8 | port>>8
		ptr, n = unsafe.Pointer(&sa), unsafe.Sizeof(sa)
	}
	_, _, e := syscall.RawSyscall(syscall.SYS_CONNECT, uintptr(fd), uintptr(ptr), n)
	if e != 0 {
		return e
	}
	return nil
}

// rawClose closes fd; closing a socket does not block (a probe's has
// SO_LINGER 0, or was never connected).
func rawClose(fd int) {
	_, _, _ = syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(fd), 0, 0)
}

// SetDeadline bounds every read and write from now on; a time in the
// past makes those waiting fail at once. It is safe to call while another
// goroutine reads or writes.
func (c *rawConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	old := c.deadline
	c.deadline = t
	c.mu.Unlock()
	if !t.IsZero() && (old.IsZero() || t.Before(old)) {
		signal(c.ready) // a waiter looks at the new deadline; a later one it finds when its timer fires
	}
	return nil
}

// wait waits for an event of the socket, or fails with
// os.ErrDeadlineExceeded at the deadline. A spurious return is fine: the
// caller tries its call again.
func (c *rawConn) wait() error {
	c.mu.Lock()
	dl := c.deadline
	var fired <-chan time.Time
	if !dl.IsZero() {
		d := time.Until(dl)
		if d <= 0 {
			c.mu.Unlock()
			return os.ErrDeadlineExceeded
		}
		if c.timer == nil {
			c.timer = time.NewTimer(d)
		} else {
			c.timer.Reset(d)
		}
		fired = c.timer.C
	}
	c.mu.Unlock()
	select {
	case <-c.ready:
	case <-fired:
	}
	return nil
}

// Write writes all of b, waiting for the connect and for room.
func (c *rawConn) Write(b []byte) (int, error) {
	written := 0
	for written < len(b) {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(c.fd), uintptr(unsafe.Pointer(&b[written])), uintptr(len(b)-written))
		switch e {
		case 0:
			written += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			if err := c.wait(); err != nil {
				return written, &net.OpError{Op: "write", Net: "tcp", Err: err}
			}
		default:
			return written, &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", e)}
		}
	}
	return written, nil
}

// Read reads what the server sent, waiting for some; io.EOF once it
// closed its side.
func (c *rawConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(c.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch e {
		case 0:
			if n == 0 {
				return 0, io.EOF
			}
			return int(n), nil
		case syscall.EINTR:
		case syscall.EAGAIN:
			if err := c.wait(); err != nil {
				return 0, &net.OpError{Op: "read", Net: "tcp", Err: err}
			}
		default:
			return 0, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", e)}
		}
	}
}

// Abort closes the connection with a reset (SO_LINGER 0, see abort).
func (c *rawConn) Abort() error {
	l := syscall.Linger{Onoff: 1, Linger: 0}
	_, _, _ = syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, uintptr(c.fd), syscall.SOL_SOCKET, syscall.SO_LINGER, uintptr(unsafe.Pointer(&l)), unsafe.Sizeof(l), 0)
	c.close()
	return nil
}

// close stops watching the socket and closes it. The connection must not
// be used after.
func (c *rawConn) close() {
	thePoller.remove(c.fd)
	rawClose(c.fd)
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
}

// connected waits for the connect to finish and returns its error: as a
// net.OpError for connect, or os.ErrDeadlineExceeded's past the deadline.
func (c *rawConn) connected() error {
	for {
		soErr, err := rawSockoptInt(c.fd, syscall.SOL_SOCKET, syscall.SO_ERROR)
		if err == nil && soErr != 0 {
			err = syscall.Errno(soErr)
		}
		if err == nil {
			var sa syscall.RawSockaddrAny
			n := uint32(unsafe.Sizeof(sa))
			_, _, e := syscall.RawSyscall(syscall.SYS_GETPEERNAME, uintptr(c.fd), uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&n)))
			switch e {
			case 0:
				return nil
			case syscall.ENOTCONN: // still connecting
				if werr := c.wait(); werr != nil {
					return &net.OpError{Op: "dial", Net: "tcp", Err: werr}
				}
				continue
			default:
				err = e
			}
		}
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", err)}
	}
}

// rawSockoptInt reads the int socket option level/name of fd.
func rawSockoptInt(fd, level, name int) (int, error) {
	var v int32
	n := uint32(unsafe.Sizeof(v))
	_, _, e := syscall.RawSyscall6(syscall.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(name), uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 {
		return 0, e
	}
	return int(v), nil
}
