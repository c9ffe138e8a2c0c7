package image

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/content"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kelpie-dev/kelpie/internal/testimage"
	"github.com/kelpie-dev/kelpie/internal/tlsconf"
	"github.com/kelpie-dev/kelpie/internal/tlsconf/tlstest"
)

// TestRegistryHandlerServesPeer serves the images of one containerd
// namespace through RegistryHandler under a path prefix, on loopback, and
// pulls one into a second namespace through --registry-mirror with the
// token in the mirror URL: the peer gets the same digest, unpacked. A wrong
// token or none gets 401 and pulls nothing. An image that is only in the
// serving client's image dir is imported there and served too.
func TestRegistryHandlerServesPeer(t *testing.T) {
	testimage.NeedBusybox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	layout := t.TempDir()
	spec := testimage.Nginx()
	if err := testimage.WriteLayout(layout, spec, testimage.Busybox()); err != nil {
		t.Fatal(err)
	}
	want, _, err := testimage.Manifest(spec)
	if err != nil {
		t.Fatal(err)
	}
	seed := newTestClient(t, WithImageDirs(layout))
	if img, err := seed.EnsureImage(ctx, testimage.NginxRef, PullIfNotPresent); err != nil || img.Source != SourceImageDir {
		t.Fatalf("seed EnsureImage = %+v, %v", img, err)
	}

	const token = "peer-token-0123456789abcdef"
	mux := http.NewServeMux()
	mux.Handle("/mirror/v2/", http.StripPrefix("/mirror", seed.RegistryHandler(token)))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	for _, tc := range []struct {
		name   string
		header string
		code   int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong bearer", "Bearer nope", http.StatusUnauthorized},
		{"bearer", "Bearer " + token, http.StatusOK},
	} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodHead, srv.URL+"/mirror/v2/library/nginx/manifests/1.7.9?ns=docker.io", nil)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s: HEAD manifest = %d, want %d", tc.name, resp.StatusCode, tc.code)
		}
		if tc.code == http.StatusOK && resp.Header.Get("Docker-Content-Digest") != want.Digest.String() {
			t.Errorf("%s: digest %q, want %s", tc.name, resp.Header.Get("Docker-Content-Digest"), want.Digest)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, srv.URL+"/mirror/v2/library/nginx/manifests/2", nil)
	req.SetBasicAuth("kelpie", token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT manifest = %v, %v; want 405", resp, err)
	} else {
		resp.Body.Close()
	}

	// A wrong token: the pull is refused and nothing is stored.
	bad := newTestClient(t, WithRegistryMirrors(map[string]string{"docker.io": "http://kelpie:wrong@" + host + "/mirror"}))
	_, err = bad.EnsureImage(ctx, "nginx:1.7.9", PullIfNotPresent)
	switch {
	case err == nil || !strings.Contains(err.Error(), "401") && !strings.Contains(strings.ToLower(err.Error()), "unauthorized"):
		t.Errorf("pull with a wrong token: %v, want unauthorized", err)
	case strings.Contains(err.Error(), "wrong"):
		t.Errorf("the error shows the token: %v", err)
	default:
		t.Logf("pull with a wrong token: %v", err)
	}
	if names := imageNames(t, bad); len(names) != 0 {
		t.Errorf("the refused pull stored %v", names)
	}

	peer := newTestClient(t, WithRegistryMirrors(map[string]string{"docker.io": "http://kelpie:" + token + "@" + host + "/mirror"}))
	img, err := peer.EnsureImage(ctx, "nginx:1.7.9", PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	if img.Source != SourceRegistry || img.Digest != want.Digest.String() || img.Ref != testimage.NginxRef {
		t.Errorf("peer image = %+v, want %s from the registry at %s", img, testimage.NginxRef, want.Digest)
	}
	if strings.Contains(img.From, token) {
		t.Errorf("From %q shows the token", img.From)
	}
	assertUnpacked(t, peer, img.Ref)

	// busybox is only in the seed's image dir: served all the same.
	bb, err := peer.EnsureImage(ctx, "busybox:1.36", PullIfNotPresent)
	if err != nil || bb.Source != SourceRegistry {
		t.Fatalf("peer busybox = %+v, %v; want it from the seed's image dir through the registry", bb, err)
	}
	assertUnpacked(t, peer, bb.Ref)

	// A tag the seed does not hold is not found, not an error of the server.
	_, err = peer.EnsureImage(ctx, "nginx:9", PullIfNotPresent)
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing tag: %v, want not found", err)
	}
}

