package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/kelpie-dev/kelpie/internal/atomicfile"
	"github.com/kelpie-dev/kelpie/reconciler"
)

// History bounds: the entries kept by default and at most, and the
// actions one entry lists.
const (
	DefaultHistoryLimit = 300   // a few days of a busy site's syncs that changed something; ~100 KB
	maxHistoryLimit     = 10000 // the file stays a few MB at most
	maxHistoryActions   = 50    // a 300-pod rollout lists its first 50 actions and counts the rest
	maxHistoryError     = 4096  // bytes of an error message kept
)

// HistoryEntry is one sync, or one drift repair that acted or failed, as
// /api/v1/history and `kelpie history` show it.
type HistoryEntry struct {
	// Time is when it ended.
	Time time.Time `json:"time"`
	// Trigger is what started it: a sync's reason (start, poll, retry,
	// api, SIGHUP, a webhook or ref watch), or "drift" for a repair.
	Trigger string `json:"trigger"`
	// Commit and Subject are the head the sync saw, or the commit a repair
	// converged to ("" when the fetch found none).
	Commit  string `json:"commit,omitempty"`
	Subject string `json:"subject,omitempty"`
	// Result is ok, refused or failed; Kind and Error say why when it is
	// not ok.
	Result string    `json:"result"`
	Kind   ErrorKind `json:"kind,omitempty"`
	Error  string    `json:"error,omitempty"`
	// Seconds is how long it took.
	Seconds float64 `json:"seconds"`
	// Actions are the actions executed, as their one-line strings (a
	// failed one ends in " (failed)"), at most 50; More counts the rest.
	Actions []string `json:"actions,omitempty"`
	More    int      `json:"more,omitempty"`
}

// HistoryPath is where the agent keeps its history:
// StateDir/agent/history.jsonl.
func (c *Config) HistoryPath() string { return filepath.Join(c.StateDir, "agent", "history.jsonl") }

// history is the agent's bounded history: the last limit entries in
// memory, and a JSON-lines file appended with O_APPEND and rewritten
// atomically with the last limit entries when it holds more than twice
// as many lines. Add is called by the loop; List by HTTP readers.
type history struct {
	path  string
	limit int

	mu      sync.Mutex
	entries []HistoryEntry // oldest first, at most limit
	lines   int            // lines in the file
	err     string         // the last write error, logged once
	// torn is set when an append failed: it may have written part of its
	// line (a full disk), which the next append would be glued to. The
	// next add rewrites the file from the entries instead.
	torn bool
}

// openHistory reads the history at path, keeping its last limit entries.
// A line that does not parse (a write torn by a crash) is skipped; the
// file is then rewritten without it, so appends start on a fresh line.
func openHistory(path string, limit int) (*history, error) {
	h := &history{path: path, limit: limit}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the sync history: %w", err)
	}
	bad := len(data) > 0 && data[len(data)-1] != '\n'
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		h.lines++
		var e HistoryEntry
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Time.IsZero() {
			bad = true
			continue
		}
		h.entries = append(h.entries, e)
		if len(h.entries) > 2*limit {
			h.entries = slices.Delete(h.entries, 0, len(h.entries)-limit)
		}
	}
	if err := sc.Err(); err != nil {
		bad = true
	}
	if len(h.entries) > limit {
		h.entries = slices.Delete(h.entries, 0, len(h.entries)-limit)
	}
	if bad || h.lines > 2*limit {
		if err := h.compact(); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// add appends e; it returns the write error, if any (the entry is kept in
// memory all the same).
func (h *history) add(e HistoryEntry) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.entries = append(h.entries, e)
	if len(h.entries) > h.limit {
		h.entries = slices.Delete(h.entries, 0, len(h.entries)-h.limit)
	}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode a history entry: %w", err)
	}
	if h.torn || h.lines+1 > 2*h.limit {
		if err := h.compact(); err != nil {
			return err
		}
		h.torn = false
		return nil
	}
	if err := appendLine(h.path, append(line, '\n')); err != nil {
		h.torn = true
		return err
	}
	h.lines++
	return nil
}

