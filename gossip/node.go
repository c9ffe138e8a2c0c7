package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Errors of PublishPlacement.
var (
	// ErrNotLeader: only the leader publishes placements.
	ErrNotLeader = errors.New("this node is not the leader")
	// ErrNoQuorum: too few members are alive for a placement change.
	ErrNoQuorum = errors.New("no quorum")
	// ErrStopped: the node has been shut down.
	ErrStopped = errors.New("gossip node stopped")
)

// MemberState is a member's liveness.
type MemberState string

// Member states.
const (
	StateAlive MemberState = "alive" // answering probes (memberlist's suspect included)
	StateDead  MemberState = "dead"  // stopped answering
	StateLeft  MemberState = "left"  // left gracefully (Node.Leave)
)

// Member is one node of the cluster as this node sees it.
type Member struct {
	// Name is the node's name; Addr its gossip address (host:port).
	Name, Addr string
	// State is alive, dead or left; Since is when it became so (this
	// node's clock), for grace periods such as --reschedule-after.
	State MemberState
	Since time.Time
	// Meta is the node's metadata; MetaErr says why it could not be read
	// (a newer agent, say), in which case Meta is zero.
	Meta    Meta
	MetaErr error
	// Status is the node's last status; HasStatus is false before one
	// arrived.
	Status    NodeStatus
	HasStatus bool
	// Self marks this node.
	Self bool
}

// Leadership is the leader this node follows.
type Leadership struct {
	// Leader is the leader's name, "" when none is known.
	Leader string
	// Term is the leader's term.
	Term uint64
	// Self is true when this node leads.
	Self bool
	// Reason is the election's last reason, for status.
	Reason string
}

// memberState is the Node's own record of a member, fed by memberlist's
// events (memberlist's *Node values must not be read outside them).
type memberState struct {
	name, addr string
	ip         net.IP
	port       uint16
	state      MemberState
	meta       Meta
	metaErr    error
	lastSeen   time.Time // last seen alive
	since      time.Time // state last changed
}

// Node is one member of a kelpie cluster. Its methods are safe for
// concurrent use; Changes tells the agent's loop when to look again.
type Node struct {
	cfg    Config
	log    *slog.Logger
	clock  Clock
	bridge *logBridge
	ml     atomic.Pointer[memberlist.Memberlist]
	trans  *countingTransport
	addr   string // advertised host:port (memberlist's LocalNode races with UpdateNode)
	queue  *memberlist.TransmitLimitedQueue
	alive  atomic.Int64 // alive members, self included: the queue's NumNodes

	mu           sync.Mutex
	meta         Meta
	metaBytes    []byte
	members      map[string]*memberState
	left         map[string]bool
	peers        map[string]peer
	highest      uint64
	placement    Placement
	placementEnc []byte
	statuses     map[string]NodeStatus
	viewSig      string
	viewChanged  time.Time
	lead         Leadership
	wants        map[[2]uint64]time.Time
	statusWants  map[string]statusWant // node → the status version last asked of it
	claims       map[uint64]string     // term → the member seen claiming it (noteClaimLocked)
	dirtyPeers   bool
	dirtyPlace   bool
	savedTerm    uint64
	peersSaved   time.Time
	stopped      bool

	changes      chan struct{}
	persistCh    chan struct{}
	kick         chan struct{}
	sends        chan sendJob // queued TCP sends (sendAsync, sendLoop)
	sendsDropped atomic.Int64 // sends dropped because the queue was full
	done         chan struct{}
	wg           sync.WaitGroup
}

