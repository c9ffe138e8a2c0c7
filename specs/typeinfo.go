package specs

import (
	"reflect"
	"strings"
	"sync"
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
	// supported lists the fields kelpie implements; nil means all of them.
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
	if s, ok := supportedFields[t]; ok {
		ti.supported = map[string]bool{}
		for _, name := range s {
			if _, ok := ti.fields[name]; !ok {
				panic("specs: supported field " + name + " is not a field of " + t.String())
			}
			ti.supported[name] = true
		}
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

// suggest returns the known field closest to name (edit distance ≤ 2), or "".
func (ti *typeInfo) suggest(name string) string {
	best, bestDist := "", 3
	for _, cand := range ti.names {
		if ti.supported != nil && !ti.supported[cand] {
			continue
		}
		if d := editDistance(strings.ToLower(name), strings.ToLower(cand)); d < bestDist || (d == bestDist && cand < best) {
			best, bestDist = cand, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
