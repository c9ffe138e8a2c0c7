package volume

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/kelpie-dev/kelpie/reconciler"
)

func TestClaimSurvivesPodRemoval(t *testing.T) {
	v := newTestVolumes(t)
	claim := reconciler.Claim{Namespace: "ns", Name: "db-data", StorageBytes: 1 << 30}
	if err := v.EnsureClaim(claim); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(v.claimsDir, "ns_db-data", "data")
	if fi, err := os.Stat(data); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("claim data dir %v, %v; want mode 0755", fi, err)
	}
	p := volPod("db", reconciler.Volume{Name: "data", Source: claim})
	paths := prepare(t, v, p)
	if paths["data"] != data {
		t.Fatalf("claim bound from %s, want %s", paths["data"], data)
	}
	if err := os.WriteFile(filepath.Join(data, "table"), []byte("rows"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := v.Remove("ns", "db"); err != nil {
		t.Fatal(err)
	}
	if err := v.EnsureClaim(claim); err != nil { // again: the data is kept
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(data, "table")); err != nil || string(b) != "rows" {
		t.Fatalf("claim data after pod removal = %q, %v", b, err)
	}
	got, err := v.Claims()
	if err != nil || fmt.Sprint(got) != "[{ns db-data}]" {
		t.Errorf("Claims() = %v, %v", got, err)
	}

	for i := 0; i < 2; i++ {
		if err := v.RemoveClaim("ns", "db-data"); err != nil {
			t.Fatalf("RemoveClaim %d: %v", i+1, err)
		}
	}
	if _, err := os.Stat(filepath.Join(v.claimsDir, "ns_db-data")); !os.IsNotExist(err) {
		t.Errorf("claim dir after RemoveClaim: %v", err)
	}
	if got, err := v.Claims(); err != nil || len(got) != 0 {
		t.Errorf("Claims() after RemoveClaim = %v, %v", got, err)
	}
}

func TestClaimsIgnoreWhatIsNotKelpies(t *testing.T) {
	v := newTestVolumes(t)
	if err := v.EnsureClaim(reconciler.Claim{Namespace: "ns", Name: "a"}); err != nil {
		t.Fatal(err)
	}
	// A directory without the label (an EnsureClaim killed before writing
	// it, or someone else's), and a removal in progress.
	for _, d := range []string{"ns_unlabelled/data", ".removing-ns_b-123/data"} {
		if err := os.MkdirAll(filepath.Join(v.claimsDir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got, err := v.Claims()
	if err != nil || fmt.Sprint(got) != "[{ns a}]" {
		t.Errorf("Claims() = %v, %v; want only ns/a", got, err)
	}
	// EnsureClaim completes the interrupted one.
	if err := v.EnsureClaim(reconciler.Claim{Namespace: "ns", Name: "unlabelled"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := v.Claims(); len(got) != 2 {
		t.Errorf("Claims() after completing = %v", got)
	}
	// A new volumes (an agent restart) sweeps removals in progress.
	if _, err := New(v.cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(v.claimsDir, ".removing-ns_b-123")); !os.IsNotExist(err) {
		t.Errorf("interrupted removal left after restart: %v", err)
	}
}
