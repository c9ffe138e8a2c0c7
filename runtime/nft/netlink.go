package nft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/kelpie-dev/kelpie/netplan"
)

// The netlink path: an incremental change whose commands are all of the
// few shapes an endpoint change produces (elements of kelpie's sets and
// maps, a Service's chain flushed and written again, a chain declared) is
// sent to the kernel as one netlink batch, which the kernel commits whole
// or not at all, without starting nft. Anything else (a set declared, a
// rule of another shape) goes through nft as text.

// The batch is built here, not by github.com/google/nftables's Conn: that
// one marks the key of every anonymous map big-endian, so nft would list
// the numgen map of a Service chain as "16777216 : …" instead of "1 : …".
// The library still encodes the expressions (expr.Marshal) and names the
// types.

// errNotNetlink says that a change has a command the netlink path does
// not translate: the text must be run instead. It is not a failure.
var errNotNetlink = errors.New("change not expressible over netlink")

// nlStep adds one command of a change to a netlink batch.
type nlStep func(b *nlBatch) error

// translate turns the commands of an incremental change into netlink
// steps, or returns errNotNetlink (wrapped, naming the command) when one
// of them has no translation. Nothing is sent.
func translate(ops []netplan.Op) ([]nlStep, error) {
	steps := make([]nlStep, 0, len(ops))
	for _, op := range ops {
		step, err := translateOp(op)
		if err != nil {
			return nil, err
		}
		steps = append(steps, step)
	}
	return steps, nil
}

// translateOp translates one command.
func translateOp(op netplan.Op) (nlStep, error) {
	switch op.Kind {
	case netplan.OpAddChain:
		return func(b *nlBatch) error { b.addChain(op.Name); return nil }, nil
	case netplan.OpFlushChain:
		return func(b *nlBatch) error { b.flushChain(op.Name); return nil }, nil
	case netplan.OpAddRule:
		r, err := parseRule(op.Rule)
		if err != nil {
			return nil, fmt.Errorf("%w: rule %q of chain %s: %w", errNotNetlink, op.Rule, op.Name, err)
		}
		return func(b *nlBatch) error { return b.addRule(op.Name, r) }, nil
	case netplan.OpAddElement, netplan.OpDeleteElement:
		el, err := parseElement(op.Type, op.Key, op.Value)
		if err != nil {
			return nil, fmt.Errorf("%w: element %q of %s: %w", errNotNetlink, op.Key, op.Name, err)
		}
		if op.Kind == netplan.OpDeleteElement {
			el.VerdictData = nil
			return func(b *nlBatch) error {
				return b.elements(unix.NFT_MSG_DELSETELEM, op.Name, 0, []nftables.SetElement{el})
			}, nil
		}
		return func(b *nlBatch) error {
			return b.elements(unix.NFT_MSG_NEWSETELEM, op.Name, 0, []nftables.SetElement{el})
		}, nil
	}
	return nil, fmt.Errorf("%w: a command on %s", errNotNetlink, op.Name)
}

// parseElement encodes an element of a set or map of type typ ("ipv4_addr
// . inet_proto . inet_service : verdict").
func parseElement(typ, key, value string) (nftables.SetElement, error) {
	keyType, valueType, isMap := strings.Cut(typ, " : ")
	types := strings.Split(keyType, " . ")
	fields := strings.Split(key, " . ")
	if typ == "" || len(types) != len(fields) {
		return nftables.SetElement{}, fmt.Errorf("key does not match type %q", typ)
	}
	var el nftables.SetElement
	for i, t := range types {
		b, err := encodeField(strings.TrimSpace(t), fields[i], len(types) > 1)
		if err != nil {
			return el, err
		}
		el.Key = append(el.Key, b...)
	}
	switch {
	case !isMap && value == "":
	case isMap && valueType == "verdict":
		if value == "" {
			// A deletion names the key only; the map's type stays a verdict map.
			return el, nil
		}
		v, err := parseVerdict(strings.Fields(value))
		if err != nil {
			return el, err
		}
		el.VerdictData = v
	default:
		return el, fmt.Errorf("value %q of type %q", value, typ)
	}
	return el, nil
}

