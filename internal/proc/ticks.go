package proc

import (
	"os"
	"strconv"
	"strings"
)

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
