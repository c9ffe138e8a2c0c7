package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
)

// applyPrinter writes apply's text output: the plan's notices first, each
// action as it ends, then what still waits and the summary.
type applyPrinter struct {
	w io.Writer
	z colorizer
}

// begin writes what comes before any action runs.
func (p applyPrinter) begin(hp hostPlan) {
	for _, n := range hp.Notices {
		fmt.Fprintf(p.w, "%s %s\n", p.z.yellow("note:"), n)
	}
	printJobEvents(p.w, p.z, hp)
	if hp.Result.Empty() {
		fmt.Fprintf(p.w, "No changes: host %s runs what the manifests describe.\n", hp.Node)
	}
}

// done writes an action that ended, after took, with err (nil on success).
func (p applyPrinter) done(a reconciler.Action, err error, took time.Duration) {
	if err != nil {
		fmt.Fprintf(p.w, "  %s %s: %v\n", p.z.red("✗"), a, err)
		return
	}
	fmt.Fprintf(p.w, "  %s %s\n", paintAction(p.z, a), p.z.bold(fmt.Sprintf("[%.1fs]", took.Seconds())))
}

// end writes what waits or is kept once the rollout ended, and the summary
// of report, which took took in all.
func (p applyPrinter) end(hp hostPlan, report reconciler.Report, took time.Duration) {
	for _, wt := range hp.Result.Waiting {
		fmt.Fprintf(p.w, "  %s %s\n", p.z.yellow("…"), wt)
	}
	for _, k := range hp.Result.Kept {
		fmt.Fprintf(p.w, "  %s %s\n", p.z.bold("="), k)
	}
	if len(hp.Result.Actions) > 0 {
		fmt.Fprintf(p.w, "\nApply: %d done, %d failed, %d skipped in %.1fs.\n", report.Succeeded, report.Failed, report.Skipped, took.Seconds())
	}
}
