package reconciler

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/golden"
	"github.com/kelpie-dev/kelpie/specs"
)

// TestExpandWorkloads checks which pods each workload kind expands to on
// one host, and the notices for what does not run.
func TestExpandWorkloads(t *testing.T) {
	daemonSet := func(name, nodeSelector string) string {
		return `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ` + name + `}
spec:
  selector: {matchLabels: {app: ` + name + `}}
  template:
    metadata: {labels: {app: ` + name + `}}
    spec:
      nodeSelector: ` + nodeSelector + `
      containers: [{name: main, image: busybox:1.36}]
`
	}
	tests := []struct {
		name    string
		host    Host
		files   map[string]string
		pods    []string
		notices []string
	}{
		{
			name:  "deployment ordinals in numeric order",
			files: map[string]string{"a.yaml": deployment("web", 11, "")},
			pods: []string{"default/web-0", "default/web-1", "default/web-2", "default/web-3", "default/web-4", "default/web-5",
				"default/web-6", "default/web-7", "default/web-8", "default/web-9", "default/web-10"},
		},
		{
			name:  "zero replicas",
			files: map[string]string{"a.yaml": deployment("web", 0, "")},
		},
		{
			name:  "daemonset: one pod named for the host",
			host:  Host{Name: "Node-1.lan"},
			files: map[string]string{"a.yaml": daemonSet("agent", "{}")},
			pods:  []string{"default/agent-node-1.lan"},
		},
		{
			name:  "daemonset: nodeSelector matches host labels",
			host:  Host{Name: "n1", Labels: map[string]string{"disk": "ssd"}},
			files: map[string]string{"a.yaml": daemonSet("agent", "{disk: ssd}")},
			pods:  []string{"default/agent-n1"},
		},
		{
			name:    "daemonset: nodeSelector mismatch",
			host:    Host{Name: "n1", Labels: map[string]string{"disk": "hdd"}},
			files:   map[string]string{"a.yaml": daemonSet("agent", "{disk: ssd}")},
			notices: []string{"apps/v1 DaemonSet default/agent: nodeSelector {disk=ssd} does not match host n1; no pod here"},
		},
		{
			name:  "daemonset: implicit hostname label",
			host:  Host{Name: "n1"},
			files: map[string]string{"a.yaml": daemonSet("agent", "{kubernetes.io/hostname: n1}")},
			pods:  []string{"default/agent-n1"},
		},
		{
			name: "deployment: nodeSelector mismatch",
			host: Host{Name: "n1"},
			files: map[string]string{"a.yaml": deployment("web", 3, `      nodeSelector: {zone: a, disk: ssd}
`)},
			notices: []string{"apps/v1 Deployment default/web: nodeSelector {disk=ssd,zone=a} does not match host n1; 3 replicas not run"},
		},
		{
			name: "bare pods as they are",
			files: map[string]string{"a.yaml": `apiVersion: v1
kind: Pod
metadata: {name: solo, namespace: tools}
spec:
  containers: [{name: main, image: busybox:1.36}]
---
apiVersion: v1
kind: Pod
metadata: {name: picky}
spec:
  nodeSelector: {gpu: "true"}
  containers: [{name: main, image: busybox:1.36}]
`},
			host:    Host{Name: "n1"},
			pods:    []string{"tools/solo"},
			notices: []string{"v1 Pod default/picky: nodeSelector {gpu=true} does not match host n1; not run"},
		},
		{
			name: "jobs and cronjobs expand to nothing (SyncJobs runs them); services get a notice",
			files: map[string]string{"a.yaml": `apiVersion: batch/v1
kind: Job
metadata: {name: x}
spec:
  template:
    spec:
      containers: [{name: main, image: busybox:1.36}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: ops}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: main, image: busybox:1.36}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
`},
			notices: []string{},
		},
		{
			name: "a pod name taken by another workload",
			files: map[string]string{"a.yaml": deployment("web", 1, "") + `---
apiVersion: v1
kind: Pod
metadata: {name: web-0}
spec:
  containers: [{name: main, image: busybox:1.36}]
`},
			pods:    []string{"default/web-0"},
			notices: []string{"v1 Pod default/web-0: pod name default/web-0 is already used by Deployment/web; not run"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, notices := Expand(load(t, tt.files), tt.host)
			if got := podNames(d.Pods); !slices.Equal(got, tt.pods) {
				t.Errorf("pods:\n got %q\nwant %q", got, tt.pods)
			}
			got := noticeStrings(notices)
			slices.Sort(got)
			if !slices.Equal(got, tt.notices) {
				t.Errorf("notices:\n got %q\nwant %q", got, tt.notices)
			}
		})
	}
}

