package host

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// logListSettle is how old a directory's modification time must be before
// its listing is reused: the kernel stamps directories with a coarse clock
// (a few milliseconds), so an entry added just after a read may leave the
// time as it was; a directory changed this recently is read again.
const logListSettle = 2 * time.Second

// logList caches which container logs exist under the pods dir
// (PODS/*/logs/*.log): the time index samples every log each second, and
// a glob of a hundred pods opened and read two hundred directories a
// second. A directory is read again only when its modification time
// changed (an entry was added, removed or renamed), or is too recent to
// trust (logListSettle); otherwise one stat says its listing stands.
type logList struct {
	podsMod time.Time           // of the pods dir when podDirs was read; zero: read it again
	podDirs []string            // the names of the entries of the pods dir
	dirs    map[string]*logsDir // by pod dir name
}

// logsDir is the cached listing of one pod's logs dir.
type logsDir struct {
	mod  time.Time // zero: read it again
	logs []string  // paths of its *.log files
}

// paths returns the paths of the container logs under podsDir, sorted, as
// filepath.Glob(PODS/*/logs/*.log) would, reading only the directories
// that changed since the last call.
func (l *logList) paths(podsDir string) ([]string, error) {
	now := time.Now() // to compare with modification times: the wall clock
	fi, err := os.Stat(podsDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			*l = logList{}
			return nil, nil
		}
		return nil, err
	}
	if l.podsMod.IsZero() || !fi.ModTime().Equal(l.podsMod) {
		entries, err := os.ReadDir(podsDir)
		if err != nil {
			return nil, err
		}
		l.podDirs = l.podDirs[:0]
		for _, e := range entries {
			l.podDirs = append(l.podDirs, e.Name())
		}
		l.podsMod = settled(fi.ModTime(), now)
	}
	if l.dirs == nil {
		l.dirs = map[string]*logsDir{}
	}
	var out []string
	seen := make(map[string]bool, len(l.podDirs))
	for _, name := range l.podDirs {
		seen[name] = true
		logs, err := l.logsOf(filepath.Join(podsDir, name, podLogsDir), name, now)
		if err != nil {
			return nil, err
		}
		out = append(out, logs...)
	}
	for name := range l.dirs {
		if !seen[name] {
			delete(l.dirs, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// logsOf returns the *.log files of the logs dir dir of pod dir name.
func (l *logList) logsOf(dir, name string, now time.Time) ([]string, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		delete(l.dirs, name)
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, nil // not a pod dir, or the pod went meanwhile
		}
		return nil, err
	}
	if !fi.IsDir() {
		delete(l.dirs, name)
		return nil, nil
	}
	d := l.dirs[name]
	if d != nil && !d.mod.IsZero() && fi.ModTime().Equal(d.mod) {
		return d.logs, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			delete(l.dirs, name)
			return nil, nil
		}
		return nil, err
	}
	d = &logsDir{mod: settled(fi.ModTime(), now)}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".log") {
			d.logs = append(d.logs, filepath.Join(dir, e.Name()))
		}
	}
	l.dirs[name] = d
	return d.logs, nil
}

// settled returns mod, a directory's modification time, when it is old
// enough for a listing read now to be reused; zero otherwise.
func settled(mod, now time.Time) time.Time {
	if now.Sub(mod) < logListSettle {
		return time.Time{}
	}
	return mod
}
