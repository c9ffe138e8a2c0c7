package host

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// LogRotation bounds the log files of every container: the current file
// is rotated when it grows beyond MaxBytes, and MaxFiles files are kept in
// all, the current one included (as the kubelet's containerLogMaxSize and
// containerLogMaxFiles).
type LogRotation struct {
	MaxBytes int64
	MaxFiles int
}

// Validate reports a setting that cannot bound anything.
func (r LogRotation) Validate() error {
	if r.MaxBytes < 1024 {
		return fmt.Errorf("container log max size %d bytes: want at least 1KiB", r.MaxBytes)
	}
	if r.MaxFiles < 2 {
		return fmt.Errorf("container log max files %d: want at least 2 (the current file and one rotated)", r.MaxFiles)
	}
	return nil
}

// RotateLogs rotates every container log under the pods dir that grew
// beyond r.MaxBytes, and returns how many it rotated. The shim writes the
// current file through a descriptor opened with O_APPEND, so the file
// cannot be renamed under it: its content is copied to NAME.log.1 (older
// ones shift to .2 … and the oldest beyond MaxFiles goes) and the file is
// truncated in place, after which the shim's next write lands at its new
// end. Output written between the copy and the truncation is lost, as
// with logrotate's copytruncate; the copy takes what was written up to
// then, so that window is one copy's tail.
func (c *Containerd) RotateLogs(r LogRotation) (int, error) {
	if err := r.Validate(); err != nil {
		return 0, err
	}
	c.logs.mu.Lock()
	defer c.logs.mu.Unlock()
	logs, err := c.logs.list.paths(c.podsDir)
	if err != nil {
		return 0, fmt.Errorf("rotate logs: %w", err)
	}
	c.logs.maxFiles = r.MaxFiles
	n := 0
	var errs []error
	for _, path := range logs {
		done, err := rotateLog(path, r)
		if done {
			c.logs.forgetSample(path)
		}
		if err != nil {
			errs = append(errs, err)
		}
		if done {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// rotateLog rotates one log file when it is over the size.
func rotateLog(path string, r LogRotation) (bool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if os.IsNotExist(err) {
			return false, nil // the pod went meanwhile
		}
		return false, fmt.Errorf("rotate %s: %w", path, err)
	}
	if fi.Size() <= r.MaxBytes {
		return false, nil
	}
	keep := r.MaxFiles - 1 // rotated files kept beside the current one
	if err := os.Remove(rotatedName(path, keep)); err != nil && !os.IsNotExist(err) {
		return false, fmt.Errorf("rotate %s: %w", path, err)
	}
	for i := keep - 1; i >= 1; i-- {
		if err := os.Rename(rotatedName(path, i), rotatedName(path, i+1)); err != nil && !os.IsNotExist(err) {
			return false, fmt.Errorf("rotate %s: %w", path, err)
		}
	}
	if err := shiftLogTimes(path, keep); err != nil {
		return false, fmt.Errorf("rotate %s: %w", path, err)
	}
	if err := copyTruncate(path, rotatedName(path, 1)); err != nil {
		return false, fmt.Errorf("rotate %s: %w", path, err)
	}
	if runs := readRuns(path); len(runs) > 0 {
		if err := writeRuns(path, shiftRuns(runs, keep, false)); err != nil {
			return true, fmt.Errorf("rotate %s: %w", path, err)
		}
	}
	return true, nil
}

// copyTruncate copies src to dst (created 0600) and truncates src.
func copyTruncate(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	// The copy keeps the time of the last write: --since reads it as
	// the end of the file's output (logTimesSuffix).
	if fi, err := in.Stat(); err == nil {
		_ = os.Chtimes(dst, fi.ModTime(), fi.ModTime())
	}
	return in.Truncate(0)
}

// rotatedName is the i-th rotated file of a log: NAME.log.i.
func rotatedName(path string, i int) string {
	return path + "." + strconv.Itoa(i)
}
