package agent

import (
	"slices"
	"strings"
	"testing"
)

// overlaySite is a base and an overlay for this host, as a site repository
// holds them.
func overlaySite(replicas string) map[string]string {
	return map[string]string{
		"base/kustomization.yaml": "resources:\n- web.yaml\n",
		"base/web.yaml":           deployment("web", 1, "busybox"),
		"hosts/test-host/kustomization.yaml": "resources:\n- ../../base\nnamePrefix: edge-\n" +
			"patches:\n- target: {kind: Deployment, name: web}\n  patch: |-\n    - op: replace\n      path: /spec/replicas\n      value: " + replicas + "\n",
	}
}

// TestOverlayCommitApplies: an agent whose path is a per-host overlay runs
// what the overlay builds; an invalid base is refused at the base's file
// and line.
func TestOverlayCommitApplies(t *testing.T) {
	h := newHarness(t)
	h.cfg.Path = "hosts/test-host"
	v1 := h.src.push("v1", overlaySite("2"))
	h.start()
	h.waitFor("v1 applied", func(s Status) bool { return s.Applied != nil && s.Applied.Hash == v1.Hash })
	if got, want := h.podNames(), []string{"agenttest/edge-web-0", "agenttest/edge-web-1"}; !slices.Equal(got, want) {
		t.Fatalf("pods after v1: %v, want %v", got, want)
	}

	site := overlaySite("2")
	site["base/web.yaml"] = strings.Replace(site["base/web.yaml"], "  replicas: 1\n", "  replicas: 1\n  paused: maybe\n", 1)
	bad := h.src.push("broken base", site)
	seq := h.seq()
	h.agent.Trigger("test")
	s := h.waitSync(seq)
	if s.Pending == nil || s.Pending.Hash != bad.Hash || s.LastError == nil || len(s.LastError.Errors) == 0 {
		t.Fatalf("broken base: pending %+v, lastError %+v", s.Pending, s.LastError)
	}
	if e := s.LastError.Errors[0]; e.File != "base/web.yaml" || e.Line == 0 || e.Field != "spec.paused" {
		t.Fatalf("manifest error %+v, want base/web.yaml:LINE spec.paused", e)
	}
}
