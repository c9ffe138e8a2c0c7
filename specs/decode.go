package specs

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var (
	quantityType    = typeOf[resource.Quantity]()
	intOrStringType = typeOf[intstr.IntOrString]()
	timeType        = typeOf[metav1.Time]()
)

// decoder walks one YAML document alongside the Go value it decodes into,
// following the encoding/json field names and rules that the Kubernetes types
// are written for. It checks the document strictly (unknown fields,
// unsupported fields, wrong scalar types, bad quantities) with the position
// of every offending node, and sets the value as it goes. Aliases are
// expanded against a node budget.
type decoder struct {
	file    string
	limits  Limits
	nodes   int
	aborted bool
	errs    ErrorList
	// secret is set while decoding a Secret: values under data and
	// stringData are never quoted in messages.
	secret bool
	// withhold is set while decoding a document that held SOPS-encrypted
	// values: no value of it is quoted in messages.
	withhold bool
}

// show describes node n for a message at path, withholding the value when
// it belongs to a Secret's data.
func (d *decoder) show(n *yaml.Node, path string) string {
	if d.withhold || d.secret && (isDataPath(path, "data") || isDataPath(path, "stringData")) {
		return kindOf(n)
	}
	return describe(n)
}

// quote is a scalar's value quoted for a message, or "(value withheld)"
// in a document that held SOPS-encrypted values.
func (d *decoder) quote(n *yaml.Node) string {
	if d.withhold {
		return "(value withheld)"
	}
	return strconv.Quote(n.Value)
}

// text is a scalar's value for a message, or "(value withheld)" in a
// document that held SOPS-encrypted values.
func (d *decoder) text(n *yaml.Node) string {
	if d.withhold {
		return "(value withheld)"
	}
	return n.Value
}

// isDataPath reports whether path is field or below it.
func isDataPath(path, field string) bool {
	return path == field || hasPathPrefix(path, field)
}

// kindOf names a node's kind without its value: "string", "integer", "list".
func kindOf(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	}
	switch n.ShortTag() {
	case "!!str":
		return "a string (value withheld)"
	case "!!int":
		return "an integer (value withheld)"
	case "!!float":
		return "a number (value withheld)"
	case "!!bool":
		return "a boolean (value withheld)"
	case "!!null":
		return "null"
	}
	return "a scalar (value withheld)"
}

// errorf records a problem at node n.
func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: d.pos(n), Field: path, Message: fmt.Sprintf(format, args...)})
}

// pos returns the position of node n.
func (d *decoder) pos(n *yaml.Node) Position {
	return Position{File: d.file, Line: n.Line, Column: n.Column}
}

// decode checks root against struct type t and returns a pointer to the
// decoded value. The value is only meaningful when no errors were recorded.
func (d *decoder) decode(root *yaml.Node, t reflect.Type) any {
	v := reflect.New(t)
	d.walk(root, v.Elem(), "", 0)
	return v.Interface()
}

// walk checks node n against the type of v at field path path and sets v.
func (d *decoder) walk(n *yaml.Node, v reflect.Value, path string, depth int) {
	if d.aborted {
		return
	}
	d.nodes++
	if d.nodes > d.limits.MaxNodes {
		d.errorf(n, "", "document expands to more than %d YAML nodes (alias bomb?); refused", d.limits.MaxNodes)
		d.aborted = true
		return
	}
	if depth > d.limits.MaxDepth {
		d.errorf(n, path, "nested deeper than %d levels; refused", d.limits.MaxDepth)
		d.aborted = true
		return
	}
	if n.Kind == yaml.AliasNode {
		d.walk(n.Alias, v, path, depth+1)
		return
	}
	t := v.Type()
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		v.SetZero() // as encoding/json does for null
		return
	}
	switch t {
	case quantityType:
		d.quantity(n, v, path)
		return
	case intOrStringType:
		d.intOrString(n, v, path)
		return
	case timeType:
		d.time(n, v, path)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.walk(n, v.Elem(), path, depth)
	case reflect.Struct:
		d.structure(n, v, path, depth)
	case reflect.Map:
		d.mapping(n, v, path, depth)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			d.bytes(n, v, path)
			return
		}
		d.sequence(n, v, path, depth)
	case reflect.String:
		if d.expectScalar(n, path, "string", "!!str") {
			v.SetString(n.Value)
		}
	case reflect.Bool:
		if d.expectScalar(n, path, "boolean", "!!bool") {
			v.SetBool(boolText(n.Value) == "true")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		d.integer(n, v, path)
	case reflect.Float32, reflect.Float64:
		d.float(n, v, path)
	case reflect.Interface:
		if g, ok := d.generic(n, path, depth); ok && g != nil {
			v.Set(reflect.ValueOf(g))
		}
	default:
		d.errorf(n, path, "cannot decode into %s", t)
	}
}

