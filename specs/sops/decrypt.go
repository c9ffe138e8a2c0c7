package sops

import (
	"crypto/sha512"
	"fmt"
	"hash"
	"strconv"
	"time"

	"filippo.io/age"
	"gopkg.in/yaml.v3"
)

// macOnlyEncryptedInit starts the MAC of a file with mac_only_encrypted
// set, so it never equals the MAC over all values (sha256("sops")).
var macOnlyEncryptedInit = []byte{0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0xb, 0xb, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69}

// maxDepth bounds the nesting the walk follows.
const maxDepth = 1000

// Leaf is a value the file held encrypted.
type Leaf struct {
	// Doc is the index of its document in the slice given.
	Doc int
	// Field is its path, "data.password" or
	// "spec.template.spec.containers[0].env[1].value".
	Field string
	// Node is the value's node, decrypted (or masked) in place.
	Node *yaml.Node
}

// Decrypt decrypts the documents of one SOPS-encrypted YAML file in place
// with the age identities ids, after checking the file's MAC, and removes
// their sops blocks. The documents are those of the whole file, in order:
// the MAC covers them all. Positions are kept. On error the documents are
// left as they were. It returns the values that were encrypted.
func Decrypt(docs []*yaml.Node, ids []age.Identity) ([]Leaf, error) {
	md, err := readMetadata(docs)
	if err != nil {
		return nil, err
	}
	key, err := md.dataKey(ids)
	if err != nil {
		return nil, err
	}
	w := &walker{rules: md.rules, key: key, mac: sha512.New(), macOnlyEnc: md.macOnlyEnc}
	if md.macOnlyEnc {
		w.mac.Write(macOnlyEncryptedInit)
	}
	if err := w.docs(docs); err != nil {
		return nil, err
	}
	stored, err := parseSealed(md.mac)
	if err != nil {
		return nil, errorf(md.macNode, MetadataKey+".mac", "%v", err)
	}
	plain, err := stored.open(key, md.lastModified)
	if err != nil {
		return nil, errorf(md.macNode, MetadataKey+".mac", "cannot decrypt the MAC: the MAC or sops.lastmodified was changed after encryption")
	}
	if got := fmt.Sprintf("%X", w.mac.Sum(nil)); string(plain) != got {
		return nil, errorf(md.macNode, MetadataKey+".mac", "MAC mismatch: the file was changed after sops encrypted it (a value, key or their order differs); re-encrypt it with sops")
	}
	return w.apply(docs), nil
}

// Mask checks, without a key, that the documents of one SOPS-encrypted
// YAML file are well-formed SOPS (metadata, age stanzas, every value the
// rules say is encrypted is an ENC[…] value) and replaces each encrypted
// value in place with a placeholder of its type derived from the
// ciphertext alone, then removes the sops blocks. The MAC is not checked:
// that needs the data key. It returns the values that were encrypted.
func Mask(docs []*yaml.Node) ([]Leaf, error) {
	md, err := readMetadata(docs)
	if err != nil {
		return nil, err
	}
	if err := md.checkStanzas(); err != nil {
		return nil, err
	}
	if _, err := parseSealed(md.mac); err != nil {
		return nil, errorf(md.macNode, MetadataKey+".mac", "%v", err)
	}
	w := &walker{rules: md.rules}
	if err := w.docs(docs); err != nil {
		return nil, err
	}
	return w.apply(docs), nil
}

// walker visits every value of a file in sops's order (documents, then
// keys and items in file order), decrypting or masking the encrypted ones
// and hashing what the MAC covers. Changes are collected and applied only
// once the whole file passed.
type walker struct {
	rules      rules
	key        []byte // nil: mask
	mac        hash.Hash
	macOnlyEnc bool
	doc        int
	changes    []change
}

// change is the new content of one encrypted value.
type change struct {
	leaf  Leaf
	value plainValue
}

// docs walks every document.
func (w *walker) docs(docs []*yaml.Node) error {
	for i, d := range docs {
		w.doc = i
		if d.Kind == yaml.ScalarNode && d.ShortTag() == "!!null" {
			continue
		}
		if d.Kind != yaml.MappingNode {
			return errorf(d, "", "a SOPS-encrypted YAML document must be a mapping")
		}
		if err := w.walk(d, nil, "", 0); err != nil {
			return err
		}
	}
	return nil
}

