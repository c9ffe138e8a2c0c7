package faults

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// crashIterations is the number of kill points of TestAgentCrashLoop;
// KELPIE_FAULTS_LONG makes it 30, KELPIE_CRASH_ITERATIONS sets it, and
// KELPIE_CRASH_SEED fixes the seed.
func crashIterations(t *testing.T) int {
	if s := os.Getenv("KELPIE_CRASH_ITERATIONS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("KELPIE_CRASH_ITERATIONS=%q: want a positive integer", s)
		}
		return n
	}
	if os.Getenv("KELPIE_FAULTS_LONG") != "" {
		return 30
	}
	return 8
}

// crashRand is the seeded generator of a crash loop's kill points: the
// seed is KELPIE_CRASH_SEED or the time, and is logged.
func crashRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := time.Now().UnixNano()
	if s := os.Getenv("KELPIE_CRASH_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("KELPIE_CRASH_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (rerun with KELPIE_CRASH_SEED=%d)", seed, seed)
	return rand.New(rand.NewPCG(uint64(seed), 0x6661756c7473))
}

// TestAgentCrashLoop is the SIGKILL crash loop of `kelpie apply`
// (cli/crash_test.go) with the agent and git in the loop: commits that
// create, replace and delete pods are pushed in turn; after each push the
// agent is SIGKILLed at a random moment of the sync the push started,
// restarted, and must converge on the pushed commit with every desired pod
// running exactly once and nothing leaked. The kill points are fractions
// of a full sync's duration drawn from a seeded generator; the seed and
// each kill point are logged.
func TestAgentCrashLoop(t *testing.T) {
	parallel(t)
	addr := testenv.ContainerdAddress(t)
	rng := crashRand(t)
	r := newRig(t, addr)

	// A → B replaces two pods, deletes one and creates one; B → A undoes it.
	a := site{"keep": "1", "p1": "a", "p2": "a", "p3": "a"}
	b := site{"keep": "1", "p1": "b", "p2": "b", "n1": "b"}
	targets := []site{a, b}

	// Without kills: how long a sync of each change takes.
	c := r.push("A", r.files(a))
	r.start(r.bare, "--interval", "1h")
	r.waitConverged("A, cold", 2*time.Minute, c, a)
	var full time.Duration
	for i, target := range []site{b, a} {
		began := time.Now()
		c = r.push("probe "+strconv.Itoa(i), r.files(target))
		r.waitConverged("probe "+strconv.Itoa(i), time.Minute, c, target)
		full = max(full, time.Since(began))
	}
	t.Logf("a sync without kills takes up to %v from the push", full.Round(time.Millisecond))

	for i := range crashIterations(t) {
		target := targets[(i+1)%2]
		delay := time.Duration(rng.Float64() * float64(full))
		c = r.push("round "+strconv.Itoa(i), r.files(target))
		time.Sleep(delay) // the kill point, drawn from the seed
		r.kill()
		t.Logf("kill point %d: %v after the push of %.12s", i, delay.Round(time.Millisecond), c)
		r.start(r.bare, "--interval", "1h")
		began := time.Now()
		s := r.waitConverged("round "+strconv.Itoa(i), 2*time.Minute, c, target)
		t.Logf("kill point %d: converged %v after the restart (sync %d, %d action(s))", i, time.Since(began).Round(time.Millisecond), s.LastSync.Seq, s.LastSync.Actions)
	}
	r.stop()
}
