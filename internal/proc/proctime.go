// Package proc reads what kelpie needs to know about host processes from
// /proc: when a process started. It never changes a process.
package proc

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is the kernel's USER_HZ, the unit of a process's start time in
// /proc/PID/stat: 100 on every Linux architecture kelpie runs on.
const clockTicks = 100

var (
	bootOnce sync.Once
	bootTime time.Time
)

// StartTime returns when process pid started, from its start time in
// /proc/PID/stat and the boot time in /proc/stat; zero when either cannot
// be read (the process is gone).
func StartTime(pid int) time.Time {
	bootOnce.Do(func() {
		b, err := os.ReadFile("/proc/stat")
		if err != nil {
			return
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "btime "); ok {
				if s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
					bootTime = time.Unix(s, 0)
				}
			}
		}
	})
	ticks, err := strconv.ParseInt(StartTicks(pid), 10, 64)
	if err != nil || bootTime.IsZero() || pid <= 0 {
		return time.Time{}
	}
	return bootTime.Add(time.Duration(ticks) * time.Second / clockTicks)
}

// StartTicks returns the start time of process pid in clock ticks since
// boot (field 22 of /proc/PID/stat), or "" when the process does not exist.
func StartTicks(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 { // fields 3.. follow the name; start time is field 22
		return ""
	}
	return f[19]
}
