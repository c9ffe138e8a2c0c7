package host

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"

	"github.com/kelpie-dev/kelpie/internal/proc"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
	"github.com/kelpie-dev/kelpie/runtime/image"
	"github.com/kelpie-dev/kelpie/runtime/probe"
)

// Containerd is the agent's Prober (agent.Prober, which this package
// cannot import).
var _ interface {
	Probe(ctx context.Context, pod reconciler.ActualPod, container string, p reconciler.Probe) (bool, string)
	KillContainer(ctx context.Context, namespace, pod, container string, grace time.Duration) error
} = (*Containerd)(nil)

// maxExecOutput bounds the output of an exec probe kept in memory (stdout
// and stderr together), as the kubelet's 10 KiB; the rest is read and
// dropped, so that the command never blocks on a full pipe.
const maxExecOutput = 10 << 10

// Probe makes one probe p of a container of pod (as Observe reported it)
// and returns whether it succeeded and what happened, in a few words. An
// exec probe runs its command in the container's task, as the container's
// own process runs (user, environment, working directory): exit 0 is
// success, and the output is "exit N" and the first line it printed. An
// httpGet, tcpSocket or grpc probe connects from the host to the pod's IP,
// or to the host's loopback for a pod in the host's network (pod.IP and
// pod.HostNetwork, package probe), without asking containerd; a host the
// probe names beyond those is refused, and a container pod does not list
// fails. A container that is not kelpie's, does not exist or does not run
// fails its exec probes.
//
// Probe returns within p.Timeout (probe.DefaultTimeout when not set), or
// once ctx is done: an exec probe that takes longer is killed, with the
// processes it started, and removed. It is safe for concurrent use.
func (c *Containerd) Probe(ctx context.Context, pod reconciler.ActualPod, container string, p reconciler.Probe) (ok bool, output string) {
	if len(p.Exec) == 0 {
		// A network probe needs nothing from containerd: the pod as
		// Observe saw it says where it is (its IP, or the host's network),
		// and which containers it has. With a hundred pods probed every
		// second, a containerd call each would cost more than the probes.
		if !slices.ContainsFunc(pod.Containers, func(ac reconciler.ActualContainer) bool { return ac.Name == container }) {
			return false, "container not found"
		}
		return probe.Run(ctx, probe.Target{PodIP: pod.IP, HostNetwork: pod.HostNetwork}, p)
	}
	ctx = c.client.WithNamespace(ctx)
	key := reconciler.JoinName(pod.Namespace, pod.Name)
	cont, err := c.loadOwned(ctx, containerIDOf(pod.Namespace, pod.Name, container), key, container)
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return false, "container not found"
		}
		return false, probe.Short(err.Error())
	}
	return c.execProbe(ctx, cont, p.Exec, p.Timeout)
}

