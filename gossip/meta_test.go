package gossip

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestMetaRoundTrip(t *testing.T) {
	for _, m := range []Meta{
		{},
		{Labels: map[string]string{"zone": "a", "disk": "ssd"}, Capacity: Capacity{CPU: 4000, Memory: 8 << 30},
			Version: "0.3.0", Eligible: true, Term: 7, Seen: 9, SteppedDownFor: 8, APIAddr: "10.0.0.2:7070"},
		{APIAddr: ":7071"},
		{APIAddr: "[fd00::1:2:3:4]:65535", Labels: map[string]string{"a": "b"}},
		{Term: math.MaxUint64, Seen: math.MaxUint64, SteppedDownFor: math.MaxUint64},
	} {
		b, err := encodeMeta(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeMeta(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip %+v -> %+v", m, got)
		}
	}
}

func TestMetaSize(t *testing.T) {
	m := Meta{Labels: map[string]string{"zone": "eu-west-1a", "rack": "r12", "disk": "ssd", "gpu": "none"},
		Capacity: Capacity{CPU: 64000, Memory: 512 << 30}, Version: "v1.2.3-rc.1+abcdef", Eligible: true,
		Term: math.MaxUint64, Seen: math.MaxUint64, SteppedDownFor: math.MaxUint64}
	b, err := encodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("metadata with 4 labels and the largest terms: %d bytes of 512", len(b))
	m.Labels["note"] = strings.Repeat("x", 500)
	if _, err := encodeMeta(m); !errors.Is(err, ErrMetaTooLarge) || !strings.Contains(err.Error(), "--labels") {
		t.Fatalf("oversized meta: %v", err)
	}
}

func TestMetaDecodeRejects(t *testing.T) {
	for _, b := range [][]byte{nil, {9}, {metaFormat, 1}, {metaFormat, 1, 0, 0, 0, 0, 0, 0, 200}} {
		if _, err := decodeMeta(b); err == nil {
			t.Errorf("decodeMeta(%v) succeeded", b)
		}
	}
}

func FuzzDecodeState(f *testing.F) {
	f.Add(encodeState(notice{Node: "a"}, nil))
	f.Add(encodeState(notice{Term: 1, Seq: 2, Node: "a"}, []NodeStatus{{Node: "a", Version: 1, Data: []byte("d")}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeState(b) // must not panic or allocate without bound
		decodeMeta(b)
	})
}