// expectScalar reports whether n is a scalar with tag want, recording an
// error naming what was expected otherwise.
func (d *decoder) expectScalar(n *yaml.Node, path, what, want string) bool {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == want {
		return true
	}
	msg := fmt.Sprintf("expected %s, got %s", what, d.show(n, path))
	if want == "!!str" && n.Kind == yaml.ScalarNode {
		msg += " (quote it to make it a string)"
	}
	d.errs = append(d.errs, &Error{Pos: d.pos(n), Field: path, Message: msg})
	return false
}

// structure checks a mapping against a struct type's JSON fields.
func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected mapping, got %s", d.show(n, path))
		return
	}
	ti := typeInfoOf(v.Type())
	pairs := d.pairs(n, path, depth, false)
	for i := 0; i < len(pairs); i += 2 {
		k, val := pairs[i], pairs[i+1]
		if k.Kind == yaml.AliasNode {
			d.errorf(k, path, "an alias (*%s) cannot be used as a key; write the key out", k.Value)
			continue
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			d.errorf(k, path, "field names must be strings, got %s", d.show(k, path))
			continue
		}
		name := k.Value
		fieldPath := joinPath(path, name)
		if depth == 0 && name == "status" {
			continue // status is the cluster's to write; manifests' status is ignored
		}
		f, ok := ti.fields[name]
		if !ok {
			msg := fmt.Sprintf("unknown field %q", name)
			if s := ti.suggest(name); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.errorf(k, fieldPath, "%s", msg)
			continue
		}
		if !ti.supported[name] {
			d.errorf(k, fieldPath, "not supported by kelpie")
			continue
		}
		d.walk(val, v.FieldByIndex(f.index), fieldPath, depth+1)
	}
}

// pairs returns the key/value nodes of mapping n with YAML merge keys ("<<")
// resolved (explicit keys win over merged ones) and duplicate keys reported.
func (d *decoder) pairs(n *yaml.Node, path string, depth int, isMap bool) []*yaml.Node {
	hasMerge := false
	for i := 0; i < len(n.Content); i += 2 {
		if n.Content[i].ShortTag() == "!!merge" {
			hasMerge = true
			break
		}
	}
	var out []*yaml.Node
	if !hasMerge {
		out = n.Content
	} else {
		var merged []*yaml.Node
		for i := 0; i < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.ShortTag() != "!!merge" {
				out = append(out, k, v)
				continue
			}
			merged = append(merged, d.mergeSources(v, path, depth, isMap)...)
		}
		// Merged keys come first so explicit keys override them below.
		out = append(merged, out...)
		out = dedupeMerged(out)
	}
	if len(out) <= 2 {
		return out
	}
	seen := make(map[string]*yaml.Node, len(out)/2)
	for i := 0; i < len(out); i += 2 {
		k := out[i]
		if k.Kind != yaml.ScalarNode {
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			p := joinPath(path, k.Value)
			if isMap {
				p = keyPath(path, k.Value)
			}
			d.errorf(k, p, "duplicate key %q (first at line %d)", k.Value, prev.Line)
			continue
		}
		seen[k.Value] = k
	}
	return out
}

// mergeSources returns the key/value pairs a "<<" value contributes.
func (d *decoder) mergeSources(v *yaml.Node, path string, depth int, isMap bool) []*yaml.Node {
	for v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	// Merged pairs count against the node budget like any expansion, so a
	// "merge bomb" of nested aliases is refused like an alias bomb.
	d.nodes += 1 + len(v.Content)
	if d.aborted || d.nodes > d.limits.MaxNodes || depth > d.limits.MaxDepth {
		if !d.aborted {
			d.errorf(v, path, "merge keys expand beyond %d YAML nodes or %d levels; refused", d.limits.MaxNodes, d.limits.MaxDepth)
		}
		d.aborted = true
		return nil
	}
	switch v.Kind {
	case yaml.MappingNode:
		return d.pairs(v, path, depth+1, isMap)
	case yaml.SequenceNode:
		// Earlier mappings of the list win over later ones (YAML merge key
		// spec, and yaml.v3): they go last, where dedupeMerged keeps them.
		var out []*yaml.Node
		for i := len(v.Content) - 1; i >= 0; i-- {
			out = append(out, d.mergeSources(v.Content[i], path, depth+1, isMap)...)
		}
		return out
	default:
		d.errorf(v, path, "merge key (<<) needs a mapping or a list of mappings, got %s", d.show(v, path))
		return nil
	}
}

