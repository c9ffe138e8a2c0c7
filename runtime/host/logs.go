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

// LogFilter selects what of a log is written, as `kubectl logs` does:
// the lines written at or after Since (zero: all; resolved to the
// interval of the log's time index, see logTimesSuffix), then the last
// Tail of those (negative: all).
type LogFilter struct {
	Since time.Time
	Tail  int
}

// Logs writes the log of a pod's container to w: everything its tasks
// wrote to stdout and stderr since the container was created, restarts
// included, as containerd's shim recorded it. container "" means the pod's
// only app container. With follow, Logs keeps writing new output until
// the container stops running, the pod is removed or ctx is done (which
// is not an error).
func (c *Containerd) Logs(ctx context.Context, namespace, pod, container string, follow bool, w io.Writer) error {
	return c.LogsTail(ctx, namespace, pod, container, LogFilter{Tail: -1}, follow, w)
}

// LogsTail is Logs of what filter selects: the output since filter.Since,
// of which the last filter.Tail lines, as `kubectl logs --since --tail`.
// Following, what comes next is written as it comes (before Since, when
// that is still ahead, it is dropped).
func (c *Containerd) LogsTail(ctx context.Context, namespace, pod, container string, filter LogFilter, follow bool, out io.Writer) error {
	dst := &redirect{w: out}
	var tw *tailWriter
	if filter.Tail >= 0 {
		tw = &tailWriter{max: filter.Tail}
		dst.w = tw
	}
	var w io.Writer = dst
	if !filter.Since.IsZero() {
		w = &sinceGate{w: dst, cutoff: filter.Since, now: time.Now}
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
	path := c.logPath(namespace, pod, container)
	rotated, err := rotatedFiles(path)
	if err != nil {
		return fmt.Errorf("logs of %s/%s: %w", key, container, err)
	}
	files, err := c.openLogs(append(rotated, path), filter.Since, w)
	if err != nil {
		return fmt.Errorf("logs of %s/%s: %w", key, container, err)
	}
	defer files.close()
	if err := files.copy(); err != nil {
		return fmt.Errorf("logs of %s/%s: %w", key, container, err)
	}
	var cur *logReader
	if n := len(files); n > 0 && files[n-1].name == path {
		cur = &files[n-1]
	}
	if tw != nil {
		if err := tw.flush(out); err != nil {
			return fmt.Errorf("logs of %s/%s: %w", key, container, err)
		}
		dst.w = out // what comes next is new: all of it
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
		if cur == nil {
			if f, err := os.Open(path); err == nil {
				defer f.Close()
				cur = &logReader{name: path, f: f, to: w}
			} else if !os.IsNotExist(err) {
				return fmt.Errorf("logs of %s/%s: %w", key, container, err)
			}
		}
		if cur != nil {
			if _, err := io.Copy(cur.to, cur.f); err != nil {
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

// rotatedFiles lists the rotated files of the log at path, oldest (the
// highest number) first.
func rotatedFiles(path string) ([]string, error) {
	names, err := filepath.Glob(path + ".*")
	if err != nil {
		return nil, err
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
	out := make([]string, len(files))
	for i, r := range files {
		out[i] = r.name
	}
	return out, nil
}

// logReader is one open log file, positioned where its output starts,
// and the writer it goes to.
type logReader struct {
	name string
	f    *os.File
	to   io.Writer
}

// logReaders are the open files of a log, oldest first.
type logReaders []logReader

// openLogs opens the log files names (oldest first; those gone meanwhile
// are left out), each positioned at its first line since cutoff and bound
// for w. They are opened together, with rotations held off, so each file
// is read with its own time index and none is read twice.
func (c *Containerd) openLogs(names []string, cutoff time.Time, w io.Writer) (logReaders, error) {
	c.logs.mu.Lock()
	defer c.logs.mu.Unlock()
	return openLogsLocked(names, cutoff, w)
}

// openLogsLocked is openLogs for a caller holding c.logs.mu.
func openLogsLocked(names []string, cutoff time.Time, w io.Writer) (logReaders, error) {
	var open logReaders
	for _, name := range names {
		f, to, ok, err := openSince(name, cutoff, w)
		if err != nil {
			open.close()
			return nil, err
		}
		if ok {
			open = append(open, logReader{name: name, f: f, to: to})
		}
	}
	return open, nil
}

// copy writes every file, oldest first.
func (l logReaders) copy() error {
	for _, r := range l {
		if _, err := io.Copy(r.to, r.f); err != nil {
			return err
		}
	}
	return nil
}

// close closes every file.
func (l logReaders) close() {
	for _, r := range l {
		r.f.Close()
	}
}

// redirect is a writer whose destination can change: the tail of a log
// first, the client once that is flushed.
type redirect struct{ w io.Writer }

// Write implements io.Writer.
func (r *redirect) Write(b []byte) (int, error) { return r.w.Write(b) }

// sinceGate drops what is written to it while now is before cutoff (a
// followed log with --since still ahead), then passes everything on from
// the next line start.
type sinceGate struct {
	w       io.Writer
	cutoff  time.Time
	now     func() time.Time
	midLine bool // the last byte dropped ended no line
}

// Write implements io.Writer.
func (g *sinceGate) Write(b []byte) (int, error) {
	n := len(b)
	if g.now().Before(g.cutoff) {
		if n > 0 {
			g.midLine = b[n-1] != '\n'
		}
		return n, nil
	}
	if g.midLine {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return n, nil
		}
		g.midLine, b = false, b[i+1:]
	}
	if len(b) > 0 {
		if _, err := g.w.Write(b); err != nil {
			return 0, err
		}
	}
	return n, nil
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
