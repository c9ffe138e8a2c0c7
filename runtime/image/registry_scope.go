package image

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/containerd/containerd/content"
	cerrdefs "github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// servedSet is the set of blobs the registry may serve: every manifest,
// config and layer reachable from an image of the namespace. The content
// store also holds what no image names (a pull's leftovers, another
// tool's content in the same namespace); a peer gets none of that. The
// set is rebuilt when the namespace's images change.
type servedSet struct {
	mu     sync.Mutex
	key    string // the images it was built from: name@target, sorted
	digest map[digest.Digest]bool
}

// allows reports whether d belongs to an image of the namespace.
func (s *servedSet) allows(ctx context.Context, c *Client, d digest.Digest) (bool, error) {
	is := c.cd.ImageService()
	imgs, err := is.List(ctx)
	if err != nil {
		return false, fmt.Errorf("list images: %w", err)
	}
	keys := make([]string, len(imgs))
	for i, img := range imgs {
		keys[i] = img.Name + "@" + img.Target.Digest.String()
	}
	slices.Sort(keys)
	key := strings.Join(keys, "\n")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.digest == nil || s.key != key {
		set, err := reachable(ctx, c.cd.ContentStore(), imgs)
		if err != nil {
			return false, err
		}
		s.key, s.digest = key, set
	}
	return s.digest[d], nil
}

// reachable collects the digests reachable from imgs' targets. Children
// the store lacks (other platforms of an index) are skipped.
func reachable(ctx context.Context, cs content.Store, imgs []images.Image) (map[digest.Digest]bool, error) {
	set := map[digest.Digest]bool{}
	children := images.ChildrenHandler(cs)
	walk := images.HandlerFunc(func(ctx context.Context, d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if set[d.Digest] {
			return nil, nil
		}
		if _, err := cs.Info(ctx, d.Digest); err != nil {
			if cerrdefs.IsNotFound(err) {
				return nil, nil
			}
			return nil, err
		}
		set[d.Digest] = true
		return children(ctx, d)
	})
	for _, img := range imgs {
		if err := images.Walk(ctx, walk, img.Target); err != nil {
			return nil, fmt.Errorf("walk image %s: %w", img.Name, err)
		}
	}
	return set, nil
}
