package reconciler

import (
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// env resolves the environment of container c of pod namespace/podName
// as the kubelet does: every envFrom source in order (keys sorted within a
// source, each name given the source's prefix), then every env entry; a
// later definition replaces the value of an earlier one. $(VAR) in an env
// value expands to a variable defined before it. Optional references to a
// missing ConfigMap, Secret or key are skipped; envFrom keys that are not
// valid variable names are skipped with a notice, as the kubelet does.
func (b *podBuilder) env(namespace, podName string, c *corev1.Container) ([]EnvVar, error) {
	var l envList
	for _, src := range c.EnvFrom {
		switch {
		case src.ConfigMapRef != nil:
			name := src.ConfigMapRef.Name
			cm := lookupConfigMap(b.state, namespace, name)
			if cm == nil {
				if isOptional(src.ConfigMapRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("envFrom: ConfigMap %q not found", name)
			}
			for _, k := range sortedKeys(cm.Data) {
				b.setFrom(&l, c.Name, "ConfigMap", name, src.Prefix+k, cm.Data[k], false)
			}
		case src.SecretRef != nil:
			name := src.SecretRef.Name
			s := lookupSecret(b.state, namespace, name)
			if s == nil {
				if isOptional(src.SecretRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("envFrom: Secret %q not found", name)
			}
			for _, k := range sortedKeys(s.Data) {
				b.setFrom(&l, c.Name, "Secret", name, src.Prefix+k, string(s.Data[k]), true)
			}
		}
	}
	for _, e := range c.Env {
		vf := e.ValueFrom
		switch {
		case vf == nil:
			l.set(EnvVar{Name: e.Name, Value: expand(e.Value, l.lookup)})
		case vf.FieldRef != nil:
			switch vf.FieldRef.FieldPath {
			case "metadata.name":
				l.set(EnvVar{Name: e.Name, Value: podName})
			case "metadata.namespace":
				l.set(EnvVar{Name: e.Name, Value: namespace})
			default:
				return nil, fmt.Errorf("env %s: fieldRef %q is not supported", e.Name, vf.FieldRef.FieldPath)
			}
		case vf.ConfigMapKeyRef != nil:
			r := vf.ConfigMapKeyRef
			cm := lookupConfigMap(b.state, namespace, r.Name)
			v, ok := configMapValue(cm, r.Key)
			switch {
			case ok:
				l.set(EnvVar{Name: e.Name, Value: v})
			case isOptional(r.Optional):
			case cm == nil:
				return nil, fmt.Errorf("env %s: ConfigMap %q not found", e.Name, r.Name)
			default:
				return nil, fmt.Errorf("env %s: ConfigMap %q has no key %q", e.Name, r.Name, r.Key)
			}
		case vf.SecretKeyRef != nil:
			r := vf.SecretKeyRef
			s := lookupSecret(b.state, namespace, r.Name)
			var v []byte
			ok := false
			if s != nil {
				v, ok = s.Data[r.Key]
			}
			switch {
			case ok:
				l.set(EnvVar{Name: e.Name, Value: string(v), Secret: true})
			case isOptional(r.Optional):
			case s == nil:
				return nil, fmt.Errorf("env %s: Secret %q not found", e.Name, r.Name)
			default:
				return nil, fmt.Errorf("env %s: Secret %q has no key %q", e.Name, r.Name, r.Key)
			}
		default:
			return nil, fmt.Errorf("env %s: unsupported valueFrom", e.Name)
		}
	}
	return l.vars, nil
}

// setFrom sets a variable from an envFrom source, skipping (with a
// notice) names that are not valid variable names.
func (b *podBuilder) setFrom(l *envList, container, kind, source, name, value string, secret bool) {
	if msgs := validation.IsEnvVarName(name); len(msgs) > 0 {
		b.note("container %s: envFrom %s %s: %q is not a valid environment variable name; skipped", container, kind, source, name)
		return
	}
	l.set(EnvVar{Name: name, Value: value, Secret: secret})
}

// configMapValue returns a key of a ConfigMap (data, then binaryData).
func configMapValue(cm *corev1.ConfigMap, key string) (string, bool) {
	if cm == nil {
		return "", false
	}
	if v, ok := cm.Data[key]; ok {
		return v, true
	}
	if v, ok := cm.BinaryData[key]; ok {
		return string(v), true
	}
	return "", false
}

// isOptional reads an optional flag.
func isOptional(p *bool) bool { return p != nil && *p }

// envList is an environment under construction: setting a name again
// replaces its value and keeps its place.
type envList struct {
	vars  []EnvVar
	index map[string]int
}

// set defines or redefines a variable.
func (l *envList) set(v EnvVar) {
	if i, ok := l.index[v.Name]; ok {
		l.vars[i] = v
		return
	}
	if l.index == nil {
		l.index = map[string]int{}
	}
	l.index[v.Name] = len(l.vars)
	l.vars = append(l.vars, v)
}

// lookup returns a variable's value.
func (l *envList) lookup(name string) (string, bool) {
	i, ok := l.index[name]
	if !ok {
		return "", false
	}
	return l.vars[i].Value, true
}

// envLookup indexes a resolved environment for $(VAR) expansion.
func envLookup(env []EnvVar) func(string) (string, bool) {
	m := make(map[string]string, len(env))
	for _, e := range env {
		m[e.Name] = e.Value
	}
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
