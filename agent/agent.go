package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/probes"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/scheduler"
	"github.com/kelpie-dev/kelpie/source"
	"github.com/kelpie-dev/kelpie/specs"
)

// triggerBuffer is how many sync requests wait for the loop; more are
// dropped, since one queued sync serves them all.
const triggerBuffer = 16

// Agent keeps one host in the state of a git ref. Create it with New, run
// it with Run. Trigger, Status and Handler may be called from any
// goroutine, before and while Run runs.
type Agent struct {
	cfg     Config
	src     Source
	rt      reconciler.Runtime
	priv    reconciler.HostPrivileges // what the host grants its pods (Config.Runtime's flags)
	events  <-chan struct{}
	log     *slog.Logger
	clock   Clock
	metrics *metrics

	triggers   chan source.Trigger
	background []func(ctx context.Context) // inputs Run starts and stops with the loop (Open's watchers)
	closers    []func() error              // what Close releases (Open's runtime and cache)
	peerToken  string                      // what this agent presents to forward a log or exec request to a peer ("" when it cannot)
	mirror     http.Handler                // /mirror/ with ServeMirror (Open's mirrorServer), else nil
	guard      *httpGuard                  // Host, Origin, token and rate checks of every HTTP request
	probes     *probes.Engine              // runs the probes (Deps.Prober); nil without
	probed     chan struct{}               // buffered 1: a probe changed a container's readiness or killed it

	// Owned by the loop (Run's goroutine).
	state       State
	target      *target                    // the newest commit that validated and planned: what drift repair converges to
	syncDue     bool                       // a sync was requested
	syncReason  string                     // why
	nextPoll    time.Time                  // when the next poll is due
	nextRetry   time.Time                  // when a failed sync is retried; zero when none is
	nextCheck   time.Time                  // when the host is next checked for drift
	failures    int                        // transient failures in a row, for back-off
	syncs       int                        // syncs since start
	lastLogged  string                     // the last error logged at warn, to log repeats at debug
	lastSkipped string                     // the URLs the last fetch passed over, logged once
	pods        []PodStatus                // as last observed
	waiting     []string                   // the last plan's waits
	notices     []string                   // the target's notices and the last plan's kept subjects
	phases      SyncPhases                 // the current sync's phases so far
	jobs        reconciler.JobRecords      // the Job controller's records, as stored in Config.JobsPath
	jobsWake    time.Time                  // when the Job controller must run again; zero for never
	jobStatus   []reconciler.JobStatus     // as the controller last saw them
	cronStatus  []reconciler.CronJobStatus // as the controller last saw them
	cronReqs    chan cronRequest           // `kelpie cron trigger` requests for the loop
	jobPods     []reconciler.ActualPod     // this host's Job pods, as last observed (reported to the leader)
	podHashes   map[string]string          // this host's pods ("ns/name") → the spec hash they run, as last observed
	placedJobs  reconciler.JobRecords      // in a cluster: the Job records of the placement in force
	jobTrigger  *reconciler.JobRecords     // on the leader: records with a Job triggered by hand, to publish
	net         netting                    // the networking allocation and this host's slice
	startNote   string                     // what went wrong at start (a corrupt state set aside), shown in status notices
	routes      RouteSyncer                // Deps.Routes
	ops         operating                  // the sync history and the alerts notified
	svc         servicing                  // the Service data path and DNS (Deps.DataPath, Deps.DNS)
	rollouts    rolloutState               // the commit's workloads and the stalled rollouts (rollout_stall.go)

	// Owned by the loop, in a cluster (Deps.Cluster) only.
	cluster      Cluster
	head         *target             // the newest valid head: what the leader places
	adopted      gossip.Placement    // the placement the target comes from
	placed       scheduler.Published // its content
	clusterDue   bool                // the view, leader or placement changed
	claims       []string            // the claims the host holds, as last observed
	lastReported string              // the node status last published
	headsAsked   map[string]string   // member → the head it reported, fetched for once (only current members: bounded)
	seenHead     string              // the newest valid head this node fetched, reported to the leader
	placing      placing             // the leader's placement bookkeeping

	mu     sync.RWMutex // guards status
	status Status
}

// target is a validated commit and what it means for this host.
type target struct {
	commit  CommitInfo
	desired reconciler.Desired
	notices []string
	// In a cluster: the validated manifests, everything they expand to on
	// this host before the placement picks this node's part, and whether
	// an empty part may empty the host.
	state      *specs.DesiredState
	full       reconciler.Desired
	allowEmpty bool
}

