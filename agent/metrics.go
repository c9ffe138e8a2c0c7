package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/workload"
)

// Sync results, the values of kelpie_sync_total's result label.
const (
	resultOK      = "ok"      // the host runs the head
	resultRefused = "refused" // the head was refused; the last good commit keeps running
	resultFailed  = "failed"  // a transient failure; retried with back-off
)

// metrics are the agent's Prometheus metrics, in a registry of its own (so
// several agents in one test process do not collide).
type metrics struct {
	reg       *prometheus.Registry
	syncs     *prometheus.CounterVec
	lastSync  prometheus.Gauge
	applied   *prometheus.GaugeVec
	reconcile prometheus.Histogram
	phases    *prometheus.HistogramVec
	pods      *prometheus.GaugeVec
	jobs      *prometheus.GaugeVec
	podsReady prometheus.Gauge
	errors    *prometheus.CounterVec
	probes    *prometheus.CounterVec
	// probeCounts are probes' counters by kind and result, resolved once:
	// a host may make hundreds of probes a second.
	probeCounts map[workload.ProbeKind][2]prometheus.Counter
	lastCommit  string
}

// newMetrics registers the agent's metrics, with the Go and process
// collectors.
func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kelpie_sync_total",
			Help: "Syncs (fetch, validate, plan, apply) by result: ok, refused or failed.",
		}, []string{"result"}),
		lastSync: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kelpie_last_sync_timestamp_seconds",
			Help: "Unix time of the last sync that ended ok.",
		}),
		applied: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kelpie_applied_commit_info",
			Help: "The commit the host converged to last (value 1).",
		}, []string{"commit"}),
		reconcile: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kelpie_reconcile_duration_seconds",
			Help:    "Time to observe, plan and apply, per sync and per drift repair.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}),
		phases: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kelpie_sync_phase_duration_seconds",
			Help:    "Time of each phase of a sync: fetch, validate, plan (observe and plan), apply.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"phase"}),
		pods: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kelpie_pods",
			Help: "Pods kelpie runs on this host by phase: Running, Pending, Succeeded, Failed.",
		}, []string{"phase"}),
		jobs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kelpie_jobs",
			Help: "Jobs on this host (of the manifests and of CronJobs) by condition: Running, Complete, Failed.",
		}, []string{"condition"}),
		podsReady: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kelpie_pods_ready",
			Help: "Pods kelpie runs on this host whose Ready condition holds (every app container ready: its readiness probe passed, or it runs without one).",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kelpie_errors_total",
			Help: "Failures by kind: invalid, not_fast_forward, untrusted, empty, plan, fetch, observe, apply.",
		}, []string{"kind"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kelpie_probes_total",
			Help: "Probes of the pods' containers by kind (startup, liveness, readiness) and result (success, failure).",
		}, []string{"probe", "result"}),
		probeCounts: map[workload.ProbeKind][2]prometheus.Counter{},
	}
	for _, k := range []workload.ProbeKind{workload.Startup, workload.Liveness, workload.Readiness} {
		m.probeCounts[k] = [2]prometheus.Counter{m.probes.WithLabelValues(string(k), "failure"), m.probes.WithLabelValues(string(k), "success")}
	}
	m.reg.MustRegister(m.syncs, m.lastSync, m.applied, m.reconcile, m.phases, m.pods, m.podsReady, m.jobs, m.errors, m.probes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{resultOK, resultRefused, resultFailed} {
		m.syncs.WithLabelValues(r) // present at 0, so rate() works from the start
	}
	for _, p := range podPhases {
		m.pods.WithLabelValues(p)
	}
	for _, c := range jobConditions {
		m.jobs.WithLabelValues(c)
	}
	for _, k := range []ErrorKind{KindInvalid, KindNotFastForward, KindUntrusted, KindEmpty, KindPlan, KindFetch, KindObserve, KindApply} {
		m.errors.WithLabelValues(string(k))
	}
	return m
}

// sync counts a sync and, when it ended ok, its time.
func (m *metrics) sync(result string, at time.Time) {
	m.syncs.WithLabelValues(result).Inc()
	if result == resultOK {
		m.lastSync.Set(float64(at.UnixNano()) / 1e9)
	}
}

// probe counts a probe of kind; ok is its result. It is the probe
// engine's OnProbe.
func (m *metrics) probe(kind workload.ProbeKind, ok bool) {
	c, known := m.probeCounts[kind]
	if !known {
		return
	}
	if ok {
		c[1].Inc()
	} else {
		c[0].Inc()
	}
}

// setApplied makes commit the one kelpie_applied_commit_info reports.
func (m *metrics) setApplied(commit string) {
	if commit == m.lastCommit {
		return
	}
	if m.lastCommit != "" {
		m.applied.DeleteLabelValues(m.lastCommit)
	}
	m.lastCommit = commit
	m.applied.WithLabelValues(commit).Set(1)
}

// setPods sets kelpie_pods from the pods' phases and kelpie_pods_ready
// from their Ready condition.
func (m *metrics) setPods(pods []PodStatus) {
	counts := map[string]int{}
	ready := 0
	for _, p := range pods {
		counts[p.State]++
		if p.PodReady {
			ready++
		}
	}
	m.podsReady.Set(float64(ready))
	for _, p := range podPhases {
		m.pods.WithLabelValues(p).Set(float64(counts[p]))
	}
}

// jobConditions label kelpie_jobs: a Job runs until Complete or Failed.
var jobConditions = []string{"Running", "Complete", "Failed"}

// setJobs sets kelpie_jobs from the Jobs' conditions.
func (m *metrics) setJobs(jobs []reconciler.JobStatus) {
	counts := map[string]int{}
	for _, j := range jobs {
		c := j.Condition
		if c == "" {
			c = "Running"
		}
		counts[c]++
	}
	for _, c := range jobConditions {
		m.jobs.WithLabelValues(c).Set(float64(counts[c]))
	}
}

// observePhases records the phases of a sync.
func (m *metrics) observePhases(p SyncPhases) {
	for name, secs := range map[string]float64{"fetch": p.Fetch, "validate": p.Validate, "plan": p.Plan, "apply": p.Apply} {
		m.phases.WithLabelValues(name).Observe(secs)
	}
}
