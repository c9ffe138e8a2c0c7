package reconciler

import (
	"slices"
	"strings"
	"testing"
)

// envStrings formats variables as NAME=value.
func envStrings(env []EnvVar) []string {
	out := make([]string, 0, len(env))
	for _, e := range env {
		out = append(out, e.String())
	}
	return out
}

// NewServiceEnv names and values the variables as the kubelet does, per
// namespace, and leaves out Services without a virtual IP.
func TestNewServiceEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		svcs []LinkedService
		want map[string][]string
	}{
		{"one unnamed port", []LinkedService{{Namespace: "default", Name: "web", ClusterIP: "10.96.0.10", Ports: []LinkedPort{{Port: 80}}}},
			map[string][]string{"default": {
				"WEB_SERVICE_HOST=10.96.0.10", "WEB_SERVICE_PORT=80",
				"WEB_PORT=tcp://10.96.0.10:80", "WEB_PORT_80_TCP=tcp://10.96.0.10:80", "WEB_PORT_80_TCP_PROTO=tcp", "WEB_PORT_80_TCP_PORT=80", "WEB_PORT_80_TCP_ADDR=10.96.0.10",
			}}},
		{"dashes, named ports, UDP", []LinkedService{{Namespace: "shop", Name: "my-db", ClusterIP: "10.96.1.2", Ports: []LinkedPort{{Name: "pg-main", Port: 5432, Protocol: "TCP"}, {Name: "stats", Port: 8125, Protocol: "UDP"}}}},
			map[string][]string{"shop": {
				"MY_DB_SERVICE_HOST=10.96.1.2", "MY_DB_SERVICE_PORT=5432", "MY_DB_SERVICE_PORT_PG_MAIN=5432", "MY_DB_SERVICE_PORT_STATS=8125",
				"MY_DB_PORT=tcp://10.96.1.2:5432",
				"MY_DB_PORT_5432_TCP=tcp://10.96.1.2:5432", "MY_DB_PORT_5432_TCP_PROTO=tcp", "MY_DB_PORT_5432_TCP_PORT=5432", "MY_DB_PORT_5432_TCP_ADDR=10.96.1.2",
				"MY_DB_PORT_8125_UDP=udp://10.96.1.2:8125", "MY_DB_PORT_8125_UDP_PROTO=udp", "MY_DB_PORT_8125_UDP_PORT=8125", "MY_DB_PORT_8125_UDP_ADDR=10.96.1.2",
			}}},
		{"leading digit", []LinkedService{{Namespace: "default", Name: "3d", ClusterIP: "10.96.0.3", Ports: []LinkedPort{{Port: 1}}}},
			map[string][]string{"default": {
				"_3D_SERVICE_HOST=10.96.0.3", "_3D_SERVICE_PORT=1",
				"_3D_PORT=tcp://10.96.0.3:1", "_3D_PORT_1_TCP=tcp://10.96.0.3:1", "_3D_PORT_1_TCP_PROTO=tcp", "_3D_PORT_1_TCP_PORT=1", "_3D_PORT_1_TCP_ADDR=10.96.0.3",
			}}},
		{"per namespace, in name order, no IP left out", []LinkedService{
			{Namespace: "b", Name: "zeta", ClusterIP: "10.96.0.5", Ports: []LinkedPort{{Port: 5}}},
			{Namespace: "a", Name: "headless", ClusterIP: "None", Ports: []LinkedPort{{Port: 7}}},
			{Namespace: "a", Name: "pending", ClusterIP: "", Ports: []LinkedPort{{Port: 8}}},
			{Namespace: "b", Name: "alpha", ClusterIP: "10.96.0.4", Ports: []LinkedPort{{Port: 4}}},
		}, map[string][]string{"b": {
			"ALPHA_SERVICE_HOST=10.96.0.4", "ALPHA_SERVICE_PORT=4",
			"ALPHA_PORT=tcp://10.96.0.4:4", "ALPHA_PORT_4_TCP=tcp://10.96.0.4:4", "ALPHA_PORT_4_TCP_PROTO=tcp", "ALPHA_PORT_4_TCP_PORT=4", "ALPHA_PORT_4_TCP_ADDR=10.96.0.4",
			"ZETA_SERVICE_HOST=10.96.0.5", "ZETA_SERVICE_PORT=5",
			"ZETA_PORT=tcp://10.96.0.5:5", "ZETA_PORT_5_TCP=tcp://10.96.0.5:5", "ZETA_PORT_5_TCP_PROTO=tcp", "ZETA_PORT_5_TCP_PORT=5", "ZETA_PORT_5_TCP_ADDR=10.96.0.5",
		}}},
		{"none", nil, map[string][]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := NewServiceEnv(tc.svcs)
			if len(got) != len(tc.want) {
				t.Fatalf("namespaces %v, want %v", len(got), len(tc.want))
			}
			for ns, want := range tc.want {
				if g := envStrings(got[ns]); !slices.Equal(g, want) {
					t.Errorf("namespace %s:\n got %q\nwant %q", ns, g, want)
				}
			}
		})
	}
}

