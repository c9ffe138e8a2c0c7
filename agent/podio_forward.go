package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/internal/execwire"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/scheduler"
)

// forwardPod sends a log or exec request for a pod this host does not run
// to the member that runs it, presenting the peer token: a reverse proxy
// for logs, two spliced connections for exec. A request that was already
// forwarded is refused instead, so a stale view never bounces a request
// around the cluster.
func (a *Agent) forwardPod(w http.ResponseWriter, r *http.Request, ns, name string, upgrade bool) {
	key := reconciler.JoinName(ns, name)
	if a.cluster == nil {
		http.Error(w, fmt.Sprintf("no pod %s on this host", key), http.StatusNotFound)
		return
	}
	if by := r.Header.Get(forwardedHeader); by != "" {
		http.Error(w, fmt.Sprintf("pod %s is not on this host (%s), where %s forwarded the request: its view of the cluster is stale; try again", key, a.cluster.Name(), by), http.StatusNotFound)
		return
	}
	peer, err := a.podPeer(ns, name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	if a.peerToken == "" {
		http.Error(w, fmt.Sprintf("pod %s runs on %s: this agent cannot forward there without a peer token (a cluster --gossip-key, or --mirror-token)", key, peer.Name), http.StatusBadGateway)
		return
	}
	target, err := a.peerURL(peer)
	if err != nil {
		http.Error(w, fmt.Sprintf("pod %s runs on %s: %v", key, peer.Name, err), http.StatusBadGateway)
		return
	}
	tr, err := a.peerTransport()
	if err != nil {
		http.Error(w, fmt.Sprintf("pod %s runs on %s: %v", key, peer.Name, err), http.StatusBadGateway)
		return
	}
	if !upgrade {
		if r.URL.Query().Get("follow") == "true" {
			_ = http.NewResponseController(w).SetWriteDeadline(time.Time{}) // a followed log lasts as long as the container
		}
		rp := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Header.Set("Authorization", "Bearer "+a.peerToken)
				pr.Out.Header.Set(forwardedHeader, a.cluster.Name())
			},
			Transport:     tr,
			FlushInterval: -1, // a followed log streams
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
				http.Error(w, fmt.Sprintf("forward to %s, which runs pod %s: %v", peer.Name, key, err), http.StatusBadGateway)
			},
		}
		rp.ServeHTTP(w, r)
		return
	}
	a.forwardExec(w, r, target, tr, peer.Name, key)
}

// forwardExec opens the exec session on the peer and splices the two
// upgraded connections.
func (a *Agent) forwardExec(w http.ResponseWriter, r *http.Request, target *url.URL, tr *http.Transport, peer, key string) {
	u := *target
	u.Path = r.URL.Path
	u.RawQuery = r.URL.RawQuery
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, u.String(), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", execwire.Protocol)
	req.Header.Set("Authorization", "Bearer "+a.peerToken)
	req.Header.Set(forwardedHeader, a.cluster.Name())
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		http.Error(w, fmt.Sprintf("forward to %s, which runs pod %s: %v", peer, key, err), http.StatusBadGateway)
		return
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, io.LimitReader(resp.Body, 1<<20))
		return
	}
	up, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		http.Error(w, "forward exec: the peer's upgraded connection is not writable", http.StatusBadGateway)
		return
	}
	defer up.Close()
	conn, brw, ok := switchToExec(w)
	if !ok {
		return
	}
	defer conn.Close()
	var once sync.Once
	done := make(chan struct{})
	end := func() { once.Do(func() { close(done) }) }
	go func() { _, _ = io.Copy(up, brw.Reader); end() }()
	go func() { _, _ = io.Copy(conn, up); end() }()
	<-done // either side ended: closing both ends the other copy
}

// podPeer finds the member that runs a pod: by the pods each member
// reports in its status, else by the placement in force.
func (a *Agent) podPeer(ns, name string) (gossip.Member, error) {
	key := reconciler.JoinName(ns, name)
	members := a.cluster.Members()
	alive := func(m gossip.Member) bool { return !m.Self && m.State == gossip.StateAlive }
	for _, m := range members {
		if !alive(m) || !m.HasStatus {
			continue
		}
		var d nodeDetail
		if json.Unmarshal(m.Status.Data, &d) != nil {
			continue
		}
		if _, ok := d.Revisions[key]; ok {
			return m, nil
		}
		if slices.ContainsFunc(d.JobPods, func(p reconciler.ActualPod) bool { return p.Namespace == ns && p.Name == name }) {
			return m, nil
		}
	}
	if p, ok := a.cluster.Placement(); ok {
		if pub, err := scheduler.Decode(p.Data); err == nil {
			if node, ok := pub.Placement.Assignments[key]; ok {
				for _, m := range members {
					if m.Name == node && alive(m) {
						return m, nil
					}
				}
				return gossip.Member{}, fmt.Errorf("pod %s is placed on %s, which is not alive in this agent's view", key, node)
			}
		}
	}
	return gossip.Member{}, errPodNowhere(ns, name)
}

// peerURL is the base URL of a member's HTTP endpoints: the API address
// it advertises in its gossip metadata (gossip.Member.APIAddr); for an
// older member that advertises none, its gossip address's host on this
// agent's --listen port. HTTPS when this agent serves HTTPS.
func (a *Agent) peerURL(m gossip.Member) (*url.URL, error) {
	_, port, err := net.SplitHostPort(a.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", a.cfg.Listen, err)
	}
	addr, err := m.APIAddr(port)
	if err != nil {
		return nil, err
	}
	scheme := "http"
	if a.cfg.TLS.Server() {
		scheme = "https"
	}
	return &url.URL{Scheme: scheme, Host: addr}, nil
}

// peerTransport is the HTTP transport to peers: this agent's TLS client
// configuration (its CA, and its certificate for peers that ask for one).
func (a *Agent) peerTransport() (*http.Transport, error) {
	tc, err := a.cfg.TLS.ClientConfig()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	tr.Proxy = nil // peers are never reached through a proxy
	return tr, nil
}

// peerTokens returns the tokens a peer may forward with, and the one this
// agent presents: --mirror-token when set, else the mirror token of each
// key of the cluster's keyring (the first key's is presented). None
// outside a cluster with a gossip key.
func peerTokens(cfg *Config) (accept []string, present string) {
	if cfg.MirrorToken != "" {
		return []string{cfg.MirrorToken}, cfg.MirrorToken
	}
	if cfg.Cluster == nil || (cfg.Cluster.Key == "" && cfg.Cluster.KeyFile == "") {
		return nil, ""
	}
	toks, err := mirrorTokens(cfg)
	if err != nil || len(toks) == 0 {
		return nil, ""
	}
	return toks, toks[0]
}
