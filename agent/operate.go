package agent

import (
	"fmt"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
)

// operating is what the agent keeps for its operators beside the status:
// the sync history and the alerts it notifies. Owned by the loop.
type operating struct {
	hist   *history
	log    actionLog               // the actions of the converge in progress
	notify *notifier               // nil without Config.Notify
	firing map[string]*firingAlert // alerts sent firing, by key
	crash  []crashLoop             // the containers that crash-loop, as last observed
	recent []NotificationStatus    // the alerts that fired or resolved lately, newest first
	met    *opsMetrics
	// hadQuorum: this node saw the cluster with quorum since it started.
	hadQuorum bool
}

// openOps opens the history and builds the notifier; Run starts the
// notifier's delivery with the loop.
func (a *Agent) openOps() error {
	limit := a.cfg.HistoryLimit
	switch {
	case limit == 0:
		limit = DefaultHistoryLimit
	case limit < 0 || limit > maxHistoryLimit:
		return fmt.Errorf("agent config: HistoryLimit %d: want 1 to %d, or 0 for %d", limit, maxHistoryLimit, DefaultHistoryLimit)
	}
	h, err := openHistory(a.cfg.HistoryPath(), limit)
	if err != nil {
		return fmt.Errorf("new agent: %w", err)
	}
	n, err := newNotifier(&a.cfg, a.metrics.reg)
	if err != nil {
		return err
	}
	met, err := registerOpsMetrics(a.metrics.reg, a.cluster)
	if err != nil {
		return fmt.Errorf("new agent: metrics: %w", err)
	}
	a.ops = operating{hist: h, notify: n, firing: map[string]*firingAlert{}, met: met}
	if n != nil {
		a.background = append(a.background, n.run)
	}
	return nil
}

// observed notes what operators are told about the pods just observed.
func (a *Agent) observed(actual reconciler.Actual, now time.Time) {
	a.ops.crash = crashLoops(actual.Pods, now)
	a.ops.met.crashLooping.Set(float64(len(a.ops.crash)))
}