// TestExpandPodFields checks the pod-level fields of expanded pods.
func TestExpandPodFields(t *testing.T) {
	d, _ := expandText(t, deployment("web", 2, `      terminationGracePeriodSeconds: 5
      securityContext: {fsGroup: 2000}
`)+"---\n"+deployment(strings.Repeat("p", 62), 1, "")+`---
apiVersion: v1
kind: Pod
metadata:
  name: solo
  labels: {role: solo}
  annotations: {kelpie.dev/networks: "b, a"}
spec:
  hostNetwork: true
  restartPolicy: OnFailure
  containers: [{name: main, image: busybox:1.36}]
---
apiVersion: kelpie.dev/v1alpha1
kind: Network
metadata: {name: a}
spec: {type: bridge, subnet: 10.1.0.0/24}
---
apiVersion: kelpie.dev/v1alpha1
kind: Network
metadata: {name: b}
spec: {type: macvlan, subnet: 10.2.0.0/24, master: eth0}
`)
	web1 := findPod(t, d, "default/web-1")
	if web1.Owner != (Owner{Kind: "Deployment", Name: "web"}) || web1.Ordinal != 1 || web1.Hostname != "web-1" {
		t.Errorf("web-1: owner %v ordinal %d hostname %q", web1.Owner, web1.Ordinal, web1.Hostname)
	}
	if web1.TerminationGracePeriod != 5*time.Second || web1.RestartPolicy != RestartAlways || web1.HostNetwork {
		t.Errorf("web-1: grace %v policy %s hostNetwork %v", web1.TerminationGracePeriod, web1.RestartPolicy, web1.HostNetwork)
	}
	if !reflect.DeepEqual(web1.Labels, map[string]string{"app": "web"}) || *web1.FSGroup != 2000 {
		t.Errorf("web-1: labels %v fsGroup %v", web1.Labels, web1.FSGroup)
	}
	if web0 := findPod(t, d, "default/web-0"); web0.Hash != web1.Hash || !strings.HasPrefix(web0.Hash, "sha256:") {
		t.Errorf("replicas have hashes %q and %q; want one sha256 hash", web0.Hash, web1.Hash)
	}
	long := findPod(t, d, "default/"+strings.Repeat("p", 62)+"-0")
	if long.Hostname != strings.Repeat("p", 62) {
		t.Errorf("hostname %q: want the name cut to 63 characters without the trailing '-'", long.Hostname)
	}
	solo := findPod(t, d, "default/solo")
	if !solo.HostNetwork || solo.RestartPolicy != RestartOnFailure || solo.TerminationGracePeriod != 30*time.Second {
		t.Errorf("solo: hostNetwork %v policy %s grace %v", solo.HostNetwork, solo.RestartPolicy, solo.TerminationGracePeriod)
	}
	if !slices.Equal(solo.Networks, []string{"b", "a"}) {
		t.Errorf("networks %q: want the annotation's order [b a]", solo.Networks)
	}
	if solo.Owner != (Owner{Kind: "Pod", Name: solo.Name}) || solo.Ordinal != 0 {
		t.Errorf("solo: owner %v ordinal %d", solo.Owner, solo.Ordinal)
	}
	want := []Network{
		{Name: "a", Type: "bridge", Subnet: "10.1.0.0/24", Gateway: "10.1.0.1"},
		{Name: "b", Type: "macvlan", Subnet: "10.2.0.0/24", Master: "eth0"},
	}
	for i := range d.Networks {
		if d.Networks[i].Hash == "" {
			t.Errorf("network %s has no hash", d.Networks[i].Name)
		}
		d.Networks[i].Hash = ""
	}
	if !reflect.DeepEqual(d.Networks, want) {
		t.Errorf("networks:\n got %+v\nwant %+v", d.Networks, want)
	}
}

// configAndSecret are a ConfigMap and a Secret the env and volume tests use.
const configAndSecret = `apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data:
  b: from-cfg-b
  a: from-cfg-a
  9lives: x
  index.html: <h1>hi</h1>
binaryData:
  blob: AAEC
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg2}
data: {a: from-cfg2-a, c: from-cfg2-c}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {username: app, password: s3cret}
`

