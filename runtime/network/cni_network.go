package network

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
	"github.com/kelpie-dev/kelpie/runtime/network/link"
	"github.com/kelpie-dev/kelpie/runtime/statedir"
)

// ensureDefaults writes the default and loopback conflists unless they hold
// what they should already.
func (h *Host) ensureDefaults() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range []*cniConfList{
		defaultConfList(h.cfg.BridgeName, h.cfg.PodSubnet, h.leaseDir, !h.cfg.NoMasquerade),
		loopbackConfList(),
	} {
		if err := h.writeConfList(c); err != nil {
			return err
		}
	}
	return nil
}

// writeConfList writes c atomically unless the file holds it already.
func (h *Host) writeConfList(c *cniConfList) error {
	path := cniConfPath(h.confDir, c.Name)
	want := c.bytes()
	if have, err := os.ReadFile(path); err == nil && bytes.Equal(have, want) {
		return nil
	}
	if err := statedir.WriteAtomic(path, want, 0o644); err != nil {
		return fmt.Errorf("write CNI network %s: %w", c.Name, err)
	}
	return nil
}

// readConfList reads the conflist of the CNI network cniName; ok is false
// when there is none.
func (h *Host) readConfList(cniName string) (c *cniConfList, raw []byte, ok bool, err error) {
	path := cniConfPath(h.confDir, cniName)
	raw, err = os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("read CNI network %s: %w", cniName, err)
	}
	c = &cniConfList{}
	if err := json.Unmarshal(raw, c); err != nil {
		return nil, nil, false, fmt.Errorf("read CNI network %s: %s: %w", cniName, path, err)
	}
	return c, raw, true, nil
}

// EnsureNetwork writes or updates the conflist of the kelpie Network n. The
// bridge, when n has one, is created by the bridge plugin at the first pod's
// ADD. Calling it again with the same n changes nothing.
func (h *Host) EnsureNetwork(ctx context.Context, n reconciler.Network) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ensure network %s: %w", n.Name, err)
	}
	c, err := networkConfList(n, h.leaseDir)
	if err != nil {
		return fmt.Errorf("ensure network %s: %w", n.Name, err)
	}
	if err := h.writeConfList(c); err != nil {
		return fmt.Errorf("ensure network %s: %w", n.Name, err)
	}
	return nil
}

// RemoveNetwork removes the kelpie Network name: its bridge (when kelpie's
// configuration names one, or the bridge its name derives to exists), its
// lease directory and its conflist, in that order, so that an interrupted
// removal is found and finished by the next one. A network that does not
// exist is removed already.
func (h *Host) RemoveNetwork(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("remove network %s: %w", name, err)
	}
	if err := validateNetworkName(name); err != nil {
		return fmt.Errorf("remove network %s: %w", name, err)
	}
	cniName := cniNetworkName(name)
	c, _, ok, err := h.readConfList(cniName)
	if err != nil {
		return fmt.Errorf("remove network %s: %w", name, err)
	}
	if ok && !statedir.Managed(c.Labels) {
		return fmt.Errorf("remove network %s: %s is not labelled %s: %w", name, cniConfPath(h.confDir, cniName), reconciler.LabelManaged, errdefs.ErrFailedPrecondition)
	}
	bridge := cniBridgeName(name)
	if ok && len(c.Plugins) > 0 {
		bridge = c.Plugins[0].Bridge // "" for macvlan and ipvlan: nothing of kelpie's on the host
	}
	if bridge != "" && strings.HasPrefix(bridge, cniBridgePrefix) && link.IsBridge(bridge) {
		if err := link.Delete(bridge); err != nil {
			return fmt.Errorf("remove network %s: %w", name, err)
		}
	}
	if err := os.RemoveAll(filepath.Join(h.leaseDir, cniName)); err != nil {
		return fmt.Errorf("remove network %s: leases: %w", name, err)
	}
	if err := os.Remove(cniConfPath(h.confDir, cniName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove network %s: %w", name, err)
	}
	return nil
}

// Networks lists the kelpie Networks whose conflists EnsureNetwork wrote,
// with the hash each was written from, sorted by name.
func (h *Host) Networks() ([]reconciler.ActualNetwork, error) {
	entries, err := os.ReadDir(h.confDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list networks: %w", err)
	}
	var out []reconciler.ActualNetwork
	for _, e := range entries {
		cniName, isConf := strings.CutSuffix(e.Name(), cniConfExt)
		if !isConf || !strings.HasPrefix(cniName, cniNetworkPrefix) {
			continue
		}
		c, _, ok, err := h.readConfList(cniName)
		if err != nil {
			return nil, fmt.Errorf("list networks: %w", err)
		}
		if !ok || !statedir.Managed(c.Labels) || c.Labels[reconciler.LabelNetwork] == "" {
			continue
		}
		out = append(out, reconciler.ActualNetwork{
			Name: c.Labels[reconciler.LabelNetwork],
			Hash: c.Labels[reconciler.LabelSpecHash],
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