// encodeField encodes one field of a key; in a concatenation each field
// takes a whole number of 4-byte registers.
func encodeField(typ, s string, concat bool) ([]byte, error) {
	var b []byte
	switch typ {
	case "ipv4_addr":
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("not an IPv4 address: %q", s)
		}
		b = a.AsSlice()
	case "inet_proto":
		p, ok := protocols[s]
		if !ok {
			return nil, fmt.Errorf("protocol %q", s)
		}
		b = []byte{p}
	case "inet_service":
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("port %q", s)
		}
		b = binary.BigEndian.AppendUint16(nil, uint16(n))
	default:
		return nil, fmt.Errorf("type %q", typ)
	}
	if concat {
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	return b, nil
}

// protocols are the layer 4 protocols kelpie's rules name.
var protocols = map[string]byte{"tcp": unix.IPPROTO_TCP, "udp": unix.IPPROTO_UDP}

// parseVerdict reads "goto CHAIN", "jump CHAIN", "drop" or "accept".
func parseVerdict(w []string) (*expr.Verdict, error) {
	switch {
	case len(w) == 2 && w[0] == "goto":
		return &expr.Verdict{Kind: expr.VerdictGoto, Chain: w[1]}, nil
	case len(w) == 2 && w[0] == "jump":
		return &expr.Verdict{Kind: expr.VerdictJump, Chain: w[1]}, nil
	case len(w) == 1 && w[0] == "drop":
		return &expr.Verdict{Kind: expr.VerdictDrop}, nil
	case len(w) == 1 && w[0] == "accept":
		return &expr.Verdict{Kind: expr.VerdictAccept}, nil
	}
	return nil, fmt.Errorf("verdict %q", strings.Join(w, " "))
}

// nlRule is a rule translated: its expressions, and for a DNAT through an
// anonymous map (anon), the map's elements, then the expressions that
// follow the lookup (which needs the map's batch-local ID).
type nlRule struct {
	exprs     []expr.Any
	anon      bool
	anonElems []nftables.SetElement
	after     []expr.Any
}

// parseRule translates the rules of a Service's chains, the same
// expressions nft makes of them (`nft --debug=netlink`):
//
//	ip daddr|saddr [!=] ADDR[/LEN] …
//	meta l4proto tcp|udp …
//	jump|goto CHAIN
//	dnat to ADDR:PORT
//	dnat ip to numgen random mod N map { 0 : ADDR . PORT, … }
//
// Anything else (a comment, a set lookup, fib, masquerade, …) is refused.
func parseRule(rule string) (*nlRule, error) {
	w := strings.Fields(rule)
	r := &nlRule{}
	for len(w) > 0 {
		switch {
		case len(w) >= 3 && w[0] == "ip" && (w[1] == "daddr" || w[1] == "saddr"):
			offset := uint32(16)
			if w[1] == "saddr" {
				offset = 12
			}
			op := expr.CmpOpEq
			w = w[2:]
			if w[0] == "!=" {
				op, w = expr.CmpOpNeq, w[1:]
			}
			if len(w) == 0 {
				return nil, errors.New("address missing")
			}
			e, err := matchAddr(offset, op, w[0])
			if err != nil {
				return nil, err
			}
			r.exprs = append(r.exprs, e...)
			w = w[1:]
		case len(w) >= 3 && w[0] == "meta" && w[1] == "l4proto":
			p, ok := protocols[w[2]]
			if !ok {
				return nil, fmt.Errorf("protocol %q", w[2])
			}
			r.exprs = append(r.exprs,
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}})
			w = w[3:]
		case len(w) == 2 && (w[0] == "jump" || w[0] == "goto"):
			v, err := parseVerdict(w)
			if err != nil {
				return nil, err
			}
			r.exprs = append(r.exprs, v)
			w = nil
		case len(w) == 3 && w[0] == "dnat" && w[1] == "to":
			ap, err := netip.ParseAddrPort(w[2])
			if err != nil || !ap.Addr().Is4() {
				return nil, fmt.Errorf("DNAT target %q", w[2])
			}
			r.exprs = append(r.exprs,
				&expr.Immediate{Register: 1, Data: ap.Addr().AsSlice()},
				&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(ap.Port())},
				&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true})
			w = nil
		case len(w) >= 9 && strings.Join(w[:6], " ") == "dnat ip to numgen random mod" && w[7] == "map" && w[8] == "{" && w[len(w)-1] == "}":
			if err := r.numgenMap(w[6], strings.Join(w[9:len(w)-1], " ")); err != nil {
				return nil, err
			}
			w = nil
		default:
			return nil, fmt.Errorf("unknown words at %q", strings.Join(w, " "))
		}
	}
	if len(r.exprs) == 0 {
		return nil, errors.New("empty rule")
	}
	return r, nil
}

