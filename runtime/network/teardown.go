package network

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"time"

	"github.com/containernetworking/cni/libcni"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/statedir"
)

// Teardown removes a pod's network sandbox: CNI DEL on every network it
// may have joined (those given, those in its sandbox record and those in
// libcni's cache), even when its namespace is gone, since DEL frees the IP
// and host rules all the same; then the namespace and the record. It is
// idempotent and crash-safe: the namespace goes only after every DEL
// succeeded, so an interrupted teardown is found by Sandboxes() and done
// again. Removing a sandbox that does not exist succeeds.
func (h *Host) Teardown(ctx context.Context, namespace, name string, networks []string) error {
	key := reconciler.JoinName(namespace, name)
	if err := statedir.CheckPod(namespace, name); err != nil {
		return fmt.Errorf("tear down sandbox of pod %s: %w", key, err)
	}
	rec, err := h.readRecord(namespace, name)
	if err != nil {
		return fmt.Errorf("tear down sandbox of pod %s: %w", key, err)
	}
	if err := h.delAll(ctx, namespace, name, networks, rec); err != nil {
		return err
	}
	if err := netnsRemove(h.netnsPath(namespace, name)); err != nil {
		return fmt.Errorf("tear down sandbox of pod %s: %w", key, err)
	}
	if err := os.Remove(h.recordPath(namespace, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("tear down sandbox of pod %s: %w", key, err)
	}
	return nil
}

// delAll deletes every attachment the pod may have: first the extra
// networks, then the default network, then loopback. It passes the
// namespace only when it is mounted (plugins refuse a path that is not a
// namespace) and the port mappings the attachment was added with, which
// portmap needs to find its rules. Without a namespace the bridge plugin
// leaves its masquerade rules behind: delAll removes them itself. It tries
// every attachment and reports all failures.
func (h *Host) delAll(ctx context.Context, namespace, name string, networks []string, rec sandboxRecord) error {
	key := reconciler.JoinName(namespace, name)
	id := ContainerID(namespace, name)
	netns := h.netnsPath(namespace, name)
	if ok, err := netnsMounted(netns); err != nil {
		return fmt.Errorf("tear down sandbox of pod %s: %w", key, err)
	} else if !ok {
		netns = ""
	}

	type del struct {
		cniName string
		ifName  string
		config  []byte
		args    [][2]string
		caps    map[string]interface{}
		order   int // extra networks first, then the default, then loopback
	}
	dels := map[string]*del{}
	cached, err := h.cni.GetCachedAttachments(id)
	if err != nil {
		return fmt.Errorf("tear down sandbox of pod %s: CNI cache: %w", key, err)
	}
	for _, a := range cached {
		dels[a.Network+"/"+a.IfName] = &del{cniName: a.Network, ifName: a.IfName, config: a.Config, args: a.CniArgs, caps: a.CapabilityArgs}
	}
	// The record, written by setup, has the networks in their interface
	// order; networks the caller names besides are appended.
	all := append(append([]string(nil), rec.Networks...), networks...)
	for _, a := range podAttachments(dedupe(all)) {
		if _, ok := dels[a.cniName+"/"+a.ifName]; ok {
			continue
		}
		_, raw, ok, err := h.readConfList(a.cniName)
		if err != nil {
			return fmt.Errorf("tear down sandbox of pod %s: %w", key, err)
		}
		if !ok {
			continue // never added (its config would be cached), or removed with its network
		}
		d := &del{cniName: a.cniName, ifName: a.ifName, config: raw}
		if a.cniName == cniDefaultNetwork && len(rec.PortMappings) > 0 {
			d.caps = map[string]interface{}{"portMappings": rec.PortMappings}
		}
		dels[a.cniName+"/"+a.ifName] = d
	}
	ordered := make([]*del, 0, len(dels))
	for _, d := range dels {
		switch d.cniName {
		case cniDefaultNetwork:
			d.order = 1
		case cniLoopbackNetwork:
			d.order = 2
		}
		ordered = append(ordered, d)
	}
	sort.Slice(ordered, func(i, j int) bool {
		if ordered[i].order != ordered[j].order {
			return ordered[i].order < ordered[j].order
		}
		return ordered[i].ifName > ordered[j].ifName
	})

	var errs []error
	for _, d := range ordered {
		list, err := libcni.ConfListFromBytes(d.config)
		if err != nil {
			errs = append(errs, fmt.Errorf("cni del %s from pod %s: parse config: %w", d.cniName, key, err))
			continue
		}
		args := d.args
		if len(args) == 0 {
			args = [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", namespace}, {"K8S_POD_NAME", name}, {"K8S_POD_INFRA_CONTAINER_ID", id}}
		}
		var masq []masqRule
		if netns == "" {
			masq = h.masqLeftovers(d.config, d.cniName, id, d.ifName)
		}
		rt := &libcni.RuntimeConf{ContainerID: id, NetNS: netns, IfName: d.ifName, Args: args, CapabilityArgs: d.caps}
		if err := h.delNetworkList(ctx, list, rt); err != nil {
			errs = append(errs, fmt.Errorf("cni del %s from pod %s: %w", d.cniName, key, err))
			continue
		}
		if err := removeMasq(ctx, masq); err != nil {
			errs = append(errs, fmt.Errorf("cni del %s from pod %s: masquerade rules: %w", d.cniName, key, err))
		}
	}
	return errors.Join(errs...)
}

// cniDelBackoff are the waits between the attempts of a CNI DEL that fails
// (each drawn from [d/2, 3d/2) so that DELs failing together spread out):
// the bridge plugin's DEL fails now and then when several run at once
// (iptables-nft: "CHAIN_DEL failed (Device or resource busy)"), and DEL is
// idempotent by contract. About 3 s in all; then the error stands and the
// sandbox stays whole for the next removal.
var cniDelBackoff = []time.Duration{
	50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
	400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond,
}

// delNetworkList runs CNI DEL of list, again after each wait of
// cniDelBackoff while it fails, until ctx is done.
func (h *Host) delNetworkList(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	for i := 0; ; i++ {
		err := h.cni.DelNetworkList(ctx, list, rt)
		if err == nil || i == len(cniDelBackoff) || ctx.Err() != nil {
			if err != nil && i > 0 {
				err = fmt.Errorf("%w (%d attempts)", err, i+1)
			}
			return err
		}
		d := cniDelBackoff[i]
		timer := time.NewTimer(d/2 + rand.N(d))
		select {
		case <-ctx.Done():
			timer.Stop()
			return err
		case <-timer.C:
		}
	}
}

// dedupe returns ss without repeats, in first-seen order.
func dedupe(ss []string) []string {
	seen := map[string]bool{}
	out := ss[:0:0]
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
