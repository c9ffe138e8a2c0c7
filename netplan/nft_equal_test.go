package netplan

import "testing"

// TestRulesetEqual: Equal agrees with comparing the texts, for equal
// rulesets, each kind of difference, and nil.
func TestRulesetEqual(t *testing.T) {
	base := func() *Ruleset { return mustBuild(t, rulesetScenario()) }
	cases := map[string]func(r *Ruleset){
		"same":           func(*Ruleset) {},
		"element value":  func(r *Ruleset) { r.sets[mapServiceIPs].elems["10.96.10.1 . tcp . 80"] = "drop" },
		"element gone":   func(r *Ruleset) { delete(r.sets[setHairpin].elems, "10.244.0.5 . 10.244.0.5") },
		"set spec":       func(r *Ruleset) { r.sets[setClusterIPs].spec = "type ipv4_addr ;" },
		"set gone":       func(r *Ruleset) { delete(r.sets, setHairpin) },
		"rule changed":   func(r *Ruleset) { r.chains[chainReject].rules[0] = "drop" },
		"rule added":     func(r *Ruleset) { r.chains[chainReject].add("counter") },
		"chain spec":     func(r *Ruleset) { r.chains["nat-output"].spec = "type nat hook output priority 0 ; policy accept ;" },
		"chain added":    func(r *Ruleset) { r.chain("extra", "") },
		"other services": func(r *Ruleset) { *r = *mustBuild(t, rulesetChange()) },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			a, b := base(), base()
			change(b)
			want := a.Text() == b.Text()
			if got := a.Equal(b); got != want {
				t.Errorf("Equal = %v, texts equal = %v", got, want)
			}
			if got := b.Equal(a); got != want {
				t.Errorf("Equal the other way = %v, want %v", got, want)
			}
		})
	}
	var none *Ruleset
	if none.Equal(base()) || base().Equal(nil) || !none.Equal(nil) {
		t.Error("Equal with nil")
	}
}
