package specs

import (
	"bytes"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// benchRepo builds a repository of n objects: per app a Deployment, a
// Service and a ConfigMap, 50 objects a file.
func benchRepo(n int) fstest.MapFS {
	fsys := fstest.MapFS{}
	var b strings.Builder
	file := 0
	flush := func() {
		if b.Len() > 0 {
			fsys[fmt.Sprintf("apps/f%04d.yaml", file)] = &fstest.MapFile{Data: []byte(b.String())}
			file++
			b.Reset()
		}
	}
	for i := 0; i < n; i++ {
		app := i / 3
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, `apiVersion: v1
kind: ConfigMap
metadata: {name: app%d-config}
data:
  mode: production
  level: info
---
`, app)
		case 1:
			fmt.Fprintf(&b, `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app%d
  labels: {app: app%d}
spec:
  replicas: 2
  selector:
    matchLabels: {app: app%d}
  template:
    metadata:
      labels: {app: app%d}
    spec:
      containers:
      - name: main
        image: registry.local/app:%d
        ports: [{name: http, containerPort: 8080}]
        env:
        - name: MODE
          valueFrom: {configMapKeyRef: {name: app%d-config, key: mode}}
        resources:
          requests: {cpu: 100m, memory: 64Mi}
          limits: {memory: 128Mi}
        readinessProbe:
          httpGet: {path: /healthz, port: http}
---
`, app, app, app, app, i, app)
		default:
			fmt.Fprintf(&b, `apiVersion: v1
kind: Service
metadata: {name: app%d}
spec:
  selector: {app: app%d}
  ports: [{name: http, port: 80, targetPort: http}]
---
`, app, app)
		}
		if (i+1)%50 == 0 {
			flush()
		}
	}
	flush()
	return fsys
}

// BenchmarkLoad measures kelpie's strict decode + default + validate + hash,
// files decoded on GOMAXPROCS goroutines (the default).
func BenchmarkLoad(b *testing.B) { benchmarkLoad(b, 0) }

// BenchmarkLoadSerial is BenchmarkLoad with one file decoded at a time.
func BenchmarkLoadSerial(b *testing.B) { benchmarkLoad(b, 1) }

// benchmarkLoad runs Load over 1,000 and 10,000 objects with the given workers.
func benchmarkLoad(b *testing.B, workers int) {
	for _, n := range []int{1000, 10000} {
		fsys := benchRepo(n)
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				state, err := Load(fsys, ".", Options{Workers: workers})
				if err != nil || state.Len() != n {
					b.Fatalf("load: %v (%d objects)", err, state.Len())
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/object")
		})
	}
}

// BenchmarkBaselineSigsYAML is the baseline for BenchmarkLoad: the same
// files decoded the way kubectl-style tools do (sigs.k8s.io/yaml into the
// typed objects), with no strictness, positions, defaults or validation.
func BenchmarkBaselineSigsYAML(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		fsys := benchRepo(n)
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				count := 0
				err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
					if err != nil || d.IsDir() {
						return err
					}
					data, err := fs.ReadFile(fsys, p)
					if err != nil {
						return err
					}
					for _, doc := range bytes.Split(data, []byte("\n---\n")) {
						if len(bytes.TrimSpace(doc)) == 0 {
							continue
						}
						var tm struct{ Kind string }
						if err := sigsyaml.Unmarshal(doc, &tm); err != nil {
							return err
						}
						var obj any
						switch tm.Kind {
						case "Deployment":
							obj = &appsv1.Deployment{}
						case "Service":
							obj = &corev1.Service{}
						default:
							obj = &corev1.ConfigMap{}
						}
						if err := sigsyaml.Unmarshal(doc, obj); err != nil {
							return err
						}
						count++
					}
					return nil
				})
				if err != nil || count != n {
					b.Fatalf("baseline: %v (%d objects)", err, count)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/object")
		})
	}
}
