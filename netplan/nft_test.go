package netplan

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// ep builds an endpoint.
func ep(addr string, port int32, node string) Endpoint {
	return Endpoint{IP: ip(addr), Port: port, Node: node, Pod: "p-" + addr}
}

// tcp and udp build Service ports.
func tcp(port, nodePort int32, eps ...Endpoint) Port {
	return Port{Name: fmt.Sprint("p", port), Protocol: corev1.ProtocolTCP, Port: port, NodePort: nodePort, Endpoints: eps}
}
func udp(port int32, eps ...Endpoint) Port {
	return Port{Name: fmt.Sprint("u", port), Protocol: corev1.ProtocolUDP, Port: port, Endpoints: eps}
}

// rulesetScenario is one host (n1) of a three-host cluster with every
// kind of Service the ruleset handles.
func rulesetScenario() RulesetInput {
	return RulesetInput{
		Node:        "n1",
		ClusterCIDR: pfx("10.244.0.0/16"),
		ServiceCIDR: pfx("10.96.0.0/16"),
		NodeIPs:     []netip.Addr{ip("192.168.1.11"), ip("fd00::11")},
		Services: []Service{
			{Namespace: "default", Name: "web", ClusterIP: ip("10.96.10.1"), Ports: []Port{
				tcp(80, 0, ep("10.244.0.5", 8080, "n1"), ep("10.244.1.5", 8080, "n2"), ep("10.244.2.5", 8080, "n3"))}},
			{Namespace: "default", Name: "sticky", ClusterIP: ip("10.96.10.2"), AffinityTimeout: 600, Ports: []Port{
				tcp(443, 0, ep("10.244.0.6", 8443, "n1"), ep("10.244.1.6", 8443, "n2"))}},
			{Namespace: "default", Name: "np", ClusterIP: ip("10.96.10.3"), Ports: []Port{
				tcp(80, 30080, ep("10.244.1.7", 80, "n2"), ep("10.244.2.7", 80, "n3"))}},
			{Namespace: "default", Name: "local", ClusterIP: ip("10.96.10.4"), ExternalLocal: true, Ports: []Port{
				tcp(80, 30081, ep("10.244.0.8", 80, "n1"), ep("10.244.1.8", 80, "n2"))}},
			{Namespace: "default", Name: "local-elsewhere", ClusterIP: ip("10.96.10.5"), ExternalLocal: true, Ports: []Port{
				tcp(80, 30082, ep("10.244.1.9", 80, "n2"))}},
			{Namespace: "default", Name: "empty", ClusterIP: ip("10.96.10.6"), Ports: []Port{tcp(80, 30083)}},
			{Namespace: "kube-system", Name: "dns", ClusterIP: ip("10.96.0.10"), Ports: []Port{
				udp(53, ep("10.244.0.2", 53, "n1"), ep("10.244.2.2", 53, "n3")), tcp(53, 0, ep("10.244.0.2", 53, "n1"), ep("10.244.2.2", 53, "n3")),
				{Name: "sctp", Protocol: corev1.ProtocolSCTP, Port: 9, Endpoints: []Endpoint{ep("10.244.0.2", 9, "n1")}}}},
			{Namespace: "default", Name: "db", Headless: true, Ports: []Port{tcp(5432, 0, ep("10.244.0.9", 5432, "n1"))}},
			{Namespace: "default", Name: "unallocated", Ports: []Port{tcp(80, 0, ep("10.244.0.9", 80, "n1"))}},
		},
	}
}

// rulesetChange is rulesetScenario after: web lost its n3 endpoint and
// gained one on n2, empty got an endpoint, sticky is gone, np moved to
// another node port, and the affinity of nothing changed.
func rulesetChange() RulesetInput {
	in := rulesetScenario()
	svcs := slices.Clone(in.Services)
	svcs[0].Ports = []Port{tcp(80, 0, ep("10.244.0.5", 8080, "n1"), ep("10.244.1.5", 8080, "n2"), ep("10.244.1.15", 8080, "n2"))}
	svcs[2].Ports = []Port{tcp(80, 30090, ep("10.244.1.7", 80, "n2"), ep("10.244.2.7", 80, "n3"))}
	svcs[5].Ports = []Port{tcp(80, 30083, ep("10.244.2.10", 80, "n3"))}
	in.Services = slices.Delete(svcs, 1, 2)
	return in
}

