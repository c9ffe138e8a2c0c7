package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/netplan"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/scheduler"
	"github.com/kelpie-dev/kelpie/source"
	"github.com/kelpie-dev/kelpie/specs"
)

// planClusterFlags are the flags `kelpie plan --cluster` adds to plan.
func planClusterFlags() []cli.Flag {
	return append(agentFlags(),
		&cli.BoolFlag{Name: "cluster", Usage: "ask the cluster (through --agent) what a candidate revision, or the working tree of --repo, would do on every host", EnvVars: envVars("cluster")},
		&cli.StringFlag{Name: "repo", Usage: "with --cluster: the git repository holding the candidate (or a directory inside it)", Value: ".", EnvVars: envVars("repo")},
		&cli.StringFlag{Name: "path", Usage: "with --cluster: the manifests' directory inside the repository", Value: ".", EnvVars: envVars("path")},
	)
}

// clusterPlanJSON is the -o json output of plan --cluster.
type clusterPlanJSON struct {
	// From is the commit of the placement in force ("" before any); To the
	// candidate's commit, or "working tree".
	From        string            `json:"from"`
	To          string            `json:"to"`
	Hosts       []planJSON        `json:"hosts"`
	Moves       []string          `json:"moves"`
	Unplaceable []string          `json:"unplaceable"`
	Waiting     []string          `json:"waiting"`
	Replicas    map[string]string `json:"replicas"`
	// Services are the candidate's changes to the cluster's Services.
	Services []netplan.ServiceChange `json:"services"`
	// Wait says why the leader does not place the candidate yet (the
	// cluster's first placement waits for the --expect members); Note why
	// it would not publish it now (no quorum).
	Wait string `json:"wait,omitempty"`
	Note string `json:"note,omitempty"`
}

