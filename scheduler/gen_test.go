package scheduler

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/kelpie-dev/kelpie/specs"
)

// genConfig shapes a generated cluster.
type genConfig struct {
	nodes    int
	replicas int // about this many replicas in all
	// maxReplicas bounds one Deployment's replicas; 1 gives only Pods.
	maxReplicas int
	// unlimited is the share of nodes that advertise no capacity.
	unlimited float64
	// ports and claims are the shares of workloads with a host port or a
	// PersistentVolumeClaim.
	ports, claims float64
	// nodesWithClaims is the share of claims some node already holds.
	nodesWithClaims float64
}

// propertyConfig is small and tight, so every rule is exercised.
var propertyConfig = genConfig{nodes: 12, replicas: 80, maxReplicas: 12, unlimited: 0.2, ports: 0.1, claims: 0.1, nodesWithClaims: 0.5}

// benchConfig is a large cluster with room for everything.
func benchConfig(nodes, replicas, maxReplicas int) genConfig {
	return genConfig{nodes: nodes, replicas: replicas, maxReplicas: maxReplicas, ports: 0.02, claims: 0.02}
}

// genCluster generates a desired state and alive nodes.
func genCluster(rng *rand.Rand, c genConfig) (*specs.DesiredState, []Node) {
	zones := []string{"a", "b", "c"}
	disks := []string{"ssd", "hdd"}
	nodes := make([]Node, c.nodes)
	for i := range nodes {
		n := Node{Name: fmt.Sprintf("n%03d", i), Labels: map[string]string{"zone": zones[rng.IntN(3)], "disk": disks[rng.IntN(2)]}}
		if rng.Float64() >= c.unlimited {
			if c == propertyConfig {
				n.Capacity = Capacity{CPUMilli: int64(1000 + rng.IntN(4)*1000), MemoryBytes: int64(1+rng.IntN(4)) << 30}
			} else {
				n.Capacity = Capacity{CPUMilli: int64(8000 + rng.IntN(4)*8000), MemoryBytes: int64(16+rng.IntN(4)*16) << 30}
			}
		}
		nodes[i] = n
	}
	var (
		objs   []*specs.Object
		claims []string
	)
	for i, total := 0, 0; total < c.replicas; i++ {
		var mods []podMod
		switch r := rng.Float64(); {
		case r < 0.25:
			mods = append(mods, selector("zone", zones[rng.IntN(3)]))
		case r < 0.35:
			mods = append(mods, selector("disk", disks[rng.IntN(2)]))
		case r < 0.37:
			mods = append(mods, selector("zone", "nowhere"))
		}
		mods = append(mods, requests(fmt.Sprintf("%dm", rng.IntN(5)*100), fmt.Sprintf("%dMi", rng.IntN(5)*128)))
		replicas := 1 + rng.IntN(c.maxReplicas)
		if rng.Float64() < c.ports {
			mods = append(mods, hostPort(int32(8000+rng.IntN(3))))
		}
		if rng.Float64() < c.claims {
			name := fmt.Sprintf("data%d", i)
			if len(claims) > 0 && rng.IntN(3) == 0 {
				name = claims[rng.IntN(len(claims))] // shared with another workload
			} else {
				claims = append(claims, name)
				objs = append(objs, pvc(name))
			}
			mods = append(mods, claim(name))
			replicas = 1 + rng.IntN(2)
			if rng.Float64() < c.nodesWithClaims {
				n := &nodes[rng.IntN(len(nodes))]
				n.Volumes = append(n.Volumes, "default/"+name)
			}
		}
		if c.maxReplicas == 1 || rng.IntN(10) == 0 {
			objs = append(objs, bare(fmt.Sprintf("p%d", i), mods...))
			replicas = 1
		} else {
			objs = append(objs, deploy(fmt.Sprintf("w%d", i), replicas, mods...))
		}
		total += replicas
	}
	slices.SortFunc(objs, compareObjects) // as specs.Load does
	return state(objs...), nodes
}

// perturb returns a copy of nodes in which some died (some of them within
// the grace period), left, became suspect or ineligible.
func perturb(rng *rand.Rand, nodes []Node) []Node {
	out := make([]Node, 0, len(nodes))
	for _, n := range nodes {
		switch r := rng.Float64(); {
		case r < 0.12:
			n.State, n.DownSince = NodeDead, now.Add(-time.Duration(rng.IntN(60))*time.Second)
		case r < 0.17:
			n.State = NodeLeft
		case r < 0.20:
			continue // forgotten
		case r < 0.25:
			n.State = NodeSuspect
		case r < 0.30:
			n.Ineligible = true
		}
		out = append(out, n)
	}
	return out
}