func mustBuild(t testing.TB, in RulesetInput) *Ruleset {
	t.Helper()
	r, err := BuildRuleset(in)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRulesetGolden(t *testing.T) {
	old := mustBuild(t, rulesetScenario())
	golden(t, "ruleset.nft", old.Text())
	new := mustBuild(t, rulesetChange())
	ch := Diff(old, new)
	if ch.Full {
		t.Fatal("an endpoint change rebuilt the whole table")
	}
	golden(t, "ruleset-diff.nft", ch.Text)
	wantStale := []string{"endpoint-default/sticky/tcp/443__10.244.0.6/8443", "endpoint-default/sticky/tcp/443__10.244.1.6/8443",
		"service-default/sticky/tcp/443"}
	if !slices.Equal(ch.Stale, wantStale) {
		t.Errorf("stale chains:\n got %q\nwant %q", ch.Stale, wantStale)
	}
	golden(t, "ruleset-stale.nft", DeleteStale(new, ch.Stale))
	if got := Diff(new, mustBuild(t, rulesetChange())); got.Text != "" {
		t.Errorf("no change gave a transaction:\n%s", got.Text)
	}
	if st := old.Stats(); st.Chains != 26 || st.Sets != 9 {
		t.Errorf("stats = %+v", st)
	}
}

func TestRulesetIsDeterministic(t *testing.T) {
	in := rulesetScenario()
	want := mustBuild(t, in).Text()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		rng.Shuffle(len(in.Services), func(i, j int) { in.Services[i], in.Services[j] = in.Services[j], in.Services[i] })
		if got := mustBuild(t, in).Text(); got != want {
			t.Fatalf("the order of the Services changed the text:\n%s", lineDiff(want, got))
		}
	}
}

func TestRulesetRejectsNonIPv4(t *testing.T) {
	in := rulesetScenario()
	in.ClusterCIDR = pfx("fd00::/64")
	if _, err := BuildRuleset(in); err == nil {
		t.Fatal("an IPv6 cluster CIDR was accepted")
	}
}

func TestDiffFallsBackToFullOnDeclarationChange(t *testing.T) {
	old := mustBuild(t, rulesetScenario())
	in := rulesetScenario()
	in.Services[1].AffinityTimeout = 60
	ch := Diff(old, mustBuild(t, in))
	if !ch.Full || !strings.HasPrefix(ch.Text, "add table ip kelpie") || !strings.Contains(ch.Text, "delete table ip kelpie") {
		t.Fatalf("a changed affinity timeout gave %+v", ch)
	}
	if ch := Diff(nil, old); !ch.Full || ch.Text != old.Text() {
		t.Fatal("Diff from nothing is not the full text")
	}
}

// TestDiffSmallForOneEndpoint: in a table of 1,000 Services of 10
// endpoints, one endpoint change is a handful of commands on the
// Service's own chain and the hairpin set, and the table has a chain per
// Service, not per endpoint (nft reads every chain of the table before
// each transaction).
func TestDiffSmallForOneEndpoint(t *testing.T) {
	in := bigInput(1000, 10)
	old := mustBuild(t, in)
	if st := old.Stats(); st.Chains > 1000+20 {
		t.Errorf("1,000 Services without affinity have %d chains, want about one each", st.Chains)
	}
	svc := &in.Services[500]
	svc.Ports[0].Endpoints = append(slices.Clone(svc.Ports[0].Endpoints[1:]), ep("10.245.0.1", 8080, "n9"))
	ch := Diff(old, mustBuild(t, in))
	n := strings.Count(ch.Text, "\n")
	if n > 10 || len(ch.Stale) != 0 || strings.Contains(ch.Text, "add chain") ||
		!strings.Contains(ch.Text, "flush chain ip kelpie service-ns/svc-500/tcp/80\n") ||
		!strings.Contains(ch.Text, "add element ip kelpie hairpin { 10.245.0.1 . 10.245.0.1 }") {
		t.Fatalf("one endpoint replaced: %d commands, %d stale chains:\n%s", n, len(ch.Stale), ch.Text)
	}
}

// bigInput builds n Services of m endpoints each.
func bigInput(n, m int) RulesetInput {
	in := RulesetInput{Node: "n1", ClusterCIDR: pfx("10.244.0.0/16"), ServiceCIDR: pfx("10.96.0.0/16")}
	for i := range n {
		var eps []Endpoint
		for j := range m {
			eps = append(eps, ep(fmt.Sprintf("10.244.%d.%d", j, i%250+2), 8080, fmt.Sprint("n", j)))
		}
		in.Services = append(in.Services, Service{Namespace: "ns", Name: fmt.Sprint("svc-", i),
			ClusterIP: addr4(u32(ip("10.96.1.0")) + uint32(i)), Ports: []Port{tcp(80, 0, eps...)}})
	}
	return in
}