// runPlanCluster previews a candidate on the cluster: it asks the agent for
// the view and the placement in force, decides on the candidate with the
// leader's own policy (scheduler.Decide: the same refusals, with the same
// messages, and the same wait for --expect members; nothing is published)
// and plans every host against what it runs under the placement in force.
func runPlanCluster(c *cli.Context) error {
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	if c.NArg() > 1 {
		return usageErrorf(c, "plan --cluster takes at most one revision, got %d", c.NArg())
	}
	if c.IsSet("filename") {
		return usageErrorf(c, "flag -f does not go with --cluster: the candidate is a revision of --repo, or its working tree")
	}
	sub, err := cleanSubdir(c.String("path"))
	if err != nil {
		return usageErrorf(c, "invalid value %q for flag --path: %v", c.String("path"), err)
	}
	repo, err := source.OpenLocal(c.String("repo"))
	if err != nil {
		return err
	}
	sub = path.Join(repoSubdir(repo, c.String("repo")), sub)

	body, err := agentRequest(c.Context, c, http.MethodGet, "/api/v1/cluster", http.StatusOK)
	if err != nil {
		return err
	}
	var view agent.ClusterView
	if err := json.Unmarshal(body, &view); err != nil {
		return fmt.Errorf("read the agent's cluster view: %w", err)
	}

	lopts, err := loadOptions(c)
	if err != nil {
		return err
	}
	if !c.IsSet("service-node-port-range") && view.NodePortRange != "" {
		// The agents' range, unless the command line says otherwise.
		r, err := netplan.ParsePortRange(view.NodePortRange)
		if err != nil {
			return fmt.Errorf("the agent's node port range: %w", err)
		}
		lopts.NodePortRange = [2]int32{r.Min, r.Max}
	}
	var cand *specs.DesiredState
	candName, label, base := worktreeSide, "the working tree", ""
	if rev := c.Args().First(); rev != "" {
		cand, candName, _, err = loadRevision(lopts, repo, rev, sub)
		label = "" // "commit SHORT", as the leader names it
	} else {
		cand, _, err = loadWorktree(lopts, repo, sub)
		if head, herr := repo.Resolve("HEAD"); herr == nil {
			base = head.Hash // a commit of the working tree would descend from HEAD
		}
	}
	if err != nil {
		return manifestFailure(c, err)
	}
	cur := &specs.DesiredState{}
	from := ""
	if p := view.Placement; p != nil {
		from = p.Commit
		if cur, _, _, err = loadRevision(lopts, repo, p.Commit, sub); err != nil {
			return fmt.Errorf("the cluster runs commit %.12s, which --repo cannot read (fetch it first): %w", p.Commit, err)
		}
	}

	// The leader's own policy: what it refuses, this refuses with its words.
	d, err := scheduler.Decide(scheduler.PolicyInput{
		Candidate: cand, Commit: candName, Name: label, Base: base,
		Nodes: view.Nodes, Previous: view.Placement, Now: view.Now, RescheduleAfter: view.RescheduleAfter,
		Expect: view.Quorum.Expect, Alive: view.Quorum.Alive,
		AllowEmpty: view.AllowEmpty, AllowRewrite: view.AllowRewrite, Ancestry: repo,
	})
	if err != nil {
		return err
	}
	if d.Refused() {
		return errors.New(d.Reason)
	}
	if d.Verdict == scheduler.WaitForMembers {
		out := clusterPlanJSON{From: from, To: candName, Wait: d.Note, Hosts: []planJSON{}, Moves: []string{}, Unplaceable: []string{}, Waiting: []string{}, Replicas: map[string]string{}, Services: []netplan.ServiceChange{}}
		if format == formatJSON {
			if err := writeJSON(c.App.Writer, out); err != nil {
				return err
			}
		} else {
			printClusterPlan(c.App.Writer, newColorizer(c, c.App.Writer), view, out, nil)
		}
		return ExitCode(2) // the leader places the candidate once the wait ends
	}
	next, rep := d.Placement, d.Report
	out := clusterPlanJSON{From: from, To: candName, Hosts: []planJSON{}, Moves: []string{}, Unplaceable: []string{}, Waiting: []string{}, Replicas: next.Assignments}
	svcIn := netplan.PlanServicesInput{Current: netplan.ServicesOf(cur), Candidate: netplan.ServicesOf(cand), Ready: map[string]int{}}
	for _, m := range scheduler.Diff(view.Placement, &next) {
		out.Moves = append(out.Moves, m.String())
	}
	for _, u := range rep.Unplaceable {
		out.Unplaceable = append(out.Unplaceable, u.String())
	}
	for _, w := range rep.Waiting {
		out.Waiting = append(out.Waiting, w.Replica+" on "+w.Node)
	}
	changed := false
	var hosts []hostPlan
	for _, n := range view.Nodes {
		host := reconciler.Host{Name: n.Name, Labels: n.Labels}
		var was reconciler.Desired
		if p := view.Placement; p != nil {
			all, _ := reconciler.Expand(cur, host)
			was = all.Assigned(n.Name, p.Assignments, p.Volumes)
		}
		all, _ := reconciler.Expand(cand, host)
		will := all.Assigned(n.Name, next.Assignments, next.Volumes)
		svcIn.CurrentPods = append(svcIn.CurrentPods, servicePods(n.Name, was)...)
		svcIn.CandidatePods = append(svcIn.CandidatePods, servicePods(n.Name, will)...)
		res, err := reconciler.Plan(will, reconciler.Converged(was), reconciler.PlanOptions{Now: view.Now, Prune: true, AllowEmpty: true})
		if err != nil {
			return fmt.Errorf("plan host %s: %w", n.Name, err)
		}
		hp := hostPlan{Node: n.Name + " (" + n.State.String() + ")", Result: res}
		if n.State == scheduler.NodeAlive {
			hp.Node = n.Name
		}
		changed = changed || !res.Empty()
		hosts = append(hosts, hp)
		out.Hosts = append(out.Hosts, planToJSON(hp))
	}
	if len(view.Network) > 0 {
		st, err := netplan.Decode(view.Network)
		if err != nil {
			return fmt.Errorf("read the cluster's network allocation: %w", err)
		}
		svcIn.Alloc = &st
	}
	for _, s := range view.Services {
		svcIn.Ready[s.Namespace+"/"+s.Name] = s.Endpoints
	}
	out.Services = netplan.PlanServices(svcIn)
	if out.Services == nil {
		out.Services = []netplan.ServiceChange{}
	}
	if len(out.Moves) > 0 || len(out.Services) > 0 {
		changed = true
	}
	if q := view.Quorum; changed && q.Expect > 0 && !q.OK {
		out.Note = "placement not changed: " + q.Reason // as the leader says it
	}
	if format == formatJSON {
		if err := writeJSON(c.App.Writer, out); err != nil {
			return err
		}
	} else {
		printClusterPlan(c.App.Writer, newColorizer(c, c.App.Writer), view, out, hosts)
	}
	if changed {
		return ExitCode(2)
	}
	return nil
}

