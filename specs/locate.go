package specs

import (
	"strconv"

	"gopkg.in/yaml.v3"
)

// maxMergeHops bounds how many "<<" merge keys a lookup follows, so a
// self-merging or fanned-out mapping cannot make positioning loop or explode
// (the decoder refuses such documents; locate must still return quickly).
const maxMergeHops = 64

// locate returns the YAML node that field path describes under root, or the
// deepest ancestor present when the field is absent from the manifest (a
// defaulted or missing field is reported where it would go).
func locate(root *yaml.Node, path string) *yaml.Node {
	n := deref(root)
	for _, seg := range splitPath(path) {
		budget := maxMergeHops
		next := child(n, seg, &budget)
		if next == nil {
			return n
		}
		n = next
	}
	return n
}

// child returns the node one segment below n, or nil. Explicit keys win over
// merged ones, as in decoding; budget counts the merge keys followed.
func child(n *yaml.Node, seg pathSegment, budget *int) *yaml.Node {
	n = deref(n)
	if n == nil {
		return nil
	}
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
				return deref(n.Content[i+1])
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].ShortTag() != "!!merge" {
				continue
			}
			src := deref(n.Content[i+1])
			sources := []*yaml.Node{src}
			if src != nil && src.Kind == yaml.SequenceNode {
				sources = src.Content
			}
			for _, m := range sources {
				if *budget <= 0 {
					return nil
				}
				*budget--
				if v := child(m, seg, budget); v != nil {
					return v
				}
			}
		}
	}
	return nil
}

// explicitChild returns the value of key name written in mapping n itself
// (no merge keys followed), or nil.
func explicitChild(n *yaml.Node, name string) *yaml.Node {
	budget := 0
	return child(n, pathSegment{name: name}, &budget)
}

// deref follows aliases and document wrappers.
func deref(n *yaml.Node) *yaml.Node {
	for hops := 0; n != nil && (n.Kind == yaml.AliasNode || n.Kind == yaml.DocumentNode); hops++ {
		if hops > maxMergeHops {
			return nil
		}
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
