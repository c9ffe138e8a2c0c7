package specs

import (
	"encoding/base64"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"unicode/utf8"

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

// decoder walks one YAML document alongside the Go type it must decode into.
// It checks the document strictly (unknown fields, unsupported fields, wrong
// scalar types, bad quantities) with the position of every offending node,
// and writes the equivalent JSON, which encoding/json then decodes into the
// typed object. Aliases are expanded against a node budget.
type decoder struct {
	file    string
	limits  Limits
	nodes   int
	aborted bool
	errs    ErrorList
	out     []byte
}

// errorf records a problem at node n.
func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: d.pos(n), Field: path, Message: fmt.Sprintf(format, args...)})
}

// pos returns the position of node n.
func (d *decoder) pos(n *yaml.Node) Position {
	return Position{File: d.file, Line: n.Line, Column: n.Column}
}

// decode checks root against type t and returns its JSON form. The JSON is
// only meaningful when no errors were recorded.
func (d *decoder) decode(root *yaml.Node, t reflect.Type) []byte {
	d.out = d.out[:0]
	d.walk(root, t, "", 0)
	return d.out
}

// walk checks node n against type t at field path path.
func (d *decoder) walk(n *yaml.Node, t reflect.Type, path string, depth int) {
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
		d.walk(n.Alias, t, path, depth+1)
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		d.out = append(d.out, "null"...)
		return
	}
	switch t {
	case quantityType:
		d.quantity(n, path)
		return
	case intOrStringType:
		d.intOrString(n, path)
		return
	case timeType:
		d.time(n, path)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		d.walk(n, t.Elem(), path, depth)
	case reflect.Struct:
		d.structure(n, t, path, depth)
	case reflect.Map:
		d.mapping(n, t, path, depth)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			d.bytes(n, path)
			return
		}
		d.sequence(n, t, path, depth)
	case reflect.String:
		if d.expectScalar(n, path, "string", "!!str") {
			d.out = appendJSONString(d.out, n.Value)
		}
	case reflect.Bool:
		if d.expectScalar(n, path, "boolean", "!!bool") {
			b, _ := strconv.ParseBool(boolText(n.Value))
			d.out = strconv.AppendBool(d.out, b)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		d.integer(n, t, path)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		d.integer(n, t, path)
	case reflect.Float32, reflect.Float64:
		d.float(n, path)
	case reflect.Interface:
		d.generic(n, path, depth)
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
	msg := fmt.Sprintf("expected %s, got %s", what, describe(n))
	if want == "!!str" && n.Kind == yaml.ScalarNode {
		msg += " (quote it to make it a string)"
	}
	d.errs = append(d.errs, &Error{Pos: d.pos(n), Field: path, Message: msg})
	return false
}

// structure checks a mapping against a struct type's JSON fields.
func (d *decoder) structure(n *yaml.Node, t reflect.Type, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected mapping, got %s", describe(n))
		return
	}
	ti := typeInfoOf(t)
	d.out = append(d.out, '{')
	first := true
	pairs := d.pairs(n, path, depth)
	for i := 0; i < len(pairs); i += 2 {
		k, v := pairs[i], pairs[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			d.errorf(k, path, "field names must be strings, got %s", describe(k))
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
		if ti.supported != nil && !ti.supported[name] {
			d.errorf(k, fieldPath, "not supported by kelpie")
			continue
		}
		if !first {
			d.out = append(d.out, ',')
		}
		first = false
		d.out = appendJSONString(d.out, name)
		d.out = append(d.out, ':')
		d.walk(v, f.typ, fieldPath, depth+1)
	}
	d.out = append(d.out, '}')
}

// pairs returns the key/value nodes of mapping n with YAML merge keys ("<<")
// resolved (explicit keys win over merged ones) and duplicate keys reported.
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []*yaml.Node {
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
			merged = append(merged, d.mergeSources(v, path, depth)...)
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
			d.errorf(k, joinPath(path, k.Value), "duplicate key %q (first at line %d)", k.Value, prev.Line)
			continue
		}
		seen[k.Value] = k
	}
	return out
}

