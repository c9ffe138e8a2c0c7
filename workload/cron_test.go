package workload

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// testCron returns a defaulted CronJob "backup" running schedule, changed by mut.
func testCron(schedule string, mut func(*batchv1.CronJobSpec)) *batchv1.CronJob {
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "backup"},
		Spec: batchv1.CronJobSpec{
			Schedule: schedule, ConcurrencyPolicy: batchv1.AllowConcurrent, Suspend: ptr(false),
			SuccessfulJobsHistoryLimit: ptr(int32(3)), FailedJobsHistoryLimit: ptr(int32(1)),
		},
	}
	if mut != nil {
		mut(&cj.Spec)
	}
	return cj
}

// mins returns t0 plus n minutes.
func mins(n int) time.Time { return at(time.Duration(n) * time.Minute) }

// tickName is the Job name of the test CronJob's tick at t.
func tickName(t time.Time) string { return CronJobName("backup", t) }

func TestScheduleCron(t *testing.T) {
	since := CronRecord{Since: t0}
	ranAt := func(n int) CronRecord { return CronRecord{Since: t0, LastScheduleTime: mins(n)} }
	for _, tc := range []struct {
		name    string
		cj      *batchv1.CronJob
		rec     CronRecord
		runs    []CronRun
		now     time.Time
		run     time.Time // zero: no run
		missed  int
		tooMany bool
		delete  []string
		wake    time.Time
		event   string
		check   func(*testing.T, CronDecision)
	}{
		{name: "first sight records since and waits",
			cj: testCron("* * * * *", nil), now: at(30 * time.Second), wake: mins(1),
			check: func(t *testing.T, d CronDecision) {
				if !d.Record.Since.Equal(at(30 * time.Second)) {
					t.Errorf("since %s", d.Record.Since)
				}
			}},
		{name: "a tick runs",
			cj: testCron("* * * * *", nil), rec: since, now: mins(1).Add(2 * time.Second),
			run: mins(1), wake: mins(2), event: "CronJob backup: tick 2026-03-01T12:01:00Z runs Job backup-29539441"},
		{name: "a tick runs once",
			cj: testCron("* * * * *", nil), rec: ranAt(1), now: mins(1).Add(30 * time.Second), wake: mins(2)},
		{name: "missed ticks: the latest runs, the others are reported",
			cj: testCron("* * * * *", nil), rec: ranAt(0), now: mins(5).Add(30 * time.Second),
			run: mins(5), missed: 4, wake: mins(6), event: "CronJob backup: missed 4 ticks up to 2026-03-01T12:04:00Z; not run"},
		{name: "missed ticks are reported once",
			cj: testCron("* * * * *", nil), rec: CronRecord{Since: t0, LastMissed: mins(4)}, now: mins(5).Add(30 * time.Second),
			run: mins(5), wake: mins(6)},
		{name: "within startingDeadlineSeconds",
			cj:  testCron("* * * * *", func(s *batchv1.CronJobSpec) { s.StartingDeadlineSeconds = ptr(int64(60)) }),
			rec: ranAt(0), now: mins(5).Add(60 * time.Second), run: mins(6), missed: 5, wake: mins(7)},
		{name: "beyond startingDeadlineSeconds: skipped",
			cj:  testCron("*/5 * * * *", func(s *batchv1.CronJobSpec) { s.StartingDeadlineSeconds = ptr(int64(10)) }),
			rec: ranAt(0), now: mins(5).Add(11 * time.Second), missed: 1, wake: mins(10),
			event: "CronJob backup: missed 1 tick up to 2026-03-01T12:05:00Z; not run",
			check: func(t *testing.T, d CronDecision) {
				if !d.Record.LastMissed.Equal(mins(5)) || !d.Record.LastScheduleTime.Equal(mins(0)) {
					t.Errorf("record %+v", d.Record)
				}
			}},
		{name: "too many missed start times: warned, the latest still runs",
			cj: testCron("* * * * *", nil), rec: ranAt(0), now: mins(200),
			run: mins(200), missed: 101, tooMany: true, wake: mins(201),
			event: "CronJob backup: missed more than 100 ticks up to 2026-03-01T15:19:00Z; not run"},
		{name: "a deadline bounds the count of missed start times",
			cj:  testCron("* * * * *", func(s *batchv1.CronJobSpec) { s.StartingDeadlineSeconds = ptr(int64(3000)) }),
			rec: ranAt(0), now: mins(200), run: mins(200), missed: 101, wake: mins(201)},
		{name: "suspended: nothing runs, no wake",
			cj:  testCron("* * * * *", func(s *batchv1.CronJobSpec) { s.Suspend = ptr(true) }),
			rec: ranAt(0), now: mins(3)},
		{name: "suspended: history still trimmed",
			cj:  testCron("* * * * *", func(s *batchv1.CronJobSpec) { s.Suspend = ptr(true) }),
			rec: ranAt(0), now: mins(3),
			runs:   []CronRun{{Name: "old", ScheduledAt: mins(-2), Condition: JobFailed}, {Name: "new", ScheduledAt: mins(-1), Condition: JobFailed}},
			delete: []string{"old"}},
		{name: "Forbid holds a tick back while a Job runs",
			cj:  testCron("* * * * *", func(s *batchv1.CronJobSpec) { s.ConcurrencyPolicy = batchv1.ForbidConcurrent }),
			rec: ranAt(0), runs: []CronRun{{Name: tickName(mins(0)), ScheduledAt: mins(0)}},
			now: mins(1), wake: mins(2),
			event: "CronJob backup: tick 2026-03-01T12:01:00Z held back: Job backup-29539440 still runs (concurrencyPolicy Forbid)",
			check: func(t *testing.T, d CronDecision) {
				if !d.Record.LastHeld.Equal(mins(1)) {
					t.Errorf("record %+v", d.Record)
				}
			}},
		{name: "Forbid reports a held tick once",
			cj:   testCron("* * * * *", func(s *batchv1.CronJobSpec) { s.ConcurrencyPolicy = batchv1.ForbidConcurrent }),
			rec:  CronRecord{Since: t0, LastScheduleTime: mins(0), LastHeld: mins(1)},
			runs: []CronRun{{Name: tickName(mins(0)), ScheduledAt: mins(0)}},
			now:  mins(1).Add(10 * time.Second), wake: mins(2),
			check: func(t *testing.T, d CronDecision) {
				if len(d.Events) != 0 {
					t.Errorf("events %q", d.Events)
				}
			}},
		{name: "Forbid runs the held tick once the Job ended",
			cj:   testCron("* * * * *", func(s *batchv1.CronJobSpec) { s.ConcurrencyPolicy = batchv1.ForbidConcurrent }),
			rec:  CronRecord{Since: t0, LastScheduleTime: mins(0), LastHeld: mins(1)},
			runs: []CronRun{{Name: tickName(mins(0)), ScheduledAt: mins(0), Condition: JobComplete}},
			now:  mins(1).Add(40 * time.Second), run: mins(1), wake: mins(2)},
		{name: "Forbid counts a manual Job",
			cj:   testCron("* * * * *", func(s *batchv1.CronJobSpec) { s.ConcurrencyPolicy = batchv1.ForbidConcurrent }),
			rec:  ranAt(0),
			runs: []CronRun{{Name: "backup-manual-1", Manual: true, ScheduledAt: at(30 * time.Second)}},
			now:  mins(1), wake: mins(2)},
		{name: "Replace deletes the running Jobs",
			cj:  testCron("* * * * *", func(s *batchv1.CronJobSpec) { s.ConcurrencyPolicy = batchv1.ReplaceConcurrent }),
			rec: ranAt(0), runs: []CronRun{{Name: tickName(mins(0)), ScheduledAt: mins(0)}},
			now: mins(1), run: mins(1), wake: mins(2), delete: []string{tickName(mins(0))}},
		{name: "Allow runs next to the running Jobs",
			cj:  testCron("* * * * *", nil),
			rec: ranAt(0), runs: []CronRun{{Name: tickName(mins(0)), ScheduledAt: mins(0)}},
			now: mins(1), run: mins(1), wake: mins(2)},
		{name: "the Job of the tick exists: the record is repaired, nothing runs",
			cj:  testCron("* * * * *", nil),
			rec: ranAt(0), runs: []CronRun{{Name: tickName(mins(1)), ScheduledAt: mins(1)}},
			now: mins(1).Add(time.Second), wake: mins(2),
			check: func(t *testing.T, d CronDecision) {
				if !d.Record.LastScheduleTime.Equal(mins(1)) {
					t.Errorf("record %+v", d.Record)
				}
			}},
		{name: "history limits delete the oldest finished Jobs",
			cj: testCron("0 * * * *", func(s *batchv1.CronJobSpec) {
				s.SuccessfulJobsHistoryLimit, s.FailedJobsHistoryLimit = ptr(int32(2)), ptr(int32(0))
			}),
			rec: ranAt(0), now: mins(30), wake: mins(60),
			runs: []CronRun{
				{Name: "c1", ScheduledAt: mins(-240), Condition: JobComplete},
				{Name: "c3", ScheduledAt: mins(-120), Condition: JobComplete},
				{Name: "c2", ScheduledAt: mins(-180), Condition: JobComplete},
				{Name: "f1", ScheduledAt: mins(-60), Condition: JobFailed},
				{Name: "m1", ScheduledAt: mins(-30), Condition: JobComplete, Manual: true},
				{Name: "r1", ScheduledAt: mins(0)},
			},
			delete: []string{"c1", "c2", "f1"}},
		{name: "timeZone: 02:00 in Oslo is 01:00 UTC in winter",
			cj:  testCron("0 2 * * *", func(s *batchv1.CronJobSpec) { s.TimeZone = ptr("Europe/Oslo") }),
			rec: CronRecord{Since: time.Date(2026, 1, 9, 0, 0, 0, 0, time.UTC)}, now: time.Date(2026, 1, 10, 1, 0, 30, 0, time.UTC),
			run: time.Date(2026, 1, 10, 1, 0, 0, 0, time.UTC), missed: 1, wake: time.Date(2026, 1, 11, 1, 0, 0, 0, time.UTC)},
		{name: "no timeZone: UTC",
			cj:  testCron("0 2 * * *", nil),
			rec: CronRecord{Since: time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)}, now: time.Date(2026, 1, 10, 1, 0, 30, 0, time.UTC),
			wake: time.Date(2026, 1, 10, 2, 0, 0, 0, time.UTC)},
		{name: "@hourly",
			cj: testCron("@hourly", nil), rec: since, now: mins(61), run: mins(60), wake: mins(120)},
		{name: "@daily",
			cj: testCron("@daily", nil), rec: since, now: mins(12 * 60), run: mins(12 * 60), wake: mins(36 * 60)},
		{name: "@every 90s counts from the last tick",
			cj: testCron("@every 90s", nil), rec: ranAt(0), now: mins(5),
			run: at(270 * time.Second), missed: 2, wake: at(390 * time.Second)},
		{name: "a schedule that never fires",
			cj: testCron("0 0 30 2 *", nil), rec: since, now: mins(60)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := ScheduleCron(tc.cj, tc.rec, tc.runs, tc.now)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.run.IsZero() && d.Run != nil:
				t.Errorf("run %+v, want none", *d.Run)
			case !tc.run.IsZero() && d.Run == nil:
				t.Errorf("no run, want %s", tc.run)
			case d.Run != nil:
				if !d.Run.ScheduledAt.Equal(tc.run) || d.Run.Name != tickName(tc.run) || d.Run.Manual {
					t.Errorf("run %+v, want %s", *d.Run, tc.run)
				}
				if !d.Record.LastScheduleTime.Equal(tc.run) {
					t.Errorf("lastScheduleTime %s, want %s", d.Record.LastScheduleTime, tc.run)
				}
			}
			if d.Missed != tc.missed || d.TooManyMissed != tc.tooMany {
				t.Errorf("missed %d %v, want %d %v (%q)", d.Missed, d.TooManyMissed, tc.missed, tc.tooMany, d.Events)
			}
			var dels []string
			for _, x := range d.Delete {
				dels = append(dels, x.Name)
			}
			if !slices.Equal(dels, tc.delete) {
				t.Errorf("delete %v, want %v", dels, tc.delete)
			}
			if !d.Wake.Equal(tc.wake) {
				t.Errorf("wake %s, want %s", d.Wake, tc.wake)
			}
			if tc.event != "" && !slices.Contains(d.Events, tc.event) {
				t.Errorf("events %q, want %q among them", d.Events, tc.event)
			}
			if tc.check != nil {
				tc.check(t, d)
			}
		})
	}
}

