package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/probes"
	"github.com/kelpie-dev/kelpie/reconciler"
)

// psCommand is `kelpie ps`.
func psCommand() *cli.Command {
	return &cli.Command{
		Name:  "ps",
		Usage: "list the pods kelpie runs on this host",
		Description: "Lists the pods on this host that carry kelpie's labels: their containers, state,\n" +
			"restarts and IP address. Containers kelpie did not create are never shown.\n\n" +
			"READY counts the ready app containers of a pod, as kubectl does. Probe results\n" +
			"live in the agent: here a container is ready when it runs (`kelpie status`\n" +
			"shows the agent's view, readiness probes included).",
		Flags:  concatFlags(runtimeFlags(), []cli.Flag{outputFlag()}),
		Action: runPs,
	}
}

// psPod is one pod in -o json output.
type psPod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	IP        string `json:"ip,omitempty"`
	Ready     bool   `json:"sandboxReady"`
	Hash      string `json:"specHash"`
	// PodReady is the pod's Ready condition as far as ps knows it (its
	// app containers run).
	PodReady   bool          `json:"ready"`
	Containers []psContainer `json:"containers"`
}

// psContainer is one container in -o json output.
type psContainer struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Ready    bool   `json:"ready"`
	ExitCode int    `json:"exitCode,omitempty"`
	Restarts int    `json:"restarts"`
}

// runPs observes the host and prints its pods.
func runPs(c *cli.Context) error {
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	rt, err := openRuntime(c)
	if err != nil {
		return err
	}
	defer rt.Close()
	actual, err := rt.Observe(c.Context)
	if err != nil {
		return err
	}
	actual = probes.Unprobed(nil, actual)
	if format == formatJSON {
		pods := []psPod{}
		for _, p := range actual.Pods {
			pp := psPod{Namespace: p.Namespace, Name: p.Name, IP: p.IP, Ready: p.SandboxReady, Hash: p.Hash, PodReady: p.Ready, Containers: []psContainer{}}
			for _, ct := range p.Containers {
				pp.Containers = append(pp.Containers, psContainer{Name: ct.Name, State: string(ct.State), Ready: ct.Ready, ExitCode: ct.ExitCode, Restarts: ct.Restarts})
			}
			pods = append(pods, pp)
		}
		return writeJSON(c.App.Writer, map[string]any{"pods": pods})
	}
	if len(actual.Pods) == 0 {
		fmt.Fprintln(c.App.Writer, "No pods.")
		return nil
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tPOD\tREADY\tSTATUS\tRESTARTS\tIP")
	for _, p := range actual.Pods {
		ready, total, restarts := 0, 0, 0
		var states []string
		for _, ct := range p.Containers {
			switch {
			case ct.Ready:
				ready++
				total++
			case ct.State != reconciler.Exited || ct.ExitCode != 0:
				total++ // not an init container that is done
			}
			restarts += ct.Restarts
			state := string(ct.State)
			if ct.State == reconciler.Exited {
				state = fmt.Sprintf("Exited(%d)", ct.ExitCode)
			}
			states = append(states, ct.Name+":"+state)
		}
		ip := p.IP
		if ip == "" {
			ip = "-"
		}
		status := strings.Join(states, ",")
		if s := finishedStatus(p); s != "" {
			status = s + " (" + status + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%d\t%s\n", p.Namespace, p.Name, ready, total, status, restarts, ip)
	}
	return tw.Flush()
}

// finishedStatus names a pod whose containers all exited as kubectl does:
// Completed when every one exited 0, Error otherwise; "" for a pod that
// has a container not exited (a finished Job's pods stay, with their
// logs, until its ttlSecondsAfterFinished).
func finishedStatus(p reconciler.ActualPod) string {
	if len(p.Containers) == 0 {
		return ""
	}
	failed := false
	for _, ct := range p.Containers {
		if ct.State != reconciler.Exited {
			return ""
		}
		failed = failed || ct.ExitCode != 0
	}
	if failed {
		return "Error"
	}
	return "Completed"
}