// TestDiffProperty applies Diff's transactions to a model of the table
// (which refuses what nft refuses: rules and elements naming missing
// chains or sets, deleting missing elements, re-adding a map key with
// another value, deleting a set still in use) and checks that the result
// is the new ruleset, over random sequences of inputs.
func TestDiffProperty(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 3))
		m := newNFTModel()
		var cur *Ruleset
		var stale []string
		for step := range 30 {
			next := mustBuild(t, randomInput(rng))
			ch := Diff(cur, next)
			if err := m.apply(ch.Text); err != nil {
				t.Fatalf("seed %d step %d: %v\n%s", seed, step, err, ch.Text)
			}
			stale = append(stale, ch.Stale...)
			if rng.IntN(3) == 0 {
				if err := m.apply(DeleteStale(next, stale)); err != nil {
					t.Fatalf("seed %d step %d: deleting stale chains: %v", seed, step, err)
				}
				stale = nil
			}
			want := newNFTModel()
			if err := want.apply(next.Text()); err != nil {
				t.Fatalf("seed %d step %d: the full text: %v", seed, step, err)
			}
			if got, w := m.dump(stale), want.dump(nil); got != w {
				t.Fatalf("seed %d step %d: the table after the diff differs from the new ruleset:\n%s", seed, step, lineDiff(w, got))
			}
			cur = next
		}
	}
}

// randomInput draws a random host view from a small universe of Services,
// endpoints and nodes.
func randomInput(rng *rand.Rand) RulesetInput {
	in := RulesetInput{Node: "n1", ClusterCIDR: pfx("10.244.0.0/16"), ServiceCIDR: pfx("10.96.0.0/16"), NodeIPs: []netip.Addr{ip("192.168.1.11")}}
	for i := range 6 {
		if rng.IntN(4) == 0 {
			continue
		}
		s := Service{Namespace: "ns", Name: fmt.Sprint("s", i), ClusterIP: addr4(u32(ip("10.96.0.100")) + uint32(i)),
			ExternalLocal: rng.IntN(3) == 0}
		if rng.IntN(3) == 0 {
			s.AffinityTimeout = 300
		}
		for _, port := range []int32{80, 53} {
			if rng.IntN(2) == 0 {
				continue
			}
			p := Port{Name: fmt.Sprint("p", port), Protocol: corev1.ProtocolTCP, Port: port}
			if port == 53 {
				p.Protocol = corev1.ProtocolUDP
			}
			if rng.IntN(2) == 0 {
				p.NodePort = 30000 + int32(i)*10 + int32(rng.IntN(2))
			}
			for e := range 5 {
				if rng.IntN(2) == 0 {
					p.Endpoints = append(p.Endpoints, ep(fmt.Sprintf("10.244.%d.%d", e%3, 10+e), 8080, fmt.Sprint("n", e%3+1)))
				}
			}
			s.Ports = append(s.Ports, p)
		}
		in.Services = append(in.Services, s)
	}
	return in
}

// nftModel is a model of kelpie's table, enough to replay the commands
// Text, Diff and DeleteStale write.
type nftModel struct {
	sets   map[string]map[string]string // name → key → value
	decl   map[string]string            // set or chain name → declaration
	chains map[string][]string
}

func newNFTModel() *nftModel {
	return &nftModel{sets: map[string]map[string]string{}, decl: map[string]string{}, chains: map[string][]string{}}
}

// apply replays a transaction, failing where nft would.
func (m *nftModel) apply(text string) error {
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		if line == "" {
			continue
		}
		if err := m.command(line); err != nil {
			return fmt.Errorf("%q: %w", line, err)
		}
	}
	return nil
}

