package dnsserver

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Result is what became of a query, the label of the query counter.
type Result int

// Results of queries.
const (
	// ResultCluster: answered from the cluster's names (records or NODATA).
	ResultCluster Result = iota
	// ResultNXDomain: a name under the cluster domain that does not exist.
	ResultNXDomain
	// ResultForwarded: answered by an upstream resolver.
	ResultForwarded
	// ResultServFail: every upstream failed, or the names are not known yet.
	ResultServFail
	// ResultRefused: the client is outside Config.Clients.
	ResultRefused
	// ResultOverload: MaxForwards were in flight; REFUSED.
	ResultOverload
	// ResultInvalid: a query the server does not take (another opcode,
	// several questions).
	ResultInvalid
	numResults
)

var resultNames = [numResults]string{"cluster", "nxdomain", "forwarded", "servfail", "refused", "overload", "invalid"}

// String returns the result's label.
func (r Result) String() string {
	if r >= 0 && r < numResults {
		return resultNames[r]
	}
	return "unknown"
}

// count adds one query of result r.
func (s *Server) count(r Result) { s.counts[r].Add(1) }

// Queries returns how many queries had each result so far, by label
// (every result, zero included).
func (s *Server) Queries() map[string]uint64 {
	out := make(map[string]uint64, numResults)
	for r := range numResults {
		out[r.String()] = s.counts[r].Load()
	}
	return out
}

var (
	queriesDesc = prometheus.NewDesc("kelpie_dns_queries_total",
		"DNS queries the agent's server answered, by result: cluster, nxdomain, forwarded, servfail, refused, overload, invalid.",
		[]string{"result"}, nil)
	inFlightDesc = prometheus.NewDesc("kelpie_dns_forwards_in_flight",
		"DNS queries being forwarded to the host's resolvers now.", nil, nil)
)

// Describe implements prometheus.Collector.
func (s *Server) Describe(ch chan<- *prometheus.Desc) {
	ch <- queriesDesc
	ch <- inFlightDesc
}

// Collect implements prometheus.Collector: register the Server with the
// agent's registry.
func (s *Server) Collect(ch chan<- prometheus.Metric) {
	for r := range numResults {
		ch <- prometheus.MustNewConstMetric(queriesDesc, prometheus.CounterValue, float64(s.counts[r].Load()), r.String())
	}
	ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(len(s.sem)))
}

var _ prometheus.Collector = (*Server)(nil)
