// Package ctrtest helps tests that create objects in a containerd namespace
// of their own: it removes such a namespace when the test is done. It only
// ever touches the namespace it is given.
package ctrtest

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/namespaces"
)

// RemoveNamespace deletes every image of namespace ns, lets containerd's
// garbage collector drop their content and snapshots, then deletes the
// namespace, polling until containerd agrees it is empty (for at most 30
// seconds). The namespace's containers must be gone already.
func RemoveNamespace(cd *containerd.Client, ns string) error {
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ns), 30*time.Second)
	defer cancel()
	is := cd.ImageService()
	imgs, err := is.List(ctx)
	if err != nil {
		return err
	}
	for i, img := range imgs {
		var opts []images.DeleteOpt
		if i == len(imgs)-1 {
			opts = append(opts, images.SynchronousDelete()) // runs the garbage collector now
		}
		if err := is.Delete(ctx, img.Name, opts...); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete image %s: %w", img.Name, err)
		}
	}
	for {
		err := cd.NamespaceService().Delete(ctx, ns)
		if err == nil || errdefs.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("delete namespace %s: %w", ns, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
