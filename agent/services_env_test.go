package agent

import (
	"slices"
	"strings"
	"testing"
)

// podEnv is the environment of the first container of the pod the fake
// runtime last created as agenttest/name.
func (h *harness) podEnv(name string) []string {
	h.t.Helper()
	p, ok := h.rt.Created("agenttest", name)
	if !ok {
		h.t.Fatalf("pod agenttest/%s was never created", name)
	}
	var out []string
	for _, e := range p.Containers[0].Env {
		out = append(out, e.String())
	}
	return out
}

// TestServiceEnv: an agent on its own gives the containers it creates the
// variables of the Services of their namespace that have a virtual IP
// (allocated by the agent, in the same sync as the pods); a Service added
// later restarts no pod, and only pods created after it see it.
func TestServiceEnv(t *testing.T) {
	h := newHarness(t)
	v1 := h.src.push("v1", map[string]string{"web.yaml": webDeployment(1), "svc.yaml": webService})
	h.start()
	h.waitFor("v1 applied", func(s Status) bool { return s.Applied != nil && s.Applied.Hash == v1.Hash })
	s := h.agent.Status()
	web, ok := serviceOf(s, "web")
	if !ok || web.ClusterIP == "" {
		t.Fatalf("service web %+v; want a clusterIP", web)
	}
	env := h.podEnv("web-0")
	for _, want := range []string{"WEB_SERVICE_HOST=" + web.ClusterIP, "WEB_SERVICE_PORT=80", "WEB_SERVICE_PORT_HTTP=80", "WEB_PORT=tcp://" + web.ClusterIP + ":80"} {
		if !slices.Contains(env, want) {
			t.Errorf("web-0 env %q lacks %s", env, want)
		}
	}
	for _, e := range env {
		if strings.HasPrefix(e, "WEB_PODS_") {
			t.Errorf("web-0 env has %s of the headless Service", e)
		}
	}

	const api = "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: agenttest}\nspec:\n  selector: {app: web}\n  ports: [{port: 81, targetPort: 8080}]\n"
	calls := len(h.rt.Calls())
	v2 := h.src.push("v2 adds a Service", map[string]string{"web.yaml": webDeployment(1), "svc.yaml": webService + "---\n" + api})
	h.agent.Trigger("test")
	if s := h.waitFor("v2 applied", func(s Status) bool { return s.Applied != nil && s.Applied.Hash == v2.Hash || s.LastError != nil }); s.LastError != nil {
		t.Fatalf("v2: %+v", *s.LastError)
	}
	if m := h.mutations(calls); len(m) != 0 {
		t.Fatalf("adding a Service changed the host: %v", m)
	}
	if env := h.podEnv("web-0"); slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "API_") }) {
		t.Errorf("web-0 env %q has the new Service's variables", env)
	}

	v3 := h.src.push("v3 scales up", map[string]string{"web.yaml": webDeployment(2), "svc.yaml": webService + "---\n" + api})
	h.agent.Trigger("test")
	h.waitFor("v3 applied", func(s Status) bool { return s.Applied != nil && s.Applied.Hash == v3.Hash })
	apiSt, _ := serviceOf(h.agent.Status(), "api")
	if env := h.podEnv("web-1"); apiSt.ClusterIP == "" || !slices.Contains(env, "API_SERVICE_HOST="+apiSt.ClusterIP) || !slices.Contains(env, "WEB_SERVICE_PORT=80") {
		t.Errorf("web-1 env %q; want API_SERVICE_HOST=%s and the web Service's", env, apiSt.ClusterIP)
	}
	if got := h.hashes(); got["agenttest/web-0"] != got["agenttest/web-1"] {
		t.Errorf("hashes %v: the pods of one template differ", got)
	}
}

// TestNodePortRangeRefused: the agent checks a manifest's nodePort against
// its --service-node-port-range and refuses the commit as a whole, with the
// file, line and field.
func TestNodePortRangeRefused(t *testing.T) {
	svc := strings.Replace(webService, "targetPort: 8080}", "targetPort: 8080, nodePort: 8080}", 1)
	t.Run("default range", func(t *testing.T) {
		h := newHarness(t)
		bad := h.src.push("v1", map[string]string{"web.yaml": webDeployment(1), "svc.yaml": svc})
		h.start()
		s := h.waitFor("refused", func(s Status) bool { return s.LastError != nil })
		le := s.LastError
		if le.Kind != KindInvalid || le.Commit != bad.Hash || len(le.Errors) != 1 {
			t.Fatalf("lastError %+v; want the commit refused as invalid", le)
		}
		if e := le.Errors[0]; e.File != "svc.yaml" || e.Line != 8 || e.Field != "spec.ports[0].nodePort" || !strings.Contains(e.Message, "outside the service node port range 30000-32767 (--service-node-port-range)") {
			t.Errorf("manifest error %+v", e)
		}
		if got := h.podNames(); len(got) != 0 {
			t.Errorf("pods %v: a refused commit ran", got)
		}
	})
	t.Run("configured range", func(t *testing.T) {
		h := newHarness(t)
		h.cfg.Network.NodePorts.Min, h.cfg.Network.NodePorts.Max = 8000, 8999
		v1 := h.src.push("v1", map[string]string{"web.yaml": webDeployment(1), "svc.yaml": svc})
		h.start()
		s := h.waitFor("v1 applied", func(s Status) bool { return s.Applied != nil && s.Applied.Hash == v1.Hash })
		web, _ := serviceOf(s, "web")
		if len(web.Ports) != 1 || web.Ports[0].NodePort != 8080 {
			t.Errorf("service web %+v; want node port 8080", web)
		}
	})
}
