package specs

import (
	"testing"
	"testing/fstest"
)

// loadOne loads a single manifest text and returns its only object.
func loadOne(t *testing.T, text string) *Object {
	t.Helper()
	state, err := Load(fstest.MapFS{"m.yaml": {Data: []byte(text)}}, ".", Options{})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if state.Len() != 1 {
		t.Fatalf("loaded %d objects", state.Len())
	}
	return state.Objects[0]
}

// TestHashCanonical checks the hash ignores key order, comments, formatting,
// quoting and spelled-out defaults, and notices every real change.
func TestHashCanonical(t *testing.T) {
	base := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.7.9
        resources: {limits: {memory: 1Gi}}
`
	same := map[string]string{
		"reordered and commented": `# a comment
kind: Deployment   # trailing comment
spec:
  template:
    spec:
      containers:
      - image: "nginx:1.7.9"
        resources:
          limits:
            memory: "1Gi"
        name: 'web'
    metadata: {labels: {app: web}}
  selector: {matchLabels: {app: web}}
metadata: {name: web}
apiVersion: apps/v1
`,
		"defaults spelled out": `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      restartPolicy: Always
      terminationGracePeriodSeconds: 30
      containers:
      - {name: web, image: nginx:1.7.9, imagePullPolicy: IfNotPresent, resources: {limits: {memory: 1Gi}}}
status: {replicas: 9}
`,
		"equal quantity spelled differently": `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: nginx:1.7.9, resources: {limits: {memory: 1024Mi}}}
`,
	}
	want := loadOne(t, base).Hash
	for name, text := range same {
		t.Run(name, func(t *testing.T) {
			if got := loadOne(t, text).Hash; got != want {
				t.Errorf("hash %s, want %s", got, want)
			}
		})
	}
	variants := map[string]string{
		"image":    replaceOnce(base, "nginx:1.7.9", "nginx:1.9"),
		"replicas": replaceOnce(base, "spec:\n  selector:", "spec:\n  replicas: 2\n  selector:"),
		"label":    replaceOnce(base, "labels: {app: web}", "labels: {app: web, tier: x}"),
		"memory":   replaceOnce(base, "memory: 1Gi", "memory: 2Gi"),
	}
	for name, text := range variants {
		t.Run("changed "+name, func(t *testing.T) {
			if got := loadOne(t, text).Hash; got == want {
				t.Errorf("hash unchanged after changing %s", name)
			}
		})
	}
}

// replaceOnce replaces the first old in s, failing loudly if absent.
func replaceOnce(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	panic("replaceOnce: " + old + " not found")
}
