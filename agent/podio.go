package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/kelpie-dev/kelpie/internal/execwire"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
	"github.com/kelpie-dev/kelpie/runtime/host"
)

// PodIO is what the log and exec endpoints need of the runtime:
// host.Containerd implements it. Both calls block until done or until ctx
// is; they are called from HTTP handlers, concurrently with the loop.
type PodIO interface {
	// LogsTail writes what filter selects of a container's log to w (the
	// output since filter.Since, then its last filter.Tail lines), and
	// with follow keeps writing until the container stops.
	LogsTail(ctx context.Context, namespace, pod, container string, filter host.LogFilter, follow bool, w io.Writer) error
	// LogsPrevious writes what filter selects of the output of the
	// container's previous run (errdefs.ErrNotFound when it has not
	// restarted).
	LogsPrevious(ctx context.Context, namespace, pod, container string, filter host.LogFilter, w io.Writer) error
	// Exec runs cmd in a running container and returns its exit status.
	Exec(ctx context.Context, namespace, pod, container string, cmd []string, eio host.ExecIO) (int, error)
}

var _ PodIO = (*host.Containerd)(nil)

// forwardedHeader marks a request one agent forwarded to the peer that
// runs the pod; its value is the forwarding node. A forwarded request is
// never forwarded again.
const forwardedHeader = "X-Kelpie-Forwarded-By"