// TestExpandEnv checks environment resolution: envFrom first (prefix,
// sorted keys, later sources win), then env (wins over envFrom), every
// kind of reference, optional references, and $(VAR) expansion.
func TestExpandEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     string // the container's env/envFrom/command/args YAML, indented for a container
		want    []EnvVar
		command []string
		args    []string
		notices []string
	}{
		{
			name: "envFrom with prefix, sources in order, later wins, invalid key skipped",
			env: `          envFrom:
            - configMapRef: {name: cfg}
            - prefix: X_
              configMapRef: {name: cfg2}
            - configMapRef: {name: cfg2}
`,
			want: []EnvVar{
				{Name: "a", Value: "from-cfg2-a"}, {Name: "b", Value: "from-cfg-b"}, {Name: "index.html", Value: "<h1>hi</h1>"},
				{Name: "X_a", Value: "from-cfg2-a"}, {Name: "X_c", Value: "from-cfg2-c"}, {Name: "c", Value: "from-cfg2-c"},
			},
			notices: []string{`apps/v1 Deployment default/app: container main: envFrom ConfigMap cfg: "9lives" is not a valid environment variable name; skipped`},
		},
		{
			name: "env after envFrom, env wins and keeps the first place",
			env: `          envFrom:
            - secretRef: {name: creds}
          env:
            - {name: Z, value: z}
            - {name: password, value: overridden}
`,
			want: []EnvVar{
				{Name: "password", Value: "overridden"}, {Name: "username", Value: "app", Secret: true}, {Name: "Z", Value: "z"},
			},
		},
		{
			name: "every kind of reference",
			env: `          env:
            - {name: PLAIN, value: v}
            - name: FROM_CM
              valueFrom: {configMapKeyRef: {name: cfg, key: a}}
            - name: FROM_BINARY
              valueFrom: {configMapKeyRef: {name: cfg, key: blob}}
            - name: FROM_SECRET
              valueFrom: {secretKeyRef: {name: creds, key: password}}
            - name: POD
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
            - name: NS
              valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
            - name: OPT_KEY
              valueFrom: {configMapKeyRef: {name: cfg, key: nope, optional: true}}
            - name: OPT_CM
              valueFrom: {configMapKeyRef: {name: nothing, key: a, optional: true}}
            - name: OPT_SECRET
              valueFrom: {secretKeyRef: {name: nothing, key: a, optional: true}}
          envFrom:
            - configMapRef: {name: nothing, optional: true}
`,
			want: []EnvVar{
				{Name: "PLAIN", Value: "v"}, {Name: "FROM_CM", Value: "from-cfg-a"}, {Name: "FROM_BINARY", Value: "\x00\x01\x02"},
				{Name: "FROM_SECRET", Value: "s3cret", Secret: true}, {Name: "POD", Value: "app-0"}, {Name: "NS", Value: "default"},
			},
		},
		{
			name: "$(VAR) expansion in env, command and args",
			env: `          command: ["sh", "-c", "echo $(GREETING) $(UNDEFINED) $$(ESCAPED) $(POD)"]
          args: ["$(A)", "$(", "$$", "$x"]
          env:
            - {name: EARLY, value: "$(A)"}
            - name: POD
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
            - {name: A, value: a}
            - {name: GREETING, value: "hello $(POD) $(A)"}
            - {name: SECRETREF, value: "$(password)"}
          envFrom:
            - secretRef: {name: creds}
`,
			want: []EnvVar{
				{Name: "password", Value: "s3cret", Secret: true}, {Name: "username", Value: "app", Secret: true},
				{Name: "EARLY", Value: "$(A)"}, {Name: "POD", Value: "app-0"}, {Name: "A", Value: "a"},
				{Name: "GREETING", Value: "hello app-0 a"}, {Name: "SECRETREF", Value: "s3cret"},
			},
			command: []string{"sh", "-c", "echo hello app-0 a $(UNDEFINED) $(ESCAPED) app-0"},
			args:    []string{"a", "$(", "$", "$x"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, notices := expandText(t, configAndSecret+"---\n"+deployment("app", 1, tt.env))
			c := findPod(t, d, "default/app-0").Containers[0]
			if !reflect.DeepEqual(c.Env, tt.want) {
				t.Errorf("env:\n got %v\nwant %v", c.Env, tt.want)
			}
			if !slices.Equal(c.Command, tt.command) || !slices.Equal(c.Args, tt.args) {
				t.Errorf("command %q args %q; want %q %q", c.Command, c.Args, tt.command, tt.args)
			}
			if got := noticeStrings(notices); !slices.Equal(got, tt.notices) {
				t.Errorf("notices:\n got %q\nwant %q", got, tt.notices)
			}
		})
	}
}

