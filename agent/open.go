package agent

import (
	"context"
	"fmt"

	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/runtime/host"
	"github.com/kelpie-dev/kelpie/runtime/network/routes"
	"github.com/kelpie-dev/kelpie/source"
)

// Open builds an agent over the real parts cfg names: a source.Remote whose
// cache lives under StateDir (Config.CacheDir), the containerd runtime, and
// the inputs Run then starts with its loop: a ref watch of the repositories
// on this host (a push into a local bare repository syncs within a second)
// and containerd's task events (drift is repaired in seconds). It changes
// nothing on the host. Close the agent when done; containers keep running.
func Open(ctx context.Context, cfg Config) (*Agent, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ca, cert, key, err := cfg.TLS.PEM()
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	remote, err := source.NewRemote(source.RemoteConfig{
		CABundle:       ca,
		ClientCert:     cert,
		ClientKey:      key,
		URLs:           cfg.Repos,
		Ref:            cfg.Ref,
		CacheDir:       cfg.CacheDir(),
		SSHKeyFile:     cfg.SSHKeyFile,
		KnownHostsFile: cfg.KnownHostsFile,
		VerifyKeysFile: cfg.VerifyKeysFile,
		AllowRewrite:   cfg.AllowRewrite,
		StallTimeout:   cfg.FetchStallTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	rtcfg := cfg.Runtime
	if rtcfg.Log == nil {
		rtcfg.Log = cfg.Log
	}
	// The data path masquerades pod egress, so the bridge must not (it
	// would NAT traffic to other hosts' pods too); without it the bridge
	// does, as for `kelpie apply`.
	dp, dperr := openDataPath(cfg.Log)
	if dperr != nil {
		cfg.Log.Warn("no Service data path: Services get no virtual IPs or node ports here, and the pod bridge masquerades pod traffic", "err", dperr)
	}
	rtcfg.ExternalMasquerade = dperr == nil
	rtcfg.ClusterDomain = cfg.Network.ClusterDomain
	closeDP := func() {
		if dperr == nil {
			dp.Close()
		}
	}
	if rtcfg.RegistryTLS == nil {
		if rtcfg.RegistryTLS, err = cfg.TLS.ClientConfig(); err != nil {
			remote.Close()
			return nil, fmt.Errorf("agent: %w", err)
		}
	}
	rt, err := host.New(ctx, rtcfg)
	if err != nil {
		remote.Close()
		closeDP()
		return nil, fmt.Errorf("agent: %w", err)
	}
	events := make(chan struct{}, 1)
	deps := Deps{Source: remote, Runtime: rt, Events: events, Prober: rt, DNS: startDNSServer(cfg.Log)}
	if dperr == nil {
		deps.DataPath = dp
	}
	var node *gossip.Node
	var rs *routes.Syncer
	if cfg.Cluster != nil {
		if rs, err = routes.New(routes.Config{}); err != nil {
			rt.Close()
			remote.Close()
			closeDP()
			return nil, fmt.Errorf("agent: %w", err)
		}
		deps.Routes = rs
		gc := *cfg.Cluster
		gc.NodeName, gc.StateDir = cfg.Host.Name, cfg.StateDir
		if gc.Labels == nil {
			gc.Labels = cfg.Host.Labels
		}
		if gc.Logger == nil {
			gc.Logger = cfg.Log
		}
		if gc.APIAddr == "" {
			gc.APIAddr, _ = gossip.APIAddrFor(cfg.Listen) // validated: a bad one leaves peers to assume
		}
		if node, err = gossip.New(gc); err != nil {
			rs.Close()
			rt.Close()
			remote.Close()
			closeDP()
			return nil, fmt.Errorf("agent: %w", err)
		}
		deps.Cluster = node
	}
	a, err := New(cfg, deps)
	if err != nil {
		if node != nil {
			node.Shutdown()
			rs.Close()
		}
		rt.Close()
		remote.Close()
		closeDP()
		return nil, err
	}
	a.closers = []func() error{rt.Close, remote.Close, func() error { closeDP(); return nil }}
	if node != nil {
		a.closers = append([]func() error{node.Shutdown, func() error { rs.Close(); return nil }}, a.closers...)
	}
	if cfg.ServeMirror {
		m, err := newMirrorServer(&a.cfg, rt.Client().RegistryHandler, a.publishedApplied)
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("agent: %w", err)
		}
		m.logMirror(a.cfg.Listen)
		a.mirror = m
	}
	if paths := remote.LocalPaths(); len(paths) > 0 {
		a.background = append(a.background, func(ctx context.Context) {
			if err := source.WatchRefs(ctx, paths, a.triggers); err != nil {
				a.log.Warn("watching the local repository's refs failed; pushes are seen at the next poll", "paths", paths, "err", err)
			}
		})
	}
	a.background = append(a.background, func(ctx context.Context) {
		WatchEvents(ctx, rt, events, a.log)
	}, func(ctx context.Context) {
		rotateLogs(ctx, rt, a.cfg.ContainerLogs, a.log)
	}, func(ctx context.Context) {
		recordLogTimes(ctx, rt, a.clock, a.log)
	})
	return a, nil
}
