package specs

import (
	"encoding"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// explicitTypes are the types the decoder handles itself (decoder.walk)
// instead of by their JSON shape: they have their own unmarshallers.
var explicitTypes = map[reflect.Type]bool{quantityType: true, intOrStringType: true, timeType: true}

// reachableTypes walks every type the decoder can reach from a supported
// kind through supported fields. It returns the struct types it decodes
// field by field and every other type met (scalars, slices, maps,
// pointers and the explicit types), with the field path it was first met
// at.
func reachableTypes() (structs, others map[reflect.Type]string) {
	structs, others = map[reflect.Type]string{}, map[reflect.Type]string{}
	var visit func(t reflect.Type, path string)
	visit = func(t reflect.Type, path string) {
		if t.Kind() != reflect.Struct || explicitTypes[t] {
			if _, seen := others[t]; seen {
				return
			}
			others[t] = path
			switch t.Kind() {
			case reflect.Pointer, reflect.Slice, reflect.Array:
				visit(t.Elem(), path+"[]")
			case reflect.Map:
				visit(t.Key(), path+"[key]")
				visit(t.Elem(), path+"[]")
			}
			return
		}
		if _, seen := structs[t]; seen {
			return
		}
		structs[t] = path
		ti := typeInfoOf(t)
		for _, name := range ti.names {
			if ti.supported[name] {
				visit(ti.fields[name].typ, joinPath(path, name))
			}
		}
	}
	for _, k := range kinds {
		visit(k.typ, k.kind)
	}
	return structs, others
}

// TestSupportedFieldsCoverReachableTypes makes the allow-list
// deny-by-default in fact: every struct type reachable from a supported kind
// lists its supported fields, so a k8s.io/api upgrade that adds a field (or
// a supported field whose type was never reviewed) fails here instead of
// loading a field kelpie then ignores. Entries for types that are no longer
// reachable fail too, so the list stays the truth.
func TestSupportedFieldsCoverReachableTypes(t *testing.T) {
	structs, _ := reachableTypes()
	for _, typ := range sortedTypes(structs) {
		if _, ok := supportedFields[typ]; !ok {
			ti := typeInfoOf(typ)
			t.Errorf("%s (reached at %s) is not in supportedFields; list the fields kelpie implements (it has %s)",
				typ, structs[typ], strings.Join(ti.names, ", "))
		}
	}
	for typ := range supportedFields {
		if _, ok := structs[typ]; !ok {
			t.Errorf("supportedFields lists %s, which no supported kind reaches; remove it", typ)
		}
	}
}

// TestReachableTypesDecodeByShape checks every reachable type is one the
// decoder decodes the way encoding/json would: no type with its own JSON or
// text unmarshaller (its rules would be bypassed) unless the decoder
// handles it explicitly, no kind the decoder cannot set, no `,string`
// option and no embedded pointer (both unsupported by collectFields).
func TestReachableTypesDecodeByShape(t *testing.T) {
	structs, others := reachableTypes()
	all := map[reflect.Type]string{}
	for typ, p := range structs {
		all[typ] = p
	}
	for typ, p := range others {
		all[typ] = p
	}
	unmarshaler := reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler := reflect.TypeFor[encoding.TextUnmarshaler]()
	for _, typ := range sortedTypes(all) {
		where := all[typ]
		if explicitTypes[typ] || typ.Kind() == reflect.Pointer {
			continue // the decoder goes through a pointer to its element, checked on its own
		}
		for _, iface := range []reflect.Type{unmarshaler, textUnmarshaler} {
			if typ.Implements(iface) || reflect.PointerTo(typ).Implements(iface) {
				t.Errorf("%s (at %s) implements %s, which the decoder does not handle; decode it explicitly in decoder.walk", typ, where, iface)
			}
		}
		switch typ.Kind() {
		case reflect.Array, reflect.Chan, reflect.Func, reflect.Complex64, reflect.Complex128, reflect.UnsafePointer, reflect.Uintptr:
			t.Errorf("%s (at %s): the decoder cannot decode a %s", typ, where, typ.Kind())
		case reflect.Interface:
			t.Errorf("%s (at %s): an interface field would take any YAML; give it a concrete type", typ, where)
		case reflect.Map:
			if typ.Key().Kind() != reflect.String {
				t.Errorf("%s (at %s): map keys must be strings", typ, where)
			}
		case reflect.Struct:
			for i := 0; i < typ.NumField(); i++ {
				f := typ.Field(i)
				_, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
				if strings.Contains(","+opts+",", ",string,") {
					t.Errorf("%s.%s (at %s): the `,string` JSON option is not supported by the decoder", typ, f.Name, where)
				}
				if f.Anonymous && f.Type.Kind() == reflect.Pointer {
					t.Errorf("%s.%s (at %s): embedded pointers are not supported by the decoder", typ, f.Name, where)
				}
			}
		}
	}
}

// TestUnsupportedFieldsRefused loads alpha and unimplemented fields of types
// that used to be missing from the allow-list: each must be refused at its
// line, never loaded and dropped.
func TestUnsupportedFieldsRefused(t *testing.T) {
	const doc = `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: c
    image: busybox
    securityContext:
      seccompProfile: {type: Localhost, localhostProfile: my.json}
    env:
    - name: A
      valueFrom: {secretKeyRef: {name: s, key: k, extra: 1}}
  volumes:
  - name: s
    secret:
      secretName: s
      defaultUser: 1000
      items: [{key: k, path: k, user: 1000}]
  - name: c
    configMap: {name: c, defaultUser: 1000}
`
	_, err := reviewLoad(t, doc)
	want := []string{
		`f.yaml:9:41: spec.containers[0].securityContext.seccompProfile.localhostProfile: not supported by kelpie`,
		`f.yaml:12:51: spec.containers[0].env[0].valueFrom.secretKeyRef.extra: unknown field "extra"`,
		`f.yaml:17:7: spec.volumes[0].secret.defaultUser: not supported by kelpie`,
		`f.yaml:18:33: spec.volumes[0].secret.items[0].user: not supported by kelpie`,
		`f.yaml:20:26: spec.volumes[1].configMap.defaultUser: not supported by kelpie`,
	}
	if err == nil {
		t.Fatal("loaded; want errors")
	}
	got := strings.Split(err.Error(), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}

// sortedTypes returns the keys of m ordered by name, for stable output.
func sortedTypes(m map[reflect.Type]string) []reflect.Type {
	out := make([]reflect.Type, 0, len(m))
	for typ := range m {
		out = append(out, typ)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}
