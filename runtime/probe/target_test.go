package probe

import "testing"

func TestTargetAddress(t *testing.T) {
	pod := Target{PodIP: "10.244.0.7"}
	hostNet := Target{HostNetwork: true}
	for _, tc := range []struct {
		name    string
		target  Target
		host    string
		want    string
		wantErr string
	}{
		{"pod IP by default", pod, "", "10.244.0.7", ""},
		{"pod IP named", pod, "10.244.0.7", "10.244.0.7", ""},
		{"pod IP as mapped IPv6", pod, "::ffff:10.244.0.7", "10.244.0.7", ""},
		{"another pod", pod, "10.244.0.8", "", "host 10.244.0.8 not allowed"},
		{"loopback from a pod", pod, "127.0.0.1", "", "host 127.0.0.1 not allowed"},
		{"a name", pod, "metadata.google.internal", "", "host metadata.google.internal not allowed"},
		{"metadata service", pod, "169.254.169.254", "", "host 169.254.169.254 not allowed"},
		{"odd host quoted", pod, "a b\x1b", "", `host "a b\x1b" not allowed`},
		{"host network loopback by default", hostNet, "", "127.0.0.1", ""},
		{"host network localhost", hostNet, "LocalHost", "127.0.0.1", ""},
		{"host network other loopback", hostNet, "127.0.0.53", "127.0.0.53", ""},
		{"host network IPv6 loopback", hostNet, "::1", "::1", ""},
		{"host network elsewhere", hostNet, "192.168.1.1", "", "host 192.168.1.1 not allowed"},
		{"host network with a stale pod IP", Target{PodIP: "10.244.0.7", HostNetwork: true}, "10.244.0.7", "", "host 10.244.0.7 not allowed"},
		{"no IP", Target{}, "", "", "pod has no IP"},
		{"no IP, host named", Target{}, "10.0.0.1", "", "pod has no IP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.target.Address(tc.host)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("Address(%q) = %q, %v; want error %q", tc.host, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Address(%q) = %q, %v; want %q", tc.host, got, err, tc.want)
			}
		})
	}
}

func TestShort(t *testing.T) {
	long := ""
	for range 50 {
		long += "é…"
	}
	for _, tc := range []struct{ in, want string }{
		{"  ok \n", "ok"},
		{"first\nsecond", "first"},
		{"\r\nfirst line\r\nsecond", "first line"},
		{"bad \xff byte", "bad \uFFFD byte"},
	} {
		if got := Short(tc.in); got != tc.want {
			t.Errorf("Short(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	got := Short(long)
	if len(got) > maxOutput+len("…") {
		t.Errorf("Short of %d bytes = %d bytes, want at most %d", len(long), len(got), maxOutput+len("…"))
	}
	for i, r := range got {
		if r == '\uFFFD' {
			t.Errorf("Short cut a rune at %d: %q", i, got)
		}
	}
}
