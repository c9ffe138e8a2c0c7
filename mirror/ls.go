package mirror

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kelpie-dev/kelpie/source"
)

// Listing is what a mirror directory holds.
type Listing struct {
	Dir    string        `json:"dir"`
	Refs   []ListedRef   `json:"refs"`
	Images []ListedImage `json:"images"`
	// RepoSize, ImagesSize and Size are bytes on disk (file sizes).
	RepoSize   int64 `json:"repoSize"`
	ImagesSize int64 `json:"imagesSize"`
	Size       int64 `json:"size"`
}

// ListedRef is one branch or tag of a mirror's repository.
type ListedRef struct {
	Name    string    `json:"name"`
	Commit  string    `json:"commit"` // annotated tags peeled
	Short   string    `json:"short"`
	Subject string    `json:"subject"`
	Author  string    `json:"author"`
	Date    time.Time `json:"date"`
	Commits int       `json:"commits"` // reachable from it, itself included
}

// ListedImage is one image of a mirror's layout.
type ListedImage struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	// Size is the sum of the blobs the image needs that the layout holds;
	// Missing counts those it lacks (0 in a healthy mirror).
	Size    int64 `json:"size"`
	Blobs   int   `json:"blobs"`
	Missing int   `json:"missing,omitempty"`
}

// List reads a mirror directory. A mirror without a repository or without
// images lists none of them.
func List(dir string) (*Listing, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("list mirror %s: %w", dir, err)
	}
	l := &Listing{Dir: dir, Refs: []ListedRef{}, Images: []ListedImage{}}
	repoDir := filepath.Join(dir, RepoDir)
	if _, err := os.Stat(repoDir); err == nil {
		repo, err := source.OpenLocal(repoDir)
		if err != nil {
			return nil, fmt.Errorf("list mirror %s: %w", dir, err)
		}
		refs, err := repo.ListRefs()
		repo.Close()
		if err != nil {
			return nil, fmt.Errorf("list mirror %s: %w", dir, err)
		}
		for _, r := range refs {
			l.Refs = append(l.Refs, ListedRef{Name: r.Name, Commit: r.Commit.Hash, Short: r.Commit.Short,
				Subject: r.Commit.Subject, Author: r.Commit.Author, Date: r.Commit.When, Commits: r.Commits})
		}
		l.RepoSize = du(repoDir)
	}
	layout := filepath.Join(dir, ImagesDir)
	idx, err := readLayoutIndex(layout)
	if err != nil {
		return nil, fmt.Errorf("list mirror %s: %w", dir, err)
	}
	for _, d := range idx.Manifests {
		img := ListedImage{Name: d.Annotations[annotationImageName], Digest: d.Digest.String()}
		walkLayout(layout, d, map[digest.Digest]bool{}, &img)
		l.Images = append(l.Images, img)
	}
	l.ImagesSize = du(layout)
	l.Size = l.RepoSize + l.ImagesSize
	return l, nil
}

// walkLayout adds up the blobs of d in the layout: an index's manifests,
// a manifest's config and layers.
func walkLayout(layout string, d ocispec.Descriptor, seen map[digest.Digest]bool, img *ListedImage) {
	if seen[d.Digest] || d.Digest.Validate() != nil {
		return
	}
	seen[d.Digest] = true
	p := blobPath(layout, d.Digest)
	fi, err := os.Stat(p)
	if err != nil {
		img.Missing++
		return
	}
	img.Blobs++
	img.Size += fi.Size()
	if d.Size > maxIndexSize {
		return
	}
	var node struct {
		Manifests []ocispec.Descriptor `json:"manifests"`
		Config    *ocispec.Descriptor  `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
	}
	switch d.MediaType {
	case ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest,
		"application/vnd.docker.distribution.manifest.list.v2+json",
		"application/vnd.docker.distribution.manifest.v2+json":
	default:
		return
	}
	b, err := os.ReadFile(p)
	if err != nil || json.Unmarshal(b, &node) != nil {
		return
	}
	children := append([]ocispec.Descriptor(nil), node.Manifests...)
	if node.Config != nil {
		children = append(children, *node.Config)
	}
	children = append(children, node.Layers...)
	for _, c := range children {
		walkLayout(layout, c, seen, img)
	}
}

// du adds up the sizes of the regular files under dir.
func du(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