// endpointType is the data of the DNAT map: address . port.
var endpointType = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)

// numgenMap adds the DNAT to an endpoint picked by numgen through an
// anonymous map of "0 : ADDR . PORT, 1 : …".
func (r *nlRule) numgenMap(mod, body string) error {
	n, err := strconv.ParseUint(mod, 10, 32)
	if err != nil || n == 0 {
		return fmt.Errorf("modulus %q", mod)
	}
	var elems []nftables.SetElement
	for _, item := range strings.Split(body, ", ") {
		k, v, ok := strings.Cut(item, " : ")
		if !ok {
			return fmt.Errorf("map element %q", item)
		}
		i, err := strconv.ParseUint(k, 10, 32)
		if err != nil {
			return fmt.Errorf("map key %q", k)
		}
		addr, port, ok := strings.Cut(v, " . ")
		a, err1 := netip.ParseAddr(addr)
		p, err2 := strconv.ParseUint(port, 10, 16)
		if !ok || err1 != nil || err2 != nil || !a.Is4() {
			return fmt.Errorf("map value %q", v)
		}
		val := append(a.AsSlice(), binaryutil.BigEndian.PutUint16(uint16(p))...)
		elems = append(elems, nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(uint32(i)), Val: append(val, 0, 0)})
	}
	r.exprs = append(r.exprs, &expr.Numgen{Register: 1, Modulus: uint32(n), Type: unix.NFT_NG_RANDOM})
	r.anon = true // an integer key, host-endian as numgen writes it
	r.anonElems = elems
	// nft sets no flags here: the kernel adds "proto specified" for a
	// proto register.
	r.after = []expr.Any{&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 9}}
	return nil
}

// matchAddr compares an address field (offset in the IPv4 header) with an
// address or prefix, as nft does: a whole-byte prefix compares its bytes
// only, another is masked.
func matchAddr(offset uint32, op expr.CmpOp, s string) ([]expr.Any, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("address %q", s)
		}
		p = netip.PrefixFrom(a, 32)
	}
	if !p.Addr().Is4() || p.Masked() != p || p.Bits() == 0 {
		return nil, fmt.Errorf("prefix %q", s)
	}
	b := p.Addr().AsSlice()
	if p.Bits()%8 == 0 {
		n := uint32(p.Bits() / 8)
		return []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: n},
			&expr.Cmp{Op: op, Register: 1, Data: b[:n]},
		}, nil
	}
	mask := netip.PrefixFrom(netip.IPv4Unspecified(), 0).Addr().AsSlice()
	for i := range p.Bits() {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: op, Register: 1, Data: b},
	}, nil
}

// nlBatch is the messages of one netlink batch to kelpie's table.
type nlBatch struct {
	msgs   []netlink.Message
	nextID uint32 // IDs of the batch's anonymous maps
}

// add appends a message of type typ (NFT_MSG_*) with attributes attrs.
func (b *nlBatch) add(typ uint16, flags netlink.HeaderFlags, attrs []netlink.Attribute) error {
	data, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		return err
	}
	b.msgs = append(b.msgs, netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | typ), Flags: netlink.Request | netlink.Acknowledge | flags},
		Data:   append(nfgenmsg(unix.NFPROTO_IPV4, 0), data...),
	})
	return nil
}

// nfgenmsg is the header of every nfnetlink message.
func nfgenmsg(family uint8, resID uint16) []byte {
	return append([]byte{family, unix.NFNETLINK_V0}, binaryutil.BigEndian.PutUint16(resID)...)
}

// cstr is a netlink string attribute's data.
func cstr(s string) []byte { return append([]byte(s), 0) }

// tableAttr names kelpie's table.
var tableAttr = netlink.Attribute{Type: unix.NFTA_CHAIN_TABLE, Data: cstr(netplan.TableName)} // NFTA_{CHAIN,RULE,SET,SET_ELEM_LIST}_TABLE are all 1

// addChain declares a regular chain.
func (b *nlBatch) addChain(name string) {
	_ = b.add(unix.NFT_MSG_NEWCHAIN, netlink.Create, []netlink.Attribute{tableAttr, {Type: unix.NFTA_CHAIN_NAME, Data: cstr(name)}})
}