// mergeSources returns the key/value pairs a "<<" value contributes.
func (d *decoder) mergeSources(v *yaml.Node, path string, depth int) []*yaml.Node {
	d.nodes += len(v.Content)
	if d.nodes > d.limits.MaxNodes || depth > d.limits.MaxDepth {
		d.errorf(v, path, "merge keys expand beyond limits; refused")
		d.aborted = true
		return nil
	}
	for v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	switch v.Kind {
	case yaml.MappingNode:
		return d.pairs(v, path, depth+1)
	case yaml.SequenceNode:
		var out []*yaml.Node
		for _, m := range v.Content {
			out = append(out, d.mergeSources(m, path, depth+1)...)
		}
		return out
	default:
		d.errorf(v, path, "merge key (<<) needs a mapping or a list of mappings, got %s", describe(v))
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
func (d *decoder) mapping(n *yaml.Node, t reflect.Type, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected mapping, got %s", describe(n))
		return
	}
	d.out = append(d.out, '{')
	for i, pairs := 0, d.pairs(n, path, depth); i < len(pairs); i += 2 {
		k, v := pairs[i], pairs[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys must be scalars, got %s", describe(k))
			continue
		}
		if i > 0 {
			d.out = append(d.out, ',')
		}
		d.out = appendJSONString(d.out, k.Value)
		d.out = append(d.out, ':')
		d.walk(v, t.Elem(), keyPath(path, k.Value), depth+1)
	}
	d.out = append(d.out, '}')
}

// sequence checks a YAML sequence against a Go slice type.
func (d *decoder) sequence(n *yaml.Node, t reflect.Type, path string, depth int) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected list, got %s", describe(n))
		return
	}
	d.out = append(d.out, '[')
	for i, item := range n.Content {
		if i > 0 {
			d.out = append(d.out, ',')
		}
		d.walk(item, t.Elem(), indexPath(path, i), depth+1)
	}
	d.out = append(d.out, ']')
}

// integer checks an integer scalar and its range for type t.
func (d *decoder) integer(n *yaml.Node, t reflect.Type, path string) {
	if !d.expectScalar(n, path, "integer", "!!int") {
		return
	}
	v, err := strconv.ParseInt(n.Value, 0, 64)
	if err != nil {
		d.errorf(n, path, "integer %s out of range", n.Value)
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
	if v < lo || v > hi {
		d.errorf(n, path, "integer %s out of range [%d, %d]", n.Value, lo, hi)
		return
	}
	d.out = strconv.AppendInt(d.out, v, 10)
}

// float checks a numeric scalar.
func (d *decoder) float(n *yaml.Node, path string) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!float" && n.ShortTag() != "!!int") {
		d.errorf(n, path, "expected number, got %s", describe(n))
		return
	}
	f, err := strconv.ParseFloat(n.Value, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		d.errorf(n, path, "expected a finite number, got %q", n.Value)
		return
	}
	d.out = strconv.AppendFloat(d.out, f, 'g', -1, 64)
}

// bytes checks a base64 scalar for a []byte field.
func (d *decoder) bytes(n *yaml.Node, path string) {
	if !d.expectScalar(n, path, "base64 string", "!!str") && !(n.Kind == yaml.ScalarNode && n.ShortTag() == "!!binary") {
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!binary" {
		d.errs = d.errs[:len(d.errs)-1] // !!binary is base64 too
	}
	clean := stripSpace(n.Value)
	if _, err := base64.StdEncoding.DecodeString(clean); err != nil {
		d.errorf(n, path, "invalid base64 data: %v", err)
		return
	}
	d.out = appendJSONString(d.out, clean)
}

// quantity checks a resource quantity ("500m", "1Gi", 2).
func (d *decoder) quantity(n *yaml.Node, path string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected quantity (like 500m or 1Gi), got %s", describe(n))
		return
	}
	q, err := resource.ParseQuantity(n.Value)
	if err != nil {
		d.errorf(n, path, "invalid quantity %q: want a number with an optional suffix like 500m, 1.5, 128Mi or 2G", n.Value)
		return
	}
	d.out = appendJSONString(d.out, q.String())
}

// intOrString checks an int-or-string field (ports, maxSurge).
func (d *decoder) intOrString(n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		v, err := strconv.ParseInt(n.Value, 0, 32)
		if err != nil {
			d.errorf(n, path, "integer %s out of range", n.Value)
			return
		}
		d.out = strconv.AppendInt(d.out, v, 10)
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		d.out = appendJSONString(d.out, n.Value)
		return
	}
	d.errorf(n, path, "expected integer or string, got %s", describe(n))
}

// time checks an RFC 3339 timestamp.
func (d *decoder) time(n *yaml.Node, path string) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!str" && n.ShortTag() != "!!timestamp") {
		d.errorf(n, path, "expected RFC 3339 time, got %s", describe(n))
		return
	}
	var t metav1.Time
	if err := t.UnmarshalJSON(appendJSONString(nil, n.Value)); err != nil {
		d.errorf(n, path, "expected RFC 3339 time, got %q", n.Value)
		return
	}
	d.out = appendJSONString(d.out, n.Value)
}

// generic writes any YAML value as JSON (for interface{} fields).
func (d *decoder) generic(n *yaml.Node, path string, depth int) {
	switch n.Kind {
	case yaml.MappingNode:
		d.mapping(n, typeOf[map[string]any](), path, depth)
	case yaml.SequenceNode:
		d.sequence(n, typeOf[[]any](), path, depth)
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int":
			d.integer(n, typeOf[int64](), path)
		case "!!float":
			d.float(n, path)
		case "!!bool":
			b, _ := strconv.ParseBool(boolText(n.Value))
			d.out = strconv.AppendBool(d.out, b)
		default:
			d.out = appendJSONString(d.out, n.Value)
		}
	default:
		d.errorf(n, path, "unexpected %s", describe(n))
	}
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

// appendJSONString appends s as a JSON string literal.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
