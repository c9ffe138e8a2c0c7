package netplan

import (
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// sampleState allocates a small cluster: pinned, dead and alive hosts,
// plain, headless and NodePort Services, one deleted Service.
func sampleState(t testing.TB) State {
	t.Helper()
	prev, _, err := Allocate(nil, []Node{alive("n1"), alive("n2"), pinned("n3", "10.244.200.0/24")},
		[]*corev1.Service{service("default/old")}, Options{Term: 2, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := Allocate(&prev, []Node{alive("n1"), dead("n2", t0.Add(time.Minute)), pinned("n3", "10.244.200.0/24")},
		[]*corev1.Service{service("default/web", nodePort(0)), service("default/db", headless()), service("kube-system/dns", withIP("10.96.0.10"))},
		Options{Term: 2, Now: t0.Add(2 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestEncodeGolden(t *testing.T) {
	st := sampleState(t)
	b, err := Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "state.json", string(b)+"\n")
	back, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Equal(&st) || back.Term != st.Term || back.Seq != st.Seq {
		t.Fatalf("round trip changed the state:\n%+v\n%+v", st, back)
	}
	// A decoded state allocates to the same state: no Seq churn after an
	// agent restarts from its saved copy.
	again, _, err := Allocate(&back, []Node{alive("n1"), dead("n2", t0.Add(time.Minute)), pinned("n3", "10.244.200.0/24")},
		[]*corev1.Service{service("default/web", nodePort(0)), service("default/db", headless()), service("kube-system/dns", withIP("10.96.0.10"))},
		Options{Term: 2, Now: t0.Add(3 * time.Minute)})
	if err != nil || again.Seq != st.Seq {
		t.Fatalf("allocating from the decoded state: seq %d (err %v), want %d", again.Seq, err, st.Seq)
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name, in, want string
		is             error
	}{
		{name: "not JSON", in: "{", want: "unexpected end"},
		{name: "no version", in: `{"term":1}`, want: "version 0", is: ErrVersion},
		{name: "a newer version", in: `{"version":2}`, want: "version 2", is: ErrVersion},
		{name: "a bad slice", in: `{"version":1,"slices":{"a":{"prefix":"10.244.0.1/24"}}}`, want: "node a: slice 10.244.0.1/24 is not an IPv4 network"},
		{name: "overlapping slices", in: `{"version":1,"slices":{"a":{"prefix":"10.244.0.0/23"},"b":{"prefix":"10.244.1.0/24"}}}`, want: "nodes a and b have overlapping slices"},
		{name: "an IPv6 service IP", in: `{"version":1,"services":{"default/a":{"clusterIP":"fd00::1"}}}`, want: "service default/a: clusterIP fd00::1"},
		{name: "a bad node port", in: `{"version":1,"services":{"default/a":{"nodePorts":{"80/TCP":70000}}}}`, want: "node port 70000 out of range"},
		{name: "too big", in: `{"version":1,"x":"` + strings.Repeat("x", maxEncoded) + `"}`, want: "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want errors.Is %v", err, tt.is)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	b, err := Encode(sampleState(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"version":1,"slices":{"a":{"prefix":"10.244.0.0/24","idleSince":"2026-01-01T00:00:00Z"}}}`))
	f.Add([]byte(`{"version":1,"released":[{"service":"a/b","nodePort":30000,"port":"80/TCP","since":"2026-01-01T00:00:00Z"}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		st, err := Decode(in)
		if err != nil {
			return
		}
		out, err := Encode(st)
		if err != nil {
			t.Fatalf("a decoded state does not encode: %v", err)
		}
		back, err := Decode(out)
		if err != nil || !back.Equal(&st) {
			t.Fatalf("re-encoding changed the state (err %v)", err)
		}
	})
}
