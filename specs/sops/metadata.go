package sops

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
	"gopkg.in/yaml.v3"
)

// MetadataKey is the top-level key under which sops keeps its metadata in
// every document of an encrypted YAML file.
const MetadataKey = "sops"

// defaultUnencryptedSuffix is the rule sops applies when the file names
// none: values under a key ending with it stay in clear.
const defaultUnencryptedSuffix = "_unencrypted"

// otherKeyTypes are the sops master key types kelpie cannot use, by the
// name of their list in the metadata.
var otherKeyTypes = []string{"pgp", "kms", "gcp_kms", "azure_kv", "hc_vault", "hckms"}

// metadata is what kelpie reads of a file's sops block.
type metadata struct {
	node         *yaml.Node // the sops mapping of the first document
	lastModified string     // as sops formats it for the MAC's additional data
	mac          string
	macNode      *yaml.Node
	stanzas      []stanza
	others       []string // key types present that are not age
	rules        rules
	macOnlyEnc   bool
}

// stanza is one age recipient of the data key.
type stanza struct {
	recipient string
	enc       string
	node      *yaml.Node
}

// rules say which values sops encrypted: at most one of the four is set.
type rules struct {
	unencryptedSuffix, encryptedSuffix string
	unencryptedRegex, encryptedRegex   *regexp.Regexp
}

// encrypted reports whether the value at key path path is encrypted
// (sops.Tree.shouldBeEncrypted, without the comment rules).
func (r rules) encrypted(path []string) bool {
	switch {
	case r.unencryptedSuffix != "":
		for _, p := range path {
			if strings.HasSuffix(p, r.unencryptedSuffix) {
				return false
			}
		}
	case r.encryptedSuffix != "":
		for _, p := range path {
			if strings.HasSuffix(p, r.encryptedSuffix) {
				return true
			}
		}
		return false
	case r.unencryptedRegex != nil:
		for _, p := range path {
			if r.unencryptedRegex.MatchString(p) {
				return false
			}
		}
	case r.encryptedRegex != nil:
		for _, p := range path {
			if r.encryptedRegex.MatchString(p) {
				return true
			}
		}
		return false
	}
	return true
}

// Encrypted reports whether a file's documents are SOPS-encrypted: one of
// them has a top-level sops key.
func Encrypted(docs []*yaml.Node) bool {
	for _, d := range docs {
		if topKey(d, MetadataKey) != nil {
			return true
		}
	}
	return false
}

// topKey returns the key node of key in the top-level mapping of doc.
func topKey(doc *yaml.Node, key string) *yaml.Node {
	if doc == nil || doc.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if k := doc.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return k
		}
	}
	return nil
}

// readMetadata reads the sops block of the first document (sops writes it
// into every document and reads it from the first).
func readMetadata(docs []*yaml.Node) (*metadata, error) {
	if len(docs) == 0 {
		return nil, errorf(nil, "", "no document")
	}
	first := docs[0]
	k := topKey(first, MetadataKey)
	if k == nil {
		for _, d := range docs[1:] {
			if k := topKey(d, MetadataKey); k != nil {
				return nil, errorf(k, MetadataKey, "the first document of a SOPS-encrypted file must hold the sops metadata")
			}
		}
		return nil, errorf(first, "", "no sops metadata")
	}
	var block *yaml.Node
	for i := 0; i+1 < len(first.Content); i += 2 {
		if first.Content[i] == k {
			block = first.Content[i+1]
		}
	}
	if block.Kind != yaml.MappingNode {
		return nil, errorf(block, MetadataKey, "sops metadata must be a mapping")
	}
	md := &metadata{node: block}
	var ruleCount int
	var top, groups *yaml.Node
	top = block
	for i := 0; i+1 < len(block.Content); i += 2 {
		key, v := block.Content[i].Value, block.Content[i+1]
		field := MetadataKey + "." + key
		if v.Kind == yaml.AliasNode || block.Content[i].Kind == yaml.AliasNode {
			return nil, errorf(v, field, "aliases are not supported in sops metadata")
		}
		str := func() (string, error) {
			if v.Kind != yaml.ScalarNode {
				return "", errorf(v, field, "want a scalar")
			}
			return v.Value, nil
		}
		var err error
		switch key {
		case "lastmodified":
			var s string
			if s, err = str(); err == nil {
				t, perr := time.Parse(time.RFC3339, s)
				if perr != nil {
					return nil, errorf(v, field, "not an RFC 3339 time")
				}
				md.lastModified = t.Format(time.RFC3339)
			}
		case "mac":
			md.mac, err = str()
			md.macNode = v
		case "mac_only_encrypted":
			var s string
			if s, err = str(); err == nil && s != "" {
				if md.macOnlyEnc, err = strconv.ParseBool(s); err != nil {
					return nil, errorf(v, field, "want true or false")
				}
			}
		case "unencrypted_suffix", "encrypted_suffix", "unencrypted_regex", "encrypted_regex":
			var s string
			if s, err = str(); err != nil || s == "" {
				break
			}
			ruleCount++
			switch key {
			case "unencrypted_suffix":
				md.rules.unencryptedSuffix = s
			case "encrypted_suffix":
				md.rules.encryptedSuffix = s
			default:
				re, rerr := regexp.Compile(s)
				if rerr != nil {
					return nil, errorf(v, field, "invalid regular expression: %v", rerr)
				}
				if key == "unencrypted_regex" {
					md.rules.unencryptedRegex = re
				} else {
					md.rules.encryptedRegex = re
				}
			}
		case "unencrypted_comment_regex", "encrypted_comment_regex":
			if v.Kind == yaml.ScalarNode && v.Value != "" {
				return nil, errorf(v, field, "%s is not supported by kelpie; use encrypted_regex (for a Secret: --encrypted-regex '^(data|stringData)$')", key)
			}
		case "key_groups":
			groups = v
		}
		if err != nil {
			return nil, err
		}
	}
	if ruleCount > 1 {
		return nil, errorf(block, MetadataKey, "more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex and unencrypted_regex")
	}
	if ruleCount == 0 {
		md.rules.unencryptedSuffix = defaultUnencryptedSuffix
	}
	if md.lastModified == "" {
		return nil, errorf(block, MetadataKey+".lastmodified", "missing")
	}
	if md.macNode == nil {
		return nil, errorf(block, MetadataKey+".mac", "missing: kelpie refuses a SOPS file whose integrity it cannot check")
	}
	// Keys listed at the top of the block form the one key group; only
	// without them does key_groups count (stores.internalKeygroups).
	if err := md.readKeys(top); err != nil {
		return nil, err
	}
	if len(md.stanzas) == 0 && len(md.others) == 0 && groups != nil {
		if groups.Kind != yaml.SequenceNode {
			return nil, errorf(groups, MetadataKey+".key_groups", "want a list")
		}
		if len(groups.Content) > 1 {
			return nil, errorf(groups, MetadataKey+".key_groups", "%d key groups (Shamir secret sharing) are not supported by kelpie; encrypt for age recipients without key groups", len(groups.Content))
		}
		if len(groups.Content) == 1 {
			if g := groups.Content[0]; g.Kind == yaml.MappingNode {
				if err := md.readKeys(g); err != nil {
					return nil, err
				}
			}
		}
	}
	if len(md.stanzas) == 0 {
		if len(md.others) > 0 {
			return nil, errorf(block, MetadataKey, "encrypted for %s only: kelpie decrypts SOPS files for age recipients; add an age recipient (sops updatekeys)", strings.Join(md.others, ", "))
		}
		return nil, errorf(block, MetadataKey, "no keys found in the sops metadata")
	}
	return md, nil
}