func TestParseSchedule(t *testing.T) {
	for _, tc := range []struct {
		schedule string
		tz       *string
		err      string
	}{
		{"*/5 * * * *", nil, ""},
		{"@weekly", ptr("America/New_York"), ""},
		{"CRON_TZ=Asia/Tokyo 0 9 * * *", nil, ""},
		{"CRON_TZ=Asia/Tokyo 0 9 * * *", ptr("UTC"), "a time zone in the schedule"},
		{"0 9 * * *", ptr("Mars/Olympus"), "unknown time zone"},
		{"0 9 * * *", ptr("Local"), "unknown time zone"},
		{"61 * * * *", nil, "parse schedule"},
	} {
		_, err := ParseSchedule(&batchv1.CronJobSpec{Schedule: tc.schedule, TimeZone: tc.tz})
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: %v, want %q", tc.schedule, err, tc.err)
		}
	}
	if _, err := ScheduleCron(testCron("bad", nil), CronRecord{}, nil, t0); err == nil || !strings.Contains(err.Error(), "CronJob default/backup") {
		t.Errorf("bad schedule: %v", err)
	}
}

func TestCronNames(t *testing.T) {
	tick := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	if got := CronJobName("backup", tick); got != "backup-29538840" {
		t.Errorf("CronJobName %q", got)
	}
	if got := ManualJobName("backup", tick.Add(5*time.Second)); got != "backup-manual-1772330405" {
		t.Errorf("ManualJobName %q", got)
	}
	cj := testCron("0 2 * * *", func(s *batchv1.CronJobSpec) { s.Suspend = ptr(true) })
	trig := Trigger(cj, tick)
	if !trig.Manual || trig.Name != "backup-manual-1772330400" || trig.Name == CronJobName("backup", tick) {
		t.Errorf("trigger %+v", trig)
	}
	a := JobFromCron(cj, CronTick{Name: CronJobName("backup", tick), ScheduledAt: tick})
	cj.Spec.JobTemplate.Spec.Template.Annotations = map[string]string{"changed": "yes"}
	b := JobFromCron(cj, CronTick{Name: CronJobName("backup", tick), ScheduledAt: tick})
	c := JobFromCron(cj, trig)
	if a.Identity != b.Identity || a.Identity == c.Identity || a.Name != "backup-29538840" || a.Namespace != "default" {
		t.Errorf("identities %s %s %s", a.Identity, b.Identity, c.Identity)
	}
	if a.Spec.Template.Annotations != nil || b.Spec.Template.Annotations["changed"] != "yes" {
		t.Errorf("JobFromCron does not copy the template: %v %v", a.Spec.Template.Annotations, b.Spec.Template.Annotations)
	}
}

