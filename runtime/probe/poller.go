package probe

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// poller waits for the readiness of the probes' raw sockets (rawConn): an
// epoll instance of its own, whose readiness one goroutine waits for in
// Go's poller, passing each socket's events on to the probe that owns it.
//
// Why not let Go's poller watch each socket (os.NewFile)? Every system
// call that may block enters the scheduler's syscall state, and the first
// one of a burst of probes wakes the runtime's monitor thread (sysmon),
// which then polls every 20µs for as long as the burst lasts. os.NewFile
// makes such a call (fcntl), and so does its Close: one burst of probes
// every tick kept sysmon polling. Here every call a probe makes is a raw
// one (the socket's, and epoll_ctl and epoll_pwait with no timeout, none
// of which block), and the monitor stays asleep.
type poller struct {
	once sync.Once
	err  error       // of the setup: the probes dial with net instead
	dead atomic.Bool // the loop ended (it cannot while the process runs): net instead
	epfd int
	rc   syscall.RawConn // of epfd, in Go's poller

	mu    sync.Mutex
	waits map[int32]chan struct{} // by socket: signalled on each of its events
}

// thePoller is the poller of every probe of the process, started with the
// first one.
var thePoller poller

// epollET is EPOLLET as an event mask (syscall's constant is negative).
const epollET = 1 << 31

// pollerEvents is how many events one wake of the poller takes at most;
// more are taken at the next.
const pollerEvents = 64

// start sets the poller up, once, and reports whether it works.
func (p *poller) start() error {
	p.once.Do(func() {
		fd, _, e := syscall.RawSyscall(syscall.SYS_EPOLL_CREATE1, syscall.EPOLL_CLOEXEC, 0, 0)
		if e != 0 {
			p.err = fmt.Errorf("probe poller: epoll_create1: %w", e)
			return
		}
		p.epfd = int(fd)
		// Non-blocking, so that os.NewFile hands it to Go's poller (an
		// epoll instance is pollable itself: readable when events wait).
		if _, _, e := syscall.RawSyscall(syscall.SYS_FCNTL, fd, syscall.F_SETFL, syscall.O_NONBLOCK); e != 0 {
			rawClose(p.epfd)
			p.err = fmt.Errorf("probe poller: fcntl: %w", e)
			return
		}
		f := os.NewFile(fd, "probe-poller")
		rc, err := f.SyscallConn()
		if err != nil {
			f.Close()
			p.err = fmt.Errorf("probe poller: %w", err)
			return
		}
		p.rc = rc
		p.waits = map[int32]chan struct{}{}
		go p.loop(f) // for the life of the process, parked while no probe runs
	})
	if p.err == nil && p.dead.Load() {
		return errPollerDead
	}
	return p.err
}

// errPollerDead is start's error once the poller's loop ended.
var errPollerDead = errors.New("probe poller: stopped")

// loop passes the events of the sockets on to their probes. f, the epoll
// instance, stays open for good.
func (p *poller) loop(f *os.File) {
	defer f.Close()
	var events [pollerEvents]syscall.EpollEvent
	for {
		n := 0
		var errno syscall.Errno
		err := p.rc.Read(func(fd uintptr) bool {
			for {
				r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&events[0])), pollerEvents, 0, 0, 0)
				if e == syscall.EINTR {
					continue // events may be pending: do not wait for a new one
				}
				n, errno = int(r), e
				return n > 0 || e != 0 // none: wait until the instance is readable
			}
		})
		if err == nil && errno != 0 {
			err = errno
		}
		if err != nil {
			// Cannot happen while the process runs; should it, the probes
			// in flight fail at their deadline and the next ones use net.
			p.dead.Store(true)
			return
		}
		p.mu.Lock()
		for _, ev := range events[:n] {
			if ch := p.waits[ev.Fd]; ch != nil {
				signal(ch)
			}
		}
		p.mu.Unlock()
	}
}

// add watches fd, edge-triggered for reading and writing, and returns the
// channel its events are signalled on (one pending signal at most).
func (p *poller) add(fd int) (chan struct{}, error) {
	ch := make(chan struct{}, 1)
	p.mu.Lock()
	p.waits[int32(fd)] = ch
	p.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | epollET, Fd: int32(fd)}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(p.epfd), syscall.EPOLL_CTL_ADD, uintptr(fd), uintptr(unsafe.Pointer(&ev)), 0, 0); e != 0 {
		p.forget(fd)
		return nil, e
	}
	return ch, nil
}

// remove stops watching fd, before it is closed.
func (p *poller) remove(fd int) {
	_, _, _ = syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(p.epfd), syscall.EPOLL_CTL_DEL, uintptr(fd), 0, 0, 0)
	p.forget(fd)
}

// forget drops the channel of fd.
func (p *poller) forget(fd int) {
	p.mu.Lock()
	delete(p.waits, int32(fd))
	p.mu.Unlock()
}

// signal leaves a signal on ch unless one is pending.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
