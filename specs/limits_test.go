package specs

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// TestCountLimits checks each limit on counts and sizes refuses one past it,
// with its position, and accepts the limit itself.
func TestCountLimits(t *testing.T) {
	deployment := func(replicas int) string {
		return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: %d
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: busybox}]
`, replicas)
	}
	job := func(field string, n int) string {
		return fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  %s: %d
  template:
    spec:
      restartPolicy: Never
      containers: [{name: j, image: busybox}]
`, field, n)
	}
	pod := func(containers, ports, env, envFrom int) string {
		var b strings.Builder
		b.WriteString("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n")
		for i := range containers {
			fmt.Fprintf(&b, "  - name: c%d\n    image: busybox\n", i)
			if i > 0 {
				continue
			}
			if ports > 0 {
				b.WriteString("    ports:\n")
				for p := range ports {
					fmt.Fprintf(&b, "    - containerPort: %d\n", 1000+p)
				}
			}
			if env > 0 {
				b.WriteString("    env:\n")
				for e := range env {
					fmt.Fprintf(&b, "    - {name: V%d, value: x}\n", e)
				}
			}
			if envFrom > 0 {
				b.WriteString("    envFrom:\n")
				for range envFrom {
					b.WriteString("    - configMapRef: {name: cm, optional: true}\n")
				}
			}
		}
		return b.String()
	}
	configMap := func(size int) string {
		return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata:\n  a: %q\nbinaryData:\n  b: AAAA\n", strings.Repeat("x", size-3))
	}
	secret := func(size int) string {
		return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData:\n  a: %q\ndata:\n  b: AAAA\n", strings.Repeat("x", size-3))
	}
	many := func(n, replicas int) string {
		docs := make([]string, n)
		for i := range docs {
			docs[i] = strings.Replace(deployment(replicas), "name: web}", fmt.Sprintf("name: web%d}", i), 1)
		}
		return strings.Join(docs, "---\n")
	}
	for _, tc := range []struct {
		name string
		doc  string
		want string // "" for valid
	}{
		{"replicas at limit", deployment(MaxReplicas), ""},
		{"replicas past limit", deployment(MaxReplicas + 1), "f.yaml:5:13: spec.replicas: must be at most 10000, got 10001"},
		{"replicas max int32", deployment(2147483647), "f.yaml:5:13: spec.replicas: must be at most 10000, got 2147483647"},
		{"replicas negative", deployment(-1), "f.yaml:5:13: spec.replicas: must be 0 or more, got -1"},
		{"job parallelism", job("parallelism", MaxReplicas+1), "f.yaml:5:16: spec.parallelism: must be at most 10000, got 10001"},
		{"job completions", job("completions", 2147483647), "f.yaml:5:16: spec.completions: must be at most 10000, got 2147483647"},
		{"job completions at limit", job("completions", MaxReplicas), ""},
		{"pods at limit", many(5, MaxReplicas), ""},
		{"pods past limit", many(6, MaxReplicas), "f.yaml:60:13: spec.replicas: the desired state asks for 60000 pods in all, more than the limit of 50000; this Deployment passes it"},
		{"containers at limit", pod(MaxContainersPerPod, 0, 0, 0), ""},
		{"containers past limit", pod(MaxContainersPerPod+1, 0, 0, 0), "f.yaml:6:3: spec.containers: a pod may have at most 100 containers (init containers included), got 101"},
		{"ports at limit", pod(1, MaxPortsPerContainer, 0, 0), ""},
		{"ports past limit", pod(1, MaxPortsPerContainer+1, 0, 0), "f.yaml:9:5: spec.containers[0].ports: a container may have at most 100 ports, got 101"},
		{"env at limit", pod(1, 0, MaxEnvPerContainer-1, 1), ""},
		{"env past limit", pod(1, 0, MaxEnvPerContainer, 1), "f.yaml:9:5: spec.containers[0].env: a container may have at most 1000 env and envFrom entries, got 1001"},
		{"envFrom past limit", pod(1, 0, 0, MaxEnvPerContainer+1), "f.yaml:9:5: spec.containers[0].envFrom: a container may have at most 1000 env and envFrom entries, got 1001"},
		{"configmap at limit", configMap(MaxDataBytes), ""},
		{"configmap past limit", configMap(MaxDataBytes + 1), "f.yaml:5:3: data: ConfigMap holds 1048577 bytes of data, more than the limit of 1048576 (1 MiB)"},
		{"secret at limit", secret(MaxDataBytes), ""},
		{"secret past limit", secret(MaxDataBytes + 1), "f.yaml:7:3: data: Secret holds 1048577 bytes of data, more than the limit of 1048576 (1 MiB)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := reviewLoad(t, tc.doc)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("loaded; want %s", tc.want)
			case tc.want != "" && err.Error() != tc.want:
				t.Fatalf("error:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
}

// TestHugeReplicasRefusedWithoutAllocating loads `replicas: 2147483647`: the
// refusal must not allocate anything in proportion to the count.
func TestHugeReplicasRefusedWithoutAllocating(t *testing.T) {
	const doc = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2147483647
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: busybox}]
`
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := reviewLoad(t, doc)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "spec.replicas: must be at most 10000") {
		t.Fatalf("error %v, want the replicas limit", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("refusing allocated %d bytes", alloc)
	}
}
