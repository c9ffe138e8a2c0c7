package cli

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
)

// printWorkloads prints the workloads of a status (Deployments,
// DaemonSets, StatefulSets) with their desired, updated and ready pods and
// their health, as the dashboard shows them; nothing when there are none.
func printWorkloads(w io.Writer, z colorizer, ws []agent.WorkloadStatus) {
	if len(ws) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tWORKLOAD\tDESIRED\tUPDATED\tREADY\tHEALTH")
	for _, wl := range ws {
		health := wl.Health
		switch health {
		case agent.HealthHealthy:
			health = z.green(health)
		case agent.HealthProgressing:
			health = z.yellow(health)
		default:
			health = z.red(health)
		}
		if wl.Message != "" {
			health += ": " + termSafe(firstLine(wl.Message))
		}
		fmt.Fprintf(tw, "%s\t%s/%s\t%d\t%d\t%d\t%s\n", termSafe(wl.Namespace), termSafe(wl.Kind), termSafe(wl.Name), wl.Desired, wl.Updated, wl.Ready, health)
	}
	tw.Flush()
}

// printAlerts prints the alerts that fire now, as the dashboard shows
// them; nothing when none does.
func printAlerts(w io.Writer, z colorizer, as []agent.AlertStatus, now time.Time) {
	if len(as) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ALERT\tSCOPE\tSINCE\tSUMMARY")
	for _, a := range as {
		scope := "host"
		if a.Cluster {
			scope = "cluster"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", z.red(termSafe(a.Alert)), scope, ago(now, a.Since), termSafe(firstLine(a.Summary)))
	}
	tw.Flush()
}
