package nft

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// fakeNft records the transactions a Loader sends, and fails those
// containing fail.
type fakeNft struct {
	mu    sync.Mutex
	texts []string
	fail  string
}

func (f *fakeNft) run(_ context.Context, text string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.texts = append(f.texts, text)
	if f.fail != "" && strings.Contains(text, f.fail) {
		return errors.New("refused")
	}
	return nil
}

// sent returns the transactions so far.
func (f *fakeNft) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.texts...)
}

// setFail makes transactions containing s fail.
func (f *fakeNft) setFail(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = s
}

// fakeLoader is a Loader on a fake nft, with a short stale delay (below
// what Config allows, which guards real kernels).
func fakeLoader(t *testing.T, delay time.Duration) (*Loader, *fakeNft) {
	f := &fakeNft{}
	l := &Loader{cfg: Config{StaleDelay: delay, Timeout: time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil))},
		run: f.run, stale: map[string]time.Time{}}
	t.Cleanup(l.Close)
	return l, f
}

const chain2 = "service-default/dns/udp/53" // emptied when dns goes

// deletes counts the transactions that deleted chain.
func deletes(texts []string, chain string) int {
	n := 0
	for _, s := range texts {
		if strings.Contains(s, "delete chain ip kelpie "+chain+"\n") {
			n++
		}
	}
	return n
}

func TestStaleChainDeletedAfterDelay(t *testing.T) {
	l, f := fakeLoader(t, 50*time.Millisecond)
	ctx := context.Background()
	if err := l.Apply(ctx, ruleset(t, web(ep1, ep2), dns(ep2))); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := l.Apply(ctx, ruleset(t, web(ep1))); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "the stale chain deleted", func() bool { return deletes(f.sent(), chain2) == 1 })
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("deleted after %v, before the delay", d)
	}
	if p := l.Pending(); len(p) != 0 {
		t.Errorf("pending after deletion: %v", p)
	}
}

func TestStaleChainUsedAgainIsKept(t *testing.T) {
	l, f := fakeLoader(t, 50*time.Millisecond)
	ctx := context.Background()
	for _, r := range [][]bool{{true, true}, {true, false}, {true, true}} {
		eps := ruleset(t, web(ep1))
		if r[1] {
			eps = ruleset(t, web(ep1, ep2), dns(ep2))
		}
		if err := l.Apply(ctx, eps); err != nil {
			t.Fatal(err)
		}
	}
	if p := l.Pending(); len(p) != 0 {
		t.Errorf("a chain used again is still pending: %v", p)
	}
	// Empty it once more: it is deleted one delay after that, once.
	if err := l.Apply(ctx, ruleset(t, web(ep1))); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "the stale chain deleted", func() bool { return deletes(f.sent(), chain2) == 1 })
}

func TestStaleChainWaitsFromLastEmptying(t *testing.T) {
	l, _ := fakeLoader(t, time.Hour)
	ctx := context.Background()
	if err := l.Apply(ctx, ruleset(t, web(ep1, ep2), dns(ep2))); err != nil {
		t.Fatal(err)
	}
	if err := l.Apply(ctx, ruleset(t, web(ep1))); err != nil {
		t.Fatal(err)
	}
	first := l.stale[chain2]
	if err := l.Apply(ctx, ruleset(t, web(ep1, ep2), dns(ep2))); err != nil {
		t.Fatal(err)
	}
	if err := l.Apply(ctx, ruleset(t, web(ep1))); err != nil {
		t.Fatal(err)
	}
	if again := l.stale[chain2]; !again.After(first) {
		t.Errorf("emptied again at %v, still due from %v", again, first)
	}
}

func TestStaleDeletionRetriesThenGivesUp(t *testing.T) {
	l, f := fakeLoader(t, 20*time.Millisecond)
	f.setFail("delete chain")
	ctx := context.Background()
	if err := l.Apply(ctx, ruleset(t, web(ep1, ep2), dns(ep2))); err != nil {
		t.Fatal(err)
	}
	if err := l.Apply(ctx, ruleset(t, web(ep1))); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "the stale chain given up", func() bool { return len(l.Pending()) == 0 })
	if n := deletes(f.sent(), chain2); n != staleAttempts {
		t.Errorf("%d attempts to delete, want %d", n, staleAttempts)
	}
	if st := l.Stats(); st.StaleDeleted != 0 {
		t.Errorf("StaleDeleted = %d after failures", st.StaleDeleted)
	}
}

func TestFullLoadForgetsStaleAndCloseStopsTimer(t *testing.T) {
	l, f := fakeLoader(t, 30*time.Millisecond)
	ctx := context.Background()
	if err := l.Apply(ctx, ruleset(t, web(ep1, ep2), dns(ep2))); err != nil {
		t.Fatal(err)
	}
	if err := l.Apply(ctx, ruleset(t, web(ep1))); err != nil {
		t.Fatal(err)
	}
	if err := l.Load(ctx, ruleset(t, web(ep1))); err != nil {
		t.Fatal(err)
	}
	if p := l.Pending(); len(p) != 0 {
		t.Errorf("a full load kept pending chains %v: the table they were in is gone", p)
	}
	if err := l.Apply(ctx, ruleset(t, web(ep1, ep2), dns(ep2))); err != nil {
		t.Fatal(err)
	}
	if err := l.Apply(ctx, ruleset(t, web(ep1))); err != nil {
		t.Fatal(err)
	}
	l.Close()
	n := len(f.sent())
	time.Sleep(100 * time.Millisecond) // longer than the delay: nothing may run after Close
	if got := len(f.sent()); got != n {
		t.Errorf("%d transactions after Close", got-n)
	}
	if err := l.Apply(ctx, ruleset(t, web(ep1))); err == nil {
		t.Error("Apply after Close succeeded")
	}
}

func TestFallbackAndFailure(t *testing.T) {
	l, f := fakeLoader(t, time.Hour)
	ctx := context.Background()
	if err := l.Apply(ctx, ruleset(t, web(ep1, ep2), dns(ep2))); err != nil {
		t.Fatal(err)
	}
	f.setFail("flush chain") // the incremental change fails; the full text works
	if err := l.Apply(ctx, ruleset(t, web(ep1))); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Fallbacks != 1 || st.Full != 2 || st.Incremental != 0 {
		t.Errorf("stats %+v, want a fallback to a second full load", st)
	}
	f.setFail("ip kelpie") // everything fails
	if err := l.Apply(ctx, ruleset(t, web(ep1, ep2), dns(ep2))); err == nil {
		t.Fatal("a change nft refused whole succeeded")
	}
	if l.Current() != nil {
		t.Error("after a failed full load the table is known")
	}
	f.setFail("")
	n := len(f.sent())
	if err := l.Apply(ctx, ruleset(t, web(ep1, ep2), dns(ep2))); err != nil {
		t.Fatal(err)
	}
	if s := f.sent()[n:]; len(s) != 1 || !strings.Contains(s[0], "delete table ip kelpie") {
		t.Errorf("after a failure the next change is not a full load: %q", s)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{StaleDelay: 100 * time.Millisecond}, "StaleDelay"},
		{Config{Timeout: -1}, "Timeout"},
		{Config{Nft: "/nonexistent/nft"}, "nftables"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
}