// dedupeMerged keeps the last occurrence of each key among merged and
// explicit pairs (explicit pairs come last and so win).
func dedupeMerged(pairs []*yaml.Node) []*yaml.Node {
	last := map[string]int{}
	for i := 0; i < len(pairs); i += 2 {
		last[pairs[i].Value] = i
	}
	out := make([]*yaml.Node, 0, len(pairs))
	for i := 0; i < len(pairs); i += 2 {
		if last[pairs[i].Value] == i {
			out = append(out, pairs[i], pairs[i+1])
		}
	}
	return out
}

// mapping checks a YAML mapping against a Go map type with string keys.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected mapping, got %s", d.show(n, path))
		return
	}
	t := v.Type()
	pairs := d.pairs(n, path, depth, true)
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(t, len(pairs)/2))
	}
	for i := 0; i < len(pairs); i += 2 {
		k, val := pairs[i], pairs[i+1]
		if k.Kind == yaml.AliasNode {
			d.errorf(k, path, "an alias (*%s) cannot be used as a key; write the key out", k.Value)
			continue
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			// As JSON, whose keys are strings: `1: x` would be "1" to one
			// reader and an error to another, and 0x10 would be "16".
			msg := fmt.Sprintf("keys must be strings, got %s", d.show(k, path))
			if k.Kind == yaml.ScalarNode {
				msg += " (quote it to make it a string)"
			}
			d.errorf(k, keyPath(path, k.Value), "%s", msg)
			continue
		}
		elem := reflect.New(t.Elem()).Elem()
		d.walk(val, elem, keyPath(path, k.Value), depth+1)
		v.SetMapIndex(reflect.ValueOf(k.Value).Convert(t.Key()), elem)
	}
}

// sequence checks a YAML sequence against a Go slice type.
func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected list, got %s", d.show(n, path))
		return
	}
	v.Set(reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content)))
	for i, item := range n.Content {
		d.walk(item, v.Index(i), indexPath(path, i), depth+1)
	}
}

// integer checks an integer scalar and its range for type t.
func (d *decoder) integer(n *yaml.Node, v reflect.Value, path string) {
	if !d.expectScalar(n, path, "integer", "!!int") {
		return
	}
	t := v.Type()
	i, err := strconv.ParseInt(n.Value, 0, 64)
	if err != nil {
		d.errorf(n, path, "%s out of range", d.show(n, path))
		return
	}
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	switch t.Kind() {
	case reflect.Int32:
		lo, hi = math.MinInt32, math.MaxInt32
	case reflect.Int16:
		lo, hi = math.MinInt16, math.MaxInt16
	case reflect.Int8:
		lo, hi = math.MinInt8, math.MaxInt8
	case reflect.Uint, reflect.Uint64:
		lo = 0
	case reflect.Uint32:
		lo, hi = 0, math.MaxUint32
	case reflect.Uint16:
		lo, hi = 0, math.MaxUint16
	case reflect.Uint8:
		lo, hi = 0, math.MaxUint8
	}
	if i < lo || i > hi {
		d.errorf(n, path, "%s out of range [%d, %d]", d.show(n, path), lo, hi)
		return
	}
	if t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64 {
		v.SetUint(uint64(i))
	} else {
		v.SetInt(i)
	}
}

// float checks a numeric scalar.
func (d *decoder) float(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!float" && n.ShortTag() != "!!int") {
		d.errorf(n, path, "expected number, got %s", d.show(n, path))
		return
	}
	f, err := strconv.ParseFloat(n.Value, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		d.errorf(n, path, "expected a finite number, got %s", d.show(n, path))
		return
	}
	v.SetFloat(f)
}

// bytes checks a base64 scalar for a []byte field.
func (d *decoder) bytes(n *yaml.Node, v reflect.Value, path string) {
	if !d.expectScalar(n, path, "base64 string", "!!str") && !(n.Kind == yaml.ScalarNode && n.ShortTag() == "!!binary") {
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!binary" {
		d.errs = d.errs[:len(d.errs)-1] // !!binary is base64 too
	}
	data, err := base64.StdEncoding.DecodeString(stripSpace(n.Value))
	if err != nil {
		d.errorf(n, path, "invalid base64 data: %v", err)
		return
	}
	v.SetBytes(data)
}