// serviceEnvSite has a Deployment that links Services, one that does not
// (enableServiceLinks: false), one that defines WEB_SERVICE_HOST itself,
// and a Pod in another namespace.
var serviceEnvSite = map[string]string{
	"linked.yaml": deployment("linked", 1, `          env: [{name: OWN, value: "1"}]
`),
	"unlinked.yaml": strings.Replace(deployment("unlinked", 1, ""), "      containers:", "      enableServiceLinks: false\n      containers:", 1),
	"override.yaml": deployment("override", 1, `          env: [{name: WEB_SERVICE_HOST, value: web.example}]
`),
	"other.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: lone, namespace: other}\nspec:\n  initContainers: [{name: init, image: busybox}]\n  containers: [{name: app, image: busybox}]\n",
}

// WithServiceEnv appends the variables of the pod's namespace after the
// container's own, keeps a variable the container defines, honours
// enableServiceLinks, leaves its input alone and changes no spec hash.
func TestWithServiceEnv(t *testing.T) {
	d, notices := Expand(load(t, serviceEnvSite), Host{Name: "n1"})
	if len(notices) > 0 {
		t.Fatalf("notices: %q", noticeStrings(notices))
	}
	env := NewServiceEnv([]LinkedService{
		{Namespace: "default", Name: "web", ClusterIP: "10.96.0.10", Ports: []LinkedPort{{Name: "http", Port: 80}}},
		{Namespace: "other", Name: "db", ClusterIP: "10.96.0.11", Ports: []LinkedPort{{Port: 5432}}},
	})
	got := d.WithServiceEnv(env)
	pods := map[string]Pod{}
	for _, p := range got.Pods {
		pods[p.Name] = p
	}
	has := func(p Pod, c int, v string) bool {
		return slices.Contains(envStrings(p.Containers[c].Env), v)
	}
	linked := pods["linked-0"]
	if e := envStrings(linked.Containers[0].Env); len(e) < 3 || e[0] != "OWN=1" || e[1] != "WEB_SERVICE_HOST=10.96.0.10" || e[2] != "WEB_SERVICE_PORT=80" || !has(linked, 0, "WEB_SERVICE_PORT_HTTP=80") {
		t.Errorf("linked env %q: want OWN=1, then the web Service's variables", e)
	}
	if has(linked, 0, "DB_SERVICE_HOST=10.96.0.11") {
		t.Errorf("linked env %q has a Service of another namespace", envStrings(linked.Containers[0].Env))
	}
	if e := pods["unlinked-0"].Containers[0].Env; len(e) != 0 {
		t.Errorf("enableServiceLinks: false, env %q; want none", envStrings(e))
	}
	if o := pods["override-0"]; !has(o, 0, "WEB_SERVICE_HOST=web.example") || has(o, 0, "WEB_SERVICE_HOST=10.96.0.10") || !has(o, 0, "WEB_SERVICE_PORT=80") {
		t.Errorf("override env %q: the container's own WEB_SERVICE_HOST must win", envStrings(o.Containers[0].Env))
	}
	lone := pods["lone"]
	if !has(lone, 0, "DB_SERVICE_HOST=10.96.0.11") || !slices.Contains(envStrings(lone.InitContainers[0].Env), "DB_PORT=tcp://10.96.0.11:5432") {
		t.Errorf("lone: containers %q, init containers %q; want the db Service's variables in both", envStrings(lone.Containers[0].Env), envStrings(lone.InitContainers[0].Env))
	}
	for i, p := range d.Pods {
		if p.Hash != got.Pods[i].Hash {
			t.Errorf("%s: hash changed", p.Name)
		}
		for _, c := range p.Containers {
			for _, e := range c.Env {
				if strings.Contains(e.Name, "_SERVICE_") && e.Value != "web.example" {
					t.Errorf("the input was modified: %s has %s", p.Name, e)
				}
			}
		}
	}
	if again := got.WithServiceEnv(nil); len(again.Pods) != len(got.Pods) {
		t.Errorf("no env changed the pods")
	}
}

// Adding a Service to the manifests changes no pod's spec hash: a new
// Service must not restart every pod (only containers created later see
// it, as in Kubernetes).
func TestServiceDoesNotChangeSpecHash(t *testing.T) {
	before := hashes(t, hashManifests)
	with := map[string]string{"svc.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: by-env}\n  ports: [{port: 80}]\n"}
	for k, v := range hashManifests {
		with[k] = v
	}
	after := hashes(t, with)
	if len(before) == 0 || len(after) != len(before) {
		t.Fatalf("pods %d before, %d after", len(before), len(after))
	}
	for name, h := range before {
		if after[name] != h {
			t.Errorf("%s: spec hash %s became %s when a Service was added", name, shortHash(h), shortHash(after[name]))
		}
	}
}
