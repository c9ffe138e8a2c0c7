package faults

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// flakyBridge is a CNI plugin named bridge, placed before the real plugins
// in --cni-bin-dir, that runs the real /usr/lib/cni/bridge but fails every
// third ADD or DEL with a CNI error: the 3rd, 9th, 15th… call before doing
// anything (a plugin that could not start), the 6th, 12th… after the real
// plugin did its work (a plugin that crashed before answering: its veth
// and IP lease exist, yet the runtime was told it failed). Each call is
// logged to calls.log beside it.
const flakyBridge = `#!/bin/sh
dir=$(dirname "$0")
case "$CNI_COMMAND" in
ADD|DEL) ;;
*) exec /usr/lib/cni/bridge ;;
esac
n=$(flock "$dir/count.lock" sh -c 'n=$(( $(cat "$1" 2>/dev/null || echo 0) + 1 )); echo $n > "$1"; echo $n' sh "$dir/count")
fail() {
  echo "$n $CNI_COMMAND $CNI_CONTAINERID $1" >> "$dir/calls.log"
  printf '{"cniVersion":"1.0.0","code":999,"msg":"injected fault: %s %s, call %s","details":"%s"}\n' "$CNI_COMMAND" "$CNI_CONTAINERID" "$n" "$1"
  exit 1
}
if [ $((n % 6)) -eq 3 ]; then
  fail "before the real plugin"
fi
if [ $((n % 6)) -eq 0 ]; then
  conf=$(cat)
  printf '%s' "$conf" | /usr/lib/cni/bridge >/dev/null 2>&1
  fail "after the real plugin (exit $?)"
fi
echo "$n $CNI_COMMAND $CNI_CONTAINERID ok" >> "$dir/calls.log"
exec /usr/lib/cni/bridge
`

// TestCNIFailsIntermittently: every third ADD and DEL of the bridge plugin
// fails, half of them after the plugin did its work. The agent converges
// anyway (its retries and back-off), through creates, replacements and
// deletions, and no network namespace, veth, IP lease or iptables rule of
// a failed call is left behind.
func TestCNIFailsIntermittently(t *testing.T) {
	parallel(t)
	addr := testenv.ContainerdAddress(t)
	testenv.Binary(t, "flock", "util-linux")
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		testenv.Missing(t, "CNI plugin bridge not found in /usr/lib/cni (apt-get install containernetworking-plugins): %v", err)
	}
	r := newRig(t, addr)
	wrap := t.TempDir()
	if err := os.WriteFile(filepath.Join(wrap, "bridge"), []byte(flakyBridge), 0o755); err != nil {
		t.Fatal(err)
	}
	calls := func() (total, failed int, failures []string) {
		b, _ := os.ReadFile(filepath.Join(wrap, "calls.log"))
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if l == "" {
				continue
			}
			total++
			if !strings.HasSuffix(l, " ok") {
				failed++
				failures = append(failures, l)
			}
		}
		return total, failed, failures
	}

	v1 := site{"a": "1", "b": "1", "c": "1", "d": "1"}
	c1 := r.push("v1", r.files(v1))
	r.start(r.bare, "--interval", "1h", "--cni-bin-dir", wrap, "--cni-bin-dir", "/usr/lib/cni")
	began := time.Now()
	r.waitConverged("v1 despite failing CNI calls", 3*time.Minute, c1, v1)
	total, failed, failures := calls()
	t.Logf("v1 converged in %v through %d bridge calls, %d failed:\n%s", time.Since(began).Round(time.Millisecond), total, failed, strings.Join(failures, "\n"))
	if failed == 0 {
		t.Fatalf("no CNI call failed (%d calls): the fault was not injected", total)
	}

	// Replace two pods, delete one, add two: ADDs and DELs, some failing.
	v2 := site{"a": "2", "b": "2", "c": "1", "e": "1", "f": "1"}
	c2 := r.push("v2", r.files(v2))
	began = time.Now()
	r.waitConverged("v2 despite failing CNI calls", 3*time.Minute, c2, v2)
	total2, failed2, failures := calls()
	t.Logf("v2 converged in %v through %d more bridge calls, %d failed:\n%s", time.Since(began).Round(time.Millisecond),
		total2-total, failed2-failed, strings.Join(failures[failed:], "\n"))
	if s, err := r.status(); err == nil && s.LastSync != nil {
		t.Logf("last sync: %+v", *s.LastSync)
	}
	r.stop()
}
