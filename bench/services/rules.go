package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kelpie-dev/kelpie/netplan"
	"github.com/kelpie-dev/kelpie/runtime/nft"
)

// rulesCmd times (a) programming every Service and (b) one endpoint change
// among them: kelpie's path (BuildRuleset, the agent's comparison with the
// ruleset programmed before, then nft.Loader, as agent.programDataPath
// does), the same transactions
// by `nft -f FILE` (the floor), and kube-proxy-shaped rules by
// iptables-restore. It runs in the namespace it is to program.
func rulesCmd(args []string) error {
	fs := flag.NewFlagSet("rules", flag.ExitOnError)
	nSvc := fs.Int("services", 1000, "Services")
	nEp := fs.Int("endpoints", 10, "endpoints per Service")
	runs := fs.Int("runs", 7, "timed runs of each change")
	fullRuns := fs.Int("full-runs", 3, "timed runs of each full load (iptables-nft takes tens of seconds)")
	dir := fs.String("dir", "", "directory for the rule files (required)")
	ipts := fs.String("iptables", "iptables-nft-restore,iptables-legacy-restore", "iptables-restore binaries to compare, comma-separated; those that fail are reported and skipped")
	vip := fs.String("vip", "", "IP:PORT of one more Service, left programmed at the end (the latency part)")
	backend := fs.String("backend", "", "IP:PORT of that Service's one endpoint")
	_ = fs.Parse(args)
	if *dir == "" || *runs < 1 || *fullRuns < 1 || *nSvc < 2 || *nEp < 1 {
		return errors.New("-dir is required; -runs, -services (≥2) and -endpoints must be positive")
	}
	var extra netplan.Service
	if *vip != "" {
		v, err1 := netip.ParseAddrPort(*vip)
		b, err2 := netip.ParseAddrPort(*backend)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("-vip/-backend: %w", err)
		}
		extra = netplan.Service{Namespace: "default", Name: "echo", ClusterIP: v.Addr(), Ports: []netplan.Port{{
			Protocol: corev1.ProtocolTCP, Port: int32(v.Port()),
			Endpoints: []netplan.Endpoint{{IP: b.Addr(), Port: int32(b.Port()), Node: benchNode, Pod: "echo"}}}}}
	}
	b := &rulesBench{dir: *dir, nSvc: *nSvc, runs: *runs, fullRuns: *fullRuns, base: services(*nSvc, *nEp, extra)}
	b.ctx = context.Background()
	for _, name := range strings.Split(*ipts, ",") {
		if name = strings.TrimSpace(name); name != "" {
			b.ipts = append(b.ipts, name)
		}
	}
	return b.run()
}

// rulesBench holds one run of rulesCmd.
type rulesBench struct {
	ctx      context.Context
	dir      string
	nSvc     int
	runs     int
	fullRuns int
	base     []netplan.Service
	ipts     []string
	rows     []row
}

// series is the runs of one measurement, in milliseconds: wall-clock
// time, and CPU time (empty when not measured apart).
type series struct{ wall, cpu []float64 }

// add records one run.
func (s *series) add(c cost) {
	s.wall = append(s.wall, ms(c.wall))
	s.cpu = append(s.cpu, ms(c.cpu))
}

// row is one line of the results.
type row struct {
	what      string
	wall, cpu summary
}

// add records the runs of one line.
func (b *rulesBench) add(what string, s series) {
	b.rows = append(b.rows, row{what, summarize(s.wall), summarize(s.cpu)})
}

// write writes a rule file and returns its path.
func (b *rulesBench) write(name, text string) (string, error) {
	p := filepath.Join(b.dir, name)
	return p, os.WriteFile(p, []byte(text), 0o644)
}

// cost is what one run took: wall-clock time, and the CPU time (user and
// system, of this process and the processes it waited for) it used.
type cost struct{ wall, cpu time.Duration }

// cpuNow is the CPU time used so far by this process and its children.
func cpuNow() time.Duration {
	var self, kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime)
}

// measure runs f and returns its cost.
func measure(f func() error) (cost, error) {
	c0, t0 := cpuNow(), time.Now()
	err := f()
	return cost{wall: time.Since(t0), cpu: cpuNow() - c0}, err
}