func (m *nftModel) command(line string) error {
	if strings.HasPrefix(line, "add table "+table) || line == "delete table "+table {
		return m.tableCommand(line)
	}
	f := strings.Fields(line)
	if len(f) < 5 || f[2]+" "+f[3] != table {
		return fmt.Errorf("not a command on %s", table)
	}
	verb, kind, name := f[0], f[1], f[4]
	rest := strings.TrimSpace(strings.SplitN(line, " "+name, 2)[1])
	switch verb + " " + kind {
	case "add set", "add map", "add chain":
		if _, ok := m.decl[name]; !ok {
			m.decl[name] = kind + " " + rest
			if kind == "chain" {
				m.chains[name] = nil
			} else {
				m.sets[name] = map[string]string{}
			}
		} else if m.decl[name] != kind+" "+rest {
			return fmt.Errorf("redeclared with another spec")
		}
	case "add rule":
		if _, ok := m.chains[name]; !ok {
			return fmt.Errorf("no chain %s", name)
		}
		if err := m.refsExist(rest); err != nil {
			return err
		}
		m.chains[name] = append(m.chains[name], rest)
	case "flush chain":
		if _, ok := m.chains[name]; !ok {
			return fmt.Errorf("no chain %s", name)
		}
		m.chains[name] = nil
	case "delete chain":
		if len(m.chains[name]) > 0 || m.referenced(name) {
			return fmt.Errorf("chain %s in use", name)
		}
		delete(m.chains, name)
		delete(m.decl, name)
	case "delete set", "delete map":
		if m.referenced("@" + name) {
			return fmt.Errorf("set %s in use", name)
		}
		delete(m.sets, name)
		delete(m.decl, name)
	case "add element", "delete element":
		s, ok := m.sets[name]
		if !ok {
			return fmt.Errorf("no set %s", name)
		}
		body := strings.TrimSuffix(strings.TrimPrefix(rest, "{ "), " }")
		key, value, _ := strings.Cut(body, " : ")
		if verb == "delete" {
			if _, ok := s[key]; !ok {
				return fmt.Errorf("no element %s", key)
			}
			delete(s, key)
			return nil
		}
		if old, ok := s[key]; ok && old != value {
			return fmt.Errorf("element %s exists with %q", key, old)
		}
		if err := m.refsExist(value); err != nil {
			return err
		}
		s[key] = value
	default:
		return fmt.Errorf("unknown command")
	}
	return nil
}

func (m *nftModel) tableCommand(line string) error {
	if strings.HasPrefix(line, "delete") {
		*m = *newNFTModel()
	}
	return nil
}

// refsExist checks that the chains (goto/jump X) and sets (@X) a rule or
// verdict names exist.
func (m *nftModel) refsExist(s string) error {
	f := strings.Fields(strings.NewReplacer("{", " ", "}", " ", ",", " ").Replace(s))
	for i, w := range f {
		if (w == "goto" || w == "jump") && i+1 < len(f) {
			if _, ok := m.chains[f[i+1]]; !ok {
				return fmt.Errorf("no chain %s", f[i+1])
			}
		}
		if strings.HasPrefix(w, "@") {
			if _, ok := m.sets[w[1:]]; !ok {
				return fmt.Errorf("no set %s", w[1:])
			}
		}
	}
	return nil
}

// referenced reports whether a rule or map element names ref ("@SET" or
// a chain).
func (m *nftModel) referenced(ref string) bool {
	uses := func(s string) bool {
		return slices.Contains(strings.Fields(strings.NewReplacer("{", " ", "}", " ", ",", " ").Replace(s)), ref)
	}
	for _, rules := range m.chains {
		if slices.ContainsFunc(rules, uses) {
			return true
		}
	}
	for _, s := range m.sets {
		for _, v := range s {
			if uses(v) {
				return true
			}
		}
	}
	return false
}

// dump renders the model, leaving out the empty chains named in ignore
// (stale chains not yet deleted).
func (m *nftModel) dump(ignore []string) string {
	var b strings.Builder
	for _, n := range sortedKeys(m.decl) {
		if slices.Contains(ignore, n) && len(m.chains[n]) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s %s\n", n, m.decl[n])
		for _, r := range m.chains[n] {
			fmt.Fprintf(&b, "  rule %s\n", r)
		}
		for _, k := range sortedKeys(m.sets[n]) {
			fmt.Fprintf(&b, "  elem %s : %s\n", k, m.sets[n][k])
		}
	}
	return b.String()
}

// TestRulesetNftCheck has nft itself check the transactions (nft -c: the
// kernel validates the batch and changes nothing): the full text, and a
// diff with its stale chain deletion on top of the old table.
func TestRulesetNftCheck(t *testing.T) {
	nft := testenv.Binary(t, "nft", "nftables")
	testenv.Root(t)
	old := mustBuild(t, rulesetScenario())
	new := mustBuild(t, rulesetChange())
	ch := Diff(old, new)
	big := mustBuild(t, bigInput(200, 10))
	cases := map[string]string{
		"full":         old.Text(),
		"diff":         old.Text() + ch.Text + DeleteStale(new, ch.Stale),
		"back":         new.Text() + Diff(new, old).Text,
		"full-to-full": old.Text() + new.Text(),
		"big":          big.Text(),
	}
	for _, name := range sortedKeys(cases) {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name+".nft")
			if err := os.WriteFile(path, []byte(cases[name]), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(nft, "-c", "-f", path).CombinedOutput()
			if err != nil {
				t.Fatalf("nft -c -f %s: %v\n%s", name, err, out)
			}
		})
	}
}
