package host

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	tasks "github.com/containerd/containerd/api/services/tasks/v1"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/reconciler"
)

// TestRestartOverInterruptedTask recreates what a SIGKILLed apply leaves
// when it dies inside NewTask and right after NewContainer: the container
// exists, its creation lease is still there, it has no task, and the shim
// bundle directory of the interrupted task creation has not been removed
// yet. Restarting the container (what the planner asks for) must retry until containerd has cleared the bundle, start
// the task and release the lease.
func TestRestartOverInterruptedTask(t *testing.T) {
	tr := newTestRuntime(t, nil)
	ctx := tr.ctx(t)
	stateDir := filepath.Join(filepath.Dir(testenv.ContainerdAddress(t)), "state")
	taskDir := filepath.Join(stateDir, "io.containerd.runtime.v2.task", tr.ns)
	if _, err := os.Stat(stateDir); err != nil {
		testenv.Missing(t, "containerd's state dir is not beside its socket (%v): the private containerd of scripts/containerd.sh has it there", err)
	}

	p := busyboxPod("interrupted-task", "exec sleep 1000")
	p.HostNetwork = true
	if err := tr.CreatePod(ctx, p); err != nil {
		t.Fatalf("CreatePod: %v", err)
	}
	id := containerIDOf(p.Namespace, p.Name, "main")
	if _, _, err := tr.containerLease(ctx, id, reconciler.JoinName(p.Namespace, p.Name)); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.cd.TaskService().Delete(ctx, &tasks.DeleteTaskRequest{ContainerID: id}); err == nil {
		t.Fatal("deleting a running task succeeded; want it refused")
	}
	cont := tr.load(t, p.Namespace, p.Name, "main")
	task, err := cont.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := stopTask(ctx, task, 0); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(taskDir, id)
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		t.Fatal(err)
	}
	cleared := make(chan struct{})
	go func() {
		defer close(cleared)
		time.Sleep(300 * time.Millisecond) // as containerd finishing the interrupted creation
		os.Remove(bundle)
	}()
	err = tr.RestartContainer(ctx, p, "main")
	<-cleared
	if err != nil {
		t.Fatalf("RestartContainer over an interrupted task creation: %v", err)
	}
	a, _ := tr.observePod(t, p.Namespace, p.Name)
	if c, _ := containerOf(a, "main"); c.State != reconciler.Running {
		t.Errorf("container %+v, want running", c)
	}
	lss, err := tr.cd.LeasesService().List(ctx, "id=="+id)
	if err != nil {
		t.Fatal(err)
	}
	if len(lss) != 0 {
		t.Errorf("the creation lease %s is still there", id)
	}
}
