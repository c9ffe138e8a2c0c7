package host

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kelpie-dev/kelpie/internal/atomicfile"
)

// Container logs are the raw bytes containerd's shim writes, with no time
// stamps, so `kelpie logs --since` reads a time index kept beside each log
// file: NAME.log.times holds records "OFFSET UNIXNANO", each a fact seen by
// a sample: at that time the file was OFFSET bytes long. Two consecutive
// records bracket the bytes between their offsets in time; bytes before
// the first record were written before its time, bytes after the last
// one before the file's modification time. The agent samples every log
// once per LogTimesInterval (RecordLogTimes) and appends a record when a
// log grew, plus the previous sample when the log had been idle, so every
// chunk is dated within one interval: that is the resolution of --since.
// The index moves with its log on rotation (NAME.log.N.times) and on a
// restart (the run split), and is thinned when it holds logTimesMax
// records, so it stays small whatever the log does.
//
// This was chosen over a logging binary between the shim and the file
// (containerd's binary:// log URI writing CRI-style timestamped lines):
// exact per line, but it changes how every container starts, adds a
// process per container, and containers started before could not be
// served. The index works for containers already running and survives
// agent restarts; what was written while no agent sampled gets the time of
// the next record, and --since may include up to one interval of older
// output, never leave out newer output.
const logTimesSuffix = ".times"

// logTimesMax bounds the records of one index (about 30 bytes each): when
// it is full the older half loses every other record, so old output is
// dated more coarsely and recent output stays exact to the interval.
const logTimesMax = 1024

// logTime is one record of a time index: at At, the log was Off bytes long.
type logTime struct {
	Off int64
	At  time.Time
}

