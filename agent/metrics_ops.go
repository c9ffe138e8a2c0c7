package agent

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kelpie-dev/kelpie/gossip"
)

// memberStates label kelpie_cluster_members, present at 0 so that an alert
// on dead members has a series to compare from the start.
var memberStates = []gossip.MemberState{gossip.StateAlive, gossip.StateDead, gossip.StateLeft}

// Descriptions of the cluster metrics, read from the cluster at scrape time.
var (
	clusterMembersDesc = prometheus.NewDesc("kelpie_cluster_members",
		"Members of the cluster as this host sees them, this host included, by state: alive, dead or left.",
		[]string{"state"}, nil)
	clusterQuorumDesc = prometheus.NewDesc("kelpie_cluster_quorum",
		"1 when this host sees a quorum of the expected hosts alive (placement changes may be made), 0 when not.",
		nil, nil)
	clusterLeaderDesc = prometheus.NewDesc("kelpie_cluster_leader",
		"1 when this host is the cluster's leader, 0 when it is not.",
		nil, nil)
	clusterLeaderKnownDesc = prometheus.NewDesc("kelpie_cluster_leader_known",
		"1 when this host follows a leader (itself included), 0 while it knows none.",
		nil, nil)
)

// clusterCollector reports the cluster's view at scrape time. It reads
// the gossip node, whose methods are safe from any goroutine, and reports
// nothing for an agent on its own (no cluster).
type clusterCollector struct {
	cluster Cluster
}

// Describe implements prometheus.Collector.
func (c clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- clusterMembersDesc
	ch <- clusterQuorumDesc
	ch <- clusterLeaderDesc
	ch <- clusterLeaderKnownDesc
}

// Collect implements prometheus.Collector.
func (c clusterCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[gossip.MemberState]int{}
	for _, m := range c.cluster.Members() {
		counts[m.State]++
	}
	for _, s := range memberStates {
		ch <- prometheus.MustNewConstMetric(clusterMembersDesc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
	ch <- prometheus.MustNewConstMetric(clusterQuorumDesc, prometheus.GaugeValue, boolValue(c.cluster.Quorum().OK))
	l := c.cluster.Leader()
	ch <- prometheus.MustNewConstMetric(clusterLeaderDesc, prometheus.GaugeValue, boolValue(l.Self))
	ch <- prometheus.MustNewConstMetric(clusterLeaderKnownDesc, prometheus.GaugeValue, boolValue(l.Leader != ""))
}

// boolValue is 1 for true, 0 for false.
func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// opsMetrics are the metrics operators alert on beside the sync's:
// crash-looping containers, and the cluster's view when there is one.
type opsMetrics struct {
	crashLooping prometheus.Gauge
}

// registerOpsMetrics adds the operators' metrics to reg; cluster is nil
// for an agent on its own.
func registerOpsMetrics(reg *prometheus.Registry, cluster Cluster) (*opsMetrics, error) {
	m := &opsMetrics{
		crashLooping: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kelpie_containers_crashlooping",
			Help: "Containers on this host that crash-loop: restarted again and again, with back-off, without running long enough to reset it.",
		}),
	}
	if err := reg.Register(m.crashLooping); err != nil {
		return nil, err
	}
	if cluster != nil {
		if err := reg.Register(clusterCollector{cluster: cluster}); err != nil {
			return nil, err
		}
	}
	return m, nil
}
