package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/containerd/containerd/content"
	cerrdefs "github.com/containerd/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kelpie-dev/kelpie/internal/httpauth"
)

// maxManifestSize bounds the manifests the registry reads into memory; real
// manifests and indexes are a few kilobytes.
const maxManifestSize = 4 << 20

// RegistryHandler returns the pull half of the OCI distribution API (GET and
// HEAD of /v2/, /v2/NAME/manifests/TAG|DIGEST and /v2/NAME/blobs/DIGEST)
// over the images and content of the client's containerd namespace, so that
// a peer configured with `--registry-mirror docker.io=http://HOST:PORT/PREFIX`
// pulls them by their original names. The handler answers paths that start
// with /v2/: mount it under a prefix with http.StripPrefix.
//
// A manifest by tag is the target of the image named REGISTRY/NAME:TAG,
// where REGISTRY is the "ns" query parameter containerd adds when it pulls
// through a mirror, else NAME's first component when it looks like a host,
// else docker.io; an image the namespace lacks is imported from the client's
// image dirs first (never pulled), so a host with the site's images on a USB
// stick serves them all, also those it does not run. Manifests and blobs by
// digest come from the content store, and only those that an image of the
// namespace reaches. Peers never write anything.
//
// Every request must carry one of tokens, as a bearer token or as the
// password of HTTP basic authentication (any user name); others get 401
// with a Basic challenge, which containerd's resolver answers with the
// credentials of a mirror URL's userinfo. Without tokens every request is
// refused. The handler is safe for concurrent use.
func (c *Client) RegistryHandler(tokens ...string) http.Handler {
	return &registryServer{c: c, tokens: slices.Clone(tokens)}
}

// registryServer is the handler RegistryHandler returns.
type registryServer struct {
	c      *Client
	tokens []string
	served servedSet
}

// ServeHTTP answers one request of the distribution API.
func (s *registryServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if !httpauth.TokenAuthorized(r, s.tokens...) {
		w.Header().Set("WWW-Authenticate", `Basic realm="kelpie mirror"`)
		registryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "a valid mirror token is required")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		registryError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "this registry is read-only")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v2/")
	switch {
	case !ok:
		registryError(w, http.StatusNotFound, "NOT_FOUND", "not a registry path")
	case rest == "":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}\n")
	default:
		ctx := s.c.WithNamespace(r.Context())
		if name, ref, ok := cutLast(rest, "/manifests/"); ok {
			s.manifest(ctx, w, r, name, ref)
		} else if name, dgst, ok := cutLast(rest, "/blobs/"); ok {
			s.blob(ctx, w, r, name, dgst)
		} else {
			registryError(w, http.StatusNotFound, "NOT_FOUND", "not a registry path")
		}
	}
}

// cutLast splits s around the last sep, with neither side empty.
func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i <= 0 || i+len(sep) == len(s) {
		return "", "", false
	}
	return s[:i], s[i+len(sep):], true
}

// manifest answers /v2/NAME/manifests/REF.
func (s *registryServer) manifest(ctx context.Context, w http.ResponseWriter, r *http.Request, name, ref string) {
	cs := s.c.cd.ContentStore()
	var desc ocispec.Descriptor
	if d, err := digest.Parse(ref); err == nil {
		if !s.isServed(ctx, w, d, "MANIFEST_UNKNOWN", "manifest "+ref) {
			return
		}
		info, err := cs.Info(ctx, d)
		if err != nil {
			s.storeError(w, err, "MANIFEST_UNKNOWN", "manifest "+ref)
			return
		}
		desc = ocispec.Descriptor{Digest: d, Size: info.Size}
	} else {
		full, err := imageName(r.URL.Query().Get("ns"), name, ref)
		if err != nil {
			registryError(w, http.StatusBadRequest, "NAME_INVALID", err.Error())
			return
		}
		img, err := s.c.cd.ImageService().Get(ctx, full)
		if cerrdefs.IsNotFound(err) && len(s.c.opts.imageDirs) > 0 {
			// An image of the image dirs (a USB stick's) that this host
			// does not run: import it, never pulling, and serve it.
			if _, ierr := s.c.EnsureImage(ctx, full, PullNever); ierr == nil {
				img, err = s.c.cd.ImageService().Get(ctx, full)
			}
		}
		if err != nil {
			s.storeError(w, err, "MANIFEST_UNKNOWN", "image "+full)
			return
		}
		desc = img.Target
	}
	if desc.Size > maxManifestSize {
		registryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", fmt.Sprintf("%s is %d bytes: too large for a manifest", desc.Digest, desc.Size))
		return
	}
	data, err := content.ReadBlob(ctx, cs, desc)
	if err != nil {
		s.storeError(w, err, "MANIFEST_UNKNOWN", "manifest "+desc.Digest.String())
		return
	}
	if desc.MediaType == "" {
		if desc.MediaType = manifestMediaType(data); desc.MediaType == "" {
			registryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", desc.Digest.String()+" is not a manifest")
			return
		}
	}
	w.Header().Set("Content-Type", desc.MediaType)
	w.Header().Set("Docker-Content-Digest", desc.Digest.String())
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(data) // the client went away: nothing to do
}