// TestLastTick compares lastTick with walking every tick, for schedules of
// all densities and windows of all lengths.
func TestLastTick(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	oslo, _ := time.LoadLocation("Europe/Oslo")
	// Each schedule with the longest window the naive walk can afford.
	schedules := map[string]time.Duration{
		"* * * * *": 48 * time.Hour, "*/7 * * * *": 20 * 24 * time.Hour, "@every 97s": 48 * time.Hour,
		"0 * * * *": 900 * 24 * time.Hour, "30 2 * * *": 900 * 24 * time.Hour, "0 9 * * 1-5": 900 * 24 * time.Hour,
		"0 0 1 * *": 900 * 24 * time.Hour, "0 0 29 2 *": 900 * 24 * time.Hour, "15,45 9-17 * * 1": 900 * 24 * time.Hour,
	}
	for text, window := range schedules {
		sched, err := cron.ParseStandard(text)
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := sched.(*cron.SpecSchedule); ok && rng.IntN(2) == 0 {
			s.Location = oslo
		}
		for range 40 {
			after := t0.Add(time.Duration(rng.Int64N(int64(400 * 24 * time.Hour))))
			now := after.Add(time.Duration(rng.Int64N(int64([]time.Duration{time.Hour, window}[rng.IntN(2)]))))
			var want time.Time
			steps := 0
			for tk := sched.Next(after); !tk.IsZero() && !tk.After(now); tk = sched.Next(tk) {
				want = tk
				if steps++; steps > 2_000_000 {
					t.Fatal("naive walk too long")
				}
			}
			got, ok := lastTick(sched, after, now)
			if ok != !want.IsZero() || !got.Equal(want) {
				t.Errorf("%q after %s until %s: %s %v, want %s", text, after, now, got, ok, want)
			}
		}
	}
}

