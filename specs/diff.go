package specs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
)

// Diff returns the object-level, semantic difference between two desired
// states: objects only in to are added, objects only in from are removed,
// and objects whose canonical hash differs are modified, with the changed
// field paths. Either state may be nil (empty). Changes are ordered by key.
func Diff(from, to *DesiredState) ([]Change, error) {
	var changes []Change
	var fromObjs, toObjs []*Object
	if from != nil {
		fromObjs = from.Objects
	}
	if to != nil {
		toObjs = to.Objects
	}
	for _, a := range fromObjs {
		b := to.Get(a.Key())
		switch {
		case b == nil:
			changes = append(changes, newChange(ChangeRemove, a))
		case a.Hash != b.Hash || a.APIVersion != b.APIVersion:
			fields, err := DiffObjects(a, b)
			if err != nil {
				return nil, err
			}
			if len(fields) == 0 {
				if a.Hash == b.Hash {
					continue
				}
				// The hash differs, so the host will act on it: never report
				// such an object as unchanged.
				fields = []FieldChange{{Op: ChangeModify, Path: "(content)", Old: a.Hash, New: b.Hash}}
			}
			c := newChange(ChangeModify, b)
			c.Fields = fields
			changes = append(changes, c)
		}
	}
	for _, b := range toObjs {
		if from.Get(b.Key()) == nil {
			changes = append(changes, newChange(ChangeAdd, b))
		}
	}
	sort.SliceStable(changes, func(i, j int) bool {
		ki := Key{Kind: changes[i].Kind, Namespace: changes[i].Namespace, Name: changes[i].Name}
		kj := Key{Kind: changes[j].Kind, Namespace: changes[j].Namespace, Name: changes[j].Name}
		return ki.Less(kj)
	})
	return changes, nil
}

// newChange starts a Change for object o.
func newChange(action ChangeAction, o *Object) Change {
	return Change{Action: action, APIVersion: o.APIVersion, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name}
}

// DiffObjects returns the changed fields between two versions of one object.
// Values of a Secret's data are never included: only that they changed.
// Nor is any value of an object that held SOPS-encrypted values.
func DiffObjects(a, b *Object) ([]FieldChange, error) {
	va, err := generic(a.Obj)
	if err != nil {
		return nil, fmt.Errorf("diff %s: %w", a.Key(), err)
	}
	vb, err := generic(b.Obj)
	if err != nil {
		return nil, fmt.Errorf("diff %s: %w", b.Key(), err)
	}
	d := differ{secret: a.Kind == KindSecret, encrypted: a.Encrypted || b.Encrypted}
	d.value("", va, vb)
	return d.out, nil
}

