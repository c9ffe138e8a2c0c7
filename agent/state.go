package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/kelpie-dev/kelpie/internal/atomicfile"
	"github.com/kelpie-dev/kelpie/source"
	"github.com/kelpie-dev/kelpie/specs"
)

// stateVersion is the format of state.json; a file of another version is
// refused rather than misread.
const stateVersion = 1

// State is what the agent must remember across restarts, kept in
// Config.StatePath as JSON.
type State struct {
	// Version is the file format, stateVersion.
	Version int `json:"version"`
	// Applied is the last commit the host fully converged to; nil before
	// the first.
	Applied *AppliedCommit `json:"applied,omitempty"`
	// Pending is the head of the tracked ref while the host does not run
	// it: refused (invalid manifests, not a fast-forward, untrusted) or
	// failing to apply. nil when the host runs the head.
	Pending *PendingCommit `json:"pending,omitempty"`
	// LastError is the most recent failure: the pending commit's error, or
	// a transient one (a fetch, observe or apply that failed). nil once a
	// sync succeeds with nothing pending.
	LastError *SyncError `json:"lastError,omitempty"`
	// Network is the networking allocation of an agent on its own
	// (netplan.Encode): its slice of the pod range and its Services'
	// addresses, kept across restarts. In a cluster the placement holds it.
	Network json.RawMessage `json:"network,omitempty"`
}

// CommitInfo is a commit as state and status show it.
type CommitInfo struct {
	// Hash is the full hash.
	Hash string `json:"commit"`
	// Subject is the first line of the message.
	Subject string `json:"subject,omitempty"`
	// Author is "Name <email>".
	Author string `json:"author,omitempty"`
	// When is the commit's author time.
	When time.Time `json:"time,omitzero"`
}

// Short is the hash's first 12 digits, as `git log --oneline` shows.
func (c CommitInfo) Short() string {
	if len(c.Hash) > 12 {
		return c.Hash[:12]
	}
	return c.Hash
}

// commitInfo converts a source commit.
func commitInfo(c source.Commit) CommitInfo {
	return CommitInfo{Hash: c.Hash, Subject: c.Subject, Author: c.Author, When: c.When}
}

// AppliedCommit is the commit the host converged to, and when.
type AppliedCommit struct {
	CommitInfo
	// AppliedAt is when the host converged to it.
	AppliedAt time.Time `json:"appliedAt"`
}

// PendingCommit is a head the host does not run yet, and why.
type PendingCommit struct {
	CommitInfo
	// Reason is the Kind of the error that holds it back.
	Reason ErrorKind `json:"reason"`
	// Since is when the agent first saw it.
	Since time.Time `json:"since"`
	// Error is what holds it back.
	Error *SyncError `json:"error,omitempty"`
}

// ErrorKind classifies a failure: it decides whether the agent retries
// and labels kelpie_errors_total.
type ErrorKind string

// Error kinds. Refusals (invalid, not_fast_forward, untrusted, empty) stall
// until a new commit; the others are retried with back-off.
const (
	// KindInvalid: the commit's manifests do not validate (file:line in Errors).
	KindInvalid ErrorKind = "invalid"
	// KindNotFastForward: the head does not descend from the applied commit.
	KindNotFastForward ErrorKind = "not_fast_forward"
	// KindUntrusted: the head's signature is missing or not trusted.
	KindUntrusted ErrorKind = "untrusted"
	// KindEmpty: the commit gives this host no pods while it runs some,
	// and AllowEmpty is off.
	KindEmpty ErrorKind = "empty"
	// KindPlan: the planner rejected the desired state.
	KindPlan ErrorKind = "plan"
	// KindFetch: the repository could not be fetched.
	KindFetch ErrorKind = "fetch"
	// KindObserve: the runtime could not report the host's state.
	KindObserve ErrorKind = "observe"
	// KindApply: actions failed.
	KindApply ErrorKind = "apply"
	// KindNetwork: the host has no slice of the cluster pod range yet, or
	// its runtime could not take it; it starts no pods until it has one.
	KindNetwork ErrorKind = "network"
)

// refusal reports whether the kind is a refusal of a commit, which no
// retry can change.
func (k ErrorKind) refusal() bool {
	switch k {
	case KindInvalid, KindNotFastForward, KindUntrusted, KindEmpty, KindPlan:
		return true
	}
	return false
}

// SyncError is a failure as state and status show it.
type SyncError struct {
	// Kind classifies it.
	Kind ErrorKind `json:"kind"`
	// Commit is the commit concerned ("" when none is known, e.g. a fetch).
	Commit string `json:"commit,omitempty"`
	// Message is the whole error.
	Message string `json:"message"`
	// Errors are the manifest problems of an invalid commit, each with
	// file and line.
	Errors []ManifestError `json:"errors,omitempty"`
	// Time is when it happened.
	Time time.Time `json:"time"`
}

// ManifestError is one manifest problem: "apps/web.yaml:14:7: spec.replicas: …".
type ManifestError struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// String formats the problem compiler style.
func (e ManifestError) String() string {
	return (&specs.Error{Pos: specs.Position{File: e.File, Line: e.Line, Column: e.Column}, Field: e.Field, Message: e.Message}).Error()
}

// manifestErrors converts a load error: each problem of a specs.ErrorList,
// or the whole error as one problem of the file it names.
func manifestErrors(err error, root string) []ManifestError {
	var list specs.ErrorList
	if !errors.As(err, &list) {
		var pe *fs.PathError
		file := root
		if errors.As(err, &pe) {
			file = pe.Path
		}
		return []ManifestError{{File: file, Message: err.Error()}}
	}
	out := make([]ManifestError, len(list))
	for i, e := range list {
		out[i] = ManifestError{File: e.Pos.File, Line: e.Pos.Line, Column: e.Pos.Column, Field: e.Field, Message: e.Message}
	}
	return out
}

// ErrCorruptState marks a state file that does not parse (torn by a full
// disk or damaged by hand): New moves it aside and starts afresh.
var ErrCorruptState = errors.New("corrupt agent state")

// LoadState reads the state file at path. A missing file is the zero
// State (a first start); an unreadable or malformed one is an error naming
// the file (wrapping ErrCorruptState when it does not parse), so a damaged
// state is never mistaken for a fresh host.
func LoadState(path string) (State, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return State{Version: stateVersion}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("read agent state: %w", err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return State{}, fmt.Errorf("read agent state %s: %w: %w", path, ErrCorruptState, err)
	}
	if s.Version != stateVersion {
		return State{}, fmt.Errorf("read agent state %s: version %d, this agent reads version %d", path, s.Version, stateVersion)
	}
	return s, nil
}

// setAside renames a corrupt file to PATH.corrupt-TIMESTAMP, keeping it for
// a post-mortem, and returns the new name.
func setAside(path string, now time.Time) (string, error) {
	aside := path + ".corrupt-" + now.UTC().Format("20060102T150405Z")
	if err := os.Rename(path, aside); err != nil {
		return "", fmt.Errorf("set the corrupt %s aside: %w", path, err)
	}
	return aside, nil
}

// SaveState writes s to path with atomicfile.WriteFile, so a crash leaves
// the old state or the new one, never a torn file.
func SaveState(path string, s State) error {
	s.Version = stateVersion
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("save agent state: %w", err)
	}
	data = append(data, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save agent state: %w", err)
	}
	if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("save agent state: %w", err)
	}
	return nil
}
