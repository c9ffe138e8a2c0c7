package image

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd"
	cerrdefs "github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/identifiers"
	"github.com/containerd/containerd/namespaces"
	"google.golang.org/grpc/status"

	"github.com/kelpie-dev/kelpie/runtime/errdefs"
)

// Defaults of a Client.
const (
	DefaultAddress          = "/run/containerd/containerd.sock" // where Debian's containerd listens
	DefaultNamespace        = "kelpie"                          // keeps kelpie's objects apart from anyone else's
	DefaultSnapshotter      = "overlayfs"                       // containerd's default on Linux; works on ext4 and xfs
	DefaultDialTimeout      = 5 * time.Second                   // a local socket answers in milliseconds; this only bounds a hung daemon
	DefaultProgressInterval = 100 * time.Millisecond            // smooth enough for a terminal, cheap for containerd
)

// ErrImageNotFound means that no source had the image: not containerd, not
// the image dirs, not the registry. errors.Is(err, errdefs.ErrNotFound)
// holds for it too. A reconciler waits for such an image rather than
// retrying in a storm.
var ErrImageNotFound = fmt.Errorf("image %w", errdefs.ErrNotFound)

// Client is kelpie's connection to one containerd, in one namespace, with the
// image sources it was configured with. It is safe for concurrent use.
type Client struct {
	cd        *containerd.Client
	address   string
	namespace string
	server    string // containerd's version, for messages
	opts      options
	// httpClient talks to registries and mirrors (opts.tls).
	httpClient *http.Client

	imageLocks keyedLock // one EnsureImage per reference at a time
	scanMu     sync.Mutex
	scanCache  map[string]scanEntry // image-dir sources by path
	reapOnce   sync.Once            // stale image leases are reaped at the first image operation
}

// Option configures a Client at Connect.
type Option func(*options)

type options struct {
	dialTimeout      time.Duration
	snapshotter      string
	imageDirs        []string
	mirrors          map[string]string // registry host → mirror URL, as given
	insecure         []string          // registry hosts allowed on plain HTTP besides loopback
	progress         ProgressFunc
	progressInterval time.Duration
	tls              *tls.Config // for registries and mirrors; nil: Go's defaults

	mirrorURLs map[string]*url.URL // filled by validate
}

// WithTLSConfig sets the TLS configuration of registry and mirror
// connections: extra CAs to trust (a site CA, a peer's), and a client
// certificate for mirrors that ask for one (--tls-ca, --tls-cert).
func WithTLSConfig(c *tls.Config) Option { return func(o *options) { o.tls = c } }

// WithDialTimeout bounds how long Connect waits for containerd to answer
// (default DefaultDialTimeout).
func WithDialTimeout(d time.Duration) Option { return func(o *options) { o.dialTimeout = d } }

// WithSnapshotter names the snapshotter images are unpacked into and
// containers run on (default DefaultSnapshotter).
func WithSnapshotter(name string) Option { return func(o *options) { o.snapshotter = name } }

// WithImageDirs sets the directories EnsureImage imports missing images from,
// searched in order: each is an OCI image layout, or holds OCI image layouts
// (directories) and OCI or Docker archives (*.tar files).
func WithImageDirs(dirs ...string) Option {
	return func(o *options) { o.imageDirs = append([]string(nil), dirs...) }
}

// WithRegistryMirrors maps a registry host ("docker.io", "ghcr.io",
// "registry.local:5000") to the base URL of a mirror that serves it
// ("http://127.0.0.1:5000"). A mirror replaces its registry: kelpie never
// falls back to the upstream host, so an air-gapped site never waits on a
// registry it cannot reach. Plain-HTTP mirrors are allowed on loopback and on
// hosts named by WithInsecureRegistries.
func WithRegistryMirrors(mirrors map[string]string) Option {
	return func(o *options) {
		o.mirrors = make(map[string]string, len(mirrors))
		for k, v := range mirrors {
			o.mirrors[k] = v
		}
	}
}

