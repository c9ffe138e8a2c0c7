package netplan

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// allocOf renders st.Services as key → "IP|headless [PORT=NODEPORT …]".
func allocOf(st State) map[string]string {
	out := map[string]string{}
	for k, a := range st.Services {
		v := "-"
		if a.Headless {
			v = "headless"
		} else if a.ClusterIP.IsValid() {
			v = a.ClusterIP.String()
		}
		for _, pk := range sortedKeys(a.NodePorts) {
			v += fmt.Sprintf(" %s=%d", pk, a.NodePorts[pk])
		}
		out[k] = v
	}
	return out
}

// held builds a previous allocation.
func held(ip string, nodePorts ...any) ServiceAlloc {
	a := ServiceAlloc{}
	if ip == "headless" {
		a.Headless = true
	} else if ip != "" {
		a.ClusterIP = netip.MustParseAddr(ip)
	}
	for i := 0; i+1 < len(nodePorts); i += 2 {
		if a.NodePorts == nil {
			a.NodePorts = map[string]int32{}
		}
		a.NodePorts[nodePorts[i].(string)] = int32(nodePorts[i+1].(int))
	}
	return a
}

func TestServiceAllocation(t *testing.T) {
	tiny := Config{ServiceCIDR: pfx("10.96.0.0/29"), NodePorts: PortRange{30000, 30001}}
	dns := withPorts(corev1.ServicePort{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53}, corev1.ServicePort{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: 53})
	tests := []struct {
		name     string
		cfg      Config
		prev     map[string]ServiceAlloc
		released []Released
		svcs     []*corev1.Service
		want     map[string]string
		problems []string
		notes    []string
		quar     int // quarantine entries after
	}{
		{name: "a dynamic IP comes from the upper band, by hash", svcs: []*corev1.Service{service("default/web"), service("shop/db")},
			want: map[string]string{"default/web": "10.96.252.175", "shop/db": "10.96.217.124"}},
		{name: "the manifest's clusterIP is honoured", svcs: []*corev1.Service{service("default/web", withIP("10.96.0.10"))},
			want: map[string]string{"default/web": "10.96.0.10"}},
		{name: "reserved and foreign addresses are refused",
			svcs: []*corev1.Service{service("a/net", withIP("10.96.0.0")), service("b/first", withIP("10.96.0.1")),
				service("c/bcast", withIP("10.96.255.255")), service("d/out", withIP("10.97.0.5")), service("e/bad", withIP("ten"))},
			want: map[string]string{"a/net": "-", "b/first": "-", "c/bcast": "-", "d/out": "-", "e/bad": "-"},
			problems: []string{"service a/net: no clusterIP: 10.96.0.0 is the network address of the service-cidr",
				"service b/first: no clusterIP: 10.96.0.1 is reserved",
				"service c/bcast: no clusterIP: 10.96.255.255 is the broadcast address of the service-cidr",
				"service d/out: no clusterIP: 10.97.0.5 is outside the service-cidr 10.96.0.0/16",
				`service e/bad: no clusterIP: "ten" is not an IP address`}},
		{name: "a held IP stays with its holder", prev: map[string]ServiceAlloc{"default/a": held("10.96.0.10")},
			svcs:     []*corev1.Service{service("default/a"), service("default/b", withIP("10.96.0.10"))},
			want:     map[string]string{"default/a": "10.96.0.10", "default/b": "-"},
			problems: []string{"service default/b: no clusterIP: 10.96.0.10 is held by service default/a"}},
		{name: "of two new claims the first key wins", svcs: []*corev1.Service{service("default/b", withIP("10.96.0.10")), service("default/a", withIP("10.96.0.10"))},
			want:     map[string]string{"default/a": "10.96.0.10", "default/b": "-"},
			problems: []string{"service default/b: no clusterIP: 10.96.0.10 is held by service default/a"}},
		{name: "a headless Service has no IP", svcs: []*corev1.Service{service("default/db", headless())},
			want: map[string]string{"default/db": "headless"}},
		{name: "turning headless releases the IP", prev: map[string]ServiceAlloc{"default/db": held("10.96.7.7")},
			svcs: []*corev1.Service{service("default/db", headless())}, want: map[string]string{"default/db": "headless"},
			notes: []string{"service default/db: clusterIP 10.96.7.7 released (now headless)"}, quar: 1},
		{name: "an allocated IP is sticky", prev: map[string]ServiceAlloc{"default/web": held("10.96.5.5")},
			svcs: []*corev1.Service{service("default/web")}, want: map[string]string{"default/web": "10.96.5.5"}},
		{name: "a manifest that sets another clusterIP moves the Service", prev: map[string]ServiceAlloc{"default/web": held("10.96.5.5")},
			svcs: []*corev1.Service{service("default/web", withIP("10.96.0.20"))}, want: map[string]string{"default/web": "10.96.0.20"},
			notes: []string{"service default/web: clusterIP 10.96.5.5 released (the manifest sets clusterIP 10.96.0.20)"}, quar: 1},
		{name: "a deleted Service's IP and node ports are quarantined", prev: map[string]ServiceAlloc{"default/old": held("10.96.5.5", "80/TCP", 30500)},
			want: map[string]string{}, quar: 2,
			notes: []string{"service default/old: clusterIP 10.96.5.5 released (deleted)", "service default/old: node port 30500 released (deleted)"}},
		{name: "an IP outside a changed service-cidr is replaced", cfg: Config{ServiceCIDR: pfx("10.100.0.0/16")},
			prev: map[string]ServiceAlloc{"default/web": held("10.96.5.5")}, svcs: []*corev1.Service{service("default/web")},
			want: map[string]string{"default/web": "10.100.252.175"}, quar: 1,
			notes: []string{"service default/web: clusterIP 10.96.5.5 released (outside the service-cidr 10.100.0.0/16)"}},
		{name: "a quarantined IP goes to no other Service", cfg: tiny,
			prev:     map[string]ServiceAlloc{"a/a": held("10.96.0.2"), "a/b": held("10.96.0.3"), "a/c": held("10.96.0.4"), "a/d": held("10.96.0.5")},
			released: []Released{{Service: "a/gone", IP: ip("10.96.0.6"), Since: t0.Add(-time.Minute)}},
			svcs:     []*corev1.Service{service("a/a"), service("a/b"), service("a/c"), service("a/d"), service("a/new")},
			want:     map[string]string{"a/a": "10.96.0.2", "a/b": "10.96.0.3", "a/c": "10.96.0.4", "a/d": "10.96.0.5", "a/new": "-"},
			problems: []string{"service a/new: no clusterIP: service-cidr 10.96.0.0/29 exhausted"}, quar: 1},
		{name: "the Service that released an IP gets it back", cfg: tiny,
			released: []Released{{Service: "a/gone", IP: ip("10.96.0.6"), Since: t0.Add(-time.Minute)}},
			svcs:     []*corev1.Service{service("a/gone")}, want: map[string]string{"a/gone": "10.96.0.6"}},
		{name: "a manifest may ask for a quarantined IP",
			released: []Released{{Service: "a/gone", IP: ip("10.96.0.6"), Since: t0.Add(-time.Minute)}},
			svcs:     []*corev1.Service{service("a/new", withIP("10.96.0.6"))}, want: map[string]string{"a/new": "10.96.0.6"}},
		{name: "the quarantine ends", cfg: tiny,
			prev:     map[string]ServiceAlloc{"a/a": held("10.96.0.2"), "a/b": held("10.96.0.3"), "a/c": held("10.96.0.4"), "a/d": held("10.96.0.5")},
			released: []Released{{Service: "a/gone", IP: ip("10.96.0.6"), Since: t0.Add(-time.Hour)}},
			svcs:     []*corev1.Service{service("a/a"), service("a/b"), service("a/c"), service("a/d"), service("a/new")},
			want:     map[string]string{"a/a": "10.96.0.2", "a/b": "10.96.0.3", "a/c": "10.96.0.4", "a/d": "10.96.0.5", "a/new": "10.96.0.6"}},
		{name: "node ports: dynamic from the upper band, or the manifest's",
			svcs: []*corev1.Service{service("default/web", withIP("10.96.0.10"), nodePort(0)), service("default/api", withIP("10.96.0.11"), nodePort(30080))},
			want: map[string]string{"default/web": "10.96.0.10 80/TCP=30863", "default/api": "10.96.0.11 80/TCP=30080"}},
		{name: "node ports: one number for TCP and UDP is fine", svcs: []*corev1.Service{service("kube/dns", withIP("10.96.0.10"), dns, nodePort(30053, 30053))},
			want: map[string]string{"kube/dns": "10.96.0.10 53/TCP=30053 53/UDP=30053"}},
		{name: "node ports: conflicts and foreign ports are refused", prev: map[string]ServiceAlloc{"default/a": held("10.96.0.10", "80/TCP", 30080)},
			svcs: []*corev1.Service{service("default/a", withIP("10.96.0.10"), nodePort(0)), service("default/b", withIP("10.96.0.11"), nodePort(30080)),
				service("default/c", withIP("10.96.0.12"), nodePort(80))},
			want: map[string]string{"default/a": "10.96.0.10 80/TCP=30080", "default/b": "10.96.0.11", "default/c": "10.96.0.12"},
			problems: []string{"service default/b: port 80/TCP: no node port: 30080/TCP is held by service default/a",
				"service default/c: port 80/TCP: no node port: 80 is outside the service-node-port-range 30000-32767"}},
		{name: "node ports: a changed port is released", prev: map[string]ServiceAlloc{"default/a": held("10.96.0.10", "80/TCP", 30080)},
			svcs: []*corev1.Service{service("default/a", nodePort(30081))}, want: map[string]string{"default/a": "10.96.0.10 80/TCP=30081"},
			notes: []string{"service default/a: node port 30080 released (the manifest changed it)"}, quar: 1},
		{name: "node ports: back to ClusterIP releases them", prev: map[string]ServiceAlloc{"default/a": held("10.96.0.10", "80/TCP", 30080)},
			svcs: []*corev1.Service{service("default/a")}, want: map[string]string{"default/a": "10.96.0.10"},
			notes: []string{"service default/a: node port 30080 released (the port is gone)"}, quar: 1},
		{name: "node ports: a headless Service gets none", svcs: []*corev1.Service{service("default/db", headless(), nodePort(0))},
			want:     map[string]string{"default/db": "headless"},
			problems: []string{"service default/db: no node ports: a headless Service (clusterIP: None) has none"}},
		{name: "node ports: exhausted", cfg: Config{NodePorts: PortRange{30000, 30001}},
			svcs:     []*corev1.Service{service("a/a", withIP("10.96.0.10"), nodePort(0)), service("a/b", withIP("10.96.0.11"), nodePort(0)), service("a/c", withIP("10.96.0.12"), nodePort(0))},
			want:     map[string]string{"a/a": "10.96.0.10 80/TCP=30000", "a/b": "10.96.0.11 80/TCP=30001", "a/c": "10.96.0.12"},
			problems: []string{"service a/c: port 80/TCP: no node port: service-node-port-range 30000-30001 exhausted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := &State{Term: 1, Seq: 1, Services: tt.prev, Released: tt.released}
			st, rep, err := Allocate(prev, nil, tt.svcs, Options{Now: t0, Config: tt.cfg})
			if err != nil {
				t.Fatal(err)
			}
			if got := allocOf(st); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("allocations:\n got %v\nwant %v", got, tt.want)
			}
			checkFindings(t, "problems", rep.Problems, tt.problems)
			checkFindings(t, "notes", rep.Notes, tt.notes)
			if len(st.Released) != tt.quar {
				t.Errorf("quarantine: %+v, want %d entries", st.Released, tt.quar)
			}
		})
	}
}

