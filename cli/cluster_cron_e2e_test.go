package cli

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// clusterCronManifest is a CronJob that ticks every 10 s (the schedule's
// @every form: each tick 10 s after the last one run) and keeps every Job
// it ran, so the test can count them.
func clusterCronManifest() string {
	return `apiVersion: batch/v1
kind: CronJob
metadata: {name: tick, namespace: ` + clusterE2EKubeNS + `}
spec:
  schedule: "@every 10s"
  successfulJobsHistoryLimit: 100
  failedJobsHistoryLimit: 100
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: main, image: "busybox:1.36", command: ["sh", "-c", "sleep 1"]}]
`
}

// cronJobs returns the Jobs of CronJob tick as the leader reports them.
func cronJobs(v view) (leader string, jobs []reconciler.JobStatus) {
	leader, _ = v.oneLeader()
	s, ok := v.status[leader]
	if !ok {
		return leader, nil
	}
	for _, j := range s.Jobs {
		if j.CronJob == "tick" {
			jobs = append(jobs, j)
		}
	}
	return leader, jobs
}

// TestClusterCronJobOncePerTick: on three hosts (real agents, containerd,
// CNI and git), a CronJob runs one Job per tick, placed by the leader; the
// leader is killed (agent and containers, its network gone) and the new
// leader goes on from the records of the placement in force: no tick runs
// twice, no Job's pod succeeds twice, and ticking goes on.
func TestClusterCronJobOncePerTick(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end cluster test: not in -short")
	}
	c := newClusterE2E(t)
	repo := testenv.NewGitRepo(t)
	repo.Git("init", "-q", "--bare", "-b", "main", c.bare)
	c.push(repo, "a CronJob ticking every 10 s", clusterCronManifest())
	a, b, cc := c.addHost(0), c.addHost(1), c.addHost(2)
	all := []*clusterHost{a, b, cc}
	for _, h := range all {
		h.start()
	}
	v := c.waitView("two Jobs of the CronJob complete", 2*time.Minute, all, func(v view) bool {
		_, jobs := cronJobs(v)
		done := 0
		for _, j := range jobs {
			if j.Condition == "Complete" {
				done++
			}
		}
		return v.membersAlive(a.name, b.name, cc.name) && done >= 2
	})
	leaderName, before := cronJobs(v)
	var leader *clusterHost
	var rest []*clusterHost
	for _, h := range all {
		if h.name == leaderName {
			leader = h
		} else {
			rest = append(rest, h)
		}
	}
	if leader == nil {
		t.Fatalf("no leader among the hosts: %q", leaderName)
	}
	killed := time.Now()
	leader.kill()
	leader.killTasks()
	leader.unplug()
	t.Logf("leader %s killed with %d Jobs of the CronJob recorded", leader.name, len(before))

	v = c.waitView("three more Jobs complete under the new leader", 3*time.Minute, rest, func(v view) bool {
		l, jobs := cronJobs(v)
		if l == "" || l == leader.name {
			return false
		}
		done := 0
		for _, j := range jobs {
			if j.Condition == "Complete" && j.StartTime.After(killed) {
				done++
			}
		}
		return done >= 3
	})
	newLeader, jobs := cronJobs(v)
	names := map[string]bool{}
	var starts []time.Time
	for _, j := range jobs {
		if names[j.Name] {
			t.Errorf("Job %s listed twice", j.Name)
		}
		names[j.Name] = true
		if j.Succeeded > 1 || j.Failed > 0 {
			t.Errorf("Job %s: %d succeeded, %d failed: a tick's pod ran more than once", j.Name, j.Succeeded, j.Failed)
		}
		if !j.StartTime.IsZero() {
			starts = append(starts, j.StartTime)
		}
	}
	for _, j := range before {
		if !names[j.Name] {
			t.Errorf("Job %s, recorded before the leader died, is gone from the new leader's records", j.Name)
		}
	}
	slices.SortFunc(starts, func(x, y time.Time) int { return x.Compare(y) })
	var gaps []string
	for i := 1; i < len(starts); i++ {
		gaps = append(gaps, fmt.Sprintf("%.1fs", starts[i].Sub(starts[i-1]).Seconds()))
	}
	t.Logf("new leader %s: %d Jobs, started at intervals %s", newLeader, len(jobs), strings.Join(gaps, " "))
	for i := 1; i < len(starts); i++ {
		// Ticks are 10 s apart; one the dead leader did not run is run
		// by the next as soon as it leads (failure detection, 3 s, and
		// the grace period), so no gap is as long as two periods and a
		// failover.
		if gap := starts[i].Sub(starts[i-1]); gap > 35*time.Second {
			t.Errorf("a tick was skipped: %s between two Jobs", gap)
		}
	}
}