// WithInsecureRegistries names hosts ("10.0.0.5:5000") that may be reached
// over plain HTTP although they are not on loopback.
func WithInsecureRegistries(hosts ...string) Option {
	return func(o *options) { o.insecure = append([]string(nil), hosts...) }
}

// WithProgress sets the function that receives progress reports of imports
// and pulls (see ProgressFunc), and optionally how often a running pull
// reports (0 keeps DefaultProgressInterval).
func WithProgress(fn ProgressFunc, interval time.Duration) Option {
	return func(o *options) { o.progress, o.progressInterval = fn, interval }
}

// validate fills defaults and rejects nonsense with a precise message.
func (o *options) validate() error {
	if o.dialTimeout <= 0 {
		o.dialTimeout = DefaultDialTimeout
	}
	if o.snapshotter == "" {
		o.snapshotter = DefaultSnapshotter
	}
	if o.progressInterval <= 0 {
		o.progressInterval = DefaultProgressInterval
	}
	for i, d := range o.imageDirs {
		if d == "" {
			return fmt.Errorf("image dir %d is empty", i+1)
		}
	}
	o.mirrorURLs = map[string]*url.URL{}
	hosts := make([]string, 0, len(o.mirrors))
	for h := range o.mirrors {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, host := range hosts {
		u, err := parseMirror(host, o.mirrors[host], o.insecure)
		if err != nil {
			return err
		}
		key := canonicalRegistryHost(host)
		if _, dup := o.mirrorURLs[key]; dup {
			return fmt.Errorf("registry mirror %s=%s: %s is mirrored twice: %w", host, o.mirrors[host], key, errdefs.ErrInvalidArgument)
		}
		o.mirrorURLs[key] = u
	}
	return nil
}

// Connect connects to the containerd listening at address (a unix socket path;
// "" means DefaultAddress) and works in namespace ("" means DefaultNamespace).
// It fails at once, with a message saying what to do, when nothing listens
// there, and within the dial timeout when containerd does not answer.
func Connect(ctx context.Context, address, namespace string, opts ...Option) (*Client, error) {
	if address == "" {
		address = DefaultAddress
	}
	if namespace == "" {
		namespace = DefaultNamespace
	}
	if err := identifiers.Validate(namespace); err != nil {
		return nil, fmt.Errorf("containerd namespace %q: %w", namespace, ConvertErr(err))
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}

	unreachable := func(err error) error {
		return fmt.Errorf("containerd is not reachable at %s: %w; start it or set --containerd-address", address, err)
	}
	// containerd's dialer waits for a missing socket to appear until its
	// timeout; a missing socket is a plain mistake, so say so at once.
	sock := strings.TrimPrefix(address, "unix://")
	if fi, err := os.Stat(sock); err != nil {
		return nil, unreachable(fmt.Errorf("%w (%v)", errdefs.ErrUnavailable, err))
	} else if fi.Mode()&os.ModeSocket == 0 {
		return nil, unreachable(fmt.Errorf("%w (%s is not a socket)", errdefs.ErrUnavailable, sock))
	}

	timeout := o.dialTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	cd, err := containerd.New(address, containerd.WithDefaultNamespace(namespace), containerd.WithTimeout(timeout))
	if err != nil {
		return nil, unreachable(ConvertErr(err))
	}
	c := &Client{cd: cd, address: address, namespace: namespace, opts: o, httpClient: newRegistryHTTPClient(o.tls)}
	vctx, cancel := context.WithTimeout(c.WithNamespace(ctx), timeout)
	defer cancel()
	v, err := cd.Version(vctx)
	if err != nil {
		cd.Close()
		return nil, unreachable(ConvertErr(err))
	}
	c.server = v.Version
	if err := c.checkSnapshotter(vctx); err != nil {
		cd.Close()
		return nil, err
	}
	return c, nil
}

// checkSnapshotter fails when containerd lacks a working snapshotter of the
// configured name, which would otherwise surface only at the first unpack.
func (c *Client) checkSnapshotter(ctx context.Context) error {
	resp, err := c.cd.IntrospectionService().Plugins(ctx, []string{
		fmt.Sprintf("type==io.containerd.snapshotter.v1,id==%s", c.opts.snapshotter),
	})
	if err != nil {
		return fmt.Errorf("containerd at %s: list snapshotters: %w", c.address, ConvertErr(err))
	}
	if len(resp.Plugins) == 0 {
		return fmt.Errorf("containerd at %s has no snapshotter %q: %w", c.address, c.opts.snapshotter, errdefs.ErrFailedPrecondition)
	}
	if ie := resp.Plugins[0].InitErr; ie != nil {
		return fmt.Errorf("containerd at %s: snapshotter %q failed to start: %s: %w", c.address, c.opts.snapshotter, ie.Message, errdefs.ErrFailedPrecondition)
	}
	return nil
}

// Close closes the connection to containerd.
func (c *Client) Close() error {
	return c.cd.Close()
}

// Address is the containerd socket the client is connected to.
func (c *Client) Address() string { return c.address }

// Namespace is the containerd namespace the client works in.
func (c *Client) Namespace() string { return c.namespace }

// Snapshotter is the snapshotter images are unpacked into.
func (c *Client) Snapshotter() string { return c.opts.snapshotter }

// ServerVersion is the version of the containerd the client is connected to.
func (c *Client) ServerVersion() string { return c.server }

// WithNamespace returns ctx in the client's namespace, unless it names one
// already.
func (c *Client) WithNamespace(ctx context.Context) context.Context {
	if _, ok := namespaces.Namespace(ctx); ok {
		return ctx
	}
	return namespaces.WithNamespace(ctx, c.namespace)
}

// Containerd is the containerd client underneath, for the host runtime's
// containers and tasks. Contexts passed to it need WithNamespace; its
// errors need ConvertErr.
func (c *Client) Containerd() *containerd.Client { return c.cd }

// ConvertErr converts an error from containerd (errdefs classes, including
// those carried over gRPC) into one that matches the sentinels of package
// errdefs, keeping containerd's message.
func ConvertErr(err error) error {
	if err == nil {
		return nil
	}
	if errdefs.IsClassified(err) {
		return err
	}
	if _, isStatus := status.FromError(err); isStatus {
		err = cerrdefs.FromGRPC(err) // the client converts most, not all, of its gRPC errors
	}
	var sentinel error
	switch {
	case cerrdefs.IsNotFound(err):
		sentinel = errdefs.ErrNotFound
	case cerrdefs.IsAlreadyExists(err):
		sentinel = errdefs.ErrAlreadyExists
	case cerrdefs.IsInvalidArgument(err):
		sentinel = errdefs.ErrInvalidArgument
	case cerrdefs.IsFailedPrecondition(err):
		sentinel = errdefs.ErrFailedPrecondition
	case cerrdefs.IsUnavailable(err):
		sentinel = errdefs.ErrUnavailable
	case cerrdefs.IsNotImplemented(err):
		sentinel = errdefs.ErrNotImplemented
	default:
		return err
	}
	return errdefs.Classify(sentinel, err)
}

// isLoopbackHost reports whether host (with or without a port) names this
// machine: localhost, 127.0.0.0/8 or ::1.
func isLoopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// keyedLock serialises work per key (one import or pull of an image at a
// time) while letting different keys run in parallel.
type keyedLock struct {
	mu   sync.Mutex
	held map[string]chan struct{}
}

func (k *keyedLock) lock(ctx context.Context, key string) (unlock func(), err error) {
	for {
		k.mu.Lock()
		if k.held == nil {
			k.held = map[string]chan struct{}{}
		}
		ch, busy := k.held[key]
		if !busy {
			ch = make(chan struct{})
			k.held[key] = ch
			k.mu.Unlock()
			return func() {
				k.mu.Lock()
				delete(k.held, key)
				close(ch)
				k.mu.Unlock()
			}, nil
		}
		k.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