// quantity checks a resource quantity ("500m", "1Gi", 2).
func (d *decoder) quantity(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected quantity (like 500m or 1Gi), got %s", d.show(n, path))
		return
	}
	// A number means what it means in JSON, as the API server reads it:
	// 0777 is 511, 0x10 is 16, and a float is a float64.
	text := n.Value
	switch n.ShortTag() {
	case "!!int":
		if i, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
			text = strconv.FormatInt(i, 10)
		} else if u, err := strconv.ParseUint(n.Value, 0, 64); err == nil {
			text = strconv.FormatUint(u, 10)
		} else {
			d.errorf(n, path, "%s out of range", d.show(n, path))
			return
		}
	case "!!float":
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			d.errorf(n, path, "expected a finite number, got %s", d.show(n, path))
			return
		}
		b, _ := json.Marshal(f)
		text = string(b)
	}
	q, err := resource.ParseQuantity(text)
	if err != nil {
		d.errorf(n, path, "invalid quantity %s: want a number with an optional suffix like 500m, 1.5, 128Mi or 2G", d.quote(n))
		return
	}
	v.Set(reflect.ValueOf(q))
}

// intOrString checks an int-or-string field (ports, maxSurge).
func (d *decoder) intOrString(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		i, err := strconv.ParseInt(n.Value, 0, 32)
		if err != nil {
			d.errorf(n, path, "integer %s out of range", d.text(n))
			return
		}
		v.Set(reflect.ValueOf(intstr.FromInt32(int32(i))))
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		v.Set(reflect.ValueOf(intstr.FromString(n.Value)))
		return
	}
	d.errorf(n, path, "expected integer or string, got %s", d.show(n, path))
}

// time checks an RFC 3339 timestamp.
func (d *decoder) time(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!str" && n.ShortTag() != "!!timestamp") {
		d.errorf(n, path, "expected RFC 3339 time, got %s", d.show(n, path))
		return
	}
	t, err := time.Parse(time.RFC3339, n.Value)
	if err != nil {
		d.errorf(n, path, "expected RFC 3339 time, got %s", d.quote(n))
		return
	}
	v.Set(reflect.ValueOf(metav1.NewTime(t)))
}

// generic decodes any YAML value into maps, slices and scalars (for
// interface{} fields), as encoding/json would.
func (d *decoder) generic(n *yaml.Node, path string, depth int) (any, bool) {
	switch n.Kind {
	case yaml.AliasNode:
		return d.generic(n.Alias, path, depth+1)
	case yaml.MappingNode:
		m := reflect.New(typeOf[map[string]any]()).Elem()
		d.mapping(n, m, path, depth)
		return m.Interface(), true
	case yaml.SequenceNode:
		l := reflect.New(typeOf[[]any]()).Elem()
		d.sequence(n, l, path, depth)
		return l.Interface(), true
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, true
		case "!!int", "!!float":
			f := reflect.New(typeOf[float64]()).Elem()
			d.float(n, f, path)
			return f.Float(), true
		case "!!bool":
			return boolText(n.Value) == "true", true
		default:
			return n.Value, true
		}
	}
	d.errorf(n, path, "unexpected %s", d.show(n, path))
	return nil, false
}

// describe names a node's kind and value for messages: `"two"`, `integer 5`.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return describe(n.Alias)
	case yaml.DocumentNode:
		return "document"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:37] + "..."
	}
	switch n.ShortTag() {
	case "!!str":
		return strconv.Quote(v)
	case "!!int":
		return "integer " + v
	case "!!float":
		return "number " + v
	case "!!bool":
		return "boolean " + v
	case "!!null":
		return "null"
	default:
		return fmt.Sprintf("%s %s", n.ShortTag(), v)
	}
}

// boolText normalises YAML 1.2 booleans for strconv.ParseBool.
func boolText(s string) string {
	switch s {
	case "true", "True", "TRUE":
		return "true"
	}
	return "false"
}

// stripSpace removes whitespace (base64 blocks may be folded).
func stripSpace(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\n', '\r', '\t':
		default:
			out = append(out, s[i])
		}
	}
	return string(out)
}
