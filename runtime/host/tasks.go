package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/cio"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
	"github.com/kelpie-dev/kelpie/runtime/image"
)

// killWait bounds how long a task gets to die after SIGKILL before its
// removal is reported as failed (a process in uninterruptible sleep, a
// hung shim). SIGKILL takes effect in milliseconds otherwise.
const killWait = 10 * time.Second

// taskCreateAttempts and taskCreateBackoff bound the retries of a task
// creation that collides with the remains of an interrupted one: an apply
// killed during NewTask leaves containerd finishing or undoing that
// creation for a moment (NewTask says the task exists while Task says it
// does not; the shim's bundle directory is still there), and a removal of
// the stale task record followed by a short wait clears it.
const (
	taskCreateAttempts = 8
	taskCreateBackoff  = 100 * time.Millisecond
)

// newTask creates the task of ctr, its stdout and stderr appended to
// logPath by containerd's shim (one file opened by one writer: output is
// never garbled), or returns the task ctr already has.
func (c *Containerd) newTask(ctx context.Context, ctr containerd.Container, logPath string) (containerd.Task, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), podDirMode); err != nil {
		return nil, fmt.Errorf("log dir: %w", err)
	}
	wait := taskCreateBackoff
	var last error
	for attempt := 1; ; attempt++ {
		t, err := c.tryNewTask(ctx, ctr, logPath)
		if err == nil || !errors.Is(err, errStaleTask) {
			return t, err
		}
		last = err
		if attempt == taskCreateAttempts {
			break
		}
		c.log.Debug("task creation collided with an interrupted one; retrying", "container", ctr.ID(), "err", err)
		c.deleteStaleTask(ctx, ctr.ID())
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		}
		wait *= 2
	}
	return nil, fmt.Errorf("create task: %d attempts: %w", taskCreateAttempts, last)
}

// errStaleTask marks a task creation that failed on the remains of an
// interrupted one; newTask retries it.
var errStaleTask = errors.New("remains of an interrupted task creation")

// tryNewTask makes one attempt at creating (or loading) the task of ctr.
func (c *Containerd) tryNewTask(ctx context.Context, ctr containerd.Container, logPath string) (containerd.Task, error) {
	t, err := ctr.NewTask(ctx, cio.LogFile(logPath))
	if err == nil {
		return t, nil
	}
	err = image.ConvertErr(err)
	if !errors.Is(err, errdefs.ErrAlreadyExists) {
		if strings.Contains(err.Error(), "file exists") {
			// "failed to start shim: mkdir <bundle>: file exists"
			return nil, fmt.Errorf("create task: %w: %w", errStaleTask, err)
		}
		return nil, fmt.Errorf("create task: %w", err)
	}
	t, err = ctr.Task(ctx, nil)
	if err != nil {
		if err = image.ConvertErr(err); errors.Is(err, errdefs.ErrNotFound) {
			return nil, fmt.Errorf("load task: %w: %w", errStaleTask, err)
		}
		return nil, fmt.Errorf("load task: %w", err)
	}
	return t, nil
}

// deleteStaleTask asks containerd to delete the task record of container
// id, which shuts down a shim an interrupted creation left; a task that
// does not exist is not an error. Failures are logged: the caller retries.
func (c *Containerd) deleteStaleTask(ctx context.Context, id string) {
	_, err := c.cd.TaskService().Delete(ctx, &tasks.DeleteTaskRequest{ContainerID: id})
	if err != nil {
		if err = image.ConvertErr(err); !errors.Is(err, errdefs.ErrNotFound) {
			c.log.Debug("delete stale task", "container", id, "err", err)
		}
	}
}

// startTask creates and starts the task of ctr. A task that exists and
// runs already is left alone.
func (c *Containerd) startTask(ctx context.Context, ctr containerd.Container, logPath string) error {
	t, err := c.newTask(ctx, ctr, logPath)
	if err != nil {
		return err
	}
	st, err := t.Status(ctx)
	if err != nil {
		return fmt.Errorf("task status: %w", image.ConvertErr(err))
	}
	if st.Status != containerd.Created {
		return nil // running or already ran: a concurrent start won
	}
	if err := t.Start(ctx); err != nil {
		return fmt.Errorf("start task: %w", image.ConvertErr(err))
	}
	// The start time, so that the run's length is known once it exits
	// (a run of 10 minutes resets the restart back-off).
	if _, err := ctr.SetLabels(ctx, map[string]string{reconciler.LabelStartedAt: time.Now().UTC().Format(time.RFC3339Nano)}); err != nil {
		return fmt.Errorf("record start: %w", image.ConvertErr(err))
	}
	return nil
}