// New validates cfg, starts memberlist listening, and starts the node's
// loops: joining (cfg.Join, then known peers, with back-off), the election
// and persistence. It returns once the node listens; joining goes on in
// the background (see Members, Changes).
func New(cfg Config) (*Node, error) {
	keys, err := cfg.validate()
	if err != nil {
		return nil, fmt.Errorf("gossip config: %w", err)
	}
	n := &Node{
		cfg:         cfg,
		log:         cfg.Logger.With("component", "gossip", "node", cfg.NodeName),
		clock:       cfg.Clock,
		members:     map[string]*memberState{},
		left:        map[string]bool{},
		peers:       map[string]peer{},
		statuses:    map[string]NodeStatus{},
		wants:       map[[2]uint64]time.Time{},
		statusWants: map[string]statusWant{},
		claims:      map[uint64]string{},
		changes:     make(chan struct{}, 1),
		persistCh:   make(chan struct{}, 1),
		kick:        make(chan struct{}, 1),
		sends:       make(chan sendJob, sendQueue),
		done:        make(chan struct{}),
	}
	n.bridge = &logBridge{log: cfg.Logger.With("node", cfg.NodeName), clock: cfg.Clock}
	if err := n.restore(); err != nil {
		return nil, err
	}
	n.meta = Meta{Labels: maps.Clone(cfg.Labels), Capacity: cfg.Capacity, Version: cfg.Version,
		Eligible: cfg.Eligible, Seen: n.highest, APIAddr: cfg.APIAddr}
	if n.metaBytes, err = encodeMeta(n.meta); err != nil {
		return nil, fmt.Errorf("gossip config: %w", err)
	}
	n.viewChanged = n.clock.Now()

	mc := cfg.memberlistConfig()
	mc.Logger = n.bridge.logger()
	if keys != nil {
		if mc.Keyring, err = newKeyring(keys); err != nil {
			return nil, err
		}
	}
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{cfg.BindAddr}, BindPort: cfg.BindPort, Logger: mc.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("gossip listen on %s: %w", net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.BindPort)), err)
	}
	if mc.BindPort == 0 {
		mc.BindPort = nt.GetAutoBindPort()
		if mc.AdvertisePort == 0 {
			mc.AdvertisePort = mc.BindPort
		}
	}
	var t memberlist.NodeAwareTransport = nt
	if cfg.wrap != nil {
		t = cfg.wrap(t)
	}
	n.trans = newCountingTransport(t)
	mc.Transport = n.trans
	mc.Delegate = (*delegate)(n)
	mc.Events = (*events)(n)
	if cfg.tune != nil {
		cfg.tune(mc)
	}
	n.queue = &memberlist.TransmitLimitedQueue{
		NumNodes:       func() int { return int(max(n.alive.Load(), 1)) },
		RetransmitMult: mc.RetransmitMult,
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		_ = n.trans.Shutdown()
		return nil, fmt.Errorf("start gossip: %w", err)
	}
	n.addr = ml.LocalNode().Address()
	n.ml.Store(ml)
	n.log.Info("gossip started", "addr", n.addr, "encrypted", keys != nil,
		"keys", len(keys), "eligible", cfg.Eligible, "join", cfg.Join)
	if keys == nil {
		n.log.Warn("gossip is NOT encrypted (--insecure-gossip): anyone who reaches the port can join and read cluster state")
	}
	n.wg.Add(3 + senders)
	for range senders {
		go n.sendLoop()
	}
	go n.electionLoop()
	go n.rejoinLoop()
	go n.persistLoop()
	return n, nil
}

// restore loads the peers file and the placement kept in the state dir.
func (n *Node) restore() error {
	if n.cfg.StateDir == "" {
		return nil
	}
	pf, err := readPeers(n.peersPath())
	if errors.Is(err, errCorruptPeers) {
		// The peers are a hint (--join and the others' gossip give them
		// back) and the highest term is learned from the others' metadata:
		// a torn file must not keep the node down. It is kept aside.
		aside := n.peersPath() + ".corrupt-" + n.clock.Now().UTC().Format("20060102T150405Z")
		if rerr := os.Rename(n.peersPath(), aside); rerr != nil {
			return fmt.Errorf("gossip state: %w; set it aside: %w", err, rerr)
		}
		n.log.Error("peers file corrupt: set aside, starting from --join and the others' gossip", "aside", aside, "err", err)
		pf, err = peersFile{}, nil
	}
	if err != nil {
		return fmt.Errorf("gossip state: %w", err)
	}
	now := n.clock.Now()
	for _, p := range pf.Peers {
		if p.Name != n.cfg.NodeName && now.Sub(p.LastSeen) < peerTTL {
			n.peers[p.Name] = p
		}
	}
	n.highest = pf.HighestTerm
	if n.highest > MaxTerm {
		n.log.Warn("ignoring the highest term kept in the state dir: above the limit", "term", n.highest, "limit", uint64(MaxTerm))
		n.highest = 0
	}
	p, err := readPlacementFile(n.placementPath())
	if err != nil {
		// A torn or foreign file must not keep the node down: the
		// cluster has the placement.
		n.log.Warn("ignoring the placement kept in the state dir", "err", err)
	} else if !p.IsZero() && (p.Term > MaxTerm || p.Seq > MaxSeq) {
		n.log.Warn("ignoring the placement kept in the state dir: term or seq above the limit", "term", p.Term, "seq", p.Seq)
	} else if !p.IsZero() {
		n.setPlacementLocked(p)
		n.dirtyPlace = false
	}
	n.savedTerm = n.highest
	n.peersSaved = n.clock.Now()
	return nil
}

