package reconciler

import (
	"os"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/specs"
)

// TestConvergedPlansNothing: a host that runs exactly the desired state,
// as Converged describes it, needs no action; a changed desired state
// plans the changes.
func TestConvergedPlansNothing(t *testing.T) {
	state, err := specs.Load(os.DirFS("../examples/site"), ".", specs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := Expand(state, Host{Name: "h1"})
	if len(d.Pods) == 0 {
		t.Fatal("the example expands to no pods")
	}
	opts := PlanOptions{Now: time.Now(), Prune: true, AllowEmpty: true}
	res, err := Plan(d, Converged(d), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Empty() {
		t.Errorf("plan against Converged(d): %v", res.Actions)
	}
	fewer := d
	fewer.Pods = d.Pods[1:]
	res, err = Plan(fewer, Converged(d), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Actions) != 1 || res.Actions[0].Kind != Delete || res.Actions[0].Subject.Name != d.Pods[0].Name {
		t.Errorf("plan without %s: %v, want one pod deletion", d.Pods[0].Name, res.Actions)
	}
}
