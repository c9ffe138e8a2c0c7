package probe

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// rawConn is the connection of a plain-HTTP probe: a non-blocking TCP
// socket whose system calls are made raw (syscall.RawSyscall), waiting
// for readiness in Go's poller through an os.File. net's connections
// enter the scheduler's system-call state around each of the dozen calls a
// probe makes, and every burst of probes woke the runtime's monitor
// thread, which then polled every 20µs while the burst lasted: a third of
// the agent's CPU at a hundred probes a second. Here only the os.File's
// creation and its close do; the connect, the writes, the reads and the
// reset are calls that never block. net's extras are left out too: no
// TCP_NODELAY (the request is one write), no local and remote address
// lookups after the connect.
type rawConn struct {
	f    *os.File
	rc   syscall.RawConn
	addr string // host:port, for errors
}

// dialRaw connects to hostport (an IP address and a port) before ctx's
// deadline; errors are net.OpErrors as net.Dial returns them. ok is false,
// with no error, when hostport is not an IP address and port: the caller
// dials with net instead.
func dialRaw(ctx context.Context, hostport string) (c *rawConn, ok bool, err error) {
	ap, perr := netip.ParseAddrPort(hostport)
	if perr != nil {
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
	if err := rawConnect(fd, ip, ap.Port()); err != nil && err != syscall.EINPROGRESS && err != syscall.EINTR {
		_ = syscall.Close(fd)
		return nil, true, opErr("connect", err)
	}
	// The connect goes on; a write waits for it (a write to a socket still
	// connecting fails with EAGAIN, and with the connect's error once it
	// failed).
	f := os.NewFile(uintptr(fd), "probe")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, true, opErr("connect", err)
	}
	return &rawConn{f: f, rc: rc, addr: hostport}, true, nil
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

// SetDeadline bounds every read and write from now on; a time in the
// past makes those waiting fail at once.
func (c *rawConn) SetDeadline(t time.Time) error { return c.f.SetDeadline(t) }

// Write writes all of b, waiting for the connect and for room.
func (c *rawConn) Write(b []byte) (int, error) {
	written := 0
	var errno syscall.Errno
	err := c.rc.Write(func(fd uintptr) bool {
		for written < len(b) {
			n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[written])), uintptr(len(b)-written))
			switch {
			case e == syscall.EAGAIN:
				return false
			case e == syscall.EINTR:
				continue
			case e != 0:
				errno = e
				return true
			}
			written += int(n)
		}
		return true
	})
	if err == nil && errno != 0 {
		err = errno
	}
	if err != nil {
		return written, c.opError("write", err)
	}
	return written, nil
}

// Read reads what the server sent, waiting for some.
func (c *rawConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var (
		n     uintptr
		errno syscall.Errno
	)
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			var e syscall.Errno
			n, _, e = syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
			switch e {
			case syscall.EAGAIN:
				return false
			case syscall.EINTR:
				continue
			case 0:
			default:
				errno = e
			}
			return true
		}
	})
	if err == nil && errno != 0 {
		err = errno
	}
	if err != nil {
		return 0, c.opError("read", err)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return int(n), nil
}

// Abort closes the connection with a reset (SO_LINGER 0, see abort).
func (c *rawConn) Abort() error {
	_ = c.rc.Control(func(fd uintptr) {
		l := syscall.Linger{Onoff: 1, Linger: 0}
		_, _, _ = syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, fd, syscall.SOL_SOCKET, syscall.SO_LINGER, uintptr(unsafe.Pointer(&l)), unsafe.Sizeof(l), 0)
	})
	return c.f.Close()
}

// opError wraps err as net's connections do: a deadline's error stays
// os.ErrDeadlineExceeded, a system call's is named.
func (c *rawConn) opError(op string, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return &net.OpError{Op: op, Net: "tcp", Err: err}
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		err = os.NewSyscallError(op, errno)
	}
	return &net.OpError{Op: op, Net: "tcp", Err: err}
}