func (n *Node) peersPath() string { return filepath.Join(n.cfg.StateDir, "gossip", "peers.json") }
func (n *Node) placementPath() string {
	return filepath.Join(n.cfg.StateDir, "gossip", "placement.bin")
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.NodeName }

// Addr returns the address peers reach this node at (host:port), for
// another node's Join.
func (n *Node) Addr() string { return n.addr }

// Changes delivers a signal whenever members, metadata, statuses, the
// leader or the placement change. Signals coalesce: after one, read the
// state you need.
func (n *Node) Changes() <-chan struct{} { return n.changes }

func (n *Node) notify() {
	select {
	case n.changes <- struct{}{}:
	default:
	}
}

// Join contacts the given host:port addresses now and returns how many
// answered. New already joins cfg.Join in the background; Join is for a
// later, operator-given address.
func (n *Node) Join(addrs []string) (int, error) {
	ml := n.ml.Load()
	if ml == nil {
		return 0, ErrStopped
	}
	k, err := ml.Join(addrs)
	if err != nil {
		n.logJoinError(addrs, err)
		return k, fmt.Errorf("gossip join %s: %w", strings.Join(addrs, ","), err)
	}
	return k, nil
}

// Members returns every member known, sorted by name, this node included;
// dead and left members stay until memberlist forgets them.
func (n *Node) Members() []Member {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]Member, 0, len(n.members)+1)
	self := false
	for _, m := range n.members {
		mm := Member{Name: m.name, Addr: m.addr, State: m.state, Since: m.since, Meta: m.meta, MetaErr: m.metaErr,
			Self: m.name == n.cfg.NodeName}
		if mm.Self {
			self = true
			mm.Meta = n.meta
			mm.State = StateAlive
		}
		mm.Status, mm.HasStatus = n.statuses[m.name]
		out = append(out, mm)
	}
	if !self {
		mm := Member{Name: n.cfg.NodeName, Addr: n.addr, State: StateAlive, Meta: n.meta, Self: true}
		mm.Status, mm.HasStatus = n.statuses[n.cfg.NodeName]
		out = append(out, mm)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Leader returns the leader this node follows.
func (n *Node) Leader() Leadership {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lead
}

// HighestTerm returns the highest leader term this node has seen.
func (n *Node) HighestTerm() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.highest
}

// Quorum returns whether placement changes may be made, and why.
func (n *Node) Quorum() Quorum {
	return CheckQuorum(n.cfg.Expect, n.quorumAlive())
}

// quorumAlive counts the members that count for quorum: those memberlist
// holds alive, this node included, but not its suspects. A suspect still
// counts as a member for everything else (memberlist reports no event until
// it is declared dead, seconds later), but a partitioned minority suspects
// its peers long before it declares them dead, and must not take them for
// a majority in between. It must not be called with n.mu held: memberlist
// calls observe, which takes n.mu, under its own lock.
func (n *Node) quorumAlive() int {
	ml := n.ml.Load()
	if ml == nil {
		return int(max(n.alive.Load(), 1))
	}
	count := 0
	for _, m := range ml.Members() {
		if m.State == memberlist.StateAlive {
			count++
		}
	}
	return max(count, 1)
}

// HasQuorum reports whether placement changes may be made (Quorum().OK).
func (n *Node) HasQuorum() bool { return n.Quorum().OK }

// Placement returns the placement in force: the highest (term, seq) this
// node has adopted. ok is false before any.
func (n *Node) Placement() (p Placement, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.placement, !n.placement.IsZero()
}

