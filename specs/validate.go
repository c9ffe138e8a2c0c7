package specs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	corev1 "k8s.io/api/core/v1"
)

// check validates one object, recording errors at field paths of its YAML.
type check struct {
	l  *loader
	it *item
}

// errorf records a problem at field path of the object being checked.
func (c *check) errorf(path, format string, args ...any) {
	c.l.errorAt(c.it, path, format, args...)
}

// reference is a use of another object of the repository: a Secret,
// ConfigMap, PersistentVolumeClaim or Network that must exist.
type reference struct {
	from     *item
	path     string
	kind     string
	name     string
	key      string // the data key a keyRef names, or ""
	optional bool
}

// ref records that the object being checked uses another object.
func (c *check) ref(path, kind, name, key string, optional bool) {
	if name == "" {
		return // reported as a missing name by the caller's checks
	}
	c.l.refs = append(c.l.refs, reference{from: c.it, path: path, kind: kind, name: name, key: key, optional: optional})
}

// finish runs the checks that need every object: defaults, per-object
// validation, duplicates, references, then the canonical hashes.
func (l *loader) finish() {
	index := make(map[Key]*item, len(l.items))
	for _, it := range l.items {
		k := it.obj.Key()
		if prev, dup := index[k]; dup {
			l.errorAt(it, "metadata.name", "duplicate %s: also defined at %s", k, prev.obj.Pos)
			continue
		}
		index[k] = it
	}
	for _, it := range l.items {
		applyDefaults(it.obj.Obj)
		c := &check{l: l, it: it}
		c.object()
	}
	for _, r := range l.refs {
		l.checkReference(r, index)
	}
	l.serviceAllocations()
	l.podBudget()
	if len(l.errs) > 0 {
		return
	}
	for _, it := range l.items {
		h, err := Hash(it.obj.Obj)
		if err != nil {
			l.errorAt(it, "", "%v", err)
			continue
		}
		it.obj.Hash = h
	}
}

// checkReference reports a reference to an object the repository lacks.
func (l *loader) checkReference(r reference, index map[Key]*item) {
	ns := r.from.obj.Namespace
	if !kinds[r.kind].namespaced {
		ns = ""
	}
	target, ok := index[Key{Kind: r.kind, Namespace: ns, Name: r.name}]
	if !ok {
		if r.optional || l.unparsed || l.failed[Key{Kind: r.kind, Namespace: ns, Name: r.name}] {
			return
		}
		where := ""
		if ns != "" {
			where = " in namespace " + ns
		}
		l.errorAt(r.from, r.path, "%s %q not found%s; define it in the repository", r.kind, r.name, where)
		return
	}
	if r.key == "" || r.optional {
		return
	}
	if !hasDataKey(target.obj.Obj, r.key) {
		l.errorAt(r.from, r.path, "%s %q has no key %q", r.kind, r.name, r.key)
	}
}

// Hash returns the canonical content hash of a typed object: the SHA-256 of
// its JSON encoding, which orders struct fields by declaration and map keys
// lexically, so key order, comments and formatting in the YAML do not count.
func Hash(obj any) (string, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return "", fmt.Errorf("hash object: %w", err)
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// serviceAllocations reports Services that claim a clusterIP or a node port
// another Service already holds (objects are in file order, so the later
// definition is the one reported).
func (l *loader) serviceAllocations() {
	ips := map[string]*item{}
	nodePorts := map[string]*item{}
	for _, it := range l.items {
		svc, ok := it.obj.Obj.(*corev1.Service)
		if !ok {
			continue
		}
		if ip := svc.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
			if prev, dup := ips[ip]; dup {
				l.errorAt(it, "spec.clusterIP", "clusterIP %s is already used by Service %s (%s)", ip, prev.obj.Key(), prev.obj.Pos)
			} else {
				ips[ip] = it
			}
		}
		for i, p := range svc.Spec.Ports {
			if p.NodePort == 0 {
				continue
			}
			key := fmt.Sprintf("%d/%s", p.NodePort, p.Protocol)
			if prev, dup := nodePorts[key]; dup && prev != it {
				l.errorAt(it, indexPath("spec.ports", i)+".nodePort", "node port %s is already used by Service %s (%s)", key, prev.obj.Key(), prev.obj.Pos)
			} else {
				nodePorts[key] = it
			}
		}
	}
}
