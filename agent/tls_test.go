package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/tlsconf"
	"github.com/kelpie-dev/kelpie/internal/tlsconf/tlstest"
	"github.com/kelpie-dev/kelpie/source"
)

// TestAgentServesTLS: with --tls-cert the agent's endpoints answer HTTPS
// only; a client that trusts the CA gets through, one that does not, or
// that speaks plain HTTP, does not.
func TestAgentServesTLS(t *testing.T) {
	site := tlstest.New(t, "site")
	other := tlstest.New(t, "other")
	h := newHarness(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.cfg.Listen = ln.Addr().String()
	ln.Close()
	h.cfg.TLS = tlsconf.Files{CertFile: site.ServerCert, KeyFile: site.ServerKey}
	h.src.push("v1", map[string]string{"app.yaml": deployment("web", 1, "busybox")})
	h.start()

	client := func(ca string) *http.Client {
		tc, err := tlsconf.Files{CAFile: ca}.ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	}
	get := func(c *http.Client, url string) (int, error) {
		resp, err := c.Get(url)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	url := "https://" + h.cfg.Listen + "/healthz"
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, err := get(client(site.CA), url)
		if err == nil && code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s with the site CA: %d, %v", url, code, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var uerr *tls.CertificateVerificationError
	if _, err := get(client(other.CA), url); !errors.As(err, &uerr) {
		t.Errorf("GET with another CA: %v, want a certificate verification error", err)
	}
	if code, err := get(&http.Client{Timeout: 5 * time.Second}, "http://"+h.cfg.Listen+"/healthz"); err == nil && code == http.StatusOK {
		t.Errorf("plain HTTP to the TLS listener answered 200")
	}
}

// TestMirrorMutualTLS: a follower fetches the applied commit from a peer's
// mirror over HTTPS: it verifies the peer's certificate (--tls-ca), and
// the peer, with --tls-client-ca, verifies the follower's.
func TestMirrorMutualTLS(t *testing.T) {
	testenv.Binary(t, "git", "git")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	site := tlstest.New(t, "site")
	other := tlstest.New(t, "other")
	repo := testenv.NewGitRepo(t)
	repo.Write("a.yaml", "one\n")
	c1 := repo.Commit("one")

	cfg := DefaultConfig()
	cfg.Repos, cfg.StateDir, cfg.Host.Name = []string{repo.Dir}, t.TempDir(), "h1"
	cfg.ServeMirror, cfg.MirrorToken = true, "peer-token-0123456789"
	cfg.TLS = tlsconf.Files{CertFile: site.ServerCert, KeyFile: site.ServerKey, ClientCAFile: site.CA}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	upstream, err := source.NewRemote(source.RemoteConfig{URLs: cfg.Repos, CacheDir: cfg.CacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer upstream.Close()
	if _, err := upstream.Fetch(ctx, ""); err != nil {
		t.Fatal(err)
	}
	var applied atomic.Value
	applied.Store(c1)
	registry := func(tokens ...string) http.Handler { return http.NotFoundHandler() }
	m, err := newMirrorServer(&cfg, registry, func() string { return applied.Load().(string) })
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/mirror/", m)
	srv := httptest.NewUnstartedServer(newHTTPGuard("127.0.0.1:0", "api-token-0123456789abcdef", true).wrap(mux))
	if srv.TLS, err = cfg.TLS.ServerConfig(); err != nil {
		t.Fatal(err)
	}
	srv.StartTLS()
	defer srv.Close()
	url := "https://kelpie:" + cfg.MirrorToken + "@" + strings.TrimPrefix(srv.URL, "https://") + MirrorRepoPath

	follow := func(f tlsconf.Files) (string, error) {
		t.Helper()
		ca, cert, key, err := f.PEM()
		if err != nil {
			t.Fatal(err)
		}
		r, err := source.NewRemote(source.RemoteConfig{URLs: []string{url}, CacheDir: t.TempDir(), CABundle: ca, ClientCert: cert, ClientKey: key})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		got, err := r.Fetch(ctx, "")
		return got.Commit.Hash, err
	}
	if h, err := follow(tlsconf.Files{CAFile: site.CA, CertFile: site.ClientCert, KeyFile: site.ClientKey}); err != nil || h != c1 {
		t.Fatalf("follower with the site CA and its client certificate fetched %q, %v; want %s", h, err, c1)
	}
	if _, err := follow(tlsconf.Files{CAFile: other.CA, CertFile: site.ClientCert, KeyFile: site.ClientKey}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a follower that does not trust the peer's CA: %v, want a certificate error", err)
	}
	if _, err := follow(tlsconf.Files{CAFile: site.CA}); err == nil {
		t.Errorf("a follower without a client certificate fetched from a mirror that requires one")
	}
	if _, err := follow(tlsconf.Files{CAFile: site.CA, CertFile: other.ClientCert, KeyFile: other.ClientKey}); err == nil {
		t.Errorf("a follower with a certificate of another CA fetched from the mirror")
	}
}
