package suggest

import "testing"

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"kitten", "sitting", 3},
		{"replicas", "replica", 1}, {"containers", "containerz", 1}, {"ab", "ba", 2},
	} {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestClosest(t *testing.T) {
	cands := []string{"containers", "initContainers", "volumes", "output", "repo"}
	for _, tc := range []struct{ typed, want string }{
		{"containerz", "containers"},
		{"Volumes", "volumes"},
		{"outptu", "output"},
		{"rep", "repo"},
		{"x", ""},
		{"affinity", ""},
	} {
		if got := Closest(tc.typed, cands); got != tc.want {
			t.Errorf("Closest(%q) = %q, want %q", tc.typed, got, tc.want)
		}
	}
}
