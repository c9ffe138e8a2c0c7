package volume

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/statedir"
)

// A claim's local volume is StateDir/volumes/NS_NAME: its data in data/,
// and claim.json, which labels it as kelpie's and names the claim. The
// label is written after the data dir exists, so a claim that Claims()
// reports always has its data dir.
const (
	claimDataDir   = "data"
	claimLabelFile = "claim.json"
)

// claimRecord is the content of claim.json.
type claimRecord struct {
	Labels       map[string]string `json:"labels"`
	StorageBytes int64             `json:"storageBytes,omitempty"`
}

// ClaimDir is the directory of a claim's local volume: its data dir and
// the label beside it.
func (v *Manager) ClaimDir(namespace, name string) string {
	return filepath.Join(v.claimsDir, statedir.Key(namespace, name))
}

// ClaimDataDir is the directory a claim's pods bind.
func (v *Manager) ClaimDataDir(namespace, name string) string {
	return filepath.Join(v.ClaimDir(namespace, name), claimDataDir)
}

// EnsureClaim creates the local volume of c when it does not exist. An
// existing volume and its data are left as they are.
func (v *Manager) EnsureClaim(c reconciler.Claim) error {
	key := reconciler.JoinName(c.Namespace, c.Name)
	if err := statedir.CheckName("claim namespace", c.Namespace); err != nil {
		return fmt.Errorf("ensure claim %s: %w", key, err)
	}
	if err := statedir.CheckName("claim name", c.Name); err != nil {
		return fmt.Errorf("ensure claim %s: %w", key, err)
	}
	dir := v.ClaimDir(c.Namespace, c.Name)
	if err := os.MkdirAll(dir, volPodDirMode); err != nil {
		return fmt.Errorf("ensure claim %s: %w", key, err)
	}
	data := v.ClaimDataDir(c.Namespace, c.Name)
	if err := os.Mkdir(data, volClaimDataMode); err == nil {
		if err := os.Chmod(data, volClaimDataMode); err != nil { // Mkdir's mode is subject to the umask
			return fmt.Errorf("ensure claim %s: %w", key, err)
		}
	} else if !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("ensure claim %s: %w", key, err)
	}
	labelFile := filepath.Join(dir, claimLabelFile)
	if rec, err := readClaimRecord(labelFile); err == nil && statedir.Managed(rec.Labels) && rec.Labels[reconciler.LabelClaim] == key {
		return nil
	}
	b, err := json.Marshal(claimRecord{Labels: statedir.Labels(reconciler.LabelClaim, key), StorageBytes: c.StorageBytes})
	if err != nil {
		return fmt.Errorf("ensure claim %s: %w", key, err)
	}
	if err := statedir.WriteAtomic(labelFile, b, 0o644); err != nil {
		return fmt.Errorf("ensure claim %s: %w", key, err)
	}
	return nil
}

// RemoveClaim deletes a claim's local volume and its data (`kelpie volume
// rm`). The volume is first renamed away in one step, so an interrupted
// removal never leaves a half-deleted claim that still counts as one.
// Removing a claim that does not exist succeeds.
func (v *Manager) RemoveClaim(namespace, name string) error {
	key := reconciler.JoinName(namespace, name)
	if err := statedir.CheckName("claim namespace", namespace); err != nil {
		return fmt.Errorf("remove claim %s: %w", key, err)
	}
	if err := statedir.CheckName("claim name", name); err != nil {
		return fmt.Errorf("remove claim %s: %w", key, err)
	}
	dir := v.ClaimDir(namespace, name)
	gone := filepath.Join(v.claimsDir, statedir.RemovingPrefix+statedir.Key(namespace, name)+"-"+statedir.Random())
	if err := os.Rename(dir, gone); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove claim %s: %w", key, err)
	}
	if err := unmountUnder(gone); err != nil {
		return fmt.Errorf("remove claim %s: %w", key, err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("remove claim %s: %w", key, err)
	}
	return nil
}

// Claims lists the claims' local volumes, sorted by namespace and name.
func (v *Manager) Claims() ([]reconciler.ActualClaim, error) {
	entries, err := os.ReadDir(v.claimsDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list claims: %w", err)
	}
	var out []reconciler.ActualClaim
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, _, ok := statedir.SplitKey(e.Name()); !ok {
			continue // temporaries and removals in progress
		}
		rec, err := readClaimRecord(filepath.Join(v.claimsDir, e.Name(), claimLabelFile))
		if err != nil || !statedir.Managed(rec.Labels) {
			continue
		}
		ns, name, ok := reconciler.SplitName(rec.Labels[reconciler.LabelClaim])
		if !ok || statedir.Key(ns, name) != e.Name() {
			continue
		}
		out = append(out, reconciler.ActualClaim{Namespace: ns, Name: name})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

func readClaimRecord(path string) (claimRecord, error) {
	var rec claimRecord
	b, err := os.ReadFile(path)
	if err != nil {
		return rec, err
	}
	err = json.Unmarshal(b, &rec)
	return rec, err
}
