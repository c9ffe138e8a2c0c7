package reconciler

import (
	"fmt"
	"os"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// volumes resolves a pod's volumes in namespace. readOnly names those
// every mount must make read-only: ConfigMaps, Secrets and claims given
// readOnly.
func (b *podBuilder) volumes(namespace string, vols []corev1.Volume) ([]Volume, map[string]bool, error) {
	var out []Volume
	readOnly := map[string]bool{}
	for i := range vols {
		v := &vols[i]
		var src VolumeSource
		switch {
		case v.EmptyDir != nil:
			ed := EmptyDir{Medium: string(v.EmptyDir.Medium)}
			if v.EmptyDir.SizeLimit != nil {
				ed.SizeLimit = v.EmptyDir.SizeLimit.Value()
			}
			src = ed
		case v.HostPath != nil:
			hp := HostPath{Path: v.HostPath.Path}
			if v.HostPath.Type != nil {
				hp.Type = string(*v.HostPath.Type)
			}
			src = hp
		case v.ConfigMap != nil:
			pr, err := b.configMapVolume(namespace, v.ConfigMap)
			if err != nil {
				return nil, nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			src = pr
			readOnly[v.Name] = true
		case v.Secret != nil:
			pr, err := b.secretVolume(namespace, v.Secret)
			if err != nil {
				return nil, nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			src = pr
			readOnly[v.Name] = true
		case v.PersistentVolumeClaim != nil:
			name := v.PersistentVolumeClaim.ClaimName
			pvc := b.claims[name]
			if pvc == nil {
				pvc = lookupClaim(b.state, namespace, name)
			}
			if pvc == nil {
				return nil, nil, fmt.Errorf("volume %s: PersistentVolumeClaim %q not found", v.Name, name)
			}
			src = claimOf(pvc)
			if v.PersistentVolumeClaim.ReadOnly || readOnlyClaim(pvc) {
				readOnly[v.Name] = true
			}
		default:
			return nil, nil, fmt.Errorf("volume %s: no supported volume source", v.Name)
		}
		out = append(out, Volume{Name: v.Name, Source: src})
	}
	return out, readOnly, nil
}

// configMapVolume projects a ConfigMap's keys as files.
func (b *podBuilder) configMapVolume(namespace string, v *corev1.ConfigMapVolumeSource) (Projected, error) {
	cm := lookupConfigMap(b.state, namespace, v.Name)
	optional := v.Optional != nil && *v.Optional
	if cm == nil {
		if optional {
			return Projected{}, nil
		}
		return Projected{}, fmt.Errorf("ConfigMap %q not found", v.Name)
	}
	get := func(key string) ([]byte, bool) {
		if s, ok := cm.Data[key]; ok {
			return []byte(s), true
		}
		d, ok := cm.BinaryData[key]
		return d, ok
	}
	var keys []string
	for k := range cm.Data {
		keys = append(keys, k)
	}
	for k := range cm.BinaryData {
		keys = append(keys, k)
	}
	files, err := project("ConfigMap", v.Name, keys, get, v.Items, v.DefaultMode, optional)
	return Projected{Files: files}, err
}

// secretVolume projects a Secret's keys as files.
func (b *podBuilder) secretVolume(namespace string, v *corev1.SecretVolumeSource) (Projected, error) {
	s := lookupSecret(b.state, namespace, v.SecretName)
	optional := v.Optional != nil && *v.Optional
	if s == nil {
		if optional {
			return Projected{Secret: true}, nil
		}
		return Projected{}, fmt.Errorf("Secret %q not found", v.SecretName)
	}
	get := func(key string) ([]byte, bool) {
		d, ok := s.Data[key]
		return d, ok
	}
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		keys = append(keys, k)
	}
	files, err := project("Secret", v.SecretName, keys, get, v.Items, v.DefaultMode, optional)
	return Projected{Files: files, Secret: true}, err
}

// project builds the files of a ConfigMap or Secret volume: the listed
// items (a missing key is an error unless the volume is optional), or
// every key as a file of its name. Files are sorted by path.
func project(kind, name string, keys []string, get func(string) ([]byte, bool), items []corev1.KeyToPath, defaultMode *int32, optional bool) ([]File, error) {
	mode := os.FileMode(0o644)
	if defaultMode != nil {
		mode = os.FileMode(*defaultMode)
	}
	var files []File
	if len(items) == 0 {
		for _, k := range keys {
			d, _ := get(k)
			files = append(files, File{Path: k, Data: d, Mode: mode})
		}
	}
	for _, it := range items {
		d, ok := get(it.Key)
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("%s %q has no key %q", kind, name, it.Key)
		}
		m := mode
		if it.Mode != nil {
			m = os.FileMode(*it.Mode)
		}
		files = append(files, File{Path: it.Path, Data: d, Mode: m})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// readOnlyClaim reports whether a claim may only be read: its only access
// mode is ReadOnlyMany, so every pod mounts it read-only. (ReadWriteOnce
// and ReadWriteMany mean the same on one host: read-write.)
func readOnlyClaim(pvc *corev1.PersistentVolumeClaim) bool {
	modes := pvc.Spec.AccessModes
	return len(modes) > 0 && !slices.ContainsFunc(modes, func(m corev1.PersistentVolumeAccessMode) bool { return m != corev1.ReadOnlyMany })
}
