package cli

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// TestAgentServiceEnv runs `kelpie agent` on a private host against the
// real containerd with a Service and two pods in one commit: the agent
// allocates the Service's virtual IP before it creates the pods, so `env`
// inside the linking pod's container shows WEB_SERVICE_HOST (and the port
// variables) with that IP; the pod with enableServiceLinks: false has none.
func TestAgentServiceEnv(t *testing.T) {
	addr := testenv.ContainerdAddress(t)
	testenv.Binary(t, "git", "git")
	e, hc := newAgentHost(t, addr, "svcenv")
	ns := fmt.Sprintf("senv%d", hc.Octet)
	prefix := hc.SubnetPrefix()
	service := "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: " + ns + "}\nspec:\n  selector: {app: client}\n  ports: [{name: http, port: 80}]\n"
	client := testenv.Pod{Name: "client", Namespace: ns, Container: testenv.Container{Command: `"sh", "-c", "env; exec sleep 3600"`, Grace: new(0)}}.YAML()
	unlinked := testenv.Pod{Name: "unlinked", Namespace: ns, Container: testenv.Container{Command: `"sleep", "3600"`, Grace: new(0), Extra: "  enableServiceLinks: false\n"}}.YAML()

	v1 := e.push("v1", map[string]string{"svc.yaml": service, "client.yaml": client, "unlinked.yaml": unlinked})
	e.start()
	s := e.waitFor("v1 running", 2*time.Minute, func(s agent.Status) bool {
		return s.Applied != nil && s.Applied.Hash == v1 && runningIn(s, prefix, "client", "unlinked")
	})
	vip := ""
	for _, sv := range s.Services {
		if sv.Name == "web" {
			vip = sv.ClusterIP
		}
	}
	if vip == "" || vip == "None" {
		t.Fatalf("services %+v; want web with a virtual IP", s.Services)
	}
	want := []string{"WEB_SERVICE_HOST=" + vip, "WEB_SERVICE_PORT=80", "WEB_SERVICE_PORT_HTTP=80", "WEB_PORT=tcp://" + vip + ":80", "WEB_PORT_80_TCP_ADDR=" + vip}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res := runMain(t, append([]string{"logs", ns + "/client"}, runtimeOnly(e.flags)...)...)
		missing := ""
		for _, w := range want {
			if !strings.Contains(res.stdout, w+"\n") {
				missing = w
				break
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("env in the client container lacks %s: kelpie logs exit %d\n%s%s\nagent log:\n%s", missing, res.code, res.stdout, res.stderr, e.log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := hc.ContainerEnv(ns, "unlinked", "main", "WEB_SERVICE_HOST"); got != "" {
		t.Errorf("enableServiceLinks: false, yet the container has WEB_SERVICE_HOST=%s", got)
	}
	e.stop()
}
