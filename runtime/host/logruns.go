package host

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/kelpie-dev/kelpie/internal/atomicfile"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
)

// A container's runs are kept apart in its log files: before a container
// that ran starts again, its current log (no writer holds it then) becomes
// NAME.log.1, as a size rotation would make it, and NAME.log.runs records
// the rotated files where runs end: "1 4" says the previous run's output
// ends in .1 and the one before's in .4, so the previous run is .3, .2,
// .1 (a run's older files may have been rotated away). Size rotations
// shift the numbers with the files.
const logRunsSuffix = ".runs"

// defaultLogMaxFiles bounds the files a restart keeps before the agent's
// first rotation told the runtime its --container-log-max-files (the
// kubelet's default).
const defaultLogMaxFiles = 5

// logFiles serializes the renames of log files (size rotations, restarts)
// and remembers the last rotation's bound.
type logFiles struct {
	mu       sync.Mutex
	maxFiles int
	samples  map[string]*logSample // by log path: the time index's sampler
	list     logList               // which logs there are
}

// bound returns the number of files kept, the current one included.
func (l *logFiles) bound() int {
	if l.maxFiles < 2 {
		return defaultLogMaxFiles
	}
	return l.maxFiles
}

// readRuns reads the run ends recorded beside the log at path (none when
// there is no record or it is garbage: the whole log is then one run).
func readRuns(path string) []int {
	b, err := os.ReadFile(path + logRunsSuffix)
	if err != nil {
		return nil
	}
	var runs []int
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || (len(runs) > 0 && n <= runs[len(runs)-1]) {
			return nil
		}
		runs = append(runs, n)
	}
	return runs
}

// writeRuns records runs beside the log at path (removing the record when
// none is left).
func writeRuns(path string, runs []int) error {
	if len(runs) == 0 {
		if err := os.Remove(path + logRunsSuffix); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	s := make([]string, len(runs))
	for i, n := range runs {
		s[i] = strconv.Itoa(n)
	}
	return atomicfile.WriteFile(path+logRunsSuffix, []byte(strings.Join(s, " ")+"\n"), 0o600)
}

// shiftRuns moves the recorded run ends by one file, as a rotation moves
// the files, dropping those beyond keep rotated files; first, when set,
// records a run that ends in the new .1.
func shiftRuns(runs []int, keep int, first bool) []int {
	var out []int
	if first {
		out = append(out, 1)
	}
	for _, n := range runs {
		if n+1 <= keep {
			out = append(out, n+1)
		}
	}
	return out
}

// splitRun keeps the output of a container's finished run apart from the
// next one's: called before its task starts again, when nothing writes the
// log. The log becomes .1 (older files shift; the oldest beyond the bound
// goes) and .1 is recorded as the end of a run.
func (c *Containerd) splitRun(path string) error {
	c.logs.mu.Lock()
	defer c.logs.mu.Unlock()
	keep := c.logs.bound() - 1
	if err := os.Remove(rotatedName(path, keep)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("keep the previous run's log: %w", err)
	}
	for i := keep - 1; i >= 1; i-- {
		if err := os.Rename(rotatedName(path, i), rotatedName(path, i+1)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("keep the previous run's log: %w", err)
		}
	}
	if err := os.Rename(path, rotatedName(path, 1)); err != nil {
		if !os.IsNotExist(err) {
			return fmt.Errorf("keep the previous run's log: %w", err)
		}
		// The run wrote nothing: an empty file still marks it.
		if err := os.WriteFile(rotatedName(path, 1), nil, 0o600); err != nil {
			return fmt.Errorf("keep the previous run's log: %w", err)
		}
	}
	if err := writeRuns(path, shiftRuns(readRuns(path), keep, true)); err != nil {
		return fmt.Errorf("keep the previous run's log: %w", err)
	}
	if err := shiftLogTimes(path, keep); err != nil {
		return fmt.Errorf("keep the previous run's log: %w", err)
	}
	c.logs.forgetSample(path)
	return nil
}

// previousRunFiles returns the rotated files of the log at path that hold
// the previous run's output, oldest first; ok is false when no run ended
// since the record began.
func previousRunFiles(path string) (files []string, ok bool) {
	runs := readRuns(path)
	if len(runs) == 0 {
		return nil, false
	}
	oldest := runs[0]
	if len(runs) > 1 {
		oldest = runs[1] - 1
	} else {
		// The run began before the oldest file kept: it has them all.
		for {
			if _, err := os.Stat(rotatedName(path, oldest+1)); err != nil {
				break
			}
			oldest++
		}
	}
	for i := oldest; i >= runs[0]; i-- {
		files = append(files, rotatedName(path, i))
	}
	return files, true
}

// LogsPrevious writes the output of the previous run of a pod's container
// to w, what filter selects of it, as `kubectl logs --previous`.
// It fails with errdefs.ErrNotFound when the container has not restarted
// since its runs were kept apart.
func (c *Containerd) LogsPrevious(ctx context.Context, namespace, pod, container string, filter LogFilter, out io.Writer) error {
	key := reconciler.JoinName(namespace, pod)
	ctx = c.client.WithNamespace(ctx)
	have, err := c.podContainers(ctx, namespace, pod)
	if err != nil {
		return fmt.Errorf("previous logs of %s: %w", key, err)
	}
	container, _, err = pickContainer(key, have, container)
	if err != nil {
		return fmt.Errorf("previous logs of %s: %w", key, err)
	}
	path := c.logPath(namespace, pod, container)
	var w io.Writer = out
	var tw *tailWriter
	if filter.Tail >= 0 {
		tw = &tailWriter{max: filter.Tail}
		w = tw
	}
	// Found and opened together, before a rotation can move them.
	c.logs.mu.Lock()
	names, ok := previousRunFiles(path)
	files, err := openLogsLocked(names, filter.Since, w)
	c.logs.mu.Unlock()
	if !ok {
		files.close()
		return fmt.Errorf("previous logs of %s/%s: the container has not restarted: %w", key, container, errdefs.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("previous logs of %s/%s: %w", key, container, err)
	}
	defer files.close()
	if err := files.copy(); err != nil {
		return fmt.Errorf("previous logs of %s/%s: %w", key, container, err)
	}
	if tw != nil {
		if err := tw.flush(out); err != nil {
			return fmt.Errorf("previous logs of %s/%s: %w", key, container, err)
		}
	}
	return nil
}
