package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/containers"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
	"github.com/kelpie-dev/kelpie/runtime/image"
)

// logPollInterval is how often Logs looks for new output when following:
// a person watching does not notice a quarter second, and it costs nothing.
const logPollInterval = 250 * time.Millisecond

// Logs writes the log of a pod's container to w: everything its tasks
// wrote to stdout and stderr since the container was created, restarts
// included, as containerd's shim recorded it. container "" means the pod's
// only app container. With follow, Logs keeps writing new output until
// the container stops running, the pod is removed or ctx is done (which
// is not an error).
func (c *Containerd) Logs(ctx context.Context, namespace, pod, container string, follow bool, w io.Writer) error {
	return c.LogsTail(ctx, namespace, pod, container, -1, follow, w)
}

// LogsTail is Logs starting with the last tail lines of what the container
// wrote so far (all of it when tail is negative), as `kubectl logs --tail`.
func (c *Containerd) LogsTail(ctx context.Context, namespace, pod, container string, tail int, follow bool, out io.Writer) error {
	w := out
	var tw *tailWriter
	if tail >= 0 {
		tw = &tailWriter{max: tail}
		w = tw
	}
	key := reconciler.JoinName(namespace, pod)
	ctx = c.client.WithNamespace(ctx)
	have, err := c.podContainers(ctx, namespace, pod)
	if err != nil {
		return fmt.Errorf("logs of %s: %w", key, err)
	}
	container, rec, err := pickContainer(key, have, container)
	if err != nil {
		return fmt.Errorf("logs of %s: %w", key, err)
	}
	if err := copyRotated(c.logPath(namespace, pod, container), w); err != nil {
		return fmt.Errorf("logs of %s/%s: %w", key, container, err)
	}
	f, err := os.Open(c.logPath(namespace, pod, container))
	if err != nil {
		if os.IsNotExist(err) && !follow {
			return nil // created, never started: no output yet
		}
		if !os.IsNotExist(err) {
			return fmt.Errorf("logs of %s/%s: %w", key, container, err)
		}
	}
	if f != nil {
		defer f.Close()
		if _, err := io.Copy(w, f); err != nil {
			return fmt.Errorf("logs of %s/%s: %w", key, container, err)
		}
	}
	if tw != nil {
		if err := tw.flush(out); err != nil {
			return fmt.Errorf("logs of %s/%s: %w", key, container, err)
		}
		w = out // what comes next is new: all of it
	}
	if !follow {
		return nil
	}
	for {
		running, err := c.taskRunning(ctx, rec.ID)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("logs of %s/%s: %w", key, container, err)
		}
		if f == nil {
			if f, err = os.Open(c.logPath(namespace, pod, container)); err == nil {
				defer f.Close()
			} else if !os.IsNotExist(err) {
				return fmt.Errorf("logs of %s/%s: %w", key, container, err)
			}
		}
		if f != nil {
			if _, err := io.Copy(w, f); err != nil {
				return fmt.Errorf("logs of %s/%s: %w", key, container, err)
			}
		}
		if !running {
			return nil // what it wrote before it stopped was copied above
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(logPollInterval):
		}
	}
}

// pickContainer finds container among a pod's containers (have, by
// name); "" means the pod's only app container.
func pickContainer(key string, have map[string]containers.Container, container string) (string, containers.Container, error) {
	if container == "" {
		var apps []string
		for name, rec := range have {
			if rec.Labels[reconciler.LabelInit] != reconciler.InitValue {
				apps = append(apps, name)
			}
		}
		sort.Strings(apps)
		switch len(apps) {
		case 0:
			return "", containers.Container{}, fmt.Errorf("no such pod on this host: %w", errdefs.ErrNotFound)
		case 1:
			container = apps[0]
		default:
			return "", containers.Container{}, fmt.Errorf("the pod has containers %s; name one (-c NAME): %w", strings.Join(apps, ", "), errdefs.ErrInvalidArgument)
		}
	}
	rec, ok := have[container]
	if !ok {
		return "", containers.Container{}, fmt.Errorf("no container %q of %s on this host: %w", container, key, errdefs.ErrNotFound)
	}
	return container, rec, nil
}

// copyRotated writes the rotated files of the log at path to w, oldest
// (the highest number) first.
func copyRotated(path string, w io.Writer) error {
	names, err := filepath.Glob(path + ".*")
	if err != nil {
		return err
	}
	type rotated struct {
		name string
		n    int
	}
	var files []rotated
	for _, name := range names {
		if n, err := strconv.Atoi(strings.TrimPrefix(name, path+".")); err == nil && n > 0 {
			files = append(files, rotated{name, n})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].n > files[j].n })
	for _, r := range files {
		f, err := os.Open(r.name)
		if err != nil {
			if os.IsNotExist(err) {
				continue // rotated away meanwhile
			}
			return err
		}
		_, err = io.Copy(w, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// taskRunning reports whether container id exists and its task runs.
func (c *Containerd) taskRunning(ctx context.Context, id string) (bool, error) {
	cont, err := c.cd.LoadContainer(ctx, id)
	if err != nil {
		if errors.Is(image.ConvertErr(err), errdefs.ErrNotFound) {
			return false, nil
		}
		return false, image.ConvertErr(err)
	}
	_, st, err := taskOf(ctx, cont)
	if err != nil {
		return false, err
	}
	return st.running(), nil
}

// tailWriter keeps the last max lines written to it (a last line without
// its newline counts as one).
type tailWriter struct {
	max   int
	lines [][]byte // a ring of the last lines, oldest at next
	next  int
	part  []byte // the line being written
}

// Write implements io.Writer.
func (t *tailWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			t.part = append(t.part, b...)
			break
		}
		t.push(append(t.part, b[:i+1]...))
		t.part = nil
		b = b[i+1:]
	}
	return n, nil
}

// push adds a whole line to the ring.
func (t *tailWriter) push(line []byte) {
	if t.max == 0 {
		return
	}
	if len(t.lines) < t.max {
		t.lines = append(t.lines, line)
		return
	}
	t.lines[t.next] = line
	t.next = (t.next + 1) % t.max
}

// flush writes the kept lines to w, oldest first.
func (t *tailWriter) flush(w io.Writer) error {
	if len(t.part) > 0 {
		t.push(t.part)
		t.part = nil
	}
	for i := range t.lines {
		if _, err := w.Write(t.lines[(t.next+i)%len(t.lines)]); err != nil {
			return err
		}
	}
	return nil
}
