package image

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/containerd/containerd"
	"github.com/distribution/reference"

	"github.com/kelpie-dev/kelpie/runtime/errdefs"
)

// PullPolicy says which image sources EnsureImage may use, with the meaning
// Kubernetes gives imagePullPolicy.
type PullPolicy string

// Pull policies. The zero value behaves as PullIfNotPresent.
const (
	// PullIfNotPresent uses the image containerd holds; only a missing image
	// is imported from the image dirs or pulled.
	PullIfNotPresent PullPolicy = "IfNotPresent"
	// PullAlways fetches the image again (image dirs first, then the
	// registry) even when containerd holds one of that name, so a moved tag
	// is followed.
	PullAlways PullPolicy = "Always"
	// PullNever never contacts a registry: the image must be in containerd
	// or in an image dir.
	PullNever PullPolicy = "Never"
)

// ImageSource says where EnsureImage found an image.
type ImageSource string

// Image sources.
const (
	SourceContainerd ImageSource = "containerd" // containerd held it already
	SourceImageDir   ImageSource = "image-dir"  // imported from an image dir
	SourceRegistry   ImageSource = "registry"   // pulled from a registry or mirror
)

// Image is an image that containerd holds, unpacked into the client's
// snapshotter, ready for containers.
type Image struct {
	// Ref is the normalized reference ("docker.io/library/nginx:1.7.9").
	Ref string
	// Digest is the digest of the image's target (manifest or index).
	Digest string
	// Source says where it came from and From names that place: the
	// archive or layout path, or the registry URL.
	Source ImageSource
	From   string

	img containerd.Image
}

// Containerd is the containerd image underneath, for the host runtime to
// create containers and snapshots from; nil for an Image that EnsureImage
// did not return.
func (i Image) Containerd() containerd.Image { return i.img }

// NormalizeRef turns an image reference into the full form Docker uses:
// "nginx" becomes "docker.io/library/nginx:latest", "me/app:1" becomes
// "docker.io/me/app:1"; a reference with a digest keeps only the digest.
func NormalizeRef(ref string) (string, error) {
	named, err := reference.ParseDockerRef(strings.TrimSpace(ref))
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w: %w", ref, errdefs.ErrInvalidArgument, err)
	}
	return named.String(), nil
}

// ImageNotFoundError says that an image could be had from none of the
// sources EnsureImage tried, and what each said. errors.Is matches it with
// ErrImageNotFound and errdefs.ErrNotFound; Unwrap gives the registry's error, if one
// was tried.
type ImageNotFoundError struct {
	Ref   string   // normalized reference
	Tried []string // one line per source, in the order tried
	Err   error    // the registry's error, or nil
}

// Error says which image and what every source said, in one line.
func (e *ImageNotFoundError) Error() string {
	return fmt.Sprintf("image %s not found: %s", e.Ref, strings.Join(e.Tried, ", "))
}

// Is makes errors.Is(err, ErrImageNotFound) and errors.Is(err, errdefs.ErrNotFound) hold.
func (e *ImageNotFoundError) Is(target error) bool {
	return target == ErrImageNotFound || target == errdefs.ErrNotFound
}

// Unwrap returns the registry's error.
func (e *ImageNotFoundError) Unwrap() error { return e.Err }

