package host

import (
	"testing"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/typeurl/v2"
)

// TestExecExit: the exit of an exec process (an exec probe's) is no drift;
// the exit of a container's task, and any other event, is.
func TestExecExit(t *testing.T) {
	anyOf := func(v any) typeurl.Any {
		t.Helper()
		a, err := typeurl.MarshalAny(v)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, tc := range []struct {
		name  string
		topic string
		event typeurl.Any
		want  bool
	}{
		{"exec process exit", "/tasks/exit", anyOf(&apievents.TaskExit{ContainerID: "default_web_main", ID: "probe-0123456789ab"}), true},
		{"task exit", "/tasks/exit", anyOf(&apievents.TaskExit{ContainerID: "default_web_main", ID: "default_web_main"}), false},
		{"task exit without an ID", "/tasks/exit", anyOf(&apievents.TaskExit{ContainerID: "default_web_main"}), false},
		{"task delete", "/tasks/delete", anyOf(&apievents.TaskDelete{ContainerID: "default_web_main", ID: "probe-1"}), false},
		{"oom", "/tasks/oom", anyOf(&apievents.TaskOOM{ContainerID: "default_web_main"}), false},
		{"no payload", "/tasks/exit", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := execExit(tc.topic, tc.event); got != tc.want {
				t.Errorf("execExit = %v, want %v", got, tc.want)
			}
		})
	}
}
