package reconciler_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/reconciler/reconcilertest"
)

// statefulSetYAML is an OrderedReady StatefulSet of three busybox pods.
const statefulSetYAML = `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 3
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: main, image: busybox}]}
`

// TestExecuteRolloutStatefulSet: a one-shot caller (kelpie apply) starts an
// OrderedReady StatefulSet to the end in one ExecuteRollout, one pod a
// round, in ordinal order.
func TestExecuteRolloutStatefulSet(t *testing.T) {
	desired, _ := reconciler.ExpandText(t, statefulSetYAML)
	fake := reconcilertest.NewFake(reconciler.Actual{})
	opts := reconciler.PlanOptions{Now: reconciler.Now, RollingUpdates: true}
	res, err := reconciler.Plan(desired, reconciler.Actual{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	_, rep, err := reconciler.ExecuteRollout(context.Background(), fake, desired, res, opts, reconciler.ExecOptions{},
		func() time.Time { return reconciler.Now }, reconciler.RolloutHooks{})
	if err != nil || !rep.OK() {
		t.Fatalf("ExecuteRollout: %v, %v", err, rep.Err())
	}
	var created []string
	for _, c := range fake.Calls() {
		if c.Method == "CreatePod" {
			created = append(created, c.Subject)
		}
	}
	if want := []string{"default/db-0", "default/db-1", "default/db-2"}; !slices.Equal(created, want) {
		t.Errorf("created %v, want %v in order", created, want)
	}
}
