package statedir

import "testing"

func TestStateKeys(t *testing.T) {
	if ns, name, ok := SplitKey(Key("prod", "web-0.x")); !ok || ns != "prod" || name != "web-0.x" {
		t.Errorf("split(key(prod, web-0.x)) = %q %q %v", ns, name, ok)
	}
	for _, bad := range []string{"", "noseparator", "_x", "x_", ".tmp-x_y"} {
		if _, _, ok := SplitKey(bad); ok {
			t.Errorf("SplitKey(%q) ok", bad)
		}
	}
	for _, bad := range []string{"", "a/b", "a_b", ".hidden"} {
		if err := CheckName("pod name", bad); err == nil {
			t.Errorf("CheckName(%q) accepted", bad)
		}
	}
}