// TestCronExactlyOnce lets two deciders with drifting clocks take turns on
// one shared record and checks that no tick's Job is created twice and
// ticks run in order, also when a decision's record write is lost after
// its Job was created (half the trials); and, when no write is lost, that
// every tick runs (none missed) as long as the deciders wake in time.
func TestCronExactlyOnce(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for trial := range 100 {
		cj := testCron("*/2 * * * *", func(s *batchv1.CronJobSpec) {
			s.ConcurrencyPolicy = []batchv1.ConcurrencyPolicy{batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent}[rng.IntN(3)]
		})
		lossy := trial%2 == 0
		rec := CronRecord{}
		created := map[string]bool{}
		var runs []CronRun
		var last time.Time
		now := t0
		for range 300 {
			now = now.Add(time.Duration(rng.IntN(90)) * time.Second)
			skew := time.Duration(rng.IntN(5)-2) * time.Second // the other decider's clock
			d, err := ScheduleCron(cj, rec, runs, now.Add(skew))
			if err != nil {
				t.Fatal(err)
			}
			if d.Missed > 0 && !lossy && cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
				t.Fatalf("trial %d: missed %d ticks although deciders wake every 90 s: %q", trial, d.Missed, d.Events)
			}
			gone := map[string]bool{}
			for _, x := range d.Delete {
				gone[x.Name] = true
			}
			runs = slices.DeleteFunc(runs, func(r CronRun) bool { return gone[r.Name] })
			if r := d.Run; r != nil {
				if created[r.Name] {
					t.Fatalf("trial %d: Job %s created twice", trial, r.Name)
				}
				if !r.ScheduledAt.After(last) {
					t.Fatalf("trial %d: tick %s after %s", trial, r.ScheduledAt, last)
				}
				created[r.Name], last = true, r.ScheduledAt
				runs = append(runs, CronRun{Name: r.Name, ScheduledAt: r.ScheduledAt})
			}
			if !lossy || rng.IntN(5) > 0 { // else the record write is lost
				rec = d.Record
			}
			for i := range runs {
				if runs[i].Condition == "" && rng.IntN(3) == 0 {
					runs[i].Condition = JobComplete
				}
			}
		}
		if len(created) < 50 {
			t.Fatalf("trial %d: only %d ticks ran", trial, len(created))
		}
	}
}

