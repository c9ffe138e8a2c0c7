package proc

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

func TestDescendants(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err) // every Linux host has one
	}
	// sh runs a sleep in the background and waits: a child and, through
	// the subshell, a grandchild.
	cmd := exec.Command(sh, "-c", "(sleep 30 & wait) & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := time.Now().Add(5 * time.Second)
	var got []int
	for time.Now().Before(deadline) {
		if got = Descendants(cmd.Process.Pid); len(got) >= 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(got) < 2 {
		t.Fatalf("Descendants(%d) = %v, want a child and a grandchild", cmd.Process.Pid, got)
	}
	for _, p := range got {
		if p == cmd.Process.Pid || p == os.Getpid() {
			t.Errorf("Descendants(%d) = %v holds %d", cmd.Process.Pid, got, p)
		}
	}
	if mine := Descendants(os.Getpid()); !slices.Contains(mine, cmd.Process.Pid) || !slices.Contains(mine, got[len(got)-1]) {
		t.Errorf("Descendants(self) = %v, want the shell %d and its descendants %v", mine, cmd.Process.Pid, got)
	}
	if d := Descendants(1 << 30); len(d) != 0 {
		t.Errorf("Descendants of a pid that does not exist = %v", d)
	}
}
