package image

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/distribution/reference"

	"github.com/kelpie-dev/kelpie/runtime/errdefs"
)

// newRegistryHTTPClient makes the client that talks to registries and
// mirrors, with tlsc (nil for Go's defaults). It bounds connecting and
// waiting for headers, never a whole download, which may be large.
func newRegistryHTTPClient(tlsc *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:       tlsc,
		Proxy:                 http.ProxyFromEnvironment, // never applied to loopback
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: 5 * time.Second,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}}
}

// ParseRegistryMirrors parses --registry-mirror values, each "HOST=URL" as in
// "docker.io=http://127.0.0.1:5000", into the map WithRegistryMirrors takes.
// A host given twice is an error.
func ParseRegistryMirrors(values []string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range values {
		host, u, ok := strings.Cut(v, "=")
		host, u = strings.TrimSpace(host), strings.TrimSpace(u)
		if !ok || host == "" || u == "" {
			return nil, fmt.Errorf("registry mirror %q: want HOST=URL, as in docker.io=http://127.0.0.1:5000: %w", v, errdefs.ErrInvalidArgument)
		}
		host = canonicalRegistryHost(host)
		if prev, dup := out[host]; dup {
			return nil, fmt.Errorf("registry mirror %s=%s: %s already mirrored by %s: %w", host, redactMirror(u), host, redactMirror(prev), errdefs.ErrInvalidArgument)
		}
		out[host] = u
	}
	return out, nil
}

// canonicalRegistryHost maps Docker Hub's other names to the "docker.io" that
// normalized references carry.
func canonicalRegistryHost(host string) string {
	switch strings.ToLower(host) {
	case "docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return "docker.io"
	}
	return host
}

// parseMirror checks one mirror: an http(s) URL, plain HTTP only on loopback
// or on a host listed as insecure.
func parseMirror(host, raw string, insecure []string) (*url.URL, error) {
	bad := func(why string) error {
		return fmt.Errorf("registry mirror %s=%s: %s: %w", host, redactMirror(raw), why, errdefs.ErrInvalidArgument)
	}
	if host == "" || strings.ContainsAny(host, "/ ") {
		return nil, bad("the registry must be a host name such as docker.io or registry.local:5000")
	}
	u, err := url.Parse(raw)
	if err != nil || !strings.Contains(raw, "://") || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, bad("the mirror must be an http:// or https:// URL with a host")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, bad("the mirror URL may not carry a query or fragment")
	}
	if pass, _ := u.User.Password(); u.User != nil && (u.User.Username() == "" || pass == "") {
		return nil, bad("the mirror URL's userinfo must be USER:PASSWORD (a kelpie peer takes any user and its mirror token)")
	}
	if u.Scheme == "http" && !isLoopbackHost(u.Host) && !contains(insecure, u.Host) {
		return nil, bad(fmt.Sprintf("plain HTTP is allowed only on loopback; to accept it on %s, name it as an insecure registry", u.Host))
	}
	return u, nil
}

// redactMirror returns a mirror URL without its password, for messages.
func redactMirror(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		return u.Redacted()
	}
	return raw
}

// mirrorCredentials answers the Basic challenge of mirror u's host, and of
// no other, with the user and password of u's userinfo.
func mirrorCredentials(u *url.URL) func(host string) (string, string, error) {
	user := u.User.Username()
	pass, _ := u.User.Password()
	return func(host string) (string, string, error) {
		if host != u.Host {
			return "", "", nil
		}
		return user, pass, nil
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// registryHosts tells containerd's resolver where to reach a registry: its
// mirror alone when one is configured, else the registry itself (HTTPS, or
// plain HTTP on loopback and insecure hosts).
func (c *Client) registryHosts(host string) ([]docker.RegistryHost, error) {
	registryHTTPClient := c.httpClient
	auth := docker.NewDockerAuthorizer(docker.WithAuthClient(registryHTTPClient)) // anonymous bearer tokens
	if u, ok := c.opts.mirrorURLs[canonicalRegistryHost(host)]; ok {
		if u.User != nil { // a peer's mirror token: the answer to its Basic challenge
			auth = docker.NewDockerAuthorizer(docker.WithAuthClient(registryHTTPClient), docker.WithAuthCreds(mirrorCredentials(u)))
		}
		p := strings.TrimSuffix(u.Path, "/")
		if !strings.HasSuffix(p, "/v2") {
			p += "/v2"
		}
		return []docker.RegistryHost{{
			Client:       registryHTTPClient,
			Authorizer:   auth,
			Host:         u.Host,
			Scheme:       u.Scheme,
			Path:         p,
			Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
		}}, nil
	}
	return docker.ConfigureDefaultRegistries(
		docker.WithClient(registryHTTPClient),
		docker.WithAuthorizer(auth),
		docker.WithPlainHTTP(func(h string) (bool, error) {
			return isLoopbackHost(h) || contains(c.opts.insecure, h), nil
		}),
	)(host)
}

// registryDescription names where a reference is pulled from, for messages.
func (c *Client) registryDescription(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	host := reference.Domain(named)
	hosts, err := c.registryHosts(host)
	if err != nil || len(hosts) == 0 {
		return host
	}
	h := hosts[0]
	u := h.Scheme + "://" + h.Host + strings.TrimSuffix(h.Path, "/v2")
	if _, mirrored := c.opts.mirrorURLs[canonicalRegistryHost(host)]; mirrored {
		return fmt.Sprintf("%s (mirror of %s)", u, host)
	}
	return u
}

// pull pulls ref from its registry or mirror and unpacks it, reporting
// progress while it runs. It returns where it pulled from, also on error.
func (c *Client) pull(ctx context.Context, ref string) (Image, string, error) {
	from := c.registryDescription(ref)
	report := c.progressReporter(ref, from)
	tracker := newPullTracker()
	cs := c.cd.ContentStore()

	report(Progress{Stage: StageResolving})
	pollCtx, stopPoll := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if c.opts.progress != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(c.opts.progressInterval)
			defer tick.Stop()
			last := Progress{Stage: StageResolving}
			for {
				select {
				case <-pollCtx.Done():
					return
				case <-tick.C:
				}
				p := tracker.snapshot(pollCtx, cs)
				if !sameProgress(p, last) {
					report(p)
					last = p
				}
			}
		}()
	}

	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: c.registryHosts})
	ci, err := c.cd.Pull(ctx, ref,
		containerd.WithResolver(resolver),
		containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(c.opts.snapshotter),
		containerd.WithImageHandler(tracker.handler()),
	)
	stopPoll()
	wg.Wait() // no report may follow the final one
	if err != nil {
		return Image{}, from, ConvertErr(err)
	}
	final := tracker.snapshot(ctx, cs)
	final.Stage = StageDone
	report(final)
	return c.imageOf(ci, SourceRegistry, from), from, nil
}