// readKeys reads the age stanzas of a key group and notes the other types.
func (md *metadata) readKeys(g *yaml.Node) error {
	for i := 0; i+1 < len(g.Content); i += 2 {
		key, v := g.Content[i].Value, g.Content[i+1]
		if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
			continue
		}
		if key != "age" {
			for _, o := range otherKeyTypes {
				if key == o {
					md.others = append(md.others, key)
				}
			}
			continue
		}
		for j, item := range v.Content {
			field := fmt.Sprintf("%s.age[%d]", MetadataKey, j)
			if item.Kind != yaml.MappingNode {
				return errorf(item, field, "want a mapping with recipient and enc")
			}
			s := stanza{node: item}
			for k := 0; k+1 < len(item.Content); k += 2 {
				switch item.Content[k].Value {
				case "recipient":
					s.recipient = item.Content[k+1].Value
				case "enc":
					s.enc = item.Content[k+1].Value
				}
			}
			if s.enc == "" {
				return errorf(item, field+".enc", "missing")
			}
			md.stanzas = append(md.stanzas, s)
		}
	}
	return nil
}

// dataKeySize is the size of the AES-256 data key sops encrypts to each
// recipient.
const dataKeySize = 32

// dataKey decrypts the data key with the first identity that matches a
// recipient.
func (md *metadata) dataKey(ids []age.Identity) ([]byte, error) {
	if len(ids) == 0 {
		return nil, errorf(md.node, MetadataKey, "encrypted with SOPS, and no age key was given to decrypt it (--age-key-file)")
	}
	var recipients []string
	for _, s := range md.stanzas {
		recipients = append(recipients, s.recipient)
		r, err := age.Decrypt(armor.NewReader(strings.NewReader(s.enc)), ids...)
		var nomatch *age.NoIdentityMatchError
		if errors.As(err, &nomatch) {
			continue
		}
		if err != nil {
			return nil, errorf(s.node, MetadataKey+".age", "data key for recipient %s: %v", s.recipient, err)
		}
		key, err := io.ReadAll(io.LimitReader(r, dataKeySize+1))
		if err != nil {
			return nil, errorf(s.node, MetadataKey+".age", "data key for recipient %s: %v", s.recipient, err)
		}
		if len(key) != dataKeySize {
			return nil, errorf(s.node, MetadataKey+".age", "data key for recipient %s is %d bytes, want %d", s.recipient, len(key), dataKeySize)
		}
		return key, nil
	}
	return nil, errorf(md.node, MetadataKey, "no key in the age key file can decrypt this file: it is encrypted for %s", strings.Join(recipients, ", "))
}

// checkStanzas checks, without a key, that every age stanza is an armored
// age file with a readable header.
func (md *metadata) checkStanzas() error {
	for _, s := range md.stanzas {
		if _, err := age.ExtractHeader(armor.NewReader(strings.NewReader(s.enc))); err != nil {
			return errorf(s.node, MetadataKey+".age", "data key for recipient %s: %v", s.recipient, err)
		}
	}
	return nil
}

// strip removes the sops block from every document.
func strip(docs []*yaml.Node) {
	for _, d := range docs {
		if d == nil || d.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(d.Content); i += 2 {
			if k := d.Content[i]; k.Kind == yaml.ScalarNode && k.Value == MetadataKey {
				d.Content = append(d.Content[:i:i], d.Content[i+2:]...)
				break
			}
		}
	}
}
