package image

import (
	"context"
	"sync"

	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/remotes"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ProgressFunc receives progress reports while EnsureImage or ImportArchive
// imports or pulls an image. The reports of one image arrive in order from
// one goroutine at a time; reports of different images may arrive
// concurrently. It must not block: it runs on the import or pull's path.
type ProgressFunc func(Progress)

// Stage is what an import or pull is doing.
type Stage string

// Stages, in the order an image goes through them.
const (
	StageResolving Stage = "resolving" // asking the registry what the tag points at
	StageFetching  Stage = "fetching"  // downloading blobs from the registry
	StageImporting Stage = "importing" // copying blobs from an image dir or archive
	StageUnpacking Stage = "unpacking" // unpacking layers into the snapshotter
	StageDone      Stage = "done"      // the image is ready
)

// Progress is one report of an import or pull.
type Progress struct {
	// Ref is the image's normalized reference; empty while ImportArchive has
	// not yet learnt the names in an archive.
	Ref string
	// Source names where the image comes from: "registry URL (mirror of
	// HOST)", "image dir PATH (FORMAT)" or "archive PATH".
	Source string
	Stage  Stage
	// Current and Total count bytes; Total is 0 while unknown.
	Current, Total int64
	// Blobs details a registry pull, one entry per blob in the order the
	// pull met them.
	Blobs []BlobProgress
}

// BlobProgress is the progress of one blob of a registry pull.
type BlobProgress struct {
	Digest    string
	MediaType string
	Current   int64
	Total     int64
	Done      bool
}

// progressReporter returns a function that stamps reports with ref and
// source and hands them to the client's ProgressFunc, if it has one.
func (c *Client) progressReporter(ref, source string) func(Progress) {
	fn := c.opts.progress
	return func(p Progress) {
		if fn == nil {
			return
		}
		if p.Ref == "" {
			p.Ref = ref
		}
		p.Source = source
		fn(p)
	}
}

// pullTracker follows a registry pull: the pull's image handler records every
// descriptor it dispatches, and snapshot reads the content store's ingest
// statuses for the bytes written so far, as `ctr pull` does.
type pullTracker struct {
	mu    sync.Mutex
	descs []ocispec.Descriptor
	seen  map[digest.Digest]bool
	done  map[digest.Digest]bool
}

func newPullTracker() *pullTracker {
	return &pullTracker{seen: map[digest.Digest]bool{}, done: map[digest.Digest]bool{}}
}

// handler is the image handler the pull calls for each descriptor.
func (t *pullTracker) handler() images.HandlerFunc {
	return func(_ context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		t.mu.Lock()
		defer t.mu.Unlock()
		if !t.seen[desc.Digest] {
			t.seen[desc.Digest] = true
			t.descs = append(t.descs, desc)
		}
		return nil, nil
	}
}

// snapshot builds a report from the descriptors seen and the store's state.
func (t *pullTracker) snapshot(ctx context.Context, cs content.Store) Progress {
	t.mu.Lock()
	descs := append([]ocispec.Descriptor(nil), t.descs...)
	t.mu.Unlock()

	active := map[string]content.Status{}
	if sts, err := cs.ListStatuses(ctx); err == nil {
		for _, s := range sts {
			active[s.Ref] = s
		}
	}
	p := Progress{Stage: StageResolving}
	if len(descs) > 0 {
		p.Stage = StageUnpacking // until a blob is found still downloading
	}
	for _, d := range descs {
		b := BlobProgress{Digest: d.Digest.String(), MediaType: d.MediaType, Total: d.Size}
		t.mu.Lock()
		done := t.done[d.Digest]
		t.mu.Unlock()
		if !done {
			if s, ok := active[remotes.MakeRefKey(ctx, d)]; ok {
				b.Current = s.Offset
			} else if _, err := cs.Info(ctx, d.Digest); err == nil {
				done = true
				t.mu.Lock()
				t.done[d.Digest] = true
				t.mu.Unlock()
			}
		}
		if done {
			b.Current, b.Done = d.Size, true
		} else {
			p.Stage = StageFetching
		}
		p.Current += b.Current
		p.Total += b.Total
		p.Blobs = append(p.Blobs, b)
	}
	return p
}

// sameProgress reports whether two reports would draw the same.
func sameProgress(a, b Progress) bool {
	return a.Stage == b.Stage && a.Current == b.Current && a.Total == b.Total && len(a.Blobs) == len(b.Blobs)
}