// timed runs the command and returns its cost.
func timed(stdin string, name string, args ...string) (cost, error) {
	cmd := exec.Command(name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	t := time.Now()
	out, err := cmd.CombinedOutput()
	d := cost{wall: time.Since(t)}
	if cmd.ProcessState != nil {
		d.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if len(msg) > 500 {
			msg = msg[:500] + " …"
		}
		return d, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return d, nil
}

// resetNft deletes kelpie's table, if there.
func resetNft() { _, _ = timed("", "nft", "delete", "table", netplan.TableFamily, netplan.TableName) }

// resetIptables empties the nat table (a restore without --noflush
// flushes every chain and deletes the user-defined ones).
func resetIptables(bin string) error {
	_, err := timed("*nat\nCOMMIT\n", bin)
	return err
}

func (b *rulesBench) run() error {
	rs0, err := rulesetOf(b.base)
	if err != nil {
		return err
	}
	full := rs0.Text()
	fullPath, err := b.write("full.nft", full)
	if err != nil {
		return err
	}
	iptFull := iptables(b.base, true, nil, "")
	iptPath, err := b.write("full.iptables", iptFull)
	if err != nil {
		return err
	}
	st := rs0.Stats()
	fmt.Printf("workload: %d Services x %d endpoints (%d Services in all)\n", b.nSvc, len(b.base[0].Ports[0].Endpoints), len(b.base))
	fmt.Printf("  kelpie table: %d chains, %d rules, %d set/map elements, %d sets/maps; nft text %d lines, %d KiB\n",
		st.Chains, st.Rules, st.Elements, st.Sets, strings.Count(full, "\n"), len(full)/1024)
	fmt.Printf("  kube-proxy nat table: %d rules in %d chains; iptables-restore text %d KiB\n",
		iptablesRules(iptFull), strings.Count(iptFull, "\n:"), len(iptFull)/1024)

	// The iptables binaries that work here.
	var ipts []string
	for _, bin := range b.ipts {
		if _, err := exec.LookPath(bin); err != nil {
			fmt.Printf("  %s: not installed, skipped\n", bin)
			continue
		}
		if err := resetIptables(bin); err != nil {
			fmt.Printf("  %s: unusable here, skipped (%v)\n", bin, err)
			continue
		}
		ipts = append(ipts, bin)
	}

	// (a) Programming everything, from nothing: each in turn, run by run.
	var kelpieFull, floorFull series
	iptFullT := make([]series, len(ipts))
	for range b.fullRuns {
		resetNft()
		d, err := b.kelpieLoad(b.base)
		if err != nil {
			return err
		}
		kelpieFull.add(d)
		resetNft()
		if d, err = timed("", "nft", "-f", fullPath); err != nil {
			return err
		}
		floorFull.add(d)
		resetNft()
		for k, bin := range ipts {
			if err := resetIptables(bin); err != nil {
				return err
			}
			if d, err = timed("", bin, "--noflush", iptPath); err != nil {
				return err
			}
			iptFullT[k].add(d)
			if err := resetIptables(bin); err != nil {
				return err
			}
		}
	}
	b.add("(a) program all: kelpie (BuildRuleset + nft.Loader.Load)", kelpieFull)
	b.add("(a) program all: nft -f FILE of the same text (floor)", floorFull)
	for k, bin := range ipts {
		b.add("(a) program all: "+bin+" --noflush, kube-proxy nat table", iptFullT[k])
	}

	// (b) One endpoint change among them.
	if err := b.changes(ipts); err != nil {
		return err
	}

	for _, bin := range ipts {
		_ = resetIptables(bin)
	}
	resetNft()
	b.print(st)
	if b.base[len(b.base)-1].Name == "echo" {
		// Leave kelpie's table programmed for the latency part.
		if _, err := b.kelpieLoad(b.base); err != nil {
			return err
		}
	}
	return nil
}

// kelpieLoad programs svcs from nothing as the agent does at start: build,
// load.
func (b *rulesBench) kelpieLoad(svcs []netplan.Service) (cost, error) {
	l, err := nft.New(nft.Config{})
	if err != nil {
		return cost{}, err
	}
	defer l.Close()
	return measure(func() error {
		rs, err := rulesetOf(svcs)
		if err != nil {
			return err
		}
		return l.Load(b.ctx, rs)
	})
}

// kelpieChanges is what one run of kelpie's path over the changes gave:
// its timings, and per change the transaction, the stale-chain deletion
// and the full text (for the floor).
type kelpieChanges struct {
	kelpie, build, equal, diff, apply series
	diffs, stales, fulls              []string
	states                            [][]netplan.Service
}

// changes times (b): one endpoint moved, run after run, a new address
// each time; kelpie's path over netlink, then as before netlink (every
// change through nft), then the floors.
func (b *rulesBench) changes(ipts []string) error {
	pl, err := b.kelpieChanges(pathPlanned)
	if err != nil {
		return err
	}
	nl, err := b.kelpieChanges(pathFull)
	if err != nil {
		return err
	}
	old, err := b.kelpieChanges(pathNoNetlink)
	if err != nil {
		return err
	}
	b.add("(b) one change: kelpie (netplan.Planner.Plan + nft.Loader.ApplyChange, over netlink)", pl.kelpie)
	b.add("      of which Planner.Plan (the changed Service rebuilt and diffed)", pl.build)
	b.add("      of which the netlink batch (ApplyChange)", pl.apply)
	b.add("(b) one change: kelpie's full path (BuildRuleset + Equal + nft.Loader.Apply, over netlink)", nl.kelpie)
	b.add("      of which netplan.BuildRuleset", nl.build)
	b.add("      of which Ruleset.Equal (the agent's change check)", nl.equal)
	b.add("      of which netplan.Diff (timed apart)", nl.diff)
	b.add("      of which the netlink batch (Apply less Diff)", nl.apply)
	b.add("(b) one change: kelpie before netlink (the full path, Apply running nft -f - of the diff)", old.kelpie)
	b.add("      of which netplan.BuildRuleset", old.build)
	b.add("      of which nft -f - of the diff (Apply less Diff)", old.apply)
	diffs, stales, fulls, states := pl.diffs, pl.stales, pl.fulls, pl.states

	// The floor: the same transactions from files.
	resetNft()
	if _, err := timed("", "nft", "-f", filepath.Join(b.dir, "full.nft")); err != nil {
		return err
	}
	var floor, floorFull series
	for i := range b.runs {
		p, err := b.write(fmt.Sprintf("change-%d.nft", i), diffs[i])
		if err != nil {
			return err
		}
		d, err := timed("", "nft", "-f", p)
		if err != nil {
			return err
		}
		floor.add(d)
		if stales[i] != "" {
			time.Sleep(nft.MinStaleDelay)
			if _, err := timed(stales[i], "nft", "-f", "-"); err != nil {
				return err
			}
		}
	}
	b.add("(b) one change: nft -f FILE of the same diff (floor)", floor)
	for i := range b.runs {
		p, err := b.write(fmt.Sprintf("full-%d.nft", i), fulls[i])
		if err != nil {
			return err
		}
		d, err := timed("", "nft", "-f", p)
		if err != nil {
			return err
		}
		floorFull.add(d)
	}
	b.add("(b) one change: nft -f FILE of the whole table (no diff)", floorFull)
	resetNft()

	// kube-proxy: the full nat table again (its full sync), and the
	// partial sync of 1.28+ (KUBE-SERVICES and the changed Service's
	// chains only). The old endpoint's chain is deleted in the same
	// restore, as kube-proxy does.
	mid := &b.base[b.nSvc/2]
	for _, bin := range ipts {
		for _, partial := range []bool{false, true} {
			if err := resetIptables(bin); err != nil {
				return err
			}
			if _, err := timed("", bin, "--noflush", filepath.Join(b.dir, "full.iptables")); err != nil {
				return err
			}
			prevSvcs := b.base
			var ts series
			for i := range b.runs {
				old := sepChain(mid, removed(prevSvcs[b.nSvc/2].Ports[0].Endpoints, states[i][b.nSvc/2].Ports[0].Endpoints))
				only := ""
				if partial {
					only = mid.Key()
				}
				p, err := b.write("change.iptables", iptables(states[i], false, []string{old}, only))
				if err != nil {
					return err
				}
				d, err := timed("", bin, "--noflush", p)
				if err != nil {
					return err
				}
				ts.add(d)
				prevSvcs = states[i]
			}
			what := "(b) one change: " + bin + " --noflush, whole nat table (kube-proxy full sync)"
			if partial {
				what = "(b) one change: " + bin + " --noflush, changed chains (kube-proxy partial sync)"
			}
			b.add(what, ts)
		}
		_ = resetIptables(bin)
	}
	return nil
}

// The paths kelpieChanges takes.
const (
	pathPlanned   = iota // the agent's: Planner.Plan, Loader.ApplyChange over netlink
	pathFull             // BuildRuleset, Equal, Loader.Apply over netlink
	pathNoNetlink        // the same through nft only
)

// kelpieChanges runs the changes through kelpie's path: as the agent
// does (plan, apply the change), or the full path (build, compare, apply)
// with the Loader over netlink or through nft only, from the whole table
// loaded.
func (b *rulesBench) kelpieChanges(path int) (*kelpieChanges, error) {
	noNetlink := path == pathNoNetlink
	l, err := nft.New(nft.Config{NoNetlink: noNetlink})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	resetNft()
	prev, err := rulesetOf(b.base)
	if err != nil {
		return nil, err
	}
	planner := netplan.NewPlanner()
	if path == pathPlanned {
		ch, err := planner.Plan(inputOf(b.base))
		if err == nil {
			err = l.ApplyChange(b.ctx, ch, planner.Ruleset)
		}
		if err != nil {
			return nil, err
		}
	} else if err := l.Load(b.ctx, prev); err != nil {
		return nil, err
	}
	out := &kelpieChanges{}
	for i := range b.runs {
		svcs := changed(b.base, b.nSvc, i)
		out.states = append(out.states, svcs)
		var rs *netplan.Ruleset
		var parts [3]cost
		var c cost
		var err error
		if path == pathPlanned {
			// kelpie, as agent.programDataPath: plan, apply the change.
			var pch netplan.Change
			c, err = measure(func() error {
				var err error
				if parts[0], err = measure(func() error { pch, err = planner.Plan(inputOf(svcs)); return err }); err != nil {
					return err
				}
				if pch.Text == "" || pch.Full {
					return errors.New("the change was not planned incrementally")
				}
				parts[2], err = measure(func() error { return l.ApplyChange(b.ctx, pch, planner.Ruleset) })
				return err
			})
			if err != nil {
				return nil, err
			}
			if rs, err = rulesetOf(svcs); err != nil {
				return nil, err
			}
			if ch := netplan.Diff(prev, rs); ch.Text != pch.Text {
				return nil, errors.New("the planned change is not the full path's")
			}
		} else {
			// The full path: build, compare, apply.
			c, err = measure(func() error {
				var err error
				if parts[0], err = measure(func() error { rs, err = rulesetOf(svcs); return err }); err != nil {
					return err
				}
				var same bool
				parts[1], _ = measure(func() error { same = rs.Equal(prev); return nil })
				if same {
					return errors.New("the change did not change the ruleset")
				}
				parts[2], err = measure(func() error { return l.Apply(b.ctx, rs) })
				return err
			})
		}
		if err != nil {
			return nil, err
		}
		out.kelpie.add(c)
		out.build.add(parts[0])
		out.equal.add(parts[1])
		if st := l.Stats(); st.Fallbacks > 0 || st.Full != 1 {
			return nil, fmt.Errorf("the change was not incremental: %+v", st)
		} else if want := uint64(i + 1); !noNetlink && st.Netlink != want {
			return nil, fmt.Errorf("the change did not go over netlink: %+v", st)
		}
		// Diff again, outside the timed path, for its own cost and the
		// transaction (kept for the floor).
		var ch netplan.Change
		d, _ := measure(func() error { ch = netplan.Diff(prev, rs); return nil })
		out.diff.add(d)
		if path == pathPlanned {
			out.apply.add(parts[2]) // no Diff in it
		} else {
			out.apply.add(cost{wall: parts[2].wall - d.wall, cpu: parts[2].cpu - d.cpu})
		}
		out.diffs = append(out.diffs, ch.Text)
		out.stales = append(out.stales, netplan.DeleteStale(rs, ch.Stale))
		out.fulls = append(out.fulls, rs.Text())
		if i == 0 && path == pathPlanned {
			if _, err := b.write("change.nft", ch.Text); err != nil {
				return nil, err
			}
			fmt.Printf("  one endpoint change: %d nft commands (%d B), then %d chain deletions %v later\n",
				strings.Count(ch.Text, "\n"), len(ch.Text), len(ch.Stale), nft.DefaultStaleDelay)
		}
		// The emptied chains are deleted by the Loader's timer: wait for
		// it, untimed, so that it does not run during the next change.
		deadline := time.Now().Add(10 * time.Second)
		for len(l.Pending()) > 0 {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("stale chains not deleted after 10 s: %v", l.Pending())
			}
			time.Sleep(50 * time.Millisecond)
		}
		prev = rs
	}
	return out, nil
}

// print writes the results table and the goal's verdict.
func (b *rulesBench) print(st netplan.RulesetStats) {
	fmt.Printf("\n%-86s %4s  %-28s  %s\n", "what (milliseconds)", "runs", "wall: min / median / max", "CPU: min / median / max")
	var change, changeCPU float64
	for _, r := range b.rows {
		fmt.Printf("%-86s %4d  %-28s  %s\n", r.what, r.wall.n, r.wall.mmm("%7.2f"), r.cpu.mmm("%7.2f"))
		if strings.HasPrefix(r.what, "(b) one change: kelpie (") {
			change, changeCPU = r.wall.med, r.cpu.med
		}
	}
	verdict := "met"
	if change >= 10 {
		verdict = "MISSED"
	}
	fmt.Printf("\ngoal (issue 13): one endpoint change under 10 ms with 10,000 rules: %s (median %.2f ms wall, %.2f ms CPU; %d endpoints, as %d rules and %d set/map elements)\n",
		verdict, change, changeCPU, b.nSvc*len(b.base[0].Ports[0].Endpoints), st.Rules, st.Elements)
}

// removed returns the endpoint of old that new does not have.
func removed(old, new []netplan.Endpoint) netplan.Endpoint {
	for _, o := range old {
		if !slices.ContainsFunc(new, func(n netplan.Endpoint) bool { return n.IP == o.IP }) {
			return o
		}
	}
	return netplan.Endpoint{}
}