// generic converts a typed object to maps, slices and scalars via JSON.
func generic(obj any) (any, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// differ accumulates field changes.
type differ struct {
	secret bool
	// encrypted withholds every value (the object was SOPS-encrypted).
	encrypted bool
	out       []FieldChange
}

// sensitivePath reports whether a path holds secret values.
func (d *differ) sensitivePath(path string) bool {
	if d.encrypted {
		return true
	}
	if !d.secret {
		return false
	}
	return path == "data" || path == "stringData" ||
		hasPathPrefix(path, "data") || hasPathPrefix(path, "stringData") ||
		// kubectl's copy of the whole object, secret values included.
		path == "metadata.annotations[kubectl.kubernetes.io/last-applied-configuration]"
}

// hasPathPrefix reports whether path is below prefix.
func hasPathPrefix(path, prefix string) bool {
	return len(path) > len(prefix) && path[:len(prefix)] == prefix && (path[len(prefix)] == '.' || path[len(prefix)] == '[')
}

// emit records one change, withholding secret values.
func (d *differ) emit(op ChangeAction, path string, old, new any) {
	fc := FieldChange{Op: op, Path: path}
	if d.sensitivePath(path) {
		fc.Sensitive = true
	} else {
		fc.Old, fc.New = old, new
	}
	d.out = append(d.out, fc)
}

// value compares a and b at path.
func (d *differ) value(path string, a, b any) {
	ma, aIsMap := a.(map[string]any)
	mb, bIsMap := b.(map[string]any)
	if aIsMap && bIsMap {
		keys := map[string]bool{}
		for k := range ma {
			keys[k] = true
		}
		for k := range mb {
			keys[k] = true
		}
		for _, k := range sortedKeys(keys) {
			va, inA := ma[k]
			vb, inB := mb[k]
			p := fieldPath(path, k)
			_, vaMap := va.(map[string]any)
			_, vbMap := vb.(map[string]any)
			switch {
			case d.sensitivePath(p) && (vaMap || vbMap) && (inA != inB):
				// A secret map that appears or goes is listed key by key,
				// so each key shows without its value.
				if !inA {
					va = map[string]any{}
				} else {
					vb = map[string]any{}
				}
				d.value(p, va, vb)
			case inA && !inB:
				d.emit(ChangeRemove, p, va, nil)
			case !inA && inB:
				d.emit(ChangeAdd, p, nil, vb)
			default:
				d.value(p, va, vb)
			}
		}
		return
	}
	la, aIsList := a.([]any)
	lb, bIsList := b.([]any)
	if aIsList && bIsList {
		d.list(path, la, lb)
		return
	}
	if !reflect.DeepEqual(a, b) {
		d.emit(ChangeModify, path, a, b)
	}
}

// list compares two lists: by name when every element is an object with a
// unique name (containers, env, ports, volumes), by index otherwise.
func (d *differ) list(path string, a, b []any) {
	na, okA := namedElements(a)
	nb, okB := namedElements(b)
	if okA && okB {
		names := map[string]bool{}
		for k := range na {
			names[k] = true
		}
		for k := range nb {
			names[k] = true
		}
		if orderA, orderB := commonOrder(a, nb), commonOrder(b, na); !reflect.DeepEqual(orderA, orderB) {
			// Order is meaning for initContainers (run in turn) and env
			// (later values may refer to earlier ones).
			d.emit(ChangeModify, path+"[order]", orderA, orderB)
		}
		for _, name := range sortedKeys(names) {
			ea, inA := na[name]
			eb, inB := nb[name]
			p := path + "[name=" + name + "]"
			switch {
			case inA && !inB:
				d.emit(ChangeRemove, p, ea, nil)
			case !inA && inB:
				d.emit(ChangeAdd, p, nil, eb)
			default:
				d.value(p, ea, eb)
			}
		}
		return
	}
	if !scalarList(a) || !scalarList(b) {
		for i := 0; i < max(len(a), len(b)); i++ {
			p := indexPath(path, i)
			switch {
			case i >= len(b):
				d.emit(ChangeRemove, p, a[i], nil)
			case i >= len(a):
				d.emit(ChangeAdd, p, nil, b[i])
			default:
				d.value(p, a[i], b[i])
			}
		}
		return
	}
	if !reflect.DeepEqual(a, b) {
		d.emit(ChangeModify, path, a, b)
	}
}

// namedElements indexes a list of objects by their unique "name" field.
func namedElements(l []any) (map[string]any, bool) {
	if len(l) == 0 {
		return map[string]any{}, true
	}
	out := make(map[string]any, len(l))
	for _, e := range l {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, false
		}
		name, ok := m["name"].(string)
		if !ok || name == "" {
			return nil, false
		}
		if _, dup := out[name]; dup {
			return nil, false
		}
		out[name] = e
	}
	return out, true
}

// commonOrder returns the names of list l's elements that other also has,
// in l's order.
func commonOrder(l []any, other map[string]any) []any {
	out := []any{}
	for _, e := range l {
		name := e.(map[string]any)["name"].(string)
		if _, ok := other[name]; ok {
			out = append(out, name)
		}
	}
	return out
}

// scalarList reports whether every element is a scalar.
func scalarList(l []any) bool {
	for _, e := range l {
		switch e.(type) {
		case map[string]any, []any:
			return false
		}
	}
	return true
}

// plainKey matches map keys that read well after a dot.
var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// fieldPath appends a key: dotted when it is a plain identifier, bracketed
// otherwise ("metadata.labels[app.kubernetes.io/name]").
func fieldPath(path, key string) string {
	if plainKey.MatchString(key) {
		return joinPath(path, key)
	}
	return keyPath(path, key)
}
