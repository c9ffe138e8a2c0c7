package image

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/testimage"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
)

func TestParseRegistryMirrors(t *testing.T) {
	for _, tc := range []struct {
		in      []string
		want    map[string]string
		wantErr string
	}{
		{in: nil, want: map[string]string{}},
		{in: []string{"docker.io=http://127.0.0.1:5000"}, want: map[string]string{"docker.io": "http://127.0.0.1:5000"}},
		{in: []string{"index.docker.io=https://mirror.example", "ghcr.io = https://ghcr.mirror"},
			want: map[string]string{"docker.io": "https://mirror.example", "ghcr.io": "https://ghcr.mirror"}},
		{in: []string{"docker.io"}, wantErr: "want HOST=URL"},
		{in: []string{"=http://x"}, wantErr: "want HOST=URL"},
		{in: []string{"docker.io=http://a", "registry-1.docker.io=http://b"}, wantErr: "already mirrored"},
	} {
		got, err := ParseRegistryMirrors(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("ParseRegistryMirrors(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseRegistryMirrors(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestMirrorValidation(t *testing.T) {
	for _, tc := range []struct {
		mirror   string
		insecure []string
		wantErr  string
	}{
		{mirror: "http://127.0.0.1:5000"},
		{mirror: "http://localhost:5000/"},
		{mirror: "https://mirror.example/some/path"},
		{mirror: "http://10.1.2.3:5000", wantErr: "plain HTTP is allowed only on loopback"},
		{mirror: "http://10.1.2.3:5000", insecure: []string{"10.1.2.3:5000"}},
		{mirror: "ftp://127.0.0.1", wantErr: "http:// or https://"},
		{mirror: "127.0.0.1:5000", wantErr: "http:// or https://"},
		{mirror: "http://127.0.0.1:5000/?x=1", wantErr: "query"},
	} {
		o := options{mirrors: map[string]string{"docker.io": tc.mirror}, insecure: tc.insecure}
		err := o.validate()
		if tc.wantErr == "" && err != nil {
			t.Errorf("mirror %s: %v", tc.mirror, err)
		}
		if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("mirror %s: error = %v, want %q", tc.mirror, err, tc.wantErr)
		}
	}
}

func TestRegistryHosts(t *testing.T) {
	o := options{mirrors: map[string]string{
		"docker.io":  "http://127.0.0.1:5000",
		"quay.io":    "https://mirror.example/quay/",
		"ghcr.io":    "http://127.0.0.1:6000/v2",
		"gcr.io:443": "https://gcr.mirror",
	}}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	c := &Client{opts: o}
	for _, tc := range []struct {
		host                    string
		scheme, hostport, path  string
		wantDescriptionContains string
	}{
		{"docker.io", "http", "127.0.0.1:5000", "/v2", "http://127.0.0.1:5000 (mirror of docker.io)"},
		{"quay.io", "https", "mirror.example", "/quay/v2", "https://mirror.example/quay (mirror of quay.io)"},
		{"ghcr.io", "http", "127.0.0.1:6000", "/v2", "(mirror of ghcr.io)"},
		{"registry.example", "https", "registry.example", "/v2", "https://registry.example"},
		{"127.0.0.1:7000", "http", "127.0.0.1:7000", "/v2", "http://127.0.0.1:7000"},
	} {
		hosts, err := c.registryHosts(tc.host)
		if err != nil || len(hosts) != 1 {
			t.Fatalf("registryHosts(%s) = %v, %v", tc.host, hosts, err)
		}
		h := hosts[0]
		if h.Scheme != tc.scheme || h.Host != tc.hostport || h.Path != tc.path {
			t.Errorf("registryHosts(%s) = %s://%s%s, want %s://%s%s", tc.host, h.Scheme, h.Host, h.Path, tc.scheme, tc.hostport, tc.path)
		}
		if d := c.registryDescription(tc.host + "/x/y:1"); !strings.Contains(d, tc.wantDescriptionContains) {
			t.Errorf("registryDescription(%s/x/y:1) = %q, want it to contain %q", tc.host, d, tc.wantDescriptionContains)
		}
	}
	// Docker Hub without a mirror goes to its real registry host.
	c = &Client{}
	hosts, _ := c.registryHosts("docker.io")
	if len(hosts) != 1 || hosts[0].Host != "registry-1.docker.io" || hosts[0].Scheme != "https" {
		t.Errorf("unmirrored docker.io → %+v", hosts)
	}
}

// progressLog collects progress reports.
type progressLog struct {
	mu sync.Mutex
	ps []Progress
}

func (l *progressLog) add(p Progress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ps = append(l.ps, p)
}

func (l *progressLog) all() []Progress {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Progress(nil), l.ps...)
}

func TestEnsureImagePullsFromMirror(t *testing.T) {
	testimage.NeedBusybox(t)
	reg := testenv.Registry(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	spec := testimage.Nginx()
	if err := testimage.Push(ctx, reg, spec); err != nil {
		t.Fatal(err)
	}
	want, _, err := testimage.Manifest(spec)
	if err != nil {
		t.Fatal(err)
	}

	var log progressLog
	c := newTestClient(t,
		WithRegistryMirrors(map[string]string{"docker.io": reg}),
		WithProgress(log.add, 10*time.Millisecond))
	img, err := c.EnsureImage(ctx, "nginx:1.7.9", PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	if img.Ref != testimage.NginxRef || img.Source != SourceRegistry || img.Digest != want.Digest.String() {
		t.Errorf("image = %+v, want %s from the registry with digest %s", img, testimage.NginxRef, want.Digest)
	}
	if !strings.Contains(img.From, reg) || !strings.Contains(img.From, "mirror of docker.io") {
		t.Errorf("From = %q, want the mirror %s", img.From, reg)
	}
	assertUnpacked(t, c, img.Ref)

	ps := log.all()
	if len(ps) < 2 {
		t.Fatalf("got %d progress reports, want at least 2: %+v", len(ps), ps)
	}
	if ps[0].Stage != StageResolving {
		t.Errorf("first report stage %s, want %s", ps[0].Stage, StageResolving)
	}
	last := ps[len(ps)-1]
	if last.Stage != StageDone || last.Ref != testimage.NginxRef || last.Total == 0 || last.Current != last.Total || len(last.Blobs) != 3 {
		t.Errorf("last report = %+v, want done with 3 blobs, all bytes", last)
	}
	for _, b := range last.Blobs {
		if !b.Done {
			t.Errorf("blob %s not done in the final report", b.Digest)
		}
	}

	// Present now: no second pull.
	again, err := c.EnsureImage(ctx, testimage.NginxRef, PullIfNotPresent)
	if err != nil || again.Source != SourceContainerd {
		t.Errorf("second EnsureImage = %+v, %v; want it from containerd", again, err)
	}
	// Always pulls again.
	always, err := c.EnsureImage(ctx, testimage.NginxRef, PullAlways)
	if err != nil || always.Source != SourceRegistry || always.Digest != want.Digest.String() {
		t.Errorf("EnsureImage(Always) = %+v, %v; want it from the registry", always, err)
	}
}

func TestEnsureImageNotFoundAnywhere(t *testing.T) {
	testimage.NeedBusybox(t)
	reg := testenv.Registry(t)
	emptyDir := t.TempDir()
	c := newTestClient(t,
		WithImageDirs(emptyDir, "/nonexistent/kelpie-images"),
		WithRegistryMirrors(map[string]string{"docker.io": reg}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	_, err := c.EnsureImage(ctx, "nope:1", PullIfNotPresent)
	if err == nil {
		t.Fatal("EnsureImage of a missing image succeeded")
	}
	msg := err.Error()
	for _, want := range []string{
		"image docker.io/library/nope:1 not found: not in containerd, ",
		"not in image dirs [" + emptyDir + " /nonexistent/kelpie-images]",
		"image dir /nonexistent/kelpie-images unreadable",
		"registry " + reg + " (mirror of docker.io): ",
		"not found",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	var nf *ImageNotFoundError
	if !errors.Is(err, ErrImageNotFound) || !errors.Is(err, errdefs.ErrNotFound) || !errors.As(err, &nf) {
		t.Errorf("error %v does not match ErrImageNotFound, errdefs.ErrNotFound and *ImageNotFoundError", err)
	}
}

func TestEnsureImageNeverPullsWithPolicyNever(t *testing.T) {
	// The mirror points at a port where nothing listens: any pull would fail
	// with "connection refused", which must not appear.
	c := newTestClient(t, WithRegistryMirrors(map[string]string{"docker.io": "http://127.0.0.1:1"}))
	_, err := c.EnsureImage(context.Background(), "busybox:1.36", PullNever)
	if err == nil {
		t.Fatal("EnsureImage(Never) of a missing image succeeded")
	}
	if !strings.Contains(err.Error(), "registry not tried (pull policy Never)") || strings.Contains(err.Error(), "refused") {
		t.Errorf("error = %q", err)
	}
	if !errors.Is(err, ErrImageNotFound) {
		t.Errorf("error %v does not match ErrImageNotFound", err)
	}
}

func TestEnsureImageUnreachableMirror(t *testing.T) {
	c := newTestClient(t, WithRegistryMirrors(map[string]string{"docker.io": "http://127.0.0.1:1"}))
	_, err := c.EnsureImage(context.Background(), "busybox:1.36", PullIfNotPresent)
	if err == nil || !strings.Contains(err.Error(), "registry http://127.0.0.1:1 (mirror of docker.io): ") ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error = %v, want the mirror's connection refused", err)
	}
}

func TestEnsureImageBadPolicy(t *testing.T) {
	c := &Client{}
	if _, err := c.EnsureImage(context.Background(), "x", "Sometimes"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("error = %v, want errdefs.ErrInvalidArgument", err)
	}
}
