package cli

import (
	"strings"
	"testing"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// TestApplyRefusesPrivileges checks that plan shows a pod asking for a
// capability the host does not allow as refused, naming the field and the
// flag; that apply creates nothing of it and fails; and that
// --allow-capability lets it run.
func TestApplyRefusesPrivileges(t *testing.T) {
	h := newHostEnv(t, "10.248.3.0/24")
	h.write(testenv.Deployment{Name: "admin", Namespace: "clitest", Replicas: 1, Container: testenv.Container{
		Grace: new(1), Command: `"sleep", "3600"`,
		Extra: "          securityContext:\n            capabilities: {add: [SYS_ADMIN]}\n",
	}}.YAML())
	want := "pod clitest/admin-0: refused: this host does not allow spec.template.spec.containers[0].securityContext.capabilities.add[0]: capability SYS_ADMIN (--allow-capability SYS_ADMIN or --allow-privileged)"
	res := h.run("plan")
	if res.code != 0 || !strings.Contains(res.stdout, want) || strings.Contains(res.stdout, "create pod") {
		t.Fatalf("plan: exit %d, want 0 and %q\n%s%s", res.code, want, res.stdout, res.stderr)
	}
	res = h.run("apply")
	if res.code != 1 || !strings.Contains(res.stderr, "apply did not converge: pod clitest/admin-0 refused") {
		t.Fatalf("apply: exit %d, want 1 and the refusal\n%s%s", res.code, res.stdout, res.stderr)
	}
	if pods := h.pods(); len(pods) != 0 {
		t.Fatalf("a refused pod runs: %+v", pods)
	}
	if res = h.run("apply", "--allow-capability", "SYS_ADMIN"); res.code != 0 {
		t.Fatalf("apply --allow-capability SYS_ADMIN: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if pods := h.pods(); len(pods) != 1 || pods[0].Containers[0].State != "Running" {
		t.Fatalf("ps after apply --allow-capability: %+v", pods)
	}
	res = h.run("apply", "--allow-capability", "FLY")
	if res.code == 0 || !strings.Contains(res.stderr, `invalid value for flag --allow-capability "FLY": not a Linux capability`) {
		t.Fatalf("apply --allow-capability FLY: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}
