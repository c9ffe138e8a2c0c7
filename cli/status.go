package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/tlsconf"
	"github.com/kelpie-dev/kelpie/runtime/statedir"
)

// agentTimeout bounds one request to the local agent.
const agentTimeout = 10 * time.Second

// agentFlag is the --agent flag of the commands that talk to a running agent.
func agentFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "agent", Usage: "the agent's HTTP address (its --listen), HOST:PORT or a URL", Value: agent.DefaultListen, EnvVars: envVars("agent")},
		&cli.StringFlag{Name: "api-token", Usage: "the agent's API token (its --api-token); prefer the env var", EnvVars: envVars("api-token")},
		&cli.StringFlag{Name: "tls-ca", Usage: "PEM CAs to trust, beside the system's, for an https --agent", EnvVars: envVars("tls-ca")},
		&cli.StringFlag{Name: "api-token-file", Usage: "where a local agent keeps its API token, read when --api-token is not given",
			Value: filepath.Join(statedir.Default, "agent", "api-token"), EnvVars: envVars("api-token-file")},
	}
}

// apiToken is the token requests to the agent carry: --api-token, else the
// local agent's token file when it can be read, else none (reads from a
// loopback agent need none).
func apiToken(c *cli.Context) string {
	if t := c.String("api-token"); t != "" {
		return t
	}
	t, err := agent.ReadAPIToken(c.String("api-token-file"))
	if err != nil {
		return ""
	}
	return t
}

// agentURL is the URL of path on the agent --agent names.
func agentURL(c *cli.Context, path string) string {
	base := c.String("agent")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return strings.TrimSuffix(base, "/") + path
}

// agentRequest sends a request to the agent and returns the body of a
// response with status want.
func agentRequest(ctx context.Context, c *cli.Context, method, path string, want int) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, agentTimeout)
	defer cancel()
	url := agentURL(c, path)
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, usageErrorf(c, "invalid value %q for flag --agent: %v", c.String("agent"), err)
	}
	if tok := apiToken(c); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	client := http.DefaultClient
	if ca := c.String("tls-ca"); ca != "" {
		tc, err := tlsconf.Files{CAFile: ca}.ClientConfig()
		if err != nil {
			return nil, usageErrorf(c, "invalid value %q for flag --tls-ca: %v", ca, err)
		}
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("talk to the agent: %w (is `kelpie agent` running with --listen %s?)", err, c.String("agent"))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read the agent's answer to %s %s: %w", method, url, err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, fmt.Errorf("%s %s: %s: pass the agent's API token with --api-token (KELPIE_API_TOKEN), or run as a user who can read %s", method, url, resp.Status, c.String("api-token-file"))
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// fetchStatus reads the agent's status.
func fetchStatus(c *cli.Context) (agent.Status, []byte, error) {
	body, err := agentRequest(c.Context, c, http.MethodGet, "/api/v1/status", http.StatusOK)
	if err != nil {
		return agent.Status{}, nil, err
	}
	var s agent.Status
	if err := json.Unmarshal(body, &s); err != nil {
		return agent.Status{}, nil, fmt.Errorf("read the agent's status: %w", err)
	}
	return s, body, nil
}

// statusCommand is `kelpie status`.
func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show what the local agent runs, what it waits for and what went wrong",
		Description: "Asks the agent at --agent for its status: the repository it follows, the commit\n" +
			"the host runs, a pending commit it refused or could not apply yet, the last error\n" +
			"(manifest problems as file:line), the alerts that fire, the workloads with their\n" +
			"desired, updated and ready pods and their health, and the pods with their state.\n" +
			"-o json prints the agent's /api/v1/status document as it is (its \"workloads\" and\n" +
			"\"alerts\" hold the same).",
		Flags:  append(agentFlags(), outputFlag()),
		Action: runStatus,
	}
}

// runStatus fetches and prints the status.
func runStatus(c *cli.Context) error {
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	s, raw, err := fetchStatus(c)
	if err != nil {
		return err
	}
	if format == formatJSON {
		_, err := c.App.Writer.Write(raw)
		return err
	}
	printStatus(c.App.Writer, newColorizer(c, c.App.Writer), s, time.Now())
	return nil
}