func TestManifestMediaType(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}`, "application/vnd.docker.distribution.manifest.v2+json"},
		{`{"schemaVersion":2,"manifests":[]}`, "application/vnd.oci.image.index.v1+json"},
		{`{"schemaVersion":2,"config":{},"layers":[]}`, "application/vnd.oci.image.manifest.v1+json"},
		{`{"architecture":"amd64"}`, ""},
		{"\x1f\x8b binary", ""},
	} {
		if got := manifestMediaType([]byte(tc.in)); got != tc.want {
			t.Errorf("manifestMediaType(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestImageName(t *testing.T) {
	for _, tc := range []struct{ ns, name, tag, want string }{
		{"docker.io", "library/busybox", "1.36", "docker.io/library/busybox:1.36"},
		{"", "library/busybox", "1.36", "docker.io/library/busybox:1.36"},
		{"ghcr.io", "org/app", "v1", "ghcr.io/org/app:v1"},
		{"", "registry.local:5000/app", "v1", "registry.local:5000/app:v1"},
		{"index.docker.io", "me/app", "2", "docker.io/me/app:2"},
	} {
		got, err := imageName(tc.ns, tc.name, tc.tag)
		if err != nil || got != tc.want {
			t.Errorf("imageName(%q, %q, %q) = %q, %v; want %q", tc.ns, tc.name, tc.tag, got, err, tc.want)
		}
	}
	if _, err := imageName("", "library/Bad Name", "1"); err == nil {
		t.Error("imageName accepted an invalid name")
	}
}

func TestMirrorUserinfo(t *testing.T) {
	for _, tc := range []struct{ mirror, wantErr string }{
		{"http://kelpie:tok-123@127.0.0.1:7070/mirror", ""},
		{"http://kelpie@127.0.0.1:7070/mirror", "USER:PASSWORD"},
		{"http://:s3cret-tok@127.0.0.1:7070/mirror", "USER:PASSWORD"},
		{"http://kelpie:s3cret-tok@10.1.2.3:7070/mirror", "plain HTTP is allowed only on loopback"},
	} {
		o := options{mirrors: map[string]string{"docker.io": tc.mirror}}
		err := o.validate()
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("mirror %s: error = %v, want %q", tc.mirror, err, tc.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("mirror %s: the error shows the password: %v", tc.mirror, err)
		}
	}
	o := options{mirrors: map[string]string{"docker.io": "http://kelpie:tok-123@127.0.0.1:7070/mirror"}}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	creds := mirrorCredentials(o.mirrorURLs["docker.io"])
	if u, p, _ := creds("127.0.0.1:7070"); u != "kelpie" || p != "tok-123" {
		t.Errorf("credentials of the mirror's host = %q, %q", u, p)
	}
	if u, p, _ := creds("auth.example:443"); u != "" || p != "" {
		t.Errorf("credentials offered to another host: %q, %q", u, p)
	}
}

// TestRegistryServesOnlyImageBlobs: the registry serves the blobs of the
// namespace's images, and no other content of the store (the audit: any
// blob of the content store was served).
func TestRegistryServesOnlyImageBlobs(t *testing.T) {
	testimage.NeedBusybox(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	layout := t.TempDir()
	if err := testimage.WriteLayout(layout, testimage.Nginx()); err != nil {
		t.Fatal(err)
	}
	seed := newTestClient(t, WithImageDirs(layout))
	img, err := seed.EnsureImage(ctx, testimage.NginxRef, PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	const token = "peer-token-0123456789abcdef"
	srv := httptest.NewServer(http.StripPrefix("/mirror", seed.RegistryHandler(token)))
	defer srv.Close()
	get := func(path string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/mirror/v2/"+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", ocispec.MediaTypeImageManifest)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}

	cs := seed.cd.ContentStore()
	nctx := seed.WithNamespace(ctx)
	manifest, err := content.ReadBlob(nctx, cs, ocispec.Descriptor{Digest: digest.Digest(img.Digest)})
	if err != nil {
		t.Fatalf("read the image's target %s: %v", img.Digest, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(manifest, &m); err != nil || len(m.Layers) == 0 {
		t.Fatalf("target of %s is not a manifest with layers: %v", testimage.NginxRef, err)
	}
	if code, _ := get("library/nginx/blobs/" + m.Layers[0].Digest.String()); code != http.StatusOK {
		t.Errorf("a layer of a served image: %d, want 200", code)
	}
	if code, _ := get("library/nginx/manifests/" + img.Digest); code != http.StatusOK {
		t.Errorf("a served image's manifest by digest: %d, want 200", code)
	}

	// Content no image names: in the store, but not served.
	secret := []byte("not part of any image " + t.Name())
	d := digest.FromBytes(secret)
	if err := content.WriteBlob(nctx, cs, "test-"+d.Encoded(), bytes.NewReader(secret), ocispec.Descriptor{Digest: d, Size: int64(len(secret))}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Delete(nctx, d) })
	if code, body := get("library/nginx/blobs/" + d.String()); code != http.StatusNotFound {
		t.Errorf("a blob no image reaches: %d %s, want 404", code, body)
	}
	if code, _ := get("library/nginx/manifests/" + d.String()); code != http.StatusNotFound {
		t.Errorf("a manifest by digest no image reaches: %d, want 404", code)
	}
}

// TestRegistryMirrorOverTLS: a peer's registry behind HTTPS with a site
// CA: a client given the CA (WithTLSConfig, the agent's --tls-ca) pulls
// through it; one without refuses the peer's certificate.
func TestRegistryMirrorOverTLS(t *testing.T) {
	testimage.NeedBusybox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	layout := t.TempDir()
	if err := testimage.WriteLayout(layout, testimage.Nginx()); err != nil {
		t.Fatal(err)
	}
	seed := newTestClient(t, WithImageDirs(layout))
	if _, err := seed.EnsureImage(ctx, testimage.NginxRef, PullIfNotPresent); err != nil {
		t.Fatal(err)
	}
	site := tlstest.New(t, "site")
	const token = "peer-token-0123456789abcdef"
	srv := httptest.NewUnstartedServer(http.StripPrefix("/mirror", seed.RegistryHandler(token)))
	var err error
	if srv.TLS, err = (tlsconf.Files{CertFile: site.ServerCert, KeyFile: site.ServerKey}).ServerConfig(); err != nil {
		t.Fatal(err)
	}
	srv.StartTLS()
	defer srv.Close()
	mirror := map[string]string{"docker.io": "https://kelpie:" + token + "@" + strings.TrimPrefix(srv.URL, "https://") + "/mirror"}

	untrusting := newTestClient(t, WithRegistryMirrors(mirror))
	if _, err := untrusting.EnsureImage(ctx, "nginx:1.7.9", PullIfNotPresent); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("pull from a mirror whose CA is not trusted: %v, want a certificate error", err)
	}
	tc, err := (tlsconf.Files{CAFile: site.CA}).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	peer := newTestClient(t, WithRegistryMirrors(mirror), WithTLSConfig(tc))
	img, err := peer.EnsureImage(ctx, "nginx:1.7.9", PullIfNotPresent)
	if err != nil || img.Source != SourceRegistry {
		t.Fatalf("pull through the TLS mirror with its CA: %+v, %v", img, err)
	}
	assertUnpacked(t, peer, img.Ref)
}
