package proc

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestStartTime(t *testing.T) {
	before := time.Now()
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	got := StartTime(cmd.Process.Pid)
	// btime has a second's resolution and start times a tick's.
	if got.Before(before.Add(-2*time.Second)) || got.After(time.Now().Add(2*time.Second)) {
		t.Errorf("start time of a process started at %v: %v", before, got)
	}
	if self := StartTime(os.Getpid()); self.IsZero() || self.After(before) {
		t.Errorf("this process's start time %v, want before %v", self, before)
	}
	if !StartTime(-1).IsZero() {
		t.Error("a start time for pid -1")
	}
}