// TestCronClockJumps: the wall clock jumps an hour while a CronJob ticks
// every minute. Forwards: one Job (the latest tick), the 59 ticks in
// between reported missed once, and then a Job a minute as before (no
// burst). Backwards: no tick already run runs again, nothing runs until
// the clock passes the last tick run (as the Kubernetes controller, which
// counts from lastScheduleTime), and the wake-up is never in the past, so
// the decider is not spun or left asleep.
func TestCronClockJumps(t *testing.T) {
	for _, tc := range []struct {
		name string
		jump time.Duration
	}{
		{"an hour forwards", time.Hour},
		{"an hour backwards", -time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cj := testCron("* * * * *", nil)
			rec := CronRecord{Since: t0}
			var runs []CronRun
			created := map[string]int{}
			decide := func(now time.Time) CronDecision {
				t.Helper()
				d, err := ScheduleCron(cj, rec, runs, now)
				if err != nil {
					t.Fatal(err)
				}
				if !d.Wake.After(now) {
					t.Fatalf("at %s: wake %s is not ahead", stamp(now), stamp(d.Wake))
				}
				if d.Run != nil {
					created[d.Run.Name]++
					if created[d.Run.Name] > 1 {
						t.Fatalf("at %s: tick %s runs a second time", stamp(now), stamp(d.Run.ScheduledAt))
					}
					runs = append(runs, CronRun{Name: d.Run.Name, ScheduledAt: d.Run.ScheduledAt, Condition: JobComplete})
				}
				rec = d.Record
				return d
			}
			// Ten minutes of normal ticks, woken at each tick plus a second.
			for m := 1; m <= 10; m++ {
				if d := decide(mins(m).Add(time.Second)); d.Run == nil {
					t.Fatalf("minute %d: no Job", m)
				}
			}
			// The jump, then a decision at every wake for two hours of the new clock.
			now := mins(10).Add(time.Second + tc.jump)
			ran, missed := 0, 0
			for end := now.Add(2 * time.Hour); now.Before(end); {
				d := decide(now)
				if d.Run != nil {
					ran++
				}
				missed += d.Missed
				now = d.Wake.Add(time.Second)
			}
			switch tc.jump > 0 {
			case true: // the tick of 13:10 right after the jump, then 13:11 … 15:09
				if missed != 59 || ran != 120 {
					t.Errorf("after the jump forwards: %d Jobs, %d ticks missed; want 120 and 59", ran, missed)
				}
			case false: // nothing for the hour already run, then one a minute: 12:11 … 13:09
				if missed != 0 || ran != 59 {
					t.Errorf("after the jump backwards: %d Jobs, %d ticks missed; want 59 and 0", ran, missed)
				}
			}
		})
	}
}
