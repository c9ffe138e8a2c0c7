package nft

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/kelpie-dev/kelpie/netplan"
)

// Config configures a Loader.
type Config struct {
	// Nft is the nft binary, a path or a name looked up in PATH. Default
	// "nft" (Debian's nftables package, installed by scripts/deps.sh).
	Nft string
	// NetNS, when set, is the file of a network namespace (/run/netns/NAME)
	// whose table the Loader programs, through `nsenter --net=NetNS`: for
	// tests and test hosts. Default: the namespace of the agent itself.
	NetNS string
	// StaleDelay is how long after a change the chains it emptied are
	// deleted. Default 2 s; at least 1 s, since kernels before 6.2 release
	// a chain's last reference only some time after the rule or map
	// element that held it is gone (kube-proxy waits too).
	StaleDelay time.Duration
	// Timeout bounds one nft run. Default 30 s: a full table of 10,000
	// Services loads in well under that; a hung nft must not hold the
	// data path forever.
	Timeout time.Duration
	// Log receives one record per transaction that fails or falls back.
	// nil discards.
	Log *slog.Logger
	// NoNetlink makes Apply run every incremental change through nft, as
	// text, instead of sending those it can translate as one netlink batch
	// of its own: for comparison (bench/services.sh) and as a way out.
	NoNetlink bool
}

// Defaults of Config.
const (
	DefaultStaleDelay = 2 * time.Second  // twice the least, so a slow kernel is covered
	MinStaleDelay     = time.Second      // kernels before 6.2 need about that
	DefaultTimeout    = 30 * time.Second // far above a full load of a large table
	staleAttempts     = 3                // failed deletions before the chains are left alone (empty, harmless)
)

