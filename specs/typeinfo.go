package specs

import (
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/kelpie-dev/kelpie/internal/suggest"
)

// fieldInfo is one JSON field of a Go struct, as encoding/json sees it.
type fieldInfo struct {
	typ   reflect.Type
	index []int // for reflect.Value.FieldByIndex
}

// typeInfo is the field table of a struct type, with embedded
// `json:",inline"` structs flattened into it.
type typeInfo struct {
	fields map[string]fieldInfo
	names  []string // sorted, for suggestions
	// supported lists the fields kelpie implements (deny-by-default: a type
	// missing from supportedFields has none).
	supported map[string]bool
}

var typeInfos sync.Map // reflect.Type → *typeInfo

// typeInfoOf returns the (cached) field table of struct type t.
func typeInfoOf(t reflect.Type) *typeInfo {
	if ti, ok := typeInfos.Load(t); ok {
		return ti.(*typeInfo)
	}
	ti := &typeInfo{fields: map[string]fieldInfo{}}
	collectFields(t, nil, ti.fields)
	for name := range ti.fields {
		ti.names = append(ti.names, name)
	}
	sort.Strings(ti.names)
	ti.supported = map[string]bool{}
	for _, name := range supportedFields[t] {
		if _, ok := ti.fields[name]; !ok {
			panic("specs: supported field " + name + " is not a field of " + t.String())
		}
		ti.supported[name] = true
	}
	actual, _ := typeInfos.LoadOrStore(t, ti)
	return actual.(*typeInfo)
}

// collectFields adds the JSON fields of struct type t to out.
func collectFields(t reflect.Type, index []int, out map[string]fieldInfo) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		idx := append(append([]int(nil), index...), i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && (strings.Contains(opts, "inline") || tag == "") {
			// Embedded structs are flattened; embedded pointers never occur
			// in the types kelpie decodes and are not supported.
			if f.Type.Kind() == reflect.Struct {
				collectFields(f.Type, idx, out)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = fieldInfo{typ: f.Type, index: idx}
	}
}

// suggest returns the supported field closest to name, or "".
func (ti *typeInfo) suggest(name string) string {
	var cands []string
	for _, cand := range ti.names {
		if ti.supported[cand] {
			cands = append(cands, cand)
		}
	}
	return suggest.Closest(name, cands)
}
