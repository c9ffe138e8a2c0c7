package reconciler

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// tpod is a desired pod of containers named names (each "init:NAME" is an
// init container) in namespace default.
func tpod(name, hash string, policy RestartPolicy, names ...string) Pod {
	p := Pod{Namespace: "default", Name: name, Hash: hash, RestartPolicy: policy, Owner: Owner{Kind: "Pod", Name: name}, TerminationGracePeriod: 30 * time.Second}
	for _, n := range names {
		if init, ok := strings.CutPrefix(n, "init:"); ok {
			p.InitContainers = append(p.InitContainers, Container{Name: init, Image: "busybox"})
			continue
		}
		p.Containers = append(p.Containers, Container{Name: n, Image: "busybox"})
	}
	return p
}

// running is the actual state of p when everything runs as desired.
func running(p Pod) ActualPod {
	a := ActualPod{Namespace: p.Namespace, Name: p.Name, Hash: p.Hash, SandboxReady: true, Networks: p.Networks, GracePeriod: p.TerminationGracePeriod}
	for _, c := range p.InitContainers {
		a.Containers = append(a.Containers, ActualContainer{Name: c.Name, State: Exited})
	}
	for _, c := range p.Containers {
		a.Containers = append(a.Containers, ActualContainer{Name: c.Name, State: Running})
	}
	return a
}

// withContainer returns a with container c's state replaced (or added).
func withContainer(a ActualPod, c ActualContainer) ActualPod {
	out := a
	out.Containers = nil
	found := false
	for _, old := range a.Containers {
		if old.Name == c.Name {
			old, found = c, true
		}
		out.Containers = append(out.Containers, old)
	}
	if !found {
		out.Containers = append(out.Containers, c)
	}
	return out
}

// withIP returns a with its address set to ip.
func withIP(a ActualPod, ip string) ActualPod {
	a.IP = ip
	return a
}

// withoutContainer returns a without container name.
func withoutContainer(a ActualPod, name string) ActualPod {
	out := a
	out.Containers = nil
	for _, c := range a.Containers {
		if c.Name != name {
			out.Containers = append(out.Containers, c)
		}
	}
	return out
}

// planText renders a plan result for comparison: actions, then waits and
// kept subjects.
func planText(r PlanResult) string {
	var b strings.Builder
	b.WriteString(actionStrings(r.Actions))
	for _, w := range r.Waiting {
		b.WriteString("wait " + w.String())
		if !w.Until.IsZero() {
			b.WriteString(" until " + w.Until.Format(time.TimeOnly))
		}
		b.WriteByte('\n')
	}
	for _, k := range r.Kept {
		b.WriteString("keep " + k.String() + "\n")
	}
	return b.String()
}

