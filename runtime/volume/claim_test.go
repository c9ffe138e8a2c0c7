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
	if err := v.ensureClaim(claim); err != nil {
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
	if err := v.remove("ns", "db"); err != nil {
		t.Fatal(err)
	}
	if err := v.ensureClaim(claim); err != nil { // again: the data is kept
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(data, "table")); err != nil || string(b) != "rows" {
		t.Fatalf("claim data after pod removal = %q, %v", b, err)
	}
	got, err := v.claims()
	if err != nil || fmt.Sprint(got) != "[{ns db-data}]" {
		t.Errorf("claims() = %v, %v", got, err)
	}

	for i := 0; i < 2; i++ {
		if err := v.removeClaim("ns", "db-data"); err != nil {
			t.Fatalf("removeClaim %d: %v", i+1, err)
		}
	}
	if _, err := os.Stat(filepath.Join(v.claimsDir, "ns_db-data")); !os.IsNotExist(err) {
		t.Errorf("claim dir after removeClaim: %v", err)
	}
	if got, err := v.claims(); err != nil || len(got) != 0 {
		t.Errorf("claims() after removeClaim = %v, %v", got, err)
	}
}

func TestClaimsIgnoreWhatIsNotKelpies(t *testing.T) {
	v := newTestVolumes(t)
	if err := v.ensureClaim(reconciler.Claim{Namespace: "ns", Name: "a"}); err != nil {
		t.Fatal(err)
	}
	// A directory without the label (an ensureClaim killed before writing
	// it, or someone else's), and a removal in progress.
	for _, d := range []string{"ns_unlabelled/data", ".removing-ns_b-123/data"} {
		if err := os.MkdirAll(filepath.Join(v.claimsDir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got, err := v.claims()
	if err != nil || fmt.Sprint(got) != "[{ns a}]" {
		t.Errorf("claims() = %v, %v; want only ns/a", got, err)
	}
	// ensureClaim completes the interrupted one.
	if err := v.ensureClaim(reconciler.Claim{Namespace: "ns", Name: "unlabelled"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := v.claims(); len(got) != 2 {
		t.Errorf("claims() after completing = %v", got)
	}
	// A new volumes (an agent restart) sweeps removals in progress.
	if _, err := newVolumes(v.cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(v.claimsDir, ".removing-ns_b-123")); !os.IsNotExist(err) {
		t.Errorf("interrupted removal left after restart: %v", err)
	}
}
