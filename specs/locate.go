package specs

import (
	"strconv"

	"gopkg.in/yaml.v3"
)

// locate returns the YAML node that field path describes under root, or the
// deepest ancestor present when the field is absent from the manifest (a
// defaulted or missing field is reported where it would go).
func locate(root *yaml.Node, path string) *yaml.Node {
	n := deref(root)
	for _, seg := range splitPath(path) {
		next := child(n, seg)
		if next == nil {
			return n
		}
		n = next
	}
	return n
}

// child returns the node one segment below n, or nil.
func child(n *yaml.Node, seg pathSegment) *yaml.Node {
	n = deref(n)
	switch n.Kind {
	case yaml.SequenceNode:
		i, err := strconv.Atoi(seg.name)
		if err != nil || i < 0 || i >= len(n.Content) {
			return nil
		}
		return deref(n.Content[i])
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Value == seg.name && k.ShortTag() != "!!merge" {
				v := deref(n.Content[i+1])
				return v
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].ShortTag() == "!!merge" {
				if v := child(n.Content[i+1], seg); v != nil {
					return v
				}
			}
		}
	}
	return nil
}

// deref follows aliases and document wrappers.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && (n.Kind == yaml.AliasNode || n.Kind == yaml.DocumentNode) {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		} else if len(n.Content) > 0 {
			n = n.Content[0]
		} else {
			break
		}
	}
	return n
}
