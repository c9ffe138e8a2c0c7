package reconciler

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kelpie-dev/kelpie/specs"
)

// hashInput is what a pod's spec hash covers. JSON encodes struct fields
// in declaration order and map keys sorted, so the encoding is canonical.
// The replica count is not part of it: scaling never replaces a pod.
type hashInput struct {
	Owner Owner `json:"owner"`
	// Template is the defaulted pod template.
	Template *corev1.PodTemplateSpec `json:"template"`
	// ConfigMaps and Secrets hold the full content of every one the pod
	// uses (env, envFrom, volumes), by name; null for an optional one that
	// does not exist, so creating it later changes the hash.
	ConfigMaps map[string]*configMapContent `json:"configMaps,omitempty"`
	Secrets    map[string]map[string][]byte `json:"secrets,omitempty"`
	// Networks maps each Network the pod joins to its object hash: a
	// changed Network re-attaches the pods that use it.
	Networks map[string]string `json:"networks,omitempty"`
}

// configMapContent is the data of a ConfigMap.
type configMapContent struct {
	Data       map[string]string `json:"data,omitempty"`
	BinaryData map[string][]byte `json:"binaryData,omitempty"`
}

// specHash computes the spec hash of the pods of a workload in namespace.
func specHash(state *specs.DesiredState, namespace string, owner Owner, tmpl *corev1.PodTemplateSpec, networks []string) (string, error) {
	in := hashInput{Owner: owner, Template: tmpl}
	configMaps, secrets := podRefs(&tmpl.Spec)
	for _, name := range configMaps {
		if in.ConfigMaps == nil {
			in.ConfigMaps = map[string]*configMapContent{}
		}
		var c *configMapContent
		if cm := lookupConfigMap(state, namespace, name); cm != nil {
			c = &configMapContent{Data: cm.Data, BinaryData: cm.BinaryData}
		}
		in.ConfigMaps[name] = c
	}
	for _, name := range secrets {
		if in.Secrets == nil {
			in.Secrets = map[string]map[string][]byte{}
		}
		var data map[string][]byte
		if s := lookupSecret(state, namespace, name); s != nil {
			data = s.Data
			if data == nil {
				data = map[string][]byte{} // present but empty differs from absent
			}
		}
		in.Secrets[name] = data
	}
	for _, name := range networks {
		if in.Networks == nil {
			in.Networks = map[string]string{}
		}
		if obj := state.Get(specs.Key{Kind: specs.KindNetwork, Name: name}); obj != nil {
			in.Networks[name] = obj.Hash
		} else {
			in.Networks[name] = ""
		}
	}
	data, err := json.Marshal(in)
	if err != nil {
		return "", fmt.Errorf("hash pod template of %s: %w", owner, err)
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// podRefs lists the ConfigMaps and Secrets a pod spec uses, each once, in
// order of first use.
func podRefs(s *corev1.PodSpec) (configMaps, secrets []string) {
	seenCM, seenS := map[string]bool{}, map[string]bool{}
	addCM := func(name string) {
		if name != "" && !seenCM[name] {
			seenCM[name] = true
			configMaps = append(configMaps, name)
		}
	}
	addS := func(name string) {
		if name != "" && !seenS[name] {
			seenS[name] = true
			secrets = append(secrets, name)
		}
	}
	for _, cs := range [][]corev1.Container{s.InitContainers, s.Containers} {
		for i := range cs {
			c := &cs[i]
			for _, src := range c.EnvFrom {
				if src.ConfigMapRef != nil {
					addCM(src.ConfigMapRef.Name)
				}
				if src.SecretRef != nil {
					addS(src.SecretRef.Name)
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					continue
				}
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
					addCM(r.Name)
				}
				if r := e.ValueFrom.SecretKeyRef; r != nil {
					addS(r.Name)
				}
			}
		}
	}
	for _, v := range s.Volumes {
		if v.ConfigMap != nil {
			addCM(v.ConfigMap.Name)
		}
		if v.Secret != nil {
			addS(v.Secret.SecretName)
		}
	}
	return configMaps, secrets
}

// shortHash abbreviates a spec hash for messages: "sha256:0123456789ab".
func shortHash(h string) string {
	if h == "" {
		return "(none)"
	}
	algo, hex, ok := strings.Cut(h, ":")
	if !ok {
		algo, hex = "", h
	}
	if len(hex) > 12 {
		hex = hex[:12]
	}
	if algo == "" {
		return hex
	}
	return algo + ":" + hex
}

// lookupConfigMap returns the ConfigMap namespace/name of state, or nil.
func lookupConfigMap(state *specs.DesiredState, namespace, name string) *corev1.ConfigMap {
	if obj := state.Get(specs.Key{Kind: specs.KindConfigMap, Namespace: namespace, Name: name}); obj != nil {
		cm, _ := obj.Obj.(*corev1.ConfigMap)
		return cm
	}
	return nil
}

// lookupSecret returns the Secret namespace/name of state, or nil.
func lookupSecret(state *specs.DesiredState, namespace, name string) *corev1.Secret {
	if obj := state.Get(specs.Key{Kind: specs.KindSecret, Namespace: namespace, Name: name}); obj != nil {
		s, _ := obj.Obj.(*corev1.Secret)
		return s
	}
	return nil
}

// lookupClaim returns the PersistentVolumeClaim namespace/name of state, or nil.
func lookupClaim(state *specs.DesiredState, namespace, name string) *corev1.PersistentVolumeClaim {
	if obj := state.Get(specs.Key{Kind: specs.KindPersistentVolumeClaim, Namespace: namespace, Name: name}); obj != nil {
		c, _ := obj.Obj.(*corev1.PersistentVolumeClaim)
		return c
	}
	return nil
}
