package agent

import (
	"context"
	"testing"
	"time"
)

// TestRollingUpdate: a new image for a Deployment of 4 replaces one pod
// per round (maxUnavailable 25%, maxSurge 0), each round as soon as the previous
// one's pod runs, until all four run the new spec.
func TestRollingUpdate(t *testing.T) {
	h := newHarness(t)
	h.src.push("v1", map[string]string{"app.yaml": strategyDeployment("web", 4, "busybox:1", noSurge)})
	h.start()
	h.waitFor("v1 running", func(s Status) bool { return len(s.Pods) == 4 })
	old := h.hashes()
	v2 := h.src.push("v2: new image", map[string]string{"app.yaml": strategyDeployment("web", 4, "busybox:2", noSurge)})
	seq := h.seq()
	h.agent.Trigger("test")
	s := h.waitSync(seq)
	if s.LastSync.Commit != v2.Hash {
		t.Fatalf("sync saw %s, want v2", s.LastSync.Commit)
	}
	changed := func() int {
		n := 0
		for name, hash := range h.hashes() {
			if hash != old[name] {
				n++
			}
		}
		return n
	}
	if n := changed(); n != 1 {
		t.Fatalf("after the sync %d pods run the new spec, want 1 (maxUnavailable 1 of 4)", n)
	}
	for rounds := 0; changed() < 4; rounds++ {
		if rounds > 10 {
			t.Fatalf("rolling update stuck at %d of 4; waiting %v", changed(), h.agent.Status().Waiting)
		}
		before := changed()
		h.clock.Advance(DefaultEventDelay + time.Millisecond)
		deadline := time.Now().Add(2 * time.Second)
		for changed() == before && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		if got := changed(); got > before+1 {
			t.Fatalf("one round replaced %d pods, want at most 1", got-before)
		}
	}
	h.waitFor("v2 applied", func(s Status) bool { return s.Applied != nil && s.Applied.Hash == v2.Hash })
}

// hashes returns the fake's pods' spec hashes by name.
func (h *harness) hashes() map[string]string {
	h.t.Helper()
	actual, err := h.rt.Observe(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range actual.Pods {
		out[p.Name] = p.Hash
	}
	return out
}
