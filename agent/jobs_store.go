package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kelpie-dev/kelpie/internal/atomicfile"
	"github.com/kelpie-dev/kelpie/reconciler"
)

// jobsVersion is the format of jobs.json; a file of another version is
// refused rather than misread (a misread record could rerun a Job).
const jobsVersion = 1

// jobsFile is the content of jobs.json.
type jobsFile struct {
	Version int `json:"version"`
	reconciler.JobRecords
}

// JobsPath is where a host keeps its Job records: STATEDIR/agent/jobs.json,
// shared by the agent and `kelpie apply`.
func JobsPath(stateDir string) string { return filepath.Join(stateDir, "agent", "jobs.json") }

// LoadJobRecords reads the Job records at path. A missing file is the zero
// value (no Job ever ran here); an unreadable or malformed one is an
// error naming the file: treating it as empty would run finished Jobs
// again.
func LoadJobRecords(path string) (reconciler.JobRecords, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return reconciler.JobRecords{}, nil
	}
	if err != nil {
		return reconciler.JobRecords{}, fmt.Errorf("read Job records: %w", err)
	}
	var f jobsFile
	if err := json.Unmarshal(data, &f); err != nil {
		return reconciler.JobRecords{}, fmt.Errorf("read Job records %s: %w (move it away and every Job of the manifests runs again)", path, err)
	}
	if f.Version != jobsVersion {
		return reconciler.JobRecords{}, fmt.Errorf("read Job records %s: version %d, this kelpie reads version %d", path, f.Version, jobsVersion)
	}
	return f.JobRecords, nil
}

// SaveJobRecords writes r to path (mode 0600) with atomicfile.WriteFile, so
// a crash leaves the old records or the new ones, never a torn file.
func SaveJobRecords(path string, r reconciler.JobRecords) error {
	data, err := json.MarshalIndent(jobsFile{Version: jobsVersion, JobRecords: r}, "", "  ")
	if err != nil {
		return fmt.Errorf("save Job records: %w", err)
	}
	data = append(data, '\n')
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save Job records: %w", err)
	}
	if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("save Job records: %w", err)
	}
	return nil
}

// sameRecords reports whether two records encode alike.
func sameRecords(a, b reconciler.JobRecords) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}
