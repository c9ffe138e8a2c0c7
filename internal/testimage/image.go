package testimage

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Epoch is the creation time and the modification time of every file in every
// image this package builds, so that builds are byte-for-byte reproducible.
var Epoch = time.Date(2024, time.January, 1, 0, 0, 0, 0, time.UTC)

// image is one built image: its blobs by digest and what points at them.
type image struct {
	ref          string             // full reference
	manifest     ocispec.Descriptor // as listed in index.json, with name annotations
	configDigest digest.Digest
	diffID       digest.Digest // of the uncompressed layer
	rawLayer     []byte        // the uncompressed layer, for Docker archives
	blobs        map[digest.Digest][]byte
}

var (
	cacheMu sync.Mutex
	cache   = map[string]*image{} // by cacheKey
)

// build builds spec, or returns the image built before from the same inputs.
func build(spec Spec) (*image, error) {
	named, tag, err := normalize(spec.Name)
	if err != nil {
		return nil, err
	}
	spec.Name = named.String()
	if spec.Busybox == "" {
		spec.Busybox = DefaultBusybox
	}
	if spec.Env == nil {
		spec.Env = DefaultEnv
	}
	key, err := cacheKey(spec)
	if err != nil {
		return nil, err
	}
	cacheMu.Lock()
	defer cacheMu.Unlock() // builds are rare and fast enough to serialise
	if img, ok := cache[key]; ok {
		return img, nil
	}
	img, err := buildImage(spec, tag)
	if err != nil {
		return nil, fmt.Errorf("build test image %s: %w", spec.Name, err)
	}
	cache[key] = img
	return img, nil
}

// cacheKey identifies the inputs of a build: the spec and the busybox binary
// (by path, size and modification time).
func cacheKey(spec Spec) (string, error) {
	fi, err := os.Stat(spec.Busybox)
	if err != nil {
		return "", fmt.Errorf("build test image %s: busybox binary (apt-get install busybox-static): %w", spec.Name, err)
	}
	b, err := json.Marshal(struct {
		Spec    Spec
		Size    int64
		ModTime time.Time
	}{spec, fi.Size(), fi.ModTime()})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

func buildImage(spec Spec, tag string) (*image, error) {
	raw, gz, err := buildLayer(spec)
	if err != nil {
		return nil, err
	}
	diffID := digest.FromBytes(raw)
	layerDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(gz), Size: int64(len(gz))}

	created := Epoch
	cfg := ocispec.Image{
		Created:  &created,
		Platform: ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Config: ocispec.ImageConfig{
			User:       spec.User,
			Env:        spec.Env,
			Entrypoint: spec.Entrypoint,
			Cmd:        spec.Cmd,
			WorkingDir: spec.WorkingDir,
			Labels:     spec.Labels,
		},
		RootFS:  ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
		History: []ocispec.History{{Created: &created, CreatedBy: "kelpie internal/testimage", Comment: "busybox-static layer"}},
	}
	if len(spec.ExposedPorts) > 0 {
		ports := append([]string(nil), spec.ExposedPorts...)
		sort.Strings(ports)
		cfg.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range ports {
			cfg.Config.ExposedPorts[p] = struct{}{}
		}
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfgJSON), Size: int64(len(cfgJSON))}

	mf := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfgDesc, Layers: []ocispec.Descriptor{layerDesc}}
	mf.SchemaVersion = 2
	mfJSON, err := json.Marshal(mf)
	if err != nil {
		return nil, err
	}
	platform := cfg.Platform
	return &image{
		ref: spec.Name,
		manifest: ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageManifest,
			Digest:    digest.FromBytes(mfJSON),
			Size:      int64(len(mfJSON)),
			Platform:  &platform,
			Annotations: map[string]string{
				AnnotationImageName:       spec.Name,
				ocispec.AnnotationRefName: tag,
			},
		},
		configDigest: cfgDesc.Digest,
		diffID:       diffID,
		rawLayer:     raw,
		blobs: map[digest.Digest][]byte{
			digest.FromBytes(mfJSON): mfJSON,
			cfgDesc.Digest:           cfgJSON,
			layerDesc.Digest:         gz,
		},
	}, nil
}