// TestPlan checks the plan for a desired and an actual state.
func TestPlan(t *testing.T) {
	web := tpod("web-0", "sha256:aaaaaaaaaaaaaaaa", RestartAlways, "httpd", "sidecar")
	onFailure := tpod("job", "sha256:bbbb", RestartOnFailure, "main")
	never := tpod("once", "sha256:cccc", RestartNever, "main")
	withInit := tpod("init", "sha256:dddd", RestartAlways, "init:setup", "main")
	initNever := tpod("init-never", "sha256:eeee", RestartNever, "init:setup", "main")
	lan := Network{Name: "lan", Type: "bridge", Subnet: "10.9.0.0/24", Hash: "sha256:1111"}
	onLan := tpod("on-lan", "sha256:ffff", RestartAlways, "main")
	onLan.Networks = []string{"lan"}
	data := Claim{Namespace: "default", Name: "data", StorageBytes: 1 << 30}
	withClaim := tpod("db-0", "sha256:9999", RestartAlways, "db")
	withClaim.Volumes = []Volume{{Name: "data", Source: data}}
	hostNet := tpod("host", "sha256:8888", RestartAlways, "main")
	hostNet.HostNetwork = true
	// exited is a container that exited ago after a short run, having been
	// restarted restarts times in one streak (no run long enough to reset
	// the back-off).
	exited := func(name string, code, restarts int, ago time.Duration) ActualContainer {
		return ActualContainer{Name: name, State: Exited, ExitCode: code, Restarts: restarts, Streak: restarts, StartedAt: now.Add(-ago - time.Second), FinishedAt: now.Add(-ago)}
	}

	tests := []struct {
		name    string
		desired Desired
		actual  Actual
		opts    PlanOptions // Now is set to now
		want    string
		next    time.Time
	}{
		{
			name:    "create from empty: networks and claims first",
			desired: Desired{Pods: []Pod{withClaim, onLan, web}, Networks: []Network{lan}, Claims: []Claim{data}},
			want: `+ create network lan (not present)
+ create claim default/data (not present)
+ create pod default/db-0 (not running)
+ create pod default/on-lan (not running)
+ create pod default/web-0 (not running)
`,
		},
		{
			name:    "converged",
			desired: Desired{Pods: []Pod{web, onLan}, Networks: []Network{lan}, Claims: []Claim{data}},
			actual:  Actual{Pods: []ActualPod{running(web), running(onLan)}, Networks: []ActualNetwork{{Name: "lan", Hash: lan.Hash}}, Claims: []ActualClaim{{Namespace: "default", Name: "data"}}},
		},
		{
			name:    "pod outside the host's pod range is renumbered; inside, unknown and hostNetwork are not",
			desired: Desired{Pods: []Pod{web, onFailure, never, hostNet}},
			actual: Actual{Pods: []ActualPod{
				withIP(running(web), "10.244.0.7"), withIP(running(onFailure), "10.244.1.9"),
				running(never), withIP(running(hostNet), "192.168.1.4"),
			}},
			opts: PlanOptions{PodSubnet: netip.MustParsePrefix("10.244.1.0/24")},
			want: `-/+ replace pod default/web-0 (address 10.244.0.7 is outside this host's pod range 10.244.1.0/24)
`,
		},
		{
			name:    "spec changed",
			desired: Desired{Pods: []Pod{web}},
			actual:  Actual{Pods: []ActualPod{func() ActualPod { a := running(web); a.Hash = "sha256:0123456789abcdef"; return a }()}},
			want:    "-/+ replace pod default/web-0 (spec changed: sha256:0123456789ab → sha256:aaaaaaaaaaaa)\n",
		},
		{
			name:    "interrupted replace: hash unknown",
			desired: Desired{Pods: []Pod{web}},
			actual:  Actual{Pods: []ActualPod{func() ActualPod { a := running(web); a.Hash = ""; return a }()}},
			want:    "-/+ replace pod default/web-0 (spec changed: (none) → sha256:aaaaaaaaaaaa)\n",
		},
		{
			name:    "sandbox gone",
			desired: Desired{Pods: []Pod{web}},
			actual:  Actual{Pods: []ActualPod{func() ActualPod { a := running(web); a.SandboxReady = false; return a }()}},
			want:    "-/+ replace pod default/web-0 (sandbox gone)\n",
		},
		{
			name:    "unexpected container",
			desired: Desired{Pods: []Pod{web}},
			actual:  Actual{Pods: []ActualPod{withContainer(running(web), ActualContainer{Name: "intruder", State: Running})}},
			want:    "-/+ replace pod default/web-0 (unexpected container intruder)\n",
		},
		{
			name:    "drift: a container deleted",
			desired: Desired{Pods: []Pod{web}},
			actual:  Actual{Pods: []ActualPod{withoutContainer(running(web), "sidecar")}},
			want:    "~ update pod default/web-0 (container sidecar missing)\n",
		},
		{
			name:    "drift: containers missing",
			desired: Desired{Pods: []Pod{web}},
			actual: Actual{Pods: []ActualPod{withContainer(withContainer(running(web),
				ActualContainer{Name: "httpd", State: Missing}), ActualContainer{Name: "sidecar", State: Missing})}},
			want: "~ update pod default/web-0 (containers httpd, sidecar missing)\n",
		},
		{
			name:    "drift: missing and exited in one pod",
			desired: Desired{Pods: []Pod{web}},
			actual:  Actual{Pods: []ActualPod{withContainer(withoutContainer(running(web), "sidecar"), exited("httpd", 137, 0, time.Hour))}},
			want: `~ update pod default/web-0 (container sidecar missing)
~ update container default/web-0/httpd (container httpd exited 137, restart 1 at once)
`,
		},
		{
			name:    "exited after a long run: the back-off resets, restart at once",
			desired: Desired{Pods: []Pod{web}},
			actual: Actual{Pods: []ActualPod{withContainer(running(web), ActualContainer{Name: "httpd", State: Exited, ExitCode: 1, Restarts: 9, Streak: 9,
				StartedAt: now.Add(-time.Hour), FinishedAt: now.Add(-time.Second)})}},
			want: "~ update container default/web-0/httpd (container httpd exited 1, restart 10 at once)\n",
		},
		{
			name:    "exited after a reset streak: at once however many restarts",
			desired: Desired{Pods: []Pod{web}},
			actual:  Actual{Pods: []ActualPod{withContainer(running(web), ActualContainer{Name: "httpd", State: Exited, ExitCode: 1, Restarts: 40, FinishedAt: now.Add(-time.Second)})}},
			want:    "~ update container default/web-0/httpd (container httpd exited 1, restart 41 at once)\n",
		},
		{
			name:    "created but never started",
			desired: Desired{Pods: []Pod{web}},
			actual:  Actual{Pods: []ActualPod{withContainer(running(web), ActualContainer{Name: "httpd", State: Created})}},
			want:    "~ update container default/web-0/httpd (container httpd created but never started)\n",
		},
		{
			name:    "exited: back-off elapsed",
			desired: Desired{Pods: []Pod{web}},
			actual:  Actual{Pods: []ActualPod{withContainer(running(web), exited("httpd", 1, 2, 20*time.Second))}},
			want:    "~ update container default/web-0/httpd (container httpd exited 1, restart 3 after back-off 20s)\n",
		},
		{
			name:    "exited: back-off not elapsed",
			desired: Desired{Pods: []Pod{web}},
			actual:  Actual{Pods: []ActualPod{withContainer(running(web), exited("httpd", 1, 2, 19*time.Second))}},
			want:    "wait container default/web-0/httpd: container httpd exited 1, restart 3 waits for back-off 20s until 12:00:01\n",
			next:    now.Add(time.Second),
		},
		{
			name:    "exited: back-off capped at 5 minutes",
			desired: Desired{Pods: []Pod{web}},
			actual: Actual{Pods: []ActualPod{withContainer(withContainer(running(web),
				exited("httpd", 1, 30, 4*time.Minute)), exited("sidecar", 1, 6, 5*time.Minute))}},
			want: `~ update container default/web-0/sidecar (container sidecar exited 1, restart 7 after back-off 5m0s)
wait container default/web-0/httpd: container httpd exited 1, restart 31 waits for back-off 5m0s until 12:01:00
`,
			next: now.Add(time.Minute),
		},
		{
			name:    "exited: unknown finish time counts as long ago",
			desired: Desired{Pods: []Pod{web}},
			actual:  Actual{Pods: []ActualPod{withContainer(running(web), ActualContainer{Name: "httpd", State: Exited, ExitCode: 2, Restarts: 7, Streak: 7})}},
			want:    "~ update container default/web-0/httpd (container httpd exited 2, restart 8 after back-off 5m0s)\n",
		},
		{
			name:    "restart policy Always restarts a clean exit",
			desired: Desired{Pods: []Pod{web}},
			actual:  Actual{Pods: []ActualPod{withContainer(running(web), exited("httpd", 0, 0, time.Minute))}},
			want:    "~ update container default/web-0/httpd (container httpd exited 0, restart 1 at once)\n",
		},
		{
			name:    "restart policy OnFailure",
			desired: Desired{Pods: []Pod{onFailure, func() Pod { p := onFailure; p.Name = "job-2"; return p }()}},
			actual: Actual{Pods: []ActualPod{
				withContainer(running(onFailure), exited("main", 0, 0, time.Minute)),
				func() ActualPod {
					a := withContainer(running(onFailure), exited("main", 3, 0, time.Minute))
					a.Name = "job-2"
					return a
				}(),
			}},
			want: "~ update container default/job-2/main (container main exited 3, restart 1 at once)\n",
		},
		{
			name:    "restart policy Never",
			desired: Desired{Pods: []Pod{never}},
			actual:  Actual{Pods: []ActualPod{withContainer(running(never), exited("main", 1, 0, time.Hour))}},
		},
		{
			name:    "failed init container retried after back-off",
			desired: Desired{Pods: []Pod{withInit}},
			actual: Actual{Pods: []ActualPod{withContainer(withoutContainer(running(withInit), "main"),
				exited("setup", 1, 1, 10*time.Second))}},
			want: "~ update pod default/init (init container setup exited 1, retry 2 after back-off 10s)\n",
		},
		{
			name:    "failed init container waits for back-off",
			desired: Desired{Pods: []Pod{withInit}},
			actual: Actual{Pods: []ActualPod{withContainer(withoutContainer(running(withInit), "main"),
				exited("setup", 1, 1, 5*time.Second))}},
			want: "wait pod default/init: init container setup exited 1, retry 2 waits for back-off 10s until 12:00:05\n",
			next: now.Add(5 * time.Second),
		},
		{
			name:    "failed init container with restartPolicy Never",
			desired: Desired{Pods: []Pod{initNever}},
			actual: Actual{Pods: []ActualPod{withContainer(withoutContainer(running(initNever), "main"),
				exited("setup", 1, 0, time.Hour))}},
			want: "wait pod default/init-never: init container setup failed (exit 1) and restartPolicy is Never\n",
		},
		{
			name:    "completed init container gone is fine",
			desired: Desired{Pods: []Pod{withInit}},
			actual:  Actual{Pods: []ActualPod{withoutContainer(running(withInit), "setup")}},
		},
		{
			name:    "obsolete pod kept without prune",
			desired: Desired{Pods: []Pod{web}},
			actual:  Actual{Pods: []ActualPod{running(web), running(tpod("old", "sha256:0", RestartAlways, "main"))}},
			want:    "keep pod default/old: no longer desired; kept because pruning is off\n",
		},
		{
			name:    "obsolete pod deleted with prune, with its own grace period",
			desired: Desired{Pods: []Pod{web}},
			actual:  Actual{Pods: []ActualPod{running(web), running(tpod("old", "sha256:0", RestartAlways, "main"))}},
			opts:    PlanOptions{Prune: true},
			want:    "- delete pod default/old (no longer desired)\n",
		},
		{
			name:   "empty desired allowed",
			actual: Actual{Pods: []ActualPod{running(web)}},
			opts:   PlanOptions{Prune: true, AllowEmpty: true},
			want:   "- delete pod default/web-0 (no longer desired)\n",
		},
		{
			name:    "empty desired and empty host",
			desired: Desired{Networks: []Network{lan}},
			actual:  Actual{Networks: []ActualNetwork{{Name: "lan", Hash: lan.Hash}}},
		},
		{
			name:    "network spec changed: updated before the pods that use it are replaced",
			desired: Desired{Pods: []Pod{onLan}, Networks: []Network{lan}},
			actual: Actual{
				Pods:     []ActualPod{func() ActualPod { a := running(onLan); a.Hash = "sha256:old"; return a }()},
				Networks: []ActualNetwork{{Name: "lan", Hash: "sha256:2222"}},
			},
			want: `~ update network lan (spec changed: sha256:2222 → sha256:1111)
-/+ replace pod default/on-lan (spec changed: sha256:old → sha256:ffff)
`,
		},
		{
			name:    "network removed after the pods that used it",
			desired: Desired{Pods: []Pod{web}},
			actual:  Actual{Pods: []ActualPod{running(web), running(onLan)}, Networks: []ActualNetwork{{Name: "lan", Hash: lan.Hash}}},
			opts:    PlanOptions{Prune: true},
			want: `- delete pod default/on-lan (no longer desired)
- delete network lan (no longer desired)
`,
		},
		{
			name:    "network kept while a kept pod uses it",
			desired: Desired{Pods: []Pod{web}},
			actual:  Actual{Pods: []ActualPod{running(web), running(onLan)}, Networks: []ActualNetwork{{Name: "lan", Hash: lan.Hash}}},
			want: `keep network lan: no longer desired; still used by pod default/on-lan
keep pod default/on-lan: no longer desired; kept because pruning is off
`,
		},
		{
			name:    "network kept without prune",
			desired: Desired{Pods: []Pod{web}},
			actual:  Actual{Pods: []ActualPod{running(web)}, Networks: []ActualNetwork{{Name: "lan", Hash: lan.Hash}}},
			want:    "keep network lan: no longer desired; kept because pruning is off\n",
		},
		{
			name:    "claims are never deleted",
			desired: Desired{Pods: []Pod{web}},
			actual:  Actual{Pods: []ActualPod{running(web), running(withClaim)}, Claims: []ActualClaim{{Namespace: "default", Name: "data"}}},
			opts:    PlanOptions{Prune: true, AllowEmpty: true},
			want: `- delete pod default/db-0 (no longer desired)
keep claim default/data: no longer desired; a claim's data is only removed by an explicit volume removal
`,
		},
		{
			name: "ordering across stages and names",
			desired: Desired{
				Pods: []Pod{
					tpod("web-2", "h", RestartAlways, "main"), tpod("web-10", "h", RestartAlways, "main"),
					func() Pod { p := tpod("a", "h", RestartAlways, "main"); p.Namespace = "zeta"; return p }(),
					tpod("web-1", "h", RestartAlways, "b", "a"),
				},
			},
			actual: Actual{Pods: []ActualPod{
				running(tpod("gone", "h", RestartAlways, "main")),
				withContainer(withContainer(running(tpod("web-1", "h", RestartAlways, "b", "a")), exited("b", 1, 0, time.Hour)), exited("a", 1, 0, time.Hour)),
			}},
			opts: PlanOptions{Prune: true},
			want: `- delete pod default/gone (no longer desired)
+ create pod default/web-2 (not running)
+ create pod default/web-10 (not running)
+ create pod zeta/a (not running)
~ update container default/web-1/a (container a exited 1, restart 1 at once)
~ update container default/web-1/b (container b exited 1, restart 1 at once)
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.Now = now
			res, err := Plan(tt.desired, tt.actual, opts)
			if err != nil {
				t.Fatalf("Plan: %v", err)
			}
			if got := planText(res); got != tt.want {
				t.Errorf("plan:\n--- got\n%s--- want\n%s", got, tt.want)
			}
			if !res.NextCheck.Equal(tt.next) {
				t.Errorf("NextCheck %v, want %v", res.NextCheck, tt.next)
			}
			if res.Empty() != (len(res.Actions) == 0) {
				t.Errorf("Empty() = %v with %d actions", res.Empty(), len(res.Actions))
			}
			checkStages(t, res.Actions)
			checkPayloads(t, res.Actions)
			// The plan does not depend on the order of the actual state.
			shuffled := shuffleActual(tt.actual, rand.New(rand.NewPCG(1, 2)))
			again, err := Plan(tt.desired, shuffled, opts)
			if err != nil || !reflect.DeepEqual(again, res) {
				t.Errorf("the plan of a reordered actual state differs:\n%s", planText(again))
			}
		})
	}
}

// checkStages checks that actions are sorted by stage and that each kind
// of action is in its stage.
func checkStages(t *testing.T, actions []Action) {
	t.Helper()
	for i, a := range actions {
		if i > 0 && a.Stage < actions[i-1].Stage {
			t.Errorf("action %d (%s) is in stage %s after stage %s", i, a, a.Stage, actions[i-1].Stage)
		}
		var want Stage
		switch {
		case a.Subject.Type == SubjectNetwork && a.Kind == Delete:
			want = StageTeardown
		case a.Subject.Type == SubjectNetwork || a.Subject.Type == SubjectClaim:
			want = StageSetup
		case a.Subject.Type == SubjectPod && a.Kind == Delete:
			want = StageRemovePods
		case a.Subject.Type == SubjectPod:
			want = StagePods
		default:
			want = StageContainers
		}
		if a.Stage != want {
			t.Errorf("%s is in stage %s, want %s", a, a.Stage, want)
		}
	}
}

// checkPayloads checks every action carries the payload it needs.
func checkPayloads(t *testing.T, actions []Action) {
	t.Helper()
	for _, a := range actions {
		var ok bool
		switch {
		case a.Kind == Delete:
			ok = a.Pod == nil && a.Network == nil && a.Claim == nil
		case a.Subject.Type == SubjectNetwork:
			ok = a.Network != nil && a.Network.Name == a.Subject.Name
		case a.Subject.Type == SubjectClaim:
			ok = a.Claim != nil && a.Claim.Name == a.Subject.Name
		default:
			ok = a.Pod != nil && a.Pod.Name == a.Subject.Name && a.Pod.Namespace == a.Subject.Namespace
		}
		if !ok {
			t.Errorf("%s has the wrong payload: %+v", a, a)
		}
		if (a.Kind == Delete || a.Kind == Replace) && a.Subject.Type == SubjectPod && a.Grace != 30*time.Second {
			t.Errorf("%s has grace %v, want the actual pod's 30s", a, a.Grace)
		}
	}
}

// shuffleActual returns a copy of a with its lists in random order.
func shuffleActual(a Actual, r *rand.Rand) Actual {
	out := Actual{
		Pods:     append([]ActualPod(nil), a.Pods...),
		Networks: append([]ActualNetwork(nil), a.Networks...),
		Claims:   append([]ActualClaim(nil), a.Claims...),
	}
	r.Shuffle(len(out.Pods), func(i, j int) { out.Pods[i], out.Pods[j] = out.Pods[j], out.Pods[i] })
	r.Shuffle(len(out.Networks), func(i, j int) { out.Networks[i], out.Networks[j] = out.Networks[j], out.Networks[i] })
	r.Shuffle(len(out.Claims), func(i, j int) { out.Claims[i], out.Claims[j] = out.Claims[j], out.Claims[i] })
	return out
}

// TestPlanRefuses checks the inputs Plan refuses.
func TestPlanRefuses(t *testing.T) {
	web := tpod("web-0", "h", RestartAlways, "main")
	onLan := tpod("on-lan", "h", RestartAlways, "main")
	onLan.Networks = []string{"lan"}
	db := tpod("db", "h", RestartAlways, "main")
	db.Volumes = []Volume{{Name: "d", Source: Claim{Namespace: "default", Name: "data"}}}
	tests := []struct {
		name    string
		desired Desired
		actual  Actual
		opts    PlanOptions
		is      error
		msg     string
	}{
		{"empty desired", Desired{}, Actual{Pods: []ActualPod{running(web)}}, PlanOptions{Now: now, Prune: true}, ErrEmptyDesired,
			"plan: the desired state has no pods but the host runs some; refusing to plan their removal (1 running)"},
		{"empty desired without prune", Desired{}, Actual{Pods: []ActualPod{running(web)}}, PlanOptions{Now: now}, ErrEmptyDesired, ""},
		{"no time", Desired{Pods: []Pod{web}}, Actual{}, PlanOptions{}, nil, "plan: PlanOptions.Now is zero; pass the current time"},
		{"duplicate desired pod", Desired{Pods: []Pod{web, web}}, Actual{}, PlanOptions{Now: now}, nil, "plan: pod default/web-0 is desired twice"},
		{"duplicate actual pod", Desired{Pods: []Pod{web}}, Actual{Pods: []ActualPod{running(web), running(web)}}, PlanOptions{Now: now}, nil,
			"plan: the actual state lists pod default/web-0 twice"},
		{"undesired network", Desired{Pods: []Pod{onLan}}, Actual{}, PlanOptions{Now: now}, nil,
			"plan: pod default/on-lan joins network lan, which is not desired"},
		{"undesired claim", Desired{Pods: []Pod{db}}, Actual{}, PlanOptions{Now: now}, nil,
			"plan: pod default/db uses claim default/data, which is not desired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Plan(tt.desired, tt.actual, tt.opts)
			if err == nil {
				t.Fatalf("Plan succeeded: %s", planText(res))
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if tt.msg != "" && err.Error() != tt.msg {
				t.Errorf("error %q, want %q", err, tt.msg)
			}
		})
	}
}

// TestActionString checks the terraform-style rendering of actions.
func TestActionString(t *testing.T) {
	for _, tt := range []struct {
		a    Action
		want string
	}{
		{Action{Kind: Create, Subject: podSubject("default", "web-0"), Reason: "not running"}, "+ create pod default/web-0 (not running)"},
		{Action{Kind: Replace, Subject: podSubject("default", "web-0"), Reason: "sandbox gone"}, "-/+ replace pod default/web-0 (sandbox gone)"},
		{Action{Kind: Delete, Subject: Subject{Type: SubjectNetwork, Name: "lan"}}, "- delete network lan"},
		{Action{Kind: Update, Subject: containerSubject("ns", "p", "c"), Reason: "r"}, "~ update container ns/p/c (r)"},
		{Action{Kind: Create, Subject: Subject{Type: SubjectClaim, Namespace: "default", Name: "data"}, Reason: "not present"}, "+ create claim default/data (not present)"},
	} {
		if got := tt.a.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

// TestNaturalLess checks the order of names with numbers.
func TestNaturalLess(t *testing.T) {
	sorted := []string{"", "a", "a-0", "a-1", "a-01", "a-2", "a-10", "a-10b", "a-100", "ab", "b", "web-9", "web-10"}
	for i := range sorted {
		for j := range sorted {
			if got := naturalLess(sorted[i], sorted[j]); got != (i < j) {
				t.Errorf("naturalLess(%q, %q) = %v", sorted[i], sorted[j], got)
			}
		}
	}
}

// TestLabelNames checks JoinName and SplitName.
func TestLabelNames(t *testing.T) {
	if got := JoinName("default", "web-0"); got != "default/web-0" {
		t.Errorf("JoinName = %q", got)
	}
	for in, ok := range map[string]bool{"default/web-0": true, "web-0": false, "/x": false, "x/": false, "a/b/c": false} {
		ns, name, got := SplitName(in)
		if got != ok || (ok && JoinName(ns, name) != in) {
			t.Errorf("SplitName(%q) = %q, %q, %v", in, ns, name, got)
		}
	}
}