// appendLine appends line to the file at path (0600, made when missing)
// in one write.
func appendLine(path string, line []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("append to the sync history: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("append to the sync history: %w", err)
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return fmt.Errorf("append to the sync history: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("append to the sync history: %w", err)
	}
	return nil
}

// compact rewrites the file with the entries in memory. h.mu is held (or
// h not yet shared).
func (h *history) compact() error {
	if err := os.MkdirAll(filepath.Dir(h.path), 0o700); err != nil {
		return fmt.Errorf("compact the sync history: %w", err)
	}
	err := atomicfile.Write(h.path, 0o600, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for _, e := range h.entries {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("compact the sync history: %w", err)
	}
	h.lines = len(h.entries)
	return nil
}

// list returns the last n entries (all when n <= 0 or more than it
// holds), newest first.
func (h *history) list(n int) []HistoryEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n <= 0 || n > len(h.entries) {
		n = len(h.entries)
	}
	out := make([]HistoryEntry, 0, n)
	for i := len(h.entries) - 1; i >= len(h.entries)-n; i-- {
		out = append(out, h.entries[i])
	}
	return out
}

// actionLog collects the actions one sync or repair executes, for its
// history entry.
type actionLog struct {
	start time.Time // when the last converge began
	acts  []string
	more  int
}

// begin empties the log: a converge begins at now.
func (l *actionLog) begin(now time.Time) { l.start, l.acts, l.more = now, l.acts[:0], 0 }

// done records an executed action (reconciler.ExecOptions.OnDone).
func (l *actionLog) done(act reconciler.Action, err error) {
	if len(l.acts) >= maxHistoryActions {
		l.more++
		return
	}
	s := act.String()
	if err != nil {
		s += " (failed)"
	}
	l.acts = append(l.acts, s)
}

// take returns the actions logged and empties the log.
func (l *actionLog) take() ([]string, int) {
	acts, more := slices.Clone(l.acts), l.more
	l.acts, l.more = l.acts[:0], 0
	return acts, more
}

// recordSync adds the sync that ends to the history.
func (a *Agent) recordSync(r *syncRun) {
	e := HistoryEntry{Trigger: r.info.Reason, Result: r.info.Result}
	if r.head != nil {
		e.Commit, e.Subject = r.head.Hash, r.head.Subject
	}
	if r.info.Result != resultOK && a.state.LastError != nil {
		e.Kind, e.Error = a.state.LastError.Kind, a.state.LastError.Message
	}
	a.addHistory(e, r.start)
}

// recordRepair adds a drift repair to the history: one that executed
// actions, or failed.
func (a *Agent) recordRepair(cerr *SyncError) {
	e := HistoryEntry{Trigger: "drift", Result: resultOK}
	if a.target != nil {
		e.Commit, e.Subject = a.target.commit.Hash, a.target.commit.Subject
	}
	if cerr != nil {
		e.Result, e.Kind, e.Error = resultFailed, cerr.Kind, cerr.Message
	}
	a.addHistory(e, a.ops.log.start)
}

// addHistory completes e (time, duration, actions) and appends it, unless
// it executed nothing and repeats the last entry's outcome (a quiet poll
// of the same commit, a stalled refusal, the same failure again): such
// repeats would push what changed out of the history within hours.
func (a *Agent) addHistory(e HistoryEntry, start time.Time) {
	e.Actions, e.More = a.ops.log.take()
	if a.ops.hist == nil {
		return
	}
	end := a.clock.Now()
	e.Time, e.Seconds = end, end.Sub(start).Seconds()
	e.Error = truncate(e.Error, maxHistoryError)
	if last := a.ops.hist.list(1); len(e.Actions) == 0 && len(last) == 1 && sameOutcome(last[0], e) {
		return
	}
	if err := a.ops.hist.add(e); err != nil {
		if msg := err.Error(); msg != a.ops.hist.err {
			a.ops.hist.err = msg
			a.log.Warn("cannot record the sync history", "err", err)
		}
		return
	}
	a.ops.hist.err = ""
}

// sameOutcome reports whether two entries ended alike: result, commit
// and error.
func sameOutcome(a, b HistoryEntry) bool {
	return a.Result == b.Result && a.Commit == b.Commit && a.Kind == b.Kind && a.Error == b.Error
}

// History returns the last n history entries, newest first (all that are
// kept when n <= 0).
func (a *Agent) History(n int) []HistoryEntry {
	if a.ops.hist == nil {
		return []HistoryEntry{}
	}
	return a.ops.hist.list(n)
}

// truncate cuts s to at most n bytes, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// historyView serves GET /api/v1/history?limit=N: the last N entries
// (default and at most the limit kept), newest first.
func (a *Agent) historyView(w http.ResponseWriter, r *http.Request) {
	n := 0
	if s := r.URL.Query().Get("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			http.Error(w, "limit: want a whole number of entries", http.StatusBadRequest)
			return
		}
		n = v
	}
	writeJSON(w, http.StatusOK, a.History(n))
}
