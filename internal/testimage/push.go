package testimage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Push uploads spec's image to the registry at registryURL (for example
// "http://127.0.0.1:5000") under the repository path and tag of spec.Name, as
// a mirror holds it: docker.io/library/nginx:1.7.9 becomes library/nginx:1.7.9.
// It speaks the OCI distribution API directly (monolithic blob uploads, then
// the manifest), so it needs nothing but the registry.
func Push(ctx context.Context, registryURL string, spec Spec) error {
	img, err := build(spec)
	if err != nil {
		return err
	}
	named, tag, err := normalize(img.ref)
	if err != nil {
		return err
	}
	repo := reference.Path(named)
	base := strings.TrimSuffix(registryURL, "/")
	client := http.DefaultClient

	for d, data := range img.blobs {
		if d == img.manifest.Digest {
			continue
		}
		if err := pushBlob(ctx, client, base, repo, d, data); err != nil {
			return fmt.Errorf("push %s to %s: blob %s: %w", img.ref, registryURL, d, err)
		}
	}
	u := fmt.Sprintf("%s/v2/%s/manifests/%s", base, repo, tag)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(img.blobs[img.manifest.Digest]))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
	if err := do(client, req, http.StatusCreated); err != nil {
		return fmt.Errorf("push %s to %s: manifest: %w", img.ref, registryURL, err)
	}
	return nil
}

func pushBlob(ctx context.Context, client *http.Client, base, repo string, d digest.Digest, data []byte) error {
	head, err := http.NewRequestWithContext(ctx, http.MethodHead, fmt.Sprintf("%s/v2/%s/blobs/%s", base, repo, d), nil)
	if err != nil {
		return err
	}
	if resp, err := client.Do(head); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil // already there
		}
	}

	start, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("%s/v2/%s/blobs/uploads/", base, repo), nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(start)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("start upload: %s", resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return fmt.Errorf("start upload: Location: %w", err)
	}
	baseURL, err := url.Parse(base + "/")
	if err != nil {
		return err
	}
	loc = baseURL.ResolveReference(loc) // the Location may be relative
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()

	put, err := http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), bytes.NewReader(data))
	if err != nil {
		return err
	}
	put.Header.Set("Content-Type", "application/octet-stream")
	return do(client, put, http.StatusCreated)
}

func do(client *http.Client, req *http.Request, want int) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, bytes.TrimSpace(body))
	}
	return nil
}