// PublishPlacement makes a new placement of the cluster. Only the leader
// may, and only with quorum: it gets the leader's term and the next seq,
// is adopted here at once and spreads to every node (a broadcast notice,
// pulls over TCP, and push-pull). data is opaque to gossip.
func (n *Node) PublishPlacement(commit string, data []byte) (Placement, error) {
	q := n.Quorum()
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return Placement{}, ErrStopped
	}
	if !n.lead.Self {
		l := n.lead.Leader
		n.mu.Unlock()
		return Placement{}, fmt.Errorf("publish placement: %w (leader: %q)", ErrNotLeader, l)
	}
	if !q.OK {
		n.mu.Unlock()
		return Placement{}, fmt.Errorf("publish placement: %w: %s", ErrNoQuorum, q.Reason)
	}
	p := Placement{Term: n.lead.Term, Seq: 1, Leader: n.cfg.NodeName, Commit: commit, Data: slices.Clone(data)}
	if n.placement.Term == p.Term {
		p.Seq = n.placement.Seq + 1
	}
	if !Adoptable(n.placement, n.highest, p) {
		cur := n.placement
		n.mu.Unlock()
		return Placement{}, fmt.Errorf("publish placement %d.%d: fenced by placement %d.%d or term %d: %w", p.Term, p.Seq, cur.Term, cur.Seq, n.highest, ErrNotLeader)
	}
	n.setPlacementLocked(p)
	n.mu.Unlock()
	n.queueNotice(p)
	n.persistSoon()
	n.notify()
	n.log.Info("placement published", "term", p.Term, "seq", p.Seq, "commit", p.Commit, "bytes", len(p.Data))
	return p, nil
}

// setPlacementLocked adopts p; n.mu is held.
func (n *Node) setPlacementLocked(p Placement) {
	n.placement = p
	e := encoder{b: make([]byte, 0, len(p.Data)+64)}
	p.encode(&e)
	n.placementEnc = e.b
	n.highest = max(n.highest, p.Term)
	n.dirtyPlace = true
}

// SetStatus sets this node's status and spreads it. Node, Version and
// Updated are filled here.
func (n *Node) SetStatus(s NodeStatus) error {
	now := n.clock.Now()
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return ErrStopped
	}
	s.Node = n.cfg.NodeName
	s.Updated = now
	s.Version = max(uint64(now.UnixNano()), n.statuses[s.Node].Version+1)
	s.Data = slices.Clone(s.Data)
	n.statuses[s.Node] = s
	n.mu.Unlock()
	n.queueStatus(s.Node, s.Version, encodeStatusMsg(s))
	n.notify()
	return nil
}

// Statuses returns the last status of every node that sent one.
func (n *Node) Statuses() map[string]NodeStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	return maps.Clone(n.statuses)
}

// Stats returns the node's gossip traffic counters.
func (n *Node) Stats() Stats { return n.trans.stats() }

// KeyErrors counts messages refused because they were not encrypted with
// a key of our keyring (a peer with a different --gossip-key).
func (n *Node) KeyErrors() uint64 { return n.bridge.keyCount.Load() }

// Leave leaves the cluster gracefully: the node stops leading, tells the
// others it leaves (so they hand its work over at once and drop it from
// their peers), and waits up to timeout for that to spread. Call Shutdown
// after.
func (n *Node) Leave(timeout time.Duration) error {
	ml := n.ml.Load()
	if ml == nil {
		return ErrStopped
	}
	n.mu.Lock()
	stepped := n.meta.Term > 0
	n.meta.Term = 0
	n.metaBytes, _ = encodeMeta(n.meta)
	n.lead = Leadership{Reason: "leaving"}
	n.mu.Unlock()
	if stepped {
		_ = ml.UpdateNode(timeout / 2)
	}
	n.queue.QueueBroadcast(&broadcast{name: "l/" + n.cfg.NodeName, msg: encodeLeaving(n.cfg.NodeName)})
	// memberlist offers no completion signal for user broadcasts, and its
	// own timers run on the wall clock: poll it.
	deadline := time.Now().Add(timeout / 2)
	for n.queue.NumQueued() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := ml.Leave(timeout); err != nil {
		return fmt.Errorf("gossip leave: %w", err)
	}
	return nil
}

// Shutdown stops the node without telling the others (they see it die)
// and saves its peers and placement. It is safe to call twice.
func (n *Node) Shutdown() error {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return nil
	}
	n.stopped = true
	n.mu.Unlock()
	close(n.done)
	var err error
	if ml := n.ml.Load(); ml != nil {
		err = ml.Shutdown()
	}
	n.wg.Wait()
	n.persist()
	if err != nil {
		return fmt.Errorf("gossip shutdown: %w", err)
	}
	return nil
}