// New validates cfg, reads the agent's state from cfg.StatePath and
// returns an agent over deps. It changes nothing on the host but its API
// token file (Config.APITokenPath), made when there is none.
func New(cfg Config, deps Deps) (*Agent, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if deps.Source == nil || deps.Runtime == nil {
		return nil, errors.New("new agent: Deps.Source and Deps.Runtime are required")
	}
	priv, err := cfg.Runtime.Privileges()
	if err != nil {
		return nil, fmt.Errorf("new agent: %w", err)
	}
	st, err := LoadState(cfg.StatePath())
	var startNote string
	if errors.Is(err, ErrCorruptState) {
		// What the state holds (the applied commit, the pending one, the
		// last error, a lone host's network allocation) is rebuilt by the
		// first sync: the pods that run are observed, not remembered, and
		// keep running when the head still wants them.
		aside, serr := setAside(cfg.StatePath(), cfg.Clock.Now())
		if serr != nil {
			return nil, fmt.Errorf("%w; %w", err, serr)
		}
		startNote = fmt.Sprintf("the agent state did not parse; it was set aside as %s and the agent started afresh (the first sync rebuilds it; the check that a new head descends from the applied commit has no applied commit to check against until then): %v", aside, err)
		cfg.Log.Error("agent state corrupt: starting afresh", "aside", aside, "err", err)
		st, err = State{Version: stateVersion}, nil
	}
	if err != nil {
		return nil, err
	}
	jobs, err := LoadJobRecords(cfg.JobsPath())
	if err != nil {
		return nil, fmt.Errorf("new agent: %w", err)
	}
	token := cfg.APIToken
	if token == "" {
		if token, err = loadOrCreateAPIToken(cfg.APITokenPath()); err != nil {
			return nil, fmt.Errorf("new agent: %w", err)
		}
	}
	a := &Agent{
		cfg: cfg, src: deps.Source, rt: deps.Runtime, priv: priv, events: deps.Events,
		log: cfg.Log, clock: cfg.Clock, metrics: newMetrics(),
		triggers: make(chan source.Trigger, triggerBuffer),
		state:    st, cluster: deps.Cluster,
		jobs: jobs, cronReqs: make(chan cronRequest),
		guard:  newHTTPGuard(cfg.Listen, token, cfg.TLS.ClientCAFile != ""),
		probed: make(chan struct{}, 1),
	}
	if deps.Prober != nil {
		a.probes, err = probes.New(probes.Config{Prober: deps.Prober, Clock: cfg.Clock, Log: cfg.Log, Tick: probes.DefaultTick, OnChange: a.probeChanged, OnProbe: a.metrics.probe})
		if err != nil {
			return nil, fmt.Errorf("new agent: %w", err)
		}
	}
	if st.Applied != nil {
		a.metrics.setApplied(st.Applied.Hash)
	}
	a.startNote = startNote
	a.guard.peer, a.peerToken = peerTokens(&cfg)
	if err := a.openOps(); err != nil {
		return nil, err
	}
	a.routes = deps.Routes
	a.initServices(deps)
	a.net.pin = pinOf(cfg.Runtime.PodSubnet)
	a.restoreNetwork()
	a.publish(nil)
	return a, nil
}

// Trigger asks for a sync soon, for reason ("api", "SIGHUP", a webhook's
// or ref watch's reason). It never blocks: when many requests are queued
// already, one more adds nothing and Trigger reports false.
func (a *Agent) Trigger(reason string) bool {
	select {
	case a.triggers <- source.Trigger{Reason: reason}:
		return true
	default:
		return false
	}
}

// Close releases what Open built (the runtime's connection, the git
// cache). Containers keep running. It is a no-op for an agent made by New.
func (a *Agent) Close() error {
	var errs []error
	for _, c := range a.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// Status returns a copy of the agent's current status.
func (a *Agent) Status() Status {
	a.mu.RLock()
	defer a.mu.RUnlock()
	s := a.status
	s.Pods = slices.Clone(s.Pods)
	return s
}

// Run serves the HTTP endpoints on Config.Listen and runs the loop until
// ctx is done; then it stops serving and returns nil. It returns an error
// only when it cannot start (the address is taken). Stopping stops no
// workload: containers keep running, and the next agent takes over; only a
// clustered agent with LeaveOnStop leaves the cluster and removes its
// pods, which the others then run.
//
// The loop is one select over: sync requests (poll interval, Trigger),
// runtime events, a timer for the earliest of the next poll, retry and
// drift check, and ctx. Each sync and drift check runs to its end inside
// the loop, so nothing of the agent's state is shared with other
// goroutines except the status snapshot.
func (a *Agent) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("agent: listen on %s (--listen): %w", a.cfg.Listen, err)
	}
	if a.cfg.TLS.Server() {
		tc, err := a.cfg.TLS.ServerConfig()
		if err != nil {
			ln.Close()
			return fmt.Errorf("agent: %w", err)
		}
		ln = tls.NewListener(ln, tc)
	}
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second, // a client that never finishes its headers
		ReadTimeout:       time.Minute,      // request bodies are small: a webhook's payload at most
		WriteTimeout:      30 * time.Minute, // /mirror/ streams packs and image blobs to peers over a LAN
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	a.log.Info("agent started", "listen", ln.Addr().String(), "tls", a.cfg.TLS.Server(), "repo", displayRepos(a.cfg.Repos), "ref", a.cfg.Ref, "path", a.cfg.Path, "node", a.cfg.Host.Name, "prune", a.cfg.Prune)

	var wg sync.WaitGroup
	for _, run := range a.background {
		wg.Go(func() { run(ctx) })
	}
	if a.probes != nil {
		wg.Go(func() { a.probes.Run(ctx) })
	}
	a.loop(ctx)
	wg.Wait()
	a.stopDNS()
	if a.cluster != nil && a.cfg.LeaveOnStop {
		a.leave()
	}

	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.log.Warn("http server", "err", err)
	}
	a.log.Info("agent stopped; workloads keep running")
	return nil
}

