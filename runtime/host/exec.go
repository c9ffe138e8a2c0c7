package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
	"github.com/kelpie-dev/kelpie/runtime/image"
)

// ioDrainWait bounds how long Exec waits, after the command exited, for
// its output to be copied.
const ioDrainWait = 2 * time.Second

// waitIO waits for io's copies to end, at most d.
func waitIO(pio cio.IO, d time.Duration) {
	done := make(chan struct{})
	go func() {
		pio.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// TermSize is a terminal's size in characters.
type TermSize struct {
	Width, Height uint32
}

// ExecIO is what an exec'd command is connected to.
type ExecIO struct {
	// Stdin feeds the command's standard input; nil gives it none.
	Stdin io.Reader
	// Stdout and Stderr take its output (nil drops it); with TTY, Stdout
	// takes both.
	Stdout, Stderr io.Writer
	// TTY runs the command on a terminal that containerd's shim makes,
	// as `kubectl exec -t` does.
	TTY bool
	// Size is the terminal's first size (with TTY); zero leaves the shim's.
	Size TermSize
	// Resize delivers the terminal's later sizes (with TTY).
	Resize <-chan TermSize
	// Signals delivers signals to pass to the command (without TTY: with
	// one, ^C is a character the terminal turns into SIGINT itself).
	Signals <-chan syscall.Signal
}

// Exec runs cmd in the running container of pod, as its own process runs
// (user, environment, working directory), connected to io, and returns
// the command's exit status. container "" means the pod's only app
// container. When ctx is done the command is killed. The exec process is
// deleted whatever happens.
func (c *Containerd) Exec(ctx context.Context, namespace, pod, container string, cmd []string, eio ExecIO) (int, error) {
	if len(cmd) == 0 {
		return -1, fmt.Errorf("exec: no command: %w", errdefs.ErrInvalidArgument)
	}
	key := reconciler.JoinName(namespace, pod)
	ctx = c.client.WithNamespace(ctx)
	have, err := c.podContainers(ctx, namespace, pod)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", key, err)
	}
	container, rec, err := pickContainer(key, have, container)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", key, err)
	}
	cont, err := c.loadOwned(ctx, rec.ID, key, container)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", key, err)
	}
	task, err := cont.Task(ctx, nil)
	if err != nil {
		if errors.Is(image.ConvertErr(err), errdefs.ErrNotFound) {
			return -1, fmt.Errorf("exec in %s/%s: the container is not running: %w", key, container, errdefs.ErrFailedPrecondition)
		}
		return -1, fmt.Errorf("exec in %s/%s: %w", key, container, image.ConvertErr(err))
	}
	if st, err := task.Status(ctx); err != nil || st.Status != containerd.Running {
		return -1, fmt.Errorf("exec in %s/%s: the container is not running: %w", key, container, errdefs.ErrFailedPrecondition)
	}
	spec, err := cont.Spec(ctx)
	if err != nil {
		return -1, fmt.Errorf("exec in %s/%s: %w", key, container, image.ConvertErr(err))
	}
	if spec.Process == nil {
		return -1, fmt.Errorf("exec in %s/%s: the container has no process", key, container)
	}
	ps := *spec.Process
	ps.Args = slices.Clone(cmd)
	ps.Terminal = eio.TTY
	ps.ConsoleSize = nil
	if eio.TTY && eio.Size.Width > 0 && eio.Size.Height > 0 {
		// The terminal has its size before the command starts: a resize
		// after Start races a command that reads it at once.
		ps.ConsoleSize = &specs.Box{Width: uint(eio.Size.Width), Height: uint(eio.Size.Height)}
	}

	id, err := execID("exec")
	if err != nil {
		return -1, err
	}
	var stdinEOF chan struct{} // closed when the caller's stdin ended
	stdin := eio.Stdin
	if stdin != nil {
		stdinEOF = make(chan struct{})
		stdin = &eofReader{r: stdin, eof: stdinEOF}
	}
	stdout, stderr := eio.Stdout, eio.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard // the shim fails on a stream without a FIFO
	}
	opts := []cio.Opt{cio.WithStreams(stdin, stdout, stderr)}
	if eio.TTY {
		opts = append(opts, cio.WithTerminal)
	}
	p, err := task.Exec(ctx, id, &ps, cio.NewCreator(opts...))
	if err != nil {
		return -1, fmt.Errorf("exec in %s/%s: %w", key, container, image.ConvertErr(err))
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killWait)
		defer cancel()
		if _, err := p.Delete(dctx, containerd.WithProcessKill); err != nil && !errors.Is(image.ConvertErr(err), errdefs.ErrNotFound) {
			c.log.Warn("delete exec process", "container", cont.ID(), "exec", id, "err", image.ConvertErr(err))
		}
	}()
	exited, err := p.Wait(ctx)
	if err != nil {
		return -1, fmt.Errorf("exec in %s/%s: %w", key, container, image.ConvertErr(err))
	}
	if err := p.Start(ctx); err != nil {
		return -1, fmt.Errorf("exec in %s/%s: start: %w", key, container, image.ConvertErr(err))
	}
	for {
		select {
		case st := <-exited:
			code, _, err := st.Result()
			if err != nil {
				return -1, fmt.Errorf("exec in %s/%s: %w", key, container, image.ConvertErr(err))
			}
			// The output the shim still copies reaches the writers before
			// the process's IO closes; a process the command left in the
			// background may hold it open, so the wait is bounded.
			waitIO(p.IO(), ioDrainWait)
			return int(code), nil
		case <-stdinEOF:
			// The end of stdin reaches the command only when the shim
			// closes its side, as the CRI's exec does.
			stdinEOF = nil
			if err := p.CloseIO(ctx, containerd.WithStdinCloser); err != nil {
				c.log.Debug("exec: close stdin", "err", err)
			}
		case sz := <-eio.Resize:
			if eio.TTY {
				_ = p.Resize(ctx, sz.Width, sz.Height)
			}
		case sig := <-eio.Signals:
			if err := p.Kill(ctx, sig); err != nil {
				c.log.Debug("exec: pass a signal", "signal", sig, "err", err)
			}
		case <-ctx.Done():
			return -1, fmt.Errorf("exec in %s/%s: %w", key, container, ctx.Err())
		}
	}
}

// eofReader reads r and closes eof once r has ended (or failed).
type eofReader struct {
	r    io.Reader
	eof  chan struct{}
	once sync.Once
}

func (e *eofReader) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err != nil {
		e.once.Do(func() { close(e.eof) })
	}
	return n, err
}
