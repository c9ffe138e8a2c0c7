package netplan

import "strings"

// OpKind is the kind of one command of an incremental Change.
type OpKind int

// The commands of an incremental Change, in the order Diff writes them.
const (
	// OpOther is a command Ops does not describe (a set declared or
	// deleted, a base chain declared): a loader must run the Change's Text.
	OpOther OpKind = iota
	// OpAddChain declares the regular chain Name.
	OpAddChain
	// OpFlushChain deletes every rule of chain Name.
	OpFlushChain
	// OpAddRule appends Rule (nft syntax) to chain Name.
	OpAddRule
	// OpAddElement adds Key (with Value, for a map) to set or map Name.
	OpAddElement
	// OpDeleteElement deletes Key from set or map Name.
	OpDeleteElement
)

// Op is one command of an incremental Change, described for a loader that
// programs the kernel itself (over netlink) instead of running the text.
// Its strings are those of the text: keys like "10.96.0.10 . tcp . 80",
// values like "goto service-default/web/tcp/80".
type Op struct {
	Kind OpKind
	// Name is the chain, set or map.
	Name string
	// Type is the set's or map's type, as declared: "ipv4_addr . inet_proto
	// . inet_service : verdict" (elements only).
	Type string
	// Key and Value are the element's (Value "" for a set element, and for
	// a deletion).
	Key, Value string
	// Rule is the rule's text (OpAddRule).
	Rule string
}

// setType returns the type of a set's declaration: "type A . B : C ;
// comment …" gives "A . B : C"; "" when the declaration has flags, a
// timeout or anything else than a type and a comment (a loader that
// reads Type then leaves the change to the text).
func setType(spec string) string {
	for _, part := range strings.Split(spec, ";") {
		part = strings.TrimSpace(part)
		if t, ok := strings.CutPrefix(part, "type "); ok {
			return strings.TrimSpace(t)
		}
		if part != "" && !strings.HasPrefix(part, "comment ") {
			return ""
		}
	}
	return ""
}
