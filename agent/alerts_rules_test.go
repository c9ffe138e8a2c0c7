package agent

import (
	"os"
	"os/exec"
	"regexp"
	"testing"

	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// rulesDir holds the Prometheus alerting rules kelpie ships.
const rulesDir = "../contrib/prometheus"

// TestAlertRules checks contrib/prometheus/alerts.yaml with the real
// promtool (Debian's prometheus package) and runs its tests, which feed
// each alert the series that fire it and some that must not.
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Missing(t, "promtool not found (apt-get install prometheus): %v", err)
		return
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = rulesDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

// TestAlertRulesNameRealMetrics: every kelpie_ metric the rules use is one
// a clustered agent exports, so a renamed metric cannot leave an alert
// that never fires.
func TestAlertRulesNameRealMetrics(t *testing.T) {
	rules, err := os.ReadFile(rulesDir + "/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := &viewCluster{name: "a", members: []gossip.Member{{Name: "a", Self: true, State: gossip.StateAlive}}}
	a := alertAgent(t, c)
	a.setStalledGauge(map[string]bool{"shop/web": true}) // made at the first stall
	families, err := a.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range families {
		exported[f.GetName()] = true
	}
	used := regexp.MustCompile(`kelpie_[a-z_]+`).FindAllString(string(rules), -1)
	if len(used) < 10 {
		t.Fatalf("alerts.yaml uses %d kelpie metrics; the rules were not read", len(used))
	}
	for _, name := range used {
		if !exported[name] {
			t.Errorf("alerts.yaml uses %s, which the agent does not export", name)
		}
	}
}