// validate fills the defaults and rejects nonsense.
func (c *Config) validate() error {
	if c.Nft == "" {
		c.Nft = "nft"
	}
	if c.StaleDelay == 0 {
		c.StaleDelay = DefaultStaleDelay
	}
	if c.StaleDelay < MinStaleDelay {
		return fmt.Errorf("nft config: StaleDelay %v is below %v: stale chains may still be referenced", c.StaleDelay, MinStaleDelay)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Timeout < 0 {
		return fmt.Errorf("nft config: Timeout %v is negative", c.Timeout)
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// Stats counts a Loader's transactions, for metrics. Every field only
// grows.
type Stats struct {
	// Full counts full loads that succeeded (Load, the first Apply, a
	// declaration change, a fallback).
	Full uint64
	// Incremental counts incremental transactions that succeeded.
	Incremental uint64
	// Netlink counts the incremental transactions among them sent as a
	// netlink batch of the Loader's own, without nft.
	Netlink uint64
	// Fallbacks counts incremental transactions that failed and were
	// replaced by the full text.
	Fallbacks uint64
	// Failures counts changes that failed altogether (the full text too).
	Failures uint64
	// StaleDeleted counts chains deleted after a delay.
	StaleDeleted uint64
}

// Loader programs kelpie's table from successive rulesets, one nft
// transaction each. It remembers the last ruleset the kernel accepted, so
// that each Apply sends only the difference. Its methods are safe for
// concurrent use; they are serialized, and each may run nft for up to
// Config.Timeout.
type Loader struct {
	cfg     Config
	run     func(ctx context.Context, text string) error
	netlink func(steps []nlStep) error // nil with Config.NoNetlink
	netns   *os.File                   // Config.NetNS, open while netlink is used

	mu       sync.Mutex
	current  *netplan.Ruleset     // what the kernel holds; nil: unknown, or planned by the caller
	planned  bool                 // the kernel holds what ApplyChange's caller planned (current nil)
	stale    map[string]time.Time // chains emptied, when, to delete StaleDelay later
	attempts int                  // failed deletions in a row
	timer    *time.Timer
	closed   bool
	stats    Stats
}

// New returns a Loader; nothing is sent to the kernel before Load or Apply.
// It fails when the nft binary (or nsenter, with NetNS) is missing.
func New(cfg Config) (*Loader, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	run, err := nftRunner(cfg)
	if err != nil {
		return nil, err
	}
	l := &Loader{cfg: cfg, run: run, stale: map[string]time.Time{}}
	if !cfg.NoNetlink {
		if cfg.NetNS != "" {
			if l.netns, err = os.Open(cfg.NetNS); err != nil {
				return nil, fmt.Errorf("nft loader: %w", err)
			}
		}
		l.netlink = netlinkRunner(cfg, l.netns)
	}
	return l, nil
}

// Load replaces kelpie's table with r in one transaction, whatever the
// table held (or if it did not exist): the agent calls it at start, to
// rebuild the data path from the cluster state. Connections already set up
// keep their NAT (conntrack holds it). Chains waiting to be deleted go with
// the old table.
func (l *Loader) Load(ctx context.Context, r *netplan.Ruleset) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	return l.loadLocked(ctx, r)
}

// loadLocked runs the full text of r.
func (l *Loader) loadLocked(ctx context.Context, r *netplan.Ruleset) error {
	if err := l.run(ctx, r.Text()); err != nil {
		l.current, l.planned = nil, false // the transaction failed whole, but why is unknown: rebuild next time
		l.stats.Failures++
		return fmt.Errorf("load table %s %s: %w", netplan.TableFamily, netplan.TableName, err)
	}
	l.current, l.planned = r, false
	l.stats.Full++
	clear(l.stale)
	l.attempts = 0
	if l.timer != nil {
		l.timer.Stop()
	}
	return nil
}

// Apply turns kelpie's table into next with one transaction holding only
// the difference from the ruleset last applied (netplan.Diff): nothing is
// sent when nothing changed, the full text when nothing was loaded yet or
// a declaration changed. An incremental change of the shapes an endpoint
// change takes (elements, a Service's chains) goes as one netlink batch
// without nft (see netlink.go), another as text through nft. When the
// incremental transaction fails (the table was changed or deleted by
// someone else), the full text is loaded instead.
// Chains the change empties are deleted StaleDelay later. An error means
// the table is unchanged or in an unknown state; the next Apply then loads
// the full text.
func (l *Loader) Apply(ctx context.Context, next *netplan.Ruleset) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	if l.current == nil {
		return l.loadLocked(ctx, next)
	}
	ch := netplan.Diff(l.current, next)
	switch {
	case ch.Text == "":
		l.current = next
		return nil
	case ch.Full:
		return l.loadLocked(ctx, next)
	}
	if l.netlink != nil {
		// A command translate does not know leaves the change to the text.
		if steps, err := translate(ch.Ops); err == nil {
			if err := l.netlink(steps); err != nil {
				return l.fallbackLocked(ctx, next, fmt.Errorf("netlink: %w", err))
			}
			l.current = next
			l.stats.Incremental++
			l.stats.Netlink++
			l.markStaleLocked(ch.Stale, time.Now())
			return nil
		}
	}
	if err := l.run(ctx, ch.Text); err != nil {
		return l.fallbackLocked(ctx, next, err)
	}
	l.current = next
	l.stats.Incremental++
	l.markStaleLocked(ch.Stale, time.Now())
	return nil
}

// ApplyChange runs a change planned by the caller (netplan.Planner), who
// vouches that it turns the table last loaded or changed into table():
// the Loader does not diff, so an endpoint change costs what the change
// holds, not what the table holds. A Full change, or any change while the
// table's state is unknown (nothing loaded yet, the last change failed),
// loads table() whole; an incremental one goes as one netlink batch when
// it can (see netlink.go), else through nft as text, and when it fails
// table() is loaded whole instead, as Apply does. table is called only
// for a full load; it must return a Ruleset the caller no longer changes.
// After ApplyChange, Current is nil until the next Load or Apply.
func (l *Loader) ApplyChange(ctx context.Context, ch netplan.Change, table func() *netplan.Ruleset) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	if ch.Full || (l.current == nil && !l.planned) {
		return l.loadLocked(ctx, table())
	}
	if ch.Text == "" {
		return nil
	}
	sent := false
	if l.netlink != nil {
		if steps, err := translate(ch.Ops); err == nil {
			if err := l.netlink(steps); err != nil {
				return l.fallbackLocked(ctx, table(), fmt.Errorf("netlink: %w", err))
			}
			sent = true
			l.stats.Netlink++
		}
	}
	if !sent {
		if err := l.run(ctx, ch.Text); err != nil {
			return l.fallbackLocked(ctx, table(), err)
		}
	}
	l.current, l.planned = nil, true
	l.stats.Incremental++
	for _, op := range ch.Ops {
		if op.Kind == netplan.OpAddChain || op.Kind == netplan.OpOther {
			delete(l.stale, op.Name) // declared again: in use
		}
	}
	l.markStaleLocked(ch.Stale, time.Now())
	return nil
}

// fallbackLocked loads the full text of next after the incremental
// transaction failed with err (whole: the kernel committed none of it).
func (l *Loader) fallbackLocked(ctx context.Context, next *netplan.Ruleset, err error) error {
	l.cfg.Log.Warn("incremental nftables change failed; loading the full table", "table", netplan.TableFamily+" "+netplan.TableName, "err", err)
	l.stats.Fallbacks++
	if ferr := l.loadLocked(ctx, next); ferr != nil {
		return fmt.Errorf("apply change to table %s %s: %w (then %w)", netplan.TableFamily, netplan.TableName, err, ferr)
	}
	return nil
}

// Current returns the ruleset the kernel last accepted, nil when unknown
// (nothing loaded yet, or the last change failed).
func (l *Loader) Current() *netplan.Ruleset {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.current
}

// Pending returns the chains waiting to be deleted, sorted.
func (l *Loader) Pending() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Sorted(maps.Keys(l.stale))
}

// Stats returns the transaction counts so far.
func (l *Loader) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// Close stops the stale-chain timer, waiting for a deletion under way, and
// makes further Load and Apply calls fail. The table stays as it is: the
// data path outlives the agent, and the next agent's Load replaces it.
// Chains still waiting to be deleted stay too, empty and unused.
func (l *Loader) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.timer != nil {
		l.timer.Stop()
	}
	if l.netns != nil {
		l.netns.Close()
		l.netns = nil
	}
}

// errClosed is returned by Load and Apply after Close.
var errClosed = errors.New("nft loader is closed")
