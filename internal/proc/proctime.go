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