func TestServiceAllocationIgnoresOrder(t *testing.T) {
	svcs := []*corev1.Service{service("a/x"), service("b/y"), service("c/z", nodePort(0)), service("d/w", withIP("10.96.0.50"))}
	first, _, err := Allocate(nil, nil, svcs, Options{Term: 1, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	rev := []*corev1.Service{svcs[3], svcs[2], svcs[1], svcs[0]}
	second, _, err := Allocate(nil, nil, rev, Options{Term: 1, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if !first.Equal(&second) {
		t.Errorf("the order of the Services changed the allocation:\n%v\n%v", allocOf(first), allocOf(second))
	}
}

// TestServiceAllocationProperties churns Services in a small range and
// checks the allocator's promises after every round.
func TestServiceAllocationProperties(t *testing.T) {
	cfg := Config{ServiceCIDR: pfx("10.96.0.0/27"), NodePorts: PortRange{30000, 30020}, Quarantine: 30 * time.Minute}
	keys := []string{}
	for i := range 36 {
		keys = append(keys, fmt.Sprintf("ns%d/s%d", i%3, i))
	}
	for seed := uint64(1); seed <= 30; seed++ {
		rng := rand.New(rand.NewPCG(seed, 11))
		specs := map[string]*corev1.Service{}
		var prev *State
		now := t0
		type rel struct {
			by string
			at time.Time
		}
		releasedIP := map[netip.Addr]rel{}
		for round := range 80 {
			now = now.Add(time.Duration(rng.IntN(15)) * time.Minute)
			for k := rng.IntN(4); k >= 0; k-- {
				key := keys[rng.IntN(len(keys))]
				switch rng.IntN(6) {
				case 0:
					delete(specs, key)
				case 1:
					specs[key] = service(key, withIP(fmt.Sprintf("10.96.0.%d", rng.IntN(34))))
				case 2:
					specs[key] = service(key, headless())
				case 3:
					specs[key] = service(key, nodePort(int32(29998+rng.IntN(25))*int32(rng.IntN(2))))
				default:
					specs[key] = service(key)
				}
			}
			var svcs []*corev1.Service
			for _, k := range sortedKeys(specs) {
				svcs = append(svcs, specs[k])
			}
			st, rep, err := Allocate(prev, nil, svcs, Options{Term: 1, Now: now, Config: cfg})
			ctx := fmt.Sprintf("seed %d round %d", seed, round)
			if err != nil {
				t.Fatalf("%s: %v", ctx, err)
			}
			ips := map[netip.Addr]string{}
			ports := map[string]string{}
			for _, k := range sortedKeys(st.Services) {
				a := st.Services[k]
				svc := specs[k]
				if svc == nil {
					t.Fatalf("%s: deleted service %s still holds %v", ctx, k, a)
				}
				if a.ClusterIP.IsValid() {
					if other, dup := ips[a.ClusterIP]; dup {
						t.Fatalf("%s: %s held by %s and %s", ctx, a.ClusterIP, other, k)
					}
					ips[a.ClusterIP] = k
					if why := (&serviceAllocator{cfg: DefaultConfigWith(cfg)}).reservedIP(a.ClusterIP); why != "" {
						t.Fatalf("%s: %s holds %s: %s", ctx, k, a.ClusterIP, why)
					}
					var old ServiceAlloc
					if prev != nil {
						old = prev.Services[k]
					}
					if r, ok := releasedIP[a.ClusterIP]; ok && old.ClusterIP != a.ClusterIP && r.by != k && now.Sub(r.at) < cfg.Quarantine && svc.Spec.ClusterIP != a.ClusterIP.String() {
						t.Fatalf("%s: %s took %s, released by %s %s ago", ctx, k, a.ClusterIP, r.by, now.Sub(r.at))
					}
				} else if !a.Headless && len(rep.For("service "+k)) == 0 {
					t.Fatalf("%s: %s has no IP and no reason", ctx, k)
				}
				for pk, np := range a.NodePorts {
					_, proto, _ := strings.Cut(pk, "/")
					key := fmt.Sprint(np, proto)
					if other, dup := ports[key]; dup {
						t.Fatalf("%s: node port %s held by %s and %s", ctx, key, other, k)
					}
					ports[key] = k
					if !cfg.NodePorts.Contains(np) {
						t.Fatalf("%s: node port %d out of range", ctx, np)
					}
				}
				if prev != nil {
					if old, ok := prev.Services[k]; ok && old.ClusterIP.IsValid() && old.ClusterIP != a.ClusterIP && svc.Spec.ClusterIP == "" {
						t.Fatalf("%s: %s moved from %s to %s with no change", ctx, k, old.ClusterIP, a.ClusterIP)
					}
				}
			}
			for _, r := range st.Released {
				if r.IP.IsValid() {
					if _, seen := releasedIP[r.IP]; !seen || r.Since.Equal(now) {
						releasedIP[r.IP] = rel{r.Service, r.Since}
					}
				}
			}
			again, _, err := Allocate(&st, nil, svcs, Options{Term: 1, Now: now, Config: cfg})
			if err != nil || !again.Equal(&st) || again.Seq != st.Seq {
				t.Fatalf("%s: allocating again changed the state: %v → %v", ctx, allocOf(st), allocOf(again))
			}
			prev = &st
		}
	}
}

// DefaultConfigWith returns c with its zero fields defaulted.
func DefaultConfigWith(c Config) Config {
	if err := c.Validate(); err != nil {
		panic(err)
	}
	return c
}

func TestTargetPortDefaults(t *testing.T) {
	sp := corev1.ServicePort{Port: 80}
	if got, ok := targetPort(sp, corev1.ProtocolTCP, &Pod{}); !ok || got != 80 {
		t.Errorf("unset targetPort = %d, %v; want the port", got, ok)
	}
	sp.TargetPort = intstr.FromString("web")
	if _, ok := targetPort(sp, corev1.ProtocolTCP, &Pod{Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 1, Protocol: corev1.ProtocolUDP}}}); ok {
		t.Error("a named port of another protocol resolved")
	}
}