// runTask starts the task of ctr (creating it when needed) and waits for
// it to exit, returning its exit code. A task that runs already is waited
// for; one that has exited is reported at once.
func (c *Containerd) runTask(ctx context.Context, ctr containerd.Container, logPath string) (int, error) {
	t, err := c.newTask(ctx, ctr, logPath)
	if err != nil {
		return 0, err
	}
	// Wait before Start: a process that exits at once must not be missed.
	exitCh, err := t.Wait(ctx)
	if err != nil {
		return 0, fmt.Errorf("wait for task: %w", image.ConvertErr(err))
	}
	st, err := t.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("task status: %w", image.ConvertErr(err))
	}
	switch st.Status {
	case containerd.Stopped:
		return int(st.ExitStatus), nil
	case containerd.Created:
		if err := t.Start(ctx); err != nil {
			return 0, fmt.Errorf("start task: %w", image.ConvertErr(err))
		}
	}
	select {
	case es := <-exitCh:
		code, _, err := es.Result()
		if err != nil {
			return 0, fmt.Errorf("wait for task: %w", image.ConvertErr(err))
		}
		return int(code), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// taskState is a container's task as containerd reports it.
type taskState struct {
	exists   bool
	status   containerd.ProcessStatus
	code     uint32
	exitedAt time.Time // zero unless it exited
}

// taskOf returns the task of ctr and its state; a nil task and a zero
// state when it has none.
func taskOf(ctx context.Context, ctr containerd.Container) (containerd.Task, taskState, error) {
	t, err := ctr.Task(ctx, nil)
	if err != nil {
		if err = image.ConvertErr(err); errors.Is(err, errdefs.ErrNotFound) {
			return nil, taskState{}, nil
		}
		return nil, taskState{}, fmt.Errorf("load task: %w", err)
	}
	st, err := t.Status(ctx)
	if err != nil {
		if err = image.ConvertErr(err); errors.Is(err, errdefs.ErrNotFound) {
			return nil, taskState{}, nil
		}
		return nil, taskState{}, fmt.Errorf("task status: %w", err)
	}
	return t, taskState{exists: true, status: st.Status, code: st.ExitStatus, exitedAt: st.ExitTime}, nil
}

// running reports whether a task state counts as running.
func (s taskState) running() bool {
	switch s.status {
	case containerd.Running, containerd.Paused, containerd.Pausing:
		return s.exists
	}
	return false
}

// stopTask stops t (killTask) and deletes it. It returns once the task is
// gone.
func stopTask(ctx context.Context, t containerd.Task, grace time.Duration) error {
	if err := killTask(ctx, t, grace); err != nil {
		return err
	}
	return deleteTask(ctx, t)
}

// killTask stops t if it runs: SIGTERM, then SIGKILL to all its processes
// once grace has passed (or at once when grace is not positive). A PID 1
// that ignores SIGTERM, as busybox sleep does, is killed after grace. It
// returns once the task has exited, and leaves it (stopped, with its exit
// status); a task that does not run, or does not exist, is left alone.
func killTask(ctx context.Context, t containerd.Task, grace time.Duration) error {
	st, err := t.Status(ctx)
	if err != nil {
		if err = image.ConvertErr(err); errors.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("task status: %w", err)
	}
	if st.Status == containerd.Running || st.Status == containerd.Paused || st.Status == containerd.Pausing {
		if st.Status != containerd.Running {
			_ = t.Resume(ctx) // a frozen process would not see the signals
		}
		exitCh, err := t.Wait(ctx)
		if err != nil {
			return fmt.Errorf("wait for task: %w", image.ConvertErr(err))
		}
		exited := false
		if grace > 0 {
			if err := t.Kill(ctx, syscall.SIGTERM); err != nil && !errors.Is(image.ConvertErr(err), errdefs.ErrNotFound) {
				return fmt.Errorf("SIGTERM: %w", image.ConvertErr(err))
			}
			timer := time.NewTimer(grace)
			select {
			case <-exitCh:
				exited = true
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				return ctx.Err()
			}
			timer.Stop()
		}
		if !exited {
			if err := t.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errors.Is(image.ConvertErr(err), errdefs.ErrNotFound) {
				return fmt.Errorf("SIGKILL: %w", image.ConvertErr(err))
			}
			timer := time.NewTimer(killWait)
			select {
			case <-exitCh:
			case <-timer.C:
				return fmt.Errorf("task did not exit %s after SIGKILL", killWait)
			case <-ctx.Done():
				timer.Stop()
				return ctx.Err()
			}
			timer.Stop()
		}
	}
	return nil
}

// deleteTask deletes a task that is not running (one that still runs is
// killed first).
func deleteTask(ctx context.Context, t containerd.Task) error {
	if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil {
		if err = image.ConvertErr(err); !errors.Is(err, errdefs.ErrNotFound) {
			return fmt.Errorf("delete task: %w", err)
		}
	}
	return nil
}