// walk visits node n at key path path (mapping keys only, as sops builds
// the additional data) and field path field.
func (w *walker) walk(n *yaml.Node, path []string, field string, depth int) error {
	if depth > maxDepth {
		return errorf(n, field, "nested deeper than %d levels", maxDepth)
	}
	switch n.Kind {
	case yaml.AliasNode:
		return errorf(n, field, "aliases are not supported in a SOPS-encrypted file (sops never writes them)")
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if depth == 0 && k.Kind == yaml.ScalarNode && k.Value == MetadataKey {
				continue
			}
			if k.Kind == yaml.AliasNode {
				return errorf(k, field, "aliases are not supported in a SOPS-encrypted file (sops never writes them)")
			}
			var key any
			if k.Kind != yaml.ScalarNode || k.Decode(&key) != nil {
				return errorf(k, field, "a SOPS-encrypted file may only have string keys")
			}
			s, ok := key.(string)
			if !ok {
				return errorf(k, field, "a SOPS-encrypted file may only have string keys (sops refuses %T keys)", key)
			}
			f := s
			if field != "" {
				f = field + "." + s
			}
			if err := w.walk(v, append(path[:len(path):len(path)], s), f, depth+1); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			if err := w.walk(item, path, field+"["+strconv.Itoa(i)+"]", depth+1); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		return w.leaf(n, path, field)
	}
	return nil
}

// leaf handles one scalar value.
func (w *walker) leaf(n *yaml.Node, path []string, field string) error {
	if n.ShortTag() == "!!null" {
		return nil // sops leaves nulls alone and keeps them out of the MAC
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return errorf(n, field, "cannot read the value")
	}
	if !w.rules.encrypted(path) {
		if w.mac == nil || w.macOnlyEnc {
			return nil
		}
		b, err := macBytes(v)
		if err != nil {
			return errorf(n, field, "%v", err)
		}
		w.mac.Write(b)
		return nil
	}
	s, ok := v.(string)
	if !ok {
		return errorf(n, field, "value is not encrypted, but the file's rules say it should be (sops writes every such value as ENC[…])")
	}
	if s == "" {
		return nil // sops leaves empty strings as they are
	}
	sv, err := parseSealed(s)
	if err != nil {
		return errorf(n, field, "%v", err)
	}
	leaf := Leaf{Doc: w.doc, Field: field, Node: n}
	if w.key == nil {
		w.changes = append(w.changes, change{leaf: leaf, value: placeholder(sv.typ, s)})
		return nil
	}
	aad := ""
	for _, p := range path {
		aad += p + ":"
	}
	if len(path) == 0 {
		aad = ":"
	}
	plain, err := sv.open(w.key, aad)
	if err != nil {
		return errorf(n, field, "%v", err)
	}
	pv, err := typed(sv.typ, plain)
	if err != nil {
		return errorf(n, field, "%v", err)
	}
	w.mac.Write(pv.mac)
	w.changes = append(w.changes, change{leaf: leaf, value: pv})
	return nil
}

// apply writes the collected values into their nodes, removes the sops
// blocks and returns the leaves.
func (w *walker) apply(docs []*yaml.Node) []Leaf {
	leaves := make([]Leaf, len(w.changes))
	for i, c := range w.changes {
		n := c.leaf.Node
		n.Tag, n.Value, n.Style = c.value.tag, c.value.text, 0
		if c.value.tag == "!!str" {
			n.Style = yaml.DoubleQuotedStyle
		}
		leaves[i] = c.leaf
	}
	strip(docs)
	return leaves
}

// macBytes is sops.ToBytes for a value in clear, as yaml.v3 decodes it.
func macBytes(v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return []byte(v), nil
	case int:
		return []byte(strconv.Itoa(v)), nil
	case float64:
		return []byte(strconv.FormatFloat(v, 'f', -1, 64)), nil
	case bool:
		return []byte(sopsBool(v)), nil
	case []byte:
		return v, nil
	case time.Time:
		return v.MarshalText()
	}
	return nil, fmt.Errorf("sops cannot encrypt a file holding a %T value", v)
}
