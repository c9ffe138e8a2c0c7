package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/specs"
)

// planCommand is `kelpie plan [-f PATH]...`.
func planCommand() *cli.Command {
	return &cli.Command{
		Name:  "plan",
		Usage: "show the actions apply would take on this host",
		Description: "Loads the manifests (-f, default .), reads what kelpie runs on this host from\n" +
			"containerd, and prints the actions that would converge the two: networks and\n" +
			"volumes first, then pods, terraform style, or -o json. Changes nothing.\n\n" +
			"With --cluster [REV], asks the cluster through --agent instead: where the\n" +
			"candidate (REV of --repo, or its working tree) would run, and what every host\n" +
			"would do, before pushing. Nothing is published.\n\n" +
			"Exit status: 0 nothing to do, 2 changes pending, 1 error.",
		Flags:  concatFlags(manifestFlags(), hostFlags(), runtimeFlags(), planClusterFlags(), []cli.Flag{outputFlag()}),
		Action: runPlan,
	}
}

// planJSON is the -o json output of plan.
type planJSON struct {
	Node    string        `json:"node"`
	Actions []actionJSON  `json:"actions"`
	Waiting []subjectJSON `json:"waiting"`
	Kept    []subjectJSON `json:"kept"`
	Notices []string      `json:"notices"`
	// Jobs are the Job controller's transitions this plan includes.
	Jobs []string `json:"jobEvents,omitempty"`
}

// actionJSON is one action in JSON output.
type actionJSON struct {
	Action    string `json:"action"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Container string `json:"container,omitempty"`
	Reason    string `json:"reason"`
}

// subjectJSON is a waiting or kept subject in JSON output.
type subjectJSON struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Container string `json:"container,omitempty"`
	Reason    string `json:"reason"`
}

// runPlan plans and prints.
func runPlan(c *cli.Context) error {
	if c.Bool("cluster") {
		return runPlanCluster(c)
	}
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	rt, hp, err := planHost(c.Context, c)
	if err != nil {
		return manifestOrError(c, err)
	}
	defer rt.Close()
	if format == formatJSON {
		if err := writeJSON(c.App.Writer, planToJSON(hp)); err != nil {
			return err
		}
	} else {
		printPlan(c.App.Writer, newColorizer(c, c.App.Writer), hp)
	}
	if !hp.Result.Empty() {
		return ExitCode(2)
	}
	return nil
}

// manifestOrError prints manifest problems compiler style (exit 1) and
// returns other errors as they are.
func manifestOrError(c *cli.Context, err error) error {
	var list specs.ErrorList
	if errors.As(err, &list) {
		printManifestErrors(c.App.ErrWriter, list)
		fmt.Fprintf(c.App.ErrWriter, "kelpie: %d %s in the manifests; nothing changed\n", len(list), plural(len(list), "problem", "problems"))
		return ExitCode(1)
	}
	return err
}

// planToJSON converts a host plan for -o json.
func planToJSON(hp hostPlan) planJSON {
	out := planJSON{Node: hp.Node, Actions: []actionJSON{}, Waiting: []subjectJSON{}, Kept: []subjectJSON{}, Notices: []string{}}
	for _, a := range hp.Result.Actions {
		out.Actions = append(out.Actions, actionJSON{Action: string(a.Kind), Kind: string(a.Subject.Type), Namespace: a.Subject.Namespace, Name: a.Subject.Name, Container: a.Subject.Container, Reason: a.Reason})
	}
	for _, w := range hp.Result.Waiting {
		out.Waiting = append(out.Waiting, subjectJSON{Kind: string(w.Subject.Type), Namespace: w.Subject.Namespace, Name: w.Subject.Name, Container: w.Subject.Container, Reason: w.Reason})
	}
	for _, k := range hp.Result.Kept {
		out.Kept = append(out.Kept, subjectJSON{Kind: string(k.Subject.Type), Namespace: k.Subject.Namespace, Name: k.Subject.Name, Container: k.Subject.Container, Reason: k.Reason})
	}
	for _, n := range hp.Notices {
		out.Notices = append(out.Notices, n.String())
	}
	for _, e := range hp.Jobs.Events {
		out.Jobs = append(out.Jobs, e.String())
	}
	return out
}

// printPlan writes the plan terraform style with a summary line.
func printPlan(w io.Writer, z colorizer, hp hostPlan) {
	for _, n := range hp.Notices {
		fmt.Fprintf(w, "%s %s\n", z.yellow("note:"), n)
	}
	printJobEvents(w, z, hp)
	if hp.Result.Empty() {
		fmt.Fprintf(w, "No changes: host %s runs what the manifests describe.\n", hp.Node)
	} else {
		fmt.Fprintf(w, "Plan for host %s:\n\n", z.bold(hp.Node))
		for _, a := range hp.Result.Actions {
			fmt.Fprintf(w, "  %s\n", paintAction(z, a))
		}
	}
	for _, wt := range hp.Result.Waiting {
		fmt.Fprintf(w, "  %s %s\n", z.yellow("…"), wt)
	}
	for _, k := range hp.Result.Kept {
		fmt.Fprintf(w, "  %s %s\n", z.bold("="), k)
	}
	if !hp.Result.Empty() {
		counts := map[reconciler.ActionKind]int{}
		for _, a := range hp.Result.Actions {
			counts[a.Kind]++
		}
		fmt.Fprintf(w, "\nPlan: %d to create, %d to update, %d to replace, %d to delete.\n",
			counts[reconciler.Create], counts[reconciler.Update], counts[reconciler.Replace], counts[reconciler.Delete])
	}
}

// paintAction colours an action line by its kind.
func paintAction(z colorizer, a reconciler.Action) string {
	s := a.String()
	switch a.Kind {
	case reconciler.Create:
		return z.green(s)
	case reconciler.Delete:
		return z.red(s)
	default:
		return z.yellow(s)
	}
}

// concatFlags joins flag lists.
func concatFlags(lists ...[]cli.Flag) []cli.Flag {
	var out []cli.Flag
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// printJobEvents writes the Job controller's transitions of the plan.
func printJobEvents(w io.Writer, z colorizer, hp hostPlan) {
	for _, e := range hp.Jobs.Events {
		fmt.Fprintf(w, "%s %s\n", z.bold("job:"), termSafe(e.String()))
	}
}
