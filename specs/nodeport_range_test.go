package specs

import (
	"strings"
	"testing"
	"testing/fstest"
)

// A nodePort is checked against Options.NodePortRange (the agents'
// --service-node-port-range), the default range when it is zero, and the
// error names the file, line, field and range.
func TestNodePortRange(t *testing.T) {
	doc := "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  type: NodePort\n  selector: {app: web}\n  ports:\n  - port: 80\n    nodePort: %s\n"
	for _, tc := range []struct {
		name     string
		nodePort string
		r        [2]int32
		want     string // "" when valid
	}{
		{"default range, inside", "30080", [2]int32{}, ""},
		{"default range, below", "8080", [2]int32{}, "f.yaml:9:15: spec.ports[0].nodePort: port 8080 is outside the service node port range 30000-32767 (--service-node-port-range)"},
		{"configured range, inside", "8080", [2]int32{8000, 8999}, ""},
		{"configured range, default port outside", "30080", [2]int32{8000, 8999}, "port 30080 is outside the service node port range 8000-8999"},
		{"configured range, upper bound", "8999", [2]int32{8000, 8999}, ""},
		{"configured range, past upper bound", "9000", [2]int32{8000, 8999}, "port 9000 is outside the service node port range 8000-8999"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := strings.Replace(doc, "%s", tc.nodePort, 1)
			_, err := Load(fstest.MapFS{"f.yaml": {Data: []byte(data)}}, ".", Options{NodePortRange: tc.r})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("load: %v; want valid", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("load: %v; want an error containing %q", err, tc.want)
			}
		})
	}
}
