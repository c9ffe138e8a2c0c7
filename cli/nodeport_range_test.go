package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validate checks a nodePort against the default range, or against
// --service-node-port-range (or its environment variable) when given, and
// refuses a bad flag as a usage error.
func TestValidateNodePortRange(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "svc.yaml")
	doc := "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  type: NodePort\n  selector: {app: web}\n  ports:\n  - port: 80\n    nodePort: 8080\n"
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	res := runMain(t, "validate", dir)
	if want := file + ":9:15: spec.ports[0].nodePort: port 8080 is outside the service node port range 30000-32767 (--service-node-port-range)"; res.code != 1 || !strings.Contains(res.stderr, want) {
		t.Errorf("default range: exit %d, stderr:\n%s\nwant %q", res.code, res.stderr, want)
	}
	res = runMain(t, "validate", "--service-node-port-range", "8000-8999", dir)
	if res.code != 0 {
		t.Errorf("--service-node-port-range 8000-8999: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = runMain(t, "validate", "--service-node-port-range", "9000-9999", dir)
	if want := "port 8080 is outside the service node port range 9000-9999"; res.code != 1 || !strings.Contains(res.stderr, want) {
		t.Errorf("--service-node-port-range 9000-9999: exit %d, stderr:\n%s\nwant %q", res.code, res.stderr, want)
	}
	t.Setenv("KELPIE_SERVICE_NODE_PORT_RANGE", "8080")
	if res = runMain(t, "validate", dir); res.code != 0 {
		t.Errorf("KELPIE_SERVICE_NODE_PORT_RANGE=8080: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = runMain(t, "validate", "--service-node-port-range", "9-1", dir)
	if want := "--service-node-port-range"; res.code == 0 || !strings.Contains(res.stderr, want) {
		t.Errorf("bad flag: exit %d, stderr:\n%s", res.code, res.stderr)
	}
}