// execProbe runs cmd in the running task of cont with the container's
// process settings and returns whether it exited 0, and its exit code and
// first line of output. After timeout it kills the command and what it
// started, and fails with "timeout after 1s". The exec process is deleted
// whatever happens.
func (c *Containerd) execProbe(ctx context.Context, cont containerd.Container, cmd []string, timeout time.Duration) (bool, string) {
	if timeout <= 0 {
		timeout = probe.DefaultTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	failed := func(err error) (bool, string) {
		switch {
		case ctx.Err() != nil:
			return false, "canceled"
		case pctx.Err() != nil || deadlineErr(err):
			// containerd's side of a call gets the deadline too, and on a
			// busy host its timer can fire before ours.
			return false, probe.TimedOut(timeout)
		}
		return false, probe.Short(image.ConvertErr(err).Error())
	}

	task, err := cont.Task(pctx, nil)
	if err != nil {
		if errors.Is(image.ConvertErr(err), errdefs.ErrNotFound) {
			return false, "container not running"
		}
		return failed(err)
	}
	st, err := task.Status(pctx)
	if err != nil {
		return failed(err)
	}
	if st.Status != containerd.Running {
		return false, "container not running"
	}
	spec, err := cont.Spec(pctx)
	if err != nil {
		return failed(err)
	}
	if spec.Process == nil {
		return false, "container has no process"
	}
	ps := *spec.Process
	ps.Args = slices.Clone(cmd)
	ps.Terminal = false
	ps.ConsoleSize = nil

	out := &boundedBuffer{max: maxExecOutput} // one locked writer for both streams
	id, err := execID("probe")
	if err != nil {
		return false, probe.Short(err.Error())
	}
	p, err := task.Exec(pctx, id, &ps, cio.NewCreator(cio.WithStreams(nil, out, out)))
	if err != nil {
		// A creation cut short by the deadline may still have happened.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killWait)
		defer cancel()
		if lp, lerr := task.LoadProcess(dctx, id, nil); lerr == nil {
			_, _ = lp.Delete(dctx, containerd.WithProcessKill)
		}
		return failed(err)
	}
	// The exec process goes, whatever happened: killed if it still runs,
	// with its FIFOs. This runs after ctx is done too, and in the
	// background when a process the command left holds its output open
	// (containerd's shim then waits 2 s for it before deleting).
	background := false
	defer func() {
		del := func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killWait)
			defer cancel()
			if _, err := p.Delete(dctx, containerd.WithProcessKill); err != nil && !errors.Is(image.ConvertErr(err), errdefs.ErrNotFound) {
				c.log.Warn("delete exec probe process", "container", cont.ID(), "exec", id, "err", image.ConvertErr(err))
			}
		}
		if background {
			go del()
		} else {
			del()
		}
	}()
	// The wait has no deadline of its own (the select below keeps the
	// time): one that containerd ended at the deadline, before this side
	// saw it, would leave what the command started running.
	wctx, stopWait := context.WithCancel(ctx)
	defer stopWait()
	exitCh, err := p.Wait(wctx)
	if err != nil {
		return failed(err)
	}
	if err := p.Start(pctx); err != nil {
		if pctx.Err() == nil && !deadlineErr(err) {
			return false, "exec failed: " + execError(image.ConvertErr(err))
		}
		return failed(err)
	}
	// timedOut kills what still runs of the command: the exec process
	// (not reaped yet, so its pid is still its own) and what it started.
	timedOut := func(running bool) (bool, string) {
		if running {
			killTree(int(p.Pid()))
		}
		if ctx.Err() != nil {
			return false, "canceled"
		}
		return false, probe.TimedOut(timeout)
	}
	select {
	case es := <-exitCh:
		code, _, err := es.Result()
		if err != nil {
			// The wait failed, not the process: it may still run.
			killTree(int(p.Pid()))
			if pctx.Err() != nil || deadlineErr(err) {
				return timedOut(false)
			}
			return failed(err)
		}
		// The output is all copied once the command's pipes close; a
		// process it left in the background may hold them open.
		copied := make(chan struct{})
		go func() { p.IO().Wait(); close(copied) }()
		select {
		case <-copied:
		case <-pctx.Done():
			background = true
		}
		s := fmt.Sprintf("exit %d", code)
		if line := probe.Short(out.String()); line != "" {
			s += ": " + line
		}
		return code == 0, s
	case <-pctx.Done():
		select {
		case es := <-exitCh: // it ended just now, or the wait did
			return timedOut(es.Error() != nil)
		default:
			return timedOut(true)
		}
	}
}

// deadlineErr reports whether err is a deadline that ran out, on either
// side of a containerd call (the server returns it as text, with code
// Unknown).
func deadlineErr(err error) bool {
	return err != nil && (errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), context.DeadlineExceeded.Error()))
}

// killTree kills the processes an exec probe started below its own
// process pid, which containerd's kill does not reach: they are stopped
// first (a stopped process forks no more), then killed. pid itself is
// killed by the deletion of the exec process.
func killTree(pid int) {
	if pid <= 0 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	stopped := map[int]bool{}
	for range 10 { // until a pass finds no new process
		fresh := false
		for _, d := range proc.Descendants(pid) {
			if !stopped[d] {
				stopped[d], fresh = true, true
				_ = syscall.Kill(d, syscall.SIGSTOP)
			}
		}
		if !fresh {
			break
		}
	}
	for d := range stopped {
		_ = syscall.Kill(d, syscall.SIGKILL)
	}
}

// execError shortens the error runc gives for a command it cannot start
// ("OCI runtime exec failed: exec failed: unable to start container
// process: exec: \"x\": executable file not found in $PATH: unknown") to
// what it says about the command.
func execError(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "exec: "); i >= 0 {
		msg = msg[i+len("exec: "):]
	}
	return probe.Short(strings.TrimSuffix(msg, ": unknown"))
}

// execID is a fresh ID for an exec process: prefix, "-" and 12 hex digits.
func execID(prefix string) (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("exec id: %w", err)
	}
	return prefix + "-" + hex.EncodeToString(b), nil
}

// boundedBuffer keeps the first max bytes written to it and drops the
// rest, never failing a write. It is safe for concurrent use: stdout and
// stderr are copied into it at once.
type boundedBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *boundedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