// TestExpandEnvRedacted checks that printing a pod never shows Secret data.
func TestExpandEnvRedacted(t *testing.T) {
	d, _ := expandText(t, configAndSecret+"---\n"+deployment("app", 1, `          envFrom: [{secretRef: {name: creds}}]
          volumeMounts: [{name: s, mountPath: /s}]
      volumes: [{name: s, secret: {secretName: creds}}]
`))
	for _, verb := range []string{"%v", "%+v"} {
		if s := sprintf(verb, d.Pods[0]); strings.Contains(s, "s3cret") {
			t.Errorf("%s of a pod shows secret data: %s", verb, s)
		}
	}
}

// TestExpandVolumes checks volume resolution: projected ConfigMap items
// and modes, Secret volumes, optional sources, emptyDir, hostPath, claims
// and the read-only mounts of projected volumes.
func TestExpandVolumes(t *testing.T) {
	d, notices := expandText(t, configAndSecret+`---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
`+deployment("app", 1, `          volumeMounts:
            - {name: items, mountPath: /items}
            - {name: all, mountPath: /all, readOnly: false}
            - {name: secret, mountPath: /secret}
            - {name: scratch, mountPath: /tmp}
            - {name: data, mountPath: /data, subPath: app}
            - {name: data-ro, mountPath: /data-ro}
            - {name: host, mountPath: /host, readOnly: true}
      volumes:
        - name: items
          configMap:
            name: cfg
            defaultMode: 0640
            items:
              - {key: index.html, path: www/index.html}
              - {key: a, path: a.txt, mode: 0600}
        - name: all
          configMap: {name: cfg2}
        - name: missing
          configMap: {name: nothing, optional: true}
        - name: secret
          secret:
            secretName: creds
            items: [{key: password, path: pw}, {key: nope, path: nope}]
            optional: true
        - name: scratch
          emptyDir: {medium: Memory, sizeLimit: 64Mi}
        - name: disk
          emptyDir: {}
        - name: data
          persistentVolumeClaim: {claimName: data}
        - name: data-ro
          persistentVolumeClaim: {claimName: data, readOnly: true}
        - name: host
          hostPath: {path: /srv/shared, type: DirectoryOrCreate}
`))
	if len(notices) != 0 {
		t.Fatalf("notices: %q", noticeStrings(notices))
	}
	p := findPod(t, d, "default/app-0")
	claim := Claim{Namespace: "default", Name: "data", StorageBytes: 1 << 30}
	want := []Volume{
		{Name: "items", Source: Projected{Files: []File{
			{Path: "a.txt", Data: []byte("from-cfg-a"), Mode: 0o600},
			{Path: "www/index.html", Data: []byte("<h1>hi</h1>"), Mode: 0o640},
		}}},
		{Name: "all", Source: Projected{Files: []File{
			{Path: "a", Data: []byte("from-cfg2-a"), Mode: 0o644},
			{Path: "c", Data: []byte("from-cfg2-c"), Mode: 0o644},
		}}},
		{Name: "missing", Source: Projected{}},
		{Name: "secret", Source: Projected{Secret: true, Files: []File{{Path: "pw", Data: []byte("s3cret"), Mode: 0o400}}}},
		{Name: "scratch", Source: EmptyDir{Medium: "Memory", SizeLimit: 64 << 20}},
		{Name: "disk", Source: EmptyDir{}},
		{Name: "data", Source: claim},
		{Name: "data-ro", Source: claim},
		{Name: "host", Source: HostPath{Path: "/srv/shared", Type: "DirectoryOrCreate"}},
	}
	if !reflect.DeepEqual(p.Volumes, want) {
		t.Errorf("volumes:\n got %+v\nwant %+v", p.Volumes, want)
	}
	wantMounts := []Mount{
		{Volume: "items", Path: "/items", ReadOnly: true},
		{Volume: "all", Path: "/all", ReadOnly: true},
		{Volume: "secret", Path: "/secret", ReadOnly: true},
		{Volume: "scratch", Path: "/tmp"},
		{Volume: "data", Path: "/data", SubPath: "app"},
		{Volume: "data-ro", Path: "/data-ro", ReadOnly: true},
		{Volume: "host", Path: "/host", ReadOnly: true},
	}
	if got := p.Containers[0].Mounts; !reflect.DeepEqual(got, wantMounts) {
		t.Errorf("mounts:\n got %+v\nwant %+v", got, wantMounts)
	}
	if !reflect.DeepEqual(d.Claims, []Claim{claim}) {
		t.Errorf("claims: %+v", d.Claims)
	}
}