// EnsureImage makes the image ref available, unpacked, and says where it came
// from. Sources, in order: the image containerd already holds (skipped by
// PullAlways); the configured image dirs; a registry, through its mirror when
// one is configured (skipped by PullNever). Progress of imports and pulls goes
// to the client's ProgressFunc. When every source fails, the error is an
// *ImageNotFoundError naming what was tried.
//
// Concurrent calls for the same reference wait for each other, so an image is
// fetched once; different references proceed in parallel.
func (c *Client) EnsureImage(ctx context.Context, ref string, policy PullPolicy) (Image, error) {
	switch policy {
	case "":
		policy = PullIfNotPresent
	case PullIfNotPresent, PullAlways, PullNever:
	default:
		return Image{}, fmt.Errorf("image %s: unknown pull policy %q (want %s, %s or %s): %w",
			ref, policy, PullIfNotPresent, PullAlways, PullNever, errdefs.ErrInvalidArgument)
	}
	norm, err := NormalizeRef(ref)
	if err != nil {
		return Image{}, err
	}
	ctx = c.WithNamespace(ctx)
	unlock, err := c.imageLocks.lock(ctx, norm)
	if err != nil {
		return Image{}, fmt.Errorf("image %s: %w", norm, err)
	}
	defer unlock()
	ctx, release, err := c.withImageLease(ctx)
	if err != nil {
		return Image{}, fmt.Errorf("image %s: %w", norm, err)
	}
	defer release()

	nf := &ImageNotFoundError{Ref: norm}

	if policy != PullAlways {
		img, found, err := c.localImage(ctx, norm)
		switch {
		case err != nil && !found:
			return Image{}, err // containerd itself failed: no point in going on
		case err != nil:
			nf.Tried = append(nf.Tried, fmt.Sprintf("in containerd but unusable (%v)", err))
		case found:
			return img, nil
		default:
			nf.Tried = append(nf.Tried, "not in containerd")
		}
	}

	if len(c.opts.imageDirs) > 0 {
		img, tried, err := c.importFromDirs(ctx, norm)
		if err != nil {
			return Image{}, err
		}
		if img != nil {
			return *img, nil
		}
		nf.Tried = append(nf.Tried, tried...)
	} else {
		nf.Tried = append(nf.Tried, "no image dirs configured")
	}

	if policy == PullNever {
		nf.Tried = append(nf.Tried, "registry not tried (pull policy Never)")
		return Image{}, nf
	}
	img, from, err := c.pull(ctx, norm)
	if err != nil {
		if ctx.Err() != nil {
			return Image{}, fmt.Errorf("pull image %s: %w", norm, ctx.Err())
		}
		nf.Tried = append(nf.Tried, fmt.Sprintf("registry %s: %v", from, err))
		nf.Err = err
		return Image{}, nf
	}
	return img, nil
}

// GetImage returns the image ref when containerd holds it, without unpacking
// it or looking anywhere else; errdefs.ErrNotFound when it does not.
func (c *Client) GetImage(ctx context.Context, ref string) (Image, error) {
	norm, err := NormalizeRef(ref)
	if err != nil {
		return Image{}, err
	}
	img, err := c.cd.GetImage(c.WithNamespace(ctx), norm)
	if err != nil {
		return Image{}, fmt.Errorf("get image %s: %w", norm, ConvertErr(err))
	}
	return c.imageOf(img, SourceContainerd, c.address), nil
}

// localImage returns the image containerd holds, unpacking it when needed.
// found with an error means containerd has the image but it cannot be used
// (say, content was removed): the caller may fetch it again.
func (c *Client) localImage(ctx context.Context, ref string) (img Image, found bool, err error) {
	ci, err := c.cd.GetImage(ctx, ref)
	if err != nil {
		err = ConvertErr(err)
		if errors.Is(err, errdefs.ErrNotFound) {
			return Image{}, false, nil
		}
		return Image{}, false, fmt.Errorf("image %s: look up in containerd at %s: %w", ref, c.address, err)
	}
	if err := c.unpack(ctx, ci); err != nil {
		return Image{}, true, err
	}
	return c.imageOf(ci, SourceContainerd, c.address), true, nil
}

// unpack unpacks ci into the client's snapshotter unless it is already.
func (c *Client) unpack(ctx context.Context, ci containerd.Image) error {
	ok, err := ci.IsUnpacked(ctx, c.opts.snapshotter)
	if err == nil && ok {
		return nil
	}
	if err := ci.Unpack(ctx, c.opts.snapshotter); err != nil {
		return fmt.Errorf("unpack %s into %s: %w", ci.Name(), c.opts.snapshotter, ConvertErr(err))
	}
	return nil
}

func (c *Client) imageOf(ci containerd.Image, src ImageSource, from string) Image {
	return Image{Ref: ci.Name(), Digest: ci.Target().Digest.String(), Source: src, From: from, img: ci}
}