// flushChain deletes every rule of a chain.
func (b *nlBatch) flushChain(name string) {
	_ = b.add(unix.NFT_MSG_DELRULE, 0, []netlink.Attribute{tableAttr, {Type: unix.NFTA_RULE_CHAIN, Data: cstr(name)}})
}

// addRule appends a rule to a chain, with its anonymous map first.
func (b *nlBatch) addRule(chain string, r *nlRule) error {
	exprs := r.exprs
	if r.anon {
		b.nextID++
		id := b.nextID
		if err := b.anonMap(id, len(r.anonElems)); err != nil {
			return err
		}
		if err := b.elements(unix.NFT_MSG_NEWSETELEM, anonMapName, id, r.anonElems); err != nil {
			return err
		}
		exprs = append(exprs[:len(exprs):len(exprs)], &expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: anonMapName, SetID: id})
		exprs = append(exprs, r.after...)
	}
	list := make([]netlink.Attribute, len(exprs))
	for i, e := range exprs {
		data, err := expr.Marshal(unix.NFPROTO_IPV4, e)
		if err != nil {
			return err
		}
		list[i] = netlink.Attribute{Type: unix.NLA_F_NESTED | unix.NFTA_LIST_ELEM, Data: data}
	}
	encoded, err := netlink.MarshalAttributes(list)
	if err != nil {
		return err
	}
	return b.add(unix.NFT_MSG_NEWRULE, netlink.Create|netlink.Append, []netlink.Attribute{
		tableAttr,
		{Type: unix.NFTA_RULE_CHAIN, Data: cstr(chain)},
		{Type: unix.NLA_F_NESTED | unix.NFTA_RULE_EXPRESSIONS, Data: encoded},
	})
}

// anonMapName is the name template of anonymous maps: the kernel numbers
// them.
const anonMapName = "__map%d"

// anonMap declares the anonymous map of a numgen DNAT, as nft does: a
// constant map from a host-endian integer to address . port, n elements.
func (b *nlBatch) anonMap(id uint32, n int) error {
	desc, err := netlink.MarshalAttributes([]netlink.Attribute{{Type: unix.NFTA_SET_DESC_SIZE, Data: binaryutil.BigEndian.PutUint32(uint32(n))}})
	if err != nil {
		return err
	}
	var udata []byte
	udata = userdata.AppendUint32(udata, userdata.NFTNL_UDATA_SET_KEYBYTEORDER, byteorderHost)
	udata = userdata.AppendUint32(udata, userdata.NFTNL_UDATA_SET_DATABYTEORDER, byteorderBig)
	return b.add(unix.NFT_MSG_NEWSET, netlink.Create, []netlink.Attribute{
		tableAttr,
		{Type: unix.NFTA_SET_NAME, Data: cstr(anonMapName)},
		{Type: unix.NFTA_SET_FLAGS, Data: binaryutil.BigEndian.PutUint32(unix.NFT_SET_ANONYMOUS | unix.NFT_SET_CONSTANT | unix.NFT_SET_MAP)},
		{Type: unix.NFTA_SET_KEY_TYPE, Data: binaryutil.BigEndian.PutUint32(nftables.TypeInteger.GetNFTMagic())},
		{Type: unix.NFTA_SET_KEY_LEN, Data: binaryutil.BigEndian.PutUint32(4)},
		{Type: unix.NFTA_SET_DATA_TYPE, Data: binaryutil.BigEndian.PutUint32(endpointType.GetNFTMagic())},
		{Type: unix.NFTA_SET_DATA_LEN, Data: binaryutil.BigEndian.PutUint32(endpointType.Bytes)},
		{Type: unix.NFTA_SET_ID, Data: binaryutil.BigEndian.PutUint32(id)},
		{Type: unix.NLA_F_NESTED | unix.NFTA_SET_DESC, Data: desc},
		{Type: unix.NFTA_SET_USERDATA, Data: udata},
	})
}

// nft's byte orders (enum byteorder), in a set's user data.
const (
	byteorderHost = 1
	byteorderBig  = 2
)