// TestExpandContainer checks container fields: probes with named ports,
// resources, security contexts merged from the pod, ports, init containers.
func TestExpandContainer(t *testing.T) {
	d, _ := expandText(t, `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  securityContext: {runAsUser: 1000, runAsGroup: 1000, runAsNonRoot: true, fsGroup: 3000, supplementalGroups: [4000]}
  initContainers:
    - name: init
      image: busybox:1.36
      command: [sh, -c, "true"]
  containers:
    - name: web
      image: registry.local/web
      workingDir: /srv
      ports:
        - {name: http, containerPort: 8080, hostPort: 80}
        - {name: metrics, containerPort: 9090, protocol: UDP}
      resources:
        limits: {cpu: 500m, memory: 128Mi}
        requests: {cpu: "0.1"}
      securityContext:
        runAsUser: 0
        readOnlyRootFilesystem: true
        allowPrivilegeEscalation: false
        capabilities: {add: [NET_ADMIN], drop: [ALL]}
      livenessProbe:
        httpGet:
          path: /healthz
          port: http
          httpHeaders: [{name: X-Probe, value: "1"}]
        initialDelaySeconds: 3
      readinessProbe:
        tcpSocket: {port: 9090}
        periodSeconds: 2
      startupProbe:
        exec: {command: [cat, /ready]}
        failureThreshold: 30
`)
	p := findPod(t, d, "default/p")
	if len(p.InitContainers) != 1 || p.InitContainers[0].Name != "init" || len(p.Containers) != 1 {
		t.Fatalf("containers: %+v / %+v", p.InitContainers, p.Containers)
	}
	c := p.Containers[0]
	if c.Image != "registry.local/web" || c.PullPolicy != PullAlways || c.WorkingDir != "/srv" {
		t.Errorf("image %q pull %q workdir %q", c.Image, c.PullPolicy, c.WorkingDir)
	}
	wantPorts := []Port{{Name: "http", ContainerPort: 8080, HostPort: 80, Protocol: "TCP"}, {Name: "metrics", ContainerPort: 9090, Protocol: "UDP"}}
	if !reflect.DeepEqual(c.Ports, wantPorts) {
		t.Errorf("ports %+v", c.Ports)
	}
	wantRes := Resources{MemoryLimit: 128 << 20, CPUMilli: 500, CPURequestMilli: 100, MemoryRequest: 128 << 20}
	if c.Resources != wantRes {
		t.Errorf("resources %+v, want %+v", c.Resources, wantRes)
	}
	f := false
	wantSec := Security{
		RunAsUser: ptrTo[int64](0), RunAsGroup: ptrTo[int64](1000), RunAsNonRoot: true,
		SupplementalGroups: []int64{4000, 3000}, ReadOnlyRootFilesystem: true, AllowPrivilegeEscalation: &f,
		CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"ALL"},
	}
	if !reflect.DeepEqual(c.Security, wantSec) {
		t.Errorf("security:\n got %+v\nwant %+v", c.Security, wantSec)
	}
	wantProbes := Probes{
		Liveness: &Probe{
			HTTPGet:      &HTTPGet{Path: "/healthz", Port: 8080, Scheme: "HTTP", Headers: []Header{{Name: "X-Probe", Value: "1"}}},
			InitialDelay: 3 * time.Second, Timeout: time.Second, Period: 10 * time.Second, SuccessThreshold: 1, FailureThreshold: 3,
		},
		Readiness: &Probe{TCPSocket: &TCPSocket{Port: 9090}, Timeout: time.Second, Period: 2 * time.Second, SuccessThreshold: 1, FailureThreshold: 3},
		Startup:   &Probe{Exec: []string{"cat", "/ready"}, Timeout: time.Second, Period: 10 * time.Second, SuccessThreshold: 1, FailureThreshold: 30},
	}
	if !reflect.DeepEqual(c.Probes, wantProbes) {
		t.Errorf("probes:\n got %+v\nwant %+v", c.Probes, wantProbes)
	}
	if ic := p.InitContainers[0]; ic.Security.RunAsUser == nil || *ic.Security.RunAsUser != 1000 || ic.PullPolicy != PullIfNotPresent {
		t.Errorf("init container: %+v", ic)
	}
}

