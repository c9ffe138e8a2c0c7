package workload

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // time zones resolve the same on every host

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
)

// ParseSchedule parses a CronJob's schedule: the five standard fields or a
// macro (@yearly, @annually, @monthly, @weekly, @daily, @midnight,
// @hourly, and robfig/cron's @every DURATION), read in spec.timeZone.
// Without spec.timeZone kelpie reads it in UTC, not in the local time of
// whichever host leads, so every leader computes the same ticks (a
// schedule with its own CRON_TZ= or TZ= prefix keeps it, but the manifest
// validation refuses one).
func ParseSchedule(spec *batchv1.CronJobSpec) (cron.Schedule, error) {
	text := strings.TrimSpace(spec.Schedule)
	prefixed := strings.HasPrefix(text, "TZ=") || strings.HasPrefix(text, "CRON_TZ=")
	loc := time.UTC
	if tz := spec.TimeZone; tz != nil {
		if prefixed {
			return nil, fmt.Errorf("schedule %q: a time zone in the schedule and spec.timeZone %q", spec.Schedule, *tz)
		}
		l, err := time.LoadLocation(*tz)
		if err != nil || *tz == "" || *tz == "Local" {
			return nil, fmt.Errorf("schedule %q: unknown time zone %q", spec.Schedule, *tz)
		}
		loc = l
	}
	sched, err := cron.ParseStandard(text)
	if err != nil {
		return nil, fmt.Errorf("parse schedule %q: %w", spec.Schedule, err)
	}
	if s, ok := sched.(*cron.SpecSchedule); ok && !prefixed {
		s.Location = loc
	}
	return sched, nil
}

// lastTick returns the latest tick of sched in (after, now], and false
// when there is none. It takes a bounded number of steps however long ago
// after is: a binary search, to the second, for the latest time whose
// next tick is not after now.
func lastTick(sched cron.Schedule, after, now time.Time) (time.Time, bool) {
	fires := func(from time.Time) bool {
		t := sched.Next(from)
		return !t.IsZero() && !t.After(now)
	}
	if !fires(after) {
		return time.Time{}, false
	}
	if d, ok := sched.(cron.ConstantDelaySchedule); ok {
		// @every: ticks every Delay counted from after.
		first := sched.Next(after)
		return first.Add(now.Sub(first) / d.Delay * d.Delay), true
	}
	lo, hi := after, now
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2)
		if fires(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return sched.Next(lo), true
}

// countTicks counts the ticks of sched in (after, until], at most limit+1.
func countTicks(sched cron.Schedule, after, until time.Time, limit int) int {
	n := 0
	for t := sched.Next(after); !t.IsZero() && !t.After(until) && n <= limit; t = sched.Next(t) {
		n++
	}
	return n
}