// printStatus writes the status for people.
func printStatus(w io.Writer, z colorizer, s agent.Status, now time.Time) {
	fmt.Fprintf(w, "Node:      %s\n", termSafe(s.Node))
	fmt.Fprintf(w, "Repo:      %s (ref %s, path %s)\n", termSafe(strings.Join(s.Repo, ", ")), termSafe(s.Ref), termSafe(s.Path))
	if a := s.Applied; a != nil {
		fmt.Fprintf(w, "Applied:   %s %s (%s, applied %s)\n", z.bold(a.Short()), termSafe(a.Subject), termSafe(a.Author), ago(now, a.AppliedAt))
	} else {
		fmt.Fprintf(w, "Applied:   %s\n", z.yellow("nothing yet"))
	}
	if p := s.Pending; p != nil {
		fmt.Fprintf(w, "Pending:   %s %s (%s since %s)\n", z.yellow(p.Short()), termSafe(p.Subject), p.Reason, ago(now, p.Since))
	}
	if ls := s.LastSync; ls != nil {
		result := ls.Result
		switch result {
		case "ok":
			result = z.green(result)
		default:
			result = z.red(result)
		}
		fmt.Fprintf(w, "Last sync: %s (%s, %s), %d %s in %.1fs\n", ago(now, ls.Time), termSafe(ls.Reason), result, ls.Actions, plural(ls.Actions, "action", "actions"), ls.Seconds)
		if len(ls.Skipped) > 0 {
			fmt.Fprintf(w, "Fetched:   from %s; passed over:\n", termSafe(ls.Source))
			for _, sk := range ls.Skipped {
				fmt.Fprintf(w, "  %s %s\n", z.yellow("!"), termSafe(firstLine(sk)))
			}
		}
	}
	if e := s.LastError; e != nil {
		msg := e.Message
		if len(e.Errors) > 0 {
			msg = fmt.Sprintf("commit %.12s does not validate: %d %s in the manifests", e.Commit, len(e.Errors), plural(len(e.Errors), "problem", "problems"))
		}
		fmt.Fprintf(w, "%s %s (%s)\n", z.red("Error:    "), termSafe(firstLine(msg)), e.Kind)
		for _, m := range e.Errors {
			fmt.Fprintf(w, "  %s\n", termSafe(fmt.Sprint(m)))
		}
	}
	switch {
	case s.PodRange != "":
		fmt.Fprintf(w, "Pod range: %s\n", s.PodRange)
	case s.PodRangeWait != "":
		fmt.Fprintf(w, "Pod range: %s\n", z.yellow("none yet: "+termSafe(s.PodRangeWait)))
	}
	for _, r := range s.Routes {
		fmt.Fprintf(w, "  route %s\n", termSafe(r))
	}
	for _, u := range s.Unrouted {
		fmt.Fprintf(w, "  %s %s\n", z.yellow("unrouted:"), termSafe(u))
	}
	if s.DataPath != "" {
		fmt.Fprintf(w, "Services:  %s\n", termSafe(s.DataPath))
	}
	if s.DNS != "" {
		fmt.Fprintf(w, "DNS:       %s\n", termSafe(s.DNS))
	}
	for _, n := range s.Notices {
		fmt.Fprintf(w, "%s %s\n", z.yellow("note:"), termSafe(n))
	}
	for _, wt := range s.Waiting {
		fmt.Fprintf(w, "  %s %s\n", z.yellow("…"), termSafe(wt))
	}
	for _, st := range s.Stalled {
		fmt.Fprintf(w, "%s Deployment %s: %s (old pods keep serving)\n", z.red("stalled:"), termSafe(st.Workload), termSafe(st.Message))
	}
	printAlerts(w, z, s.Alerts, now)
	if s.Cluster != nil {
		printCluster(w, z, s.Cluster, now)
	}
	printWorkloads(w, z, s.Workloads)
	printJobs(w, z, s, now)
	printServices(w, s.Services)
	fmt.Fprintln(w)
	if len(s.Pods) == 0 {
		fmt.Fprintln(w, "No pods.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tPOD\tREADY\tSTATUS\tRESTARTS\tIP")
	for _, p := range s.Pods {
		ip := p.IP
		if ip == "" {
			ip = "-"
		}
		state := p.State
		switch state { // as kubectl names finished pods
		case "Succeeded":
			state = "Completed"
		case "Failed":
			state = "Error"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", p.Namespace, p.Name, p.Ready, state, p.Restarts, ip)
	}
	tw.Flush()
}

// firstLine is the first line of s (an invalid commit's message lists
// every problem, which follow on their own lines).
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// ago formats how long before now t was: "12s ago", "5m ago", or the
// time itself when it is more than a day.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "at an unknown time"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return t.Format(time.RFC3339)
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return t.Local().Format("2006-01-02 15:04")
}

// printCluster prints the cluster part of a status: leader, quorum, the
// placement in force and each member with its pods.
func printCluster(w io.Writer, z colorizer, cs *agent.ClusterStatus, now time.Time) {
	fmt.Fprintln(w)
	leader := z.yellow("none yet")
	if cs.Leader != "" {
		leader = z.bold(cs.Leader)
		if cs.Leader == cs.Self {
			leader += " (this node)"
		}
	}
	fmt.Fprintf(w, "Cluster:   leader %s, term %d\n", leader, cs.Term)
	quorum := z.green(cs.Quorum.Reason)
	if !cs.Quorum.OK {
		quorum = z.red(cs.Quorum.Reason)
	}
	fmt.Fprintf(w, "Quorum:    %s\n", quorum)
	fmt.Fprintf(w, "Guarantee: %s\n", cs.Guarantee)
	if p := cs.Placement; p != nil {
		fmt.Fprintf(w, "Placement: %d.%d by %s, commit %.12s, %d %s\n", p.Term, p.Seq, p.Leader, p.Commit, p.Replicas, plural(p.Replicas, "replica", "replicas"))
		for _, u := range p.Unplaceable {
			fmt.Fprintf(w, "  %s %s\n", z.red("unplaceable:"), u)
		}
		for _, wt := range p.Waiting {
			fmt.Fprintf(w, "  %s %s\n", z.yellow("waiting:"), wt)
		}
	} else {
		fmt.Fprintf(w, "Placement: %s\n", z.yellow("none yet"))
	}
	if cs.Note != "" {
		fmt.Fprintf(w, "%s %s\n", z.yellow("note:"), termSafe(cs.Note))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tADDRESS\tSTATE\tPOD RANGE\tCOMMIT\tRUNNING\tPLACED")
	for _, m := range cs.Members {
		name := m.Name
		if m.Leader {
			name += "*"
		}
		state := m.State
		switch {
		case state == "alive":
			state = z.green(state)
		case !m.Since.IsZero():
			state = z.red(state) + " " + ago(now, m.Since)
		default:
			state = z.red(state)
		}
		commit := m.Commit
		if len(commit) > 12 {
			commit = commit[:12]
		}
		if commit == "" {
			commit = "-"
		}
		placed := strings.Join(m.Pods, ",")
		if placed == "" {
			placed = "-"
		}
		podRange := m.PodRange
		if podRange == "" {
			podRange = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", name, m.Addr, state, podRange, commit, m.PodsRunning, placed)
	}
	tw.Flush()
}

// printJobs prints the Jobs and CronJobs of a status, kubectl style.
func printJobs(w io.Writer, z colorizer, s agent.Status, now time.Time) {
	if len(s.Jobs) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAMESPACE\tJOB\tSTATUS\tCOMPLETIONS\tACTIVE\tFAILED\tAGE")
		for _, j := range s.Jobs {
			status := z.yellow("Running")
			switch j.Condition {
			case "Complete":
				status = z.green("Complete")
			case "Failed":
				status = z.red("Failed (" + j.Reason + ")")
			}
			completions := fmt.Sprintf("%d/%d", j.Succeeded, j.Completions)
			if j.Completions == 0 {
				completions = fmt.Sprintf("%d/-", j.Succeeded)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", termSafe(j.Namespace), termSafe(j.Name), status, completions, j.Active, j.Failed, strings.TrimSuffix(ago(now, j.StartTime), " ago"))
		}
		tw.Flush()
	}
	if len(s.CronJobs) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAMESPACE\tCRONJOB\tSCHEDULE\tSUSPEND\tACTIVE\tLAST SCHEDULE\tNEXT SCHEDULE")
		for _, cj := range s.CronJobs {
			last, next := "-", "-"
			if !cj.LastScheduleTime.IsZero() {
				last = ago(now, cj.LastScheduleTime)
			}
			if !cj.NextScheduleTime.IsZero() {
				next = cj.NextScheduleTime.Local().Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%d\t%s\t%s\n", termSafe(cj.Namespace), termSafe(cj.Name), termSafe(cj.Schedule), cj.Suspended, len(cj.Active), last, next)
		}
		tw.Flush()
	}
}