// podLog answers GET /api/v1/pods/{namespace}/{name}/log: the container's
// output as text/plain, streamed (follow) until the container stops or the
// client goes.
func (a *Agent) podLog(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	opts, err := ParseLogOptions(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	pio, ok := a.localPodIO(w, r, ns, name, false)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	fw := &flushWriter{w: w, rc: http.NewResponseController(w)}
	if opts.Follow {
		_ = fw.rc.SetWriteDeadline(time.Time{}) // a followed log lasts as long as the container
	}
	filter := host.LogFilter{Since: opts.Cutoff(a.clock.Now()), Tail: opts.Tail}
	if opts.Previous {
		err = pio.LogsPrevious(r.Context(), ns, name, opts.Container, filter, fw)
	} else {
		err = pio.LogsTail(r.Context(), ns, name, opts.Container, filter, opts.Follow, fw)
	}
	if err != nil && !fw.wrote {
		http.Error(w, err.Error(), httpStatusOf(err))
		return
	}
	if err != nil {
		a.log.Debug("stream a pod's log", "pod", reconciler.JoinName(ns, name), "err", err)
	}
}

// flushWriter flushes every write to the client, so a followed log
// arrives as it is written.
type flushWriter struct {
	w     io.Writer
	rc    *http.ResponseController
	wrote bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.wrote = true
	n, err := f.w.Write(p)
	if err == nil {
		_ = f.rc.Flush()
	}
	return n, err
}

// httpStatusOf maps a runtime error to an HTTP status.
func httpStatusOf(err error) int {
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, errdefs.ErrInvalidArgument):
		return http.StatusBadRequest
	case errors.Is(err, errdefs.ErrFailedPrecondition):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

// upgradeRequested reports whether r asks to switch to the exec protocol.
func upgradeRequested(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && strings.EqualFold(r.Header.Get("Upgrade"), execwire.Protocol)
}

// headerHasToken reports whether a comma-separated header holds token.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// podExec answers POST /api/v1/pods/{namespace}/{name}/exec: it switches
// the connection to the exec protocol (package execwire) and runs the
// command, ending with an Exit or Error frame.
func (a *Agent) podExec(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	opts, err := ParseExecOptions(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !upgradeRequested(r) {
		http.Error(w, "exec needs an upgraded connection: Connection: Upgrade, Upgrade: "+execwire.Protocol, http.StatusUpgradeRequired)
		return
	}
	pio, ok := a.localPodIO(w, r, ns, name, true)
	if !ok {
		return
	}
	conn, brw, ok := switchToExec(w)
	if !ok {
		return
	}
	defer conn.Close()
	// The command's life is the connection's: a client gone kills it.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	fw := execwire.NewWriter(conn)
	resize := make(chan host.TermSize, 4)
	signals := make(chan syscall.Signal, 4)
	eio := host.ExecIO{Stdout: fw.Stream(execwire.Stdout), Stderr: fw.Stream(execwire.Stderr), TTY: opts.TTY,
		Size: host.TermSize{Width: opts.Width, Height: opts.Height}, Resize: resize, Signals: signals}
	var stdin *io.PipeWriter
	if opts.Stdin {
		pr, pw := io.Pipe()
		defer pr.Close() // unblocks a stdin write the command never read
		eio.Stdin, stdin = pr, pw
	}
	go readExecInput(ctx, cancel, brw.Reader, stdin, resize, signals)
	code, err := pio.Exec(ctx, ns, name, opts.Container, opts.Command, eio)
	if err != nil {
		_ = fw.Write(execwire.Error, []byte(err.Error()))
		return
	}
	_ = fw.Write(execwire.Exit, execwire.ExitCode(code))
}

// readExecInput reads the client's frames until the connection ends, then
// cancels the command.
func readExecInput(ctx context.Context, cancel context.CancelFunc, r io.Reader, stdin *io.PipeWriter, resize chan<- host.TermSize, signals chan<- syscall.Signal) {
	defer cancel()
	for {
		f, err := execwire.Read(r)
		if err != nil {
			if stdin != nil {
				stdin.CloseWithError(io.ErrUnexpectedEOF)
			}
			return
		}
		switch f.Type {
		case execwire.Stdin:
			if stdin != nil {
				_, _ = stdin.Write(f.Payload)
			}
		case execwire.StdinEOF:
			if stdin != nil {
				_ = stdin.Close()
			}
		case execwire.Resize:
			if v, err := execwire.ParseUint32s(f.Payload, 2); err == nil {
				select {
				case resize <- host.TermSize{Width: v[0], Height: v[1]}:
				case <-ctx.Done():
				}
			}
		case execwire.Signal:
			if v, err := execwire.ParseUint32s(f.Payload, 1); err == nil && v[0] > 0 && v[0] < 65 {
				select {
				case signals <- syscall.Signal(v[0]):
				case <-ctx.Done():
				}
			}
		}
	}
}

// localPodIO returns the runtime's PodIO for pod ns/name when this host
// runs it. Otherwise it answers the request: forwarded to the member that
// runs the pod (upgrade: an exec), or refused when the runtime serves no
// pod I/O; and reports false.
func (a *Agent) localPodIO(w http.ResponseWriter, r *http.Request, ns, name string, upgrade bool) (PodIO, bool) {
	if !a.podHere(ns, name) {
		a.forwardPod(w, r, ns, name, upgrade)
		return nil, false
	}
	pio, ok := a.rt.(PodIO)
	if !ok {
		http.Error(w, "this agent's runtime serves no logs or exec", http.StatusNotImplemented)
		return nil, false
	}
	return pio, true
}

// podHere reports whether this host runs the pod: always on an agent on
// its own, else when the last observation of this host has it.
func (a *Agent) podHere(ns, name string) bool {
	if a.cluster == nil {
		return true
	}
	for _, p := range a.Status().Pods {
		if p.Namespace == ns && p.Name == name {
			return true
		}
	}
	return false
}

// errPodNowhere says no member runs the pod.
func errPodNowhere(ns, name string) error {
	return fmt.Errorf("no pod %s on any host of the cluster: %w", reconciler.JoinName(ns, name), errdefs.ErrNotFound)
}

// switchToExec takes over the client's connection of an exec request and
// answers 101 Switching Protocols to execwire.Protocol. The session has no
// deadline: the server's read and write timeouts do not bound it. When it
// returns false the client has had its answer, or is gone.
func switchToExec(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, bool) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "exec: "+err.Error(), http.StatusInternalServerError)
		return nil, nil, false
	}
	_ = conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+execwire.Protocol+"\r\n\r\n"); err != nil {
		conn.Close()
		return nil, nil, false
	}
	return conn, brw, true
}