// blob answers /v2/NAME/blobs/DIGEST. Blobs are not scoped by NAME: the
// content store holds each once for the whole namespace.
func (s *registryServer) blob(ctx context.Context, w http.ResponseWriter, r *http.Request, _, ref string) {
	d, err := digest.Parse(ref)
	if err != nil {
		registryError(w, http.StatusBadRequest, "DIGEST_INVALID", err.Error())
		return
	}
	if !s.isServed(ctx, w, d, "BLOB_UNKNOWN", "blob "+ref) {
		return
	}
	cs := s.c.cd.ContentStore()
	info, err := cs.Info(ctx, d)
	if err != nil {
		s.storeError(w, err, "BLOB_UNKNOWN", "blob "+ref)
		return
	}
	ra, err := cs.ReaderAt(ctx, ocispec.Descriptor{Digest: d, Size: info.Size})
	if err != nil {
		s.storeError(w, err, "BLOB_UNKNOWN", "blob "+ref)
		return
	}
	defer ra.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Cache-Control", "max-age=31536000") // content addressed: never changes
	// ServeContent sets Content-Length, answers HEAD and Range requests
	// (containerd resumes interrupted downloads with them).
	http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(ra, 0, info.Size))
}

// isServed answers 404 (code) for a digest no image of the namespace
// reaches, and reports whether the request may go on.
func (s *registryServer) isServed(ctx context.Context, w http.ResponseWriter, d digest.Digest, code, what string) bool {
	ok, err := s.served.allows(ctx, s.c, d)
	if err != nil {
		s.storeError(w, err, code, what)
		return false
	}
	if !ok {
		registryError(w, http.StatusNotFound, code, what+" not found")
	}
	return ok
}

// storeError answers a content or image store error: 404 with code for
// what is missing, 500 for anything else.
func (s *registryServer) storeError(w http.ResponseWriter, err error, code, what string) {
	if cerrdefs.IsNotFound(err) {
		registryError(w, http.StatusNotFound, code, what+" not found")
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	registryError(w, http.StatusInternalServerError, "UNKNOWN", fmt.Sprintf("%s: %v", what, ConvertErr(err)))
}

// imageName returns the containerd image name a mirror request asks for:
// REGISTRY/NAME:TAG, the registry from ns (containerd's "ns" parameter) or
// else from NAME, as ParseNormalizedNamed reads it ("library/busybox" is
// docker.io's).
func imageName(ns, name, tag string) (string, error) {
	full := name
	if ns != "" {
		full = canonicalRegistryHost(ns) + "/" + name
	}
	named, err := reference.ParseNormalizedNamed(full + ":" + tag)
	if err != nil {
		return "", fmt.Errorf("image %s:%s: %w", full, tag, err)
	}
	return named.String(), nil
}

// manifestMediaType reads the media type of a manifest or index from its
// content: its mediaType field, else what its fields say it is; "" when
// data is neither.
func manifestMediaType(data []byte) string {
	var m struct {
		MediaType string            `json:"mediaType"`
		Manifests []json.RawMessage `json:"manifests"`
		Layers    []json.RawMessage `json:"layers"`
		Config    json.RawMessage   `json:"config"`
	}
	if json.Unmarshal(data, &m) != nil {
		return ""
	}
	switch {
	case m.MediaType != "":
		return m.MediaType
	case m.Manifests != nil:
		return ocispec.MediaTypeImageIndex
	case m.Config != nil || m.Layers != nil:
		return ocispec.MediaTypeImageManifest
	}
	return ""
}

// registryError writes a distribution API error.
func registryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]string{{"code": code, "message": msg}},
	})
}