// elements adds (NFT_MSG_NEWSETELEM) or deletes (NFT_MSG_DELSETELEM)
// elements of set name (or of the batch's anonymous map id).
func (b *nlBatch) elements(typ uint16, set string, id uint32, els []nftables.SetElement) error {
	list := make([]netlink.Attribute, 0, len(els))
	for _, el := range els {
		key, err := netlink.MarshalAttributes([]netlink.Attribute{{Type: unix.NFTA_DATA_VALUE, Data: el.Key}})
		if err != nil {
			return err
		}
		attrs := []netlink.Attribute{{Type: unix.NLA_F_NESTED | unix.NFTA_SET_ELEM_KEY, Data: key}}
		var data []netlink.Attribute
		switch {
		case el.VerdictData != nil:
			v := []netlink.Attribute{{Type: unix.NFTA_VERDICT_CODE, Data: binaryutil.BigEndian.PutUint32(uint32(el.VerdictData.Kind))}}
			if el.VerdictData.Chain != "" {
				v = append(v, netlink.Attribute{Type: unix.NFTA_VERDICT_CHAIN, Data: cstr(el.VerdictData.Chain)})
			}
			enc, err := netlink.MarshalAttributes(v)
			if err != nil {
				return err
			}
			data = []netlink.Attribute{{Type: unix.NLA_F_NESTED | unix.NFTA_DATA_VERDICT, Data: enc}}
		case len(el.Val) > 0:
			data = []netlink.Attribute{{Type: unix.NFTA_DATA_VALUE, Data: el.Val}}
		}
		if data != nil {
			enc, err := netlink.MarshalAttributes(data)
			if err != nil {
				return err
			}
			attrs = append(attrs, netlink.Attribute{Type: unix.NLA_F_NESTED | unix.NFTA_SET_ELEM_DATA, Data: enc})
		}
		enc, err := netlink.MarshalAttributes(attrs)
		if err != nil {
			return err
		}
		list = append(list, netlink.Attribute{Type: unix.NLA_F_NESTED | unix.NFTA_LIST_ELEM, Data: enc})
	}
	encoded, err := netlink.MarshalAttributes(list)
	if err != nil {
		return err
	}
	attrs := []netlink.Attribute{tableAttr, {Type: unix.NFTA_SET_ELEM_LIST_SET, Data: cstr(set)}}
	if id != 0 {
		attrs = append(attrs, netlink.Attribute{Type: unix.NFTA_SET_ELEM_LIST_SET_ID, Data: binaryutil.BigEndian.PutUint32(id)})
	}
	attrs = append(attrs, netlink.Attribute{Type: unix.NLA_F_NESTED | unix.NFTA_SET_ELEM_LIST_ELEMENTS, Data: encoded})
	var flags netlink.HeaderFlags
	if typ == unix.NFT_MSG_NEWSETELEM {
		flags = netlink.Create
	}
	return b.add(typ, flags, attrs)
}

// netlinkRunner returns the function that sends steps as one netlink
// batch to the kernel's nftables, in the namespace netns (nil: this
// process's), within cfg.Timeout. The kernel runs a batch whole or not at
// all while it is sent, and answers each message (all asked for an
// acknowledgement) with an error or a success, in order; the first error
// fails the batch. Each batch has a socket of its own, so nothing of a
// failed one is read by the next.
func netlinkRunner(cfg Config, netns *os.File) func(steps []nlStep) error {
	return func(steps []nlStep) error {
		var b nlBatch
		for _, step := range steps {
			if err := step(&b); err != nil {
				return fmt.Errorf("encode: %w", err)
			}
		}
		nc := &netlink.Config{}
		if netns != nil {
			nc.NetNS = int(netns.Fd())
		}
		c, err := netlink.Dial(unix.NETLINK_NETFILTER, nc)
		if err != nil {
			return fmt.Errorf("dial: %w", err)
		}
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(cfg.Timeout)); err != nil {
			return err
		}
		msgs := make([]netlink.Message, 0, len(b.msgs)+2)
		msgs = append(msgs, netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_MSG_BATCH_BEGIN), Flags: netlink.Request}, Data: nfgenmsg(unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES)})
		msgs = append(msgs, b.msgs...)
		msgs = append(msgs, netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_MSG_BATCH_END), Flags: netlink.Request}, Data: nfgenmsg(unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES)})
		if _, err := c.SendMessages(msgs); err != nil {
			return fmt.Errorf("send batch of %d messages: %w", len(b.msgs), err)
		}
		for acked := 0; acked < len(b.msgs); {
			replies, err := c.Receive() // an error message comes back as err
			if err != nil {
				return fmt.Errorf("batch of %d messages, %d acknowledged: %w", len(b.msgs), acked, err)
			}
			for _, m := range replies {
				if m.Header.Type == netlink.Error {
					acked++
				}
			}
		}
		return nil
	}
}