// parseLogTimes decodes an index, skipping malformed lines (a record torn
// by a crash) and records that go back in offset or time.
func parseLogTimes(b []byte) []logTime {
	var out []logTime
	for _, line := range strings.Split(string(b), "\n") {
		off, at, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		o, err1 := strconv.ParseInt(off, 10, 64)
		n, err2 := strconv.ParseInt(at, 10, 64)
		if err1 != nil || err2 != nil || o < 0 {
			continue
		}
		r := logTime{Off: o, At: time.Unix(0, n).UTC()}
		if len(out) > 0 && (r.Off < out[len(out)-1].Off || r.At.Before(out[len(out)-1].At)) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// formatLogTimes encodes records as an index.
func formatLogTimes(recs []logTime) []byte {
	var b bytes.Buffer
	for _, r := range recs {
		fmt.Fprintf(&b, "%d %d\n", r.Off, r.At.UnixNano())
	}
	return b.Bytes()
}

// thinLogTimes halves the records of the older half of recs (keeping its
// first): a full index is rewritten with three quarters of logTimesMax.
// Dropping a record only merges two brackets into one: the index stays
// true, just coarser.
func thinLogTimes(recs []logTime) []logTime {
	half := len(recs) / 2
	out := make([]logTime, 0, len(recs))
	for i := 0; i < half; i += 2 {
		out = append(out, recs[i])
	}
	return append(out, recs[half:]...)
}

// sinceOffset returns where in a log of size bytes, last written at
// modTime, the output written at or after cutoff may begin, given its
// index recs: the start of the first bracket that ends at or after
// cutoff (size when none does: nothing is that new). The caller starts
// at the next line start from there.
func sinceOffset(recs []logTime, size int64, modTime, cutoff time.Time) int64 {
	start := int64(0)
	for _, r := range recs {
		if r.Off > size {
			break // a stale record: the file is shorter
		}
		if !r.At.Before(cutoff) {
			return start
		}
		start = r.Off
	}
	if !modTime.Before(cutoff) {
		return start
	}
	return size
}

// readLogTimes reads the index of the log at path (none when absent).
func readLogTimes(path string) []logTime {
	b, err := os.ReadFile(path + logTimesSuffix)
	if err != nil {
		return nil
	}
	return parseLogTimes(b)
}

// logSample is the last sample of one log: its size at a time, whether
// that sample is in the index, and how many records the index holds (-1:
// not counted yet).
type logSample struct {
	size     int64
	at       time.Time
	recorded bool
	count    int
}

// RecordLogTimes samples every container log under the pods dir at now
// and appends to its time index what grew since the last sample (see
// logTimesSuffix). The agent calls it every LogTimesInterval.
func (c *Containerd) RecordLogTimes(now time.Time) error {
	c.logs.mu.Lock()
	defer c.logs.mu.Unlock()
	logs, err := c.logs.list.paths(c.podsDir)
	if err != nil {
		return fmt.Errorf("record log times: %w", err)
	}
	if c.logs.samples == nil {
		c.logs.samples = map[string]*logSample{}
	}
	seen := make(map[string]bool, len(logs))
	var errs []error
	for _, path := range logs {
		seen[path] = true
		if err := c.logs.sample(path, now); err != nil {
			errs = append(errs, fmt.Errorf("record log times of %s: %w", path, err))
		}
	}
	for path := range c.logs.samples {
		if !seen[path] {
			delete(c.logs.samples, path) // the pod went
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// sample takes one sample of the log at path; l.mu is held.
func (l *logFiles) sample(path string, now time.Time) error {
	fi, err := os.Stat(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	size := fi.Size()
	s, ok := l.samples[path]
	if !ok {
		s = &logSample{count: -1}
		l.samples[path] = s
		if size == 0 {
			s.at = now
			return nil
		}
		// Started, or the agent restarted: all we know is the size now.
		s.size = -1
	}
	switch {
	case size == s.size:
		s.at, s.recorded = now, false
		return nil
	case size < s.size:
		// Truncated behind our back: a new file as far as we know.
		if err := os.Remove(path + logTimesSuffix); err != nil && !os.IsNotExist(err) {
			return err
		}
		*s = logSample{}
	}
	var recs []logTime
	if !s.recorded && !s.at.IsZero() && s.size >= 0 {
		recs = append(recs, logTime{Off: s.size, At: s.at}) // idle until then
	}
	recs = append(recs, logTime{Off: size, At: now})
	if err := appendLogTimes(path, s, recs); err != nil {
		return err
	}
	s.size, s.at, s.recorded = size, now, true
	return nil
}

// appendLogTimes adds recs to the index of the log at path, thinning it
// when it is full.
func appendLogTimes(path string, s *logSample, recs []logTime) error {
	name := path + logTimesSuffix
	if s.count < 0 {
		s.count = len(readLogTimes(path))
	}
	if s.count+len(recs) > logTimesMax {
		all := thinLogTimes(append(readLogTimes(path), recs...))
		if err := atomicfile.WriteFile(name, formatLogTimes(all), 0o600); err != nil {
			return err
		}
		s.count = len(all)
		return nil
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(formatLogTimes(recs))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	s.count += len(recs)
	return nil
}

// forgetSample drops what the sampler knows of the log at path, whose
// file was just replaced (a rotation, a restart): its next sample starts
// a new index. l.mu is held.
func (l *logFiles) forgetSample(path string) {
	if s, ok := l.samples[path]; ok {
		*s = logSample{count: 0} // empty from here: at 0 bytes, time unknown
	}
}

// shiftLogTimes moves the indexes of the rotated files of the log at path
// up by one, as their files move (the one of keep is dropped), and makes
// the current index the one of .1. l.mu is held.
func shiftLogTimes(path string, keep int) error {
	if err := os.Remove(rotatedName(path, keep) + logTimesSuffix); err != nil && !os.IsNotExist(err) {
		return err
	}
	for i := keep - 1; i >= 1; i-- {
		if err := os.Rename(rotatedName(path, i)+logTimesSuffix, rotatedName(path, i+1)+logTimesSuffix); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	if err := os.Rename(path+logTimesSuffix, rotatedName(path, 1)+logTimesSuffix); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// lineStart drops what is written to it up to and including the first
// newline, then passes everything on to w: reading a log from an offset
// just before a line start (offset-1) yields whole lines only.
type lineStart struct {
	w       io.Writer
	started bool
}

// Write implements io.Writer.
func (l *lineStart) Write(b []byte) (int, error) {
	n := len(b)
	if !l.started {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return n, nil
		}
		l.started, b = true, b[i+1:]
	}
	if len(b) == 0 {
		return n, nil
	}
	if _, err := l.w.Write(b); err != nil {
		return 0, err
	}
	return n, nil
}

// openSince opens the log file name and positions it at the first line
// written at or after cutoff (zero: the start), using its index; the
// writer to copy it to is w, or w behind a lineStart when the position is
// within a line. ok is false when the file does not exist.
func openSince(name string, cutoff time.Time, w io.Writer) (f *os.File, to io.Writer, ok bool, err error) {
	f, err = os.Open(name)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil, false, nil
		}
		return nil, nil, false, err
	}
	if cutoff.IsZero() {
		return f, w, true, nil
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, false, err
	}
	off := sinceOffset(readLogTimes(name), fi.Size(), fi.ModTime(), cutoff)
	if off == 0 {
		return f, w, true, nil
	}
	// From the byte before: a newline there is dropped by lineStart,
	// anything else is the rest of a line that began before.
	if _, err := f.Seek(off-1, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, false, err
	}
	return f, &lineStart{w: w}, true, nil
}
