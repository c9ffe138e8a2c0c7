package specs

import (
	"encoding/json"
	"reflect"
	"testing"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/api/equality"
	sigsjson "sigs.k8s.io/json"
)

// FuzzDecodeMatchesJSON checks kelpie's decoder against the decoding the
// Kubernetes API server does: for every document kelpie's decoder accepts,
// the object must equal what sigs.k8s.io/json's strict decoding makes of
// the same document as JSON. Crashers go to
// testdata/fuzz/FuzzDecodeMatchesJSON.
//
// The document is turned into JSON by yaml.v3 (decoded into generic values,
// merge keys and aliases resolved by yaml.v3 itself), because kelpie reads
// YAML 1.2 as yaml.v3 does; sigs.k8s.io/yaml reads YAML 1.1, where yes, no,
// on and off are booleans, so it would report that dialect difference
// rather than the decoder's. Two things are left out of the comparison:
// !!binary scalars (kelpie takes their base64 for []byte fields, JSON has
// no binary) and a top-level status (kelpie ignores it).
func FuzzDecodeMatchesJSON(f *testing.F) {
	addSeeds(f)
	limits := Limits{MaxFileBytes: 1 << 20, MaxNodes: 20_000, MaxDepth: 32}
	f.Fuzz(func(t *testing.T, data []byte) {
		job := &fileJob{name: "f.yaml", data: data}
		job.decode(&decoder{limits: limits})
		for _, it := range job.items {
			if hasTag(it.root, "!!binary", 0) {
				continue
			}
			want, err := referenceDecode(it.root, it.obj.Kind)
			if err != nil {
				t.Fatalf("%s: kelpie accepts the document, strict JSON decoding refuses it: %v", it.obj.Pos, err)
			}
			if !equality.Semantic.DeepEqual(it.obj.Obj, want) {
				got, _ := json.Marshal(it.obj.Obj)
				ref, _ := json.Marshal(want)
				t.Fatalf("%s: kelpie and strict JSON decoding differ:\nkelpie: %s\njson:   %s", it.obj.Pos, got, ref)
			}
		}
	})
}

// referenceDecode decodes a document as the API server would: to JSON, then
// sigs.k8s.io/json strict decoding into the kind's type. Like kelpie's
// decoder it drops a top-level status and defaults an empty namespace.
func referenceDecode(root *yaml.Node, kind string) (any, error) {
	var generic any
	if err := root.Decode(&generic); err != nil {
		return nil, err
	}
	if m, ok := generic.(map[string]any); ok {
		delete(m, "status")
	}
	data, err := json.Marshal(generic)
	if err != nil {
		return nil, err
	}
	ki := kinds[kind]
	v := reflect.New(ki.typ)
	strict, err := sigsjson.UnmarshalStrict(data, v.Interface())
	if err != nil {
		return nil, err
	}
	if len(strict) > 0 {
		return nil, strict[0]
	}
	if meta, ok := v.Interface().(interface {
		GetNamespace() string
		SetNamespace(string)
	}); ok && ki.namespaced && meta.GetNamespace() == "" {
		meta.SetNamespace(DefaultNamespace)
	}
	return v.Interface(), nil
}

// hasTag reports whether any node below n (aliases followed to a bounded
// depth) carries the tag.
func hasTag(n *yaml.Node, tag string, depth int) bool {
	if n == nil || depth > 64 {
		return false
	}
	if n.ShortTag() == tag {
		return true
	}
	if n.Kind == yaml.AliasNode {
		return hasTag(n.Alias, tag, depth+1)
	}
	for _, c := range n.Content {
		if hasTag(c, tag, depth+1) {
			return true
		}
	}
	return false
}