// loop is the agent's one loop.
func (a *Agent) loop(ctx context.Context) {
	var changes <-chan struct{}
	if a.cluster != nil {
		// The placement in force (kept by gossip across restarts) says what
		// this host runs, not the commit it applied last.
		changes = a.cluster.Changes()
	} else {
		a.restore(ctx)
	}
	now := a.clock.Now()
	a.syncDue, a.syncReason = true, "start"
	a.nextPoll = now.Add(a.cfg.Interval)
	a.nextCheck = now.Add(a.cfg.DriftInterval)
	for {
		a.step(ctx)
		if ctx.Err() != nil {
			return
		}
		timer := a.clock.NewTimer(a.nextWake().Sub(a.clock.Now()))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case t := <-a.triggers:
			a.requestSync(t.Reason)
			a.drainTriggers()
		case req := <-a.cronReqs:
			req.reply <- a.triggerCron(req)
		case <-changes:
			a.clusterDue = true
		case <-a.events:
			if soon := a.clock.Now().Add(a.cfg.EventDelay); soon.Before(a.nextCheck) {
				a.nextCheck = soon
			}
		case <-a.probed:
			// A killed container is restarted, and a rollout goes on, at
			// the next check: now.
			a.nextCheck = a.clock.Now()
		case <-timer.C():
		}
		timer.Stop()
	}
}

// probeChanged is the probe engine's OnChange: a container's readiness
// changed or a probe killed it. It never blocks.
func (a *Agent) probeChanged(reason string) {
	a.log.Debug("probe change; checking the host", "reason", reason)
	select {
	case a.probed <- struct{}{}:
	default:
	}
}

// requestSync records a sync request; the first reason wins until it runs.
func (a *Agent) requestSync(reason string) {
	if !a.syncDue {
		a.syncDue, a.syncReason = true, reason
	}
}

// drainTriggers folds the queued sync requests into the one already due.
func (a *Agent) drainTriggers() {
	for {
		select {
		case <-a.triggers:
		default:
			return
		}
	}
}

// nextWake is the earliest time something is due.
func (a *Agent) nextWake() time.Time {
	wake := a.nextPoll
	for _, t := range []time.Time{a.nextRetry, a.nextCheck, a.placing.next} {
		if !t.IsZero() && t.Before(wake) {
			wake = t
		}
	}
	return wake
}

// step does what is due: a sync (requested, polled or retried), else a
// drift check.
func (a *Agent) step(ctx context.Context) {
	now := a.clock.Now()
	if !now.Before(a.nextPoll) {
		a.requestSync("poll")
	}
	if !a.nextRetry.IsZero() && !now.Before(a.nextRetry) {
		a.requestSync("retry")
	}
	switch {
	case a.syncDue:
		reason := a.syncReason
		a.syncDue, a.syncReason, a.nextRetry = false, "", time.Time{}
		a.nextPoll = now.Add(a.cfg.Interval)
		if a.cluster != nil {
			a.clusterSync(ctx, reason)
		} else {
			a.sync(ctx, reason)
		}
	case a.cluster != nil && (a.clusterDue || (!a.placing.next.IsZero() && !now.Before(a.placing.next))):
		a.clusterDue = false
		if _, err := a.clusterStep(ctx); err != nil {
			a.state.LastError = err
			if !err.Kind.refusal() {
				a.retryLater()
			}
			a.logError(err)
		}
		a.save()
		a.publish(nil)
	case !now.Before(a.nextCheck):
		a.repair(ctx)
	}
	a.checkStalls()
	a.checkAlerts()
}

// Handler returns the agent's HTTP endpoints: /healthz, /metrics,
// /api/v1/status, POST /api/v1/sync and /hooks/git.
func (a *Agent) Handler() http.Handler {
	return a.handler()
}