// printClusterPlan writes the cluster preview: the placement's changes,
// then every host's plan.
func printClusterPlan(w io.Writer, z colorizer, view agent.ClusterView, out clusterPlanJSON, hosts []hostPlan) {
	leader := view.Leader
	if leader == "" {
		leader = "none yet"
	}
	from := "no placement yet"
	if out.From != "" {
		from = fmt.Sprintf("commit %.12s", out.From)
	}
	to := out.To
	if len(to) == 40 {
		to = to[:12]
	}
	fmt.Fprintf(w, "Cluster of %d %s (leader %s, term %d): %s → %s\n\n", len(view.Nodes), plural(len(view.Nodes), "node", "nodes"), leader, view.Term, from, to)
	if out.Wait != "" {
		fmt.Fprintf(w, "Placement: %s %s.\n", z.yellow("waiting:"), out.Wait)
		return
	}
	if len(out.Moves) == 0 {
		fmt.Fprintln(w, "Placement: no replica moves.")
	} else {
		fmt.Fprintln(w, "Placement:")
		for _, m := range out.Moves {
			fmt.Fprintf(w, "  %s\n", m)
		}
	}
	for _, u := range out.Unplaceable {
		fmt.Fprintf(w, "  %s %s\n", z.red("unplaceable:"), u)
	}
	for _, wt := range out.Waiting {
		fmt.Fprintf(w, "  %s %s\n", z.yellow("waiting:"), wt)
	}
	printServiceChanges(w, z, out.Services)
	total := map[reconciler.ActionKind]int{}
	for _, hp := range hosts {
		fmt.Fprintln(w)
		printPlan(w, z, hp)
		for _, a := range hp.Result.Actions {
			total[a.Kind]++
		}
	}
	names := slices.Collect(func(yield func(string) bool) {
		for _, hp := range hosts {
			if !hp.Result.Empty() && !yield(hp.Node) {
				return
			}
		}
	})
	if out.Note != "" {
		fmt.Fprintf(w, "\n%s %s.\n", z.yellow("Note:"), out.Note)
	}
	fmt.Fprintf(w, "\nCluster: %d to create, %d to update, %d to replace, %d to delete on %d %s.\n",
		total[reconciler.Create], total[reconciler.Update], total[reconciler.Replace], total[reconciler.Delete], len(names), plural(len(names), "host", "hosts"))
}

// servicePods are the pods of a host's plan as Service selectors see them.
func servicePods(node string, d reconciler.Desired) []netplan.Pod {
	out := make([]netplan.Pod, 0, len(d.Pods))
	for _, p := range d.Pods {
		out = append(out, netplan.Pod{Namespace: p.Namespace, Name: p.Name, Node: node, Labels: p.Labels})
	}
	return out
}

// printServiceChanges writes the candidate's Service changes, if any.
func printServiceChanges(w io.Writer, z colorizer, changes []netplan.ServiceChange) {
	if len(changes) == 0 {
		return
	}
	fmt.Fprintln(w, "\nServices:")
	for _, c := range changes {
		line := fmt.Sprintf("%s clusterIP %s", c.Service, c.ClusterIP)
		switch c.Action {
		case netplan.ServiceCreate:
			fmt.Fprintf(w, "  %s %s\n", z.green("+"), line)
		case netplan.ServiceDelete:
			fmt.Fprintf(w, "  %s %s\n", z.red("-"), line)
		default:
			fmt.Fprintf(w, "  %s %s\n", z.yellow("~"), line)
		}
		portsChange := slices.ContainsFunc(c.Changes, func(ch string) bool { return strings.HasPrefix(ch, "ports: ") })
		if len(c.Ports) > 0 && !portsChange {
			fmt.Fprintf(w, "      ports: %s\n", strings.Join(c.Ports, ", "))
		}
		for _, ch := range c.Changes {
			fmt.Fprintf(w, "      %s\n", ch)
		}
		if c.Action == netplan.ServiceDelete {
			continue
		}
		sel := "no pods"
		if len(c.Selects) > 0 {
			sel = strings.Join(c.Selects, ", ")
		}
		ready := ""
		if c.Ready >= 0 {
			ready = fmt.Sprintf(" (%d ready %s now)", c.Ready, plural(c.Ready, "endpoint", "endpoints"))
		}
		fmt.Fprintf(w, "      selects: %s%s\n", sel, ready)
	}
}
