package nft

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// TestLoaderDataPath programs a real table in a network namespace of the
// test's own and checks it with real connections to the Service IP: both
// endpoints answer; after an incremental change removing one (and a
// Service), only the other does; the emptied chain goes later; a table deleted by hand makes
// the next change fall back to the full text; another table is never
// touched.
func TestLoaderDataPath(t *testing.T) {
	ns := testNetns(t)
	serveTCP(t, ns, ep1, 8080)
	serveTCP(t, ns, ep2, 8080)
	vip := netip.AddrPortFrom(webVIP, 80)

	// Someone else's table, and a stale kelpie table of an older agent.
	other := `table ip other {
	set s {
		type ipv4_addr
		elements = { 192.0.2.1 }
	}
	chain c {
		type filter hook output priority 10; policy accept;
		ip daddr @s drop
	}
}
`
	runStdin(t, ns, other)
	otherBefore := listTable(ns, "other")
	runStdin(t, ns, "table ip kelpie {\n\tchain junk {\n\t}\n}\n")

	l, err := New(Config{NetNS: ns, StaleDelay: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	ctx := context.Background()

	// Start: the full text, replacing whatever the table held.
	if err := l.Load(ctx, ruleset(t, web(ep1, ep2), dns(ep2))); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(listTable(ns, "kelpie"), "junk") {
		t.Errorf("Load kept a chain of the old table:\n%s", listTable(ns, "kelpie"))
	}
	seen := map[string]int{}
	testenv.Eventually(t, 10*time.Second, "connections to the VIP reaching both endpoints", func() bool {
		for k, v := range connectTCP(t, ns, vip, 20) {
			seen[k] += v
		}
		return seen[ep1.String()] > 0 && seen[ep2.String()] > 0
	})
	if seen[""] > 0 {
		t.Errorf("%d of the connections to %s failed: %v", seen[""], vip, seen)
	}

	// One endpoint goes, and the dns Service: an incremental change;
	// every connection reaches the other endpoint; dns's chain is emptied.
	if err := l.Apply(ctx, ruleset(t, web(ep1))); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Full != 1 || st.Incremental != 1 || st.Netlink != 1 || st.Fallbacks != 0 {
		t.Errorf("after one endpoint change: %+v, want 1 full load and 1 incremental change, over netlink", st)
	}
	if got := connectTCP(t, ns, vip, 50); got[ep1.String()] != 50 {
		t.Errorf("after removing %s: answers %v, want all 50 from %s", ep2, got, ep1)
	}
	staleChain := "service-default/dns/udp/53"
	if p := l.Pending(); len(p) != 1 || p[0] != staleChain {
		t.Errorf("pending stale chains %q, want [%s]", p, staleChain)
	}
	if !strings.Contains(listTable(ns, "kelpie"), staleChain) {
		t.Errorf("the emptied chain %s was deleted at once; it must wait", staleChain)
	}
	testenv.Eventually(t, 10*time.Second, "the stale chain deleted", func() bool {
		return !strings.Contains(listTable(ns, "kelpie"), staleChain) && len(l.Pending()) == 0
	})
	if st := l.Stats(); st.StaleDeleted != 1 {
		t.Errorf("StaleDeleted = %d, want 1", st.StaleDeleted)
	}

	// The table deleted by hand: the incremental change fails and the full
	// text is loaded instead.
	nftIn(t, ns, "delete", "table", "ip", "kelpie")
	if err := l.Apply(ctx, ruleset(t, web(ep1, ep2))); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Fallbacks != 1 || st.Full != 2 {
		t.Errorf("after a change on a deleted table: %+v, want 1 fallback and 2 full loads", st)
	}
	seen = map[string]int{}
	testenv.Eventually(t, 10*time.Second, "both endpoints answering after the fallback", func() bool {
		for k, v := range connectTCP(t, ns, vip, 20) {
			seen[k] += v
		}
		return seen[ep1.String()] > 0 && seen[ep2.String()] > 0
	})

	// Nothing changed: no transaction.
	before := l.Stats()
	if err := l.Apply(ctx, ruleset(t, web(ep1, ep2))); err != nil {
		t.Fatal(err)
	}
	if after := l.Stats(); after != before {
		t.Errorf("an unchanged ruleset ran a transaction: %+v, then %+v", before, after)
	}

	if got := listTable(ns, "other"); got != otherBefore {
		t.Errorf("table ip other changed:\n%s\nwant:\n%s", got, otherBefore)
	}
}

// TestLoaderFailedLoadLeavesTable checks that a transaction nft refuses
// leaves the table as it was (one transaction: all or nothing).
func TestLoaderFailedLoadLeavesTable(t *testing.T) {
	ns := testNetns(t)
	l, err := New(Config{NetNS: ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	if err := l.Load(context.Background(), ruleset(t, web(ep1, ep2))); err != nil {
		t.Fatal(err)
	}
	before := listTable(ns, "kelpie")
	// A transaction whose last command fails: nothing of it may stay.
	err = l.run(context.Background(), "add table ip kelpie\nflush chain ip kelpie services\ndelete chain ip kelpie no-such-chain\n")
	if err == nil || !strings.Contains(err.Error(), "no-such-chain") {
		t.Fatalf("a failing transaction: err = %v, want nft's complaint naming the chain", err)
	}
	if got := listTable(ns, "kelpie"); got != before {
		t.Errorf("a failed transaction changed the table:\n%s\nwant:\n%s", got, before)
	}
}

// runStdin pipes text to nft -f - in the namespace.
func runStdin(t *testing.T, ns, text string) {
	t.Helper()
	run, err := nftRunner(Config{Nft: "nft", NetNS: ns, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), text); err != nil {
		t.Fatal(err)
	}
}