// TestExpandNil checks that a nil state expands to nothing.
func TestExpandNil(t *testing.T) {
	d, notices := Expand(nil, Host{})
	if len(d.Pods)+len(d.Networks)+len(d.Claims)+len(notices) != 0 {
		t.Errorf("Expand(nil) = %+v, %v", d, notices)
	}
}

// TestExpandExample expands the bundled example site and compares the
// resolved pods, networks, claims and notices with a golden file.
func TestExpandExample(t *testing.T) {
	d, notices := Expand(loadSite(t), Host{Name: "node1"})
	out, err := json.MarshalIndent(struct {
		Desired Desired
		Notices []string
	}{d, noticeStrings(notices)}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "testdata/site.expand.golden", string(out)+"\n")
}

// loadSite loads the bundled example site.
func loadSite(t testing.TB) *specs.DesiredState {
	t.Helper()
	state, err := specs.Load(os.DirFS("../examples/site"), ".", specs.Options{})
	if err != nil {
		t.Fatalf("load the example site: %v", err)
	}
	return state
}

// TestExpansion checks the $(VAR) expansion rules on their own.
func TestExpansion(t *testing.T) {
	vars := map[string]string{"A": "a", "EMPTY": "", "NESTED": "$(A)"}
	lookup := func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
	for in, want := range map[string]string{
		"":                   "",
		"plain":              "plain",
		"$(A)":               "a",
		"x$(A)y$(A)":         "xaya",
		"$(EMPTY)|":          "|",
		"$(NESTED)":          "$(A)", // no recursion
		"$(MISSING)":         "$(MISSING)",
		"$$(A)":              "$(A)",
		"$$$(A)":             "$a",
		"$":                  "$",
		"a$":                 "a$",
		"$(":                 "$(",
		"$(A":                "$(A",
		"$x$(A)":             "$xa",
		"ünï$(A)cødé":        "ünïacødé",
		"$()":                "$()",
		"$(A)$(MISSING)$(A)": "a$(MISSING)a",
	} {
		if got := expand(in, lookup); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

// ptrTo returns a pointer to v.
func ptrTo[T any](v T) *T { return &v }

// TestExpandUnresolvable checks that a workload whose references cannot be
// resolved (possible only for a state that skipped validation; here one
// without its index, so every lookup fails) is not run and says why.
func TestExpandUnresolvable(t *testing.T) {
	loaded := loadText(t, configAndSecret+`---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
`+deployment("env", 1, `          env: [{name: A, valueFrom: {configMapKeyRef: {name: cfg, key: a}}}]
`)+"---\n"+deployment("secret", 1, `          env: [{name: A, valueFrom: {secretKeyRef: {name: creds, key: password}}}]
`)+"---\n"+deployment("envfrom", 1, `          envFrom: [{secretRef: {name: creds}}]
`)+"---\n"+deployment("cmvol", 1, `      volumes: [{name: v, configMap: {name: cfg}}]
`)+"---\n"+deployment("secvol", 1, `      volumes: [{name: v, secret: {secretName: creds}}]
`)+"---\n"+deployment("claim", 1, `      volumes: [{name: v, persistentVolumeClaim: {claimName: data}}]
`))
	d, notices := Expand(&specs.DesiredState{Objects: loaded.Objects}, Host{Name: "n1"})
	if len(d.Pods) != 0 {
		t.Errorf("pods %q", podNames(d.Pods))
	}
	want := []string{
		`apps/v1 Deployment default/claim: pod claim-0: volume v: PersistentVolumeClaim "data" not found; not run`,
		`apps/v1 Deployment default/cmvol: pod cmvol-0: volume v: ConfigMap "cfg" not found; not run`,
		`apps/v1 Deployment default/env: pod env-0: container main: env A: ConfigMap "cfg" not found; not run`,
		`apps/v1 Deployment default/envfrom: pod envfrom-0: container main: envFrom: Secret "creds" not found; not run`,
		`apps/v1 Deployment default/secret: pod secret-0: container main: env A: Secret "creds" not found; not run`,
		`apps/v1 Deployment default/secvol: pod secvol-0: volume v: Secret "creds" not found; not run`,
	}
	if got := noticeStrings(notices); !slices.Equal(got, want) {
		t.Errorf("notices:\n got %q\nwant %q", got, want)
	}
}
