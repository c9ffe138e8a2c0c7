package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// Defaults of a Config.
const (
	DefaultPort           = 7946             // memberlist's and Serf's port: firewalls and operators know it
	DefaultRejoinInterval = 30 * time.Second // as a push-pull: a healed partition reconverges within one
	DefaultSettlePeriod   = 2 * time.Second  // two probe rounds on a LAN: a burst of joins lands before anyone claims, and failover (dead detection ~6 s) stays under 10 s
	DefaultJoinMaxBackoff = 30 * time.Second // first join retries double from 1 s up to this, then keep that pace
)

// Profile picks memberlist's timing preset.
type Profile int

const (
	// ProfileLAN is memberlist's DefaultLANConfig (1 s probes, 30 s
	// push-pull): hosts on one site network. The zero value; `kelpie agent
	// --gossip-profile lan`.
	ProfileLAN Profile = iota
	// ProfileLocal is memberlist's DefaultLocalConfig (shorter timeouts)
	// with RetransmitMult 4: nodes on one machine, tests.
	ProfileLocal
	// ProfileWAN is memberlist's DefaultWANConfig: hosts across sites.
	ProfileWAN
	// ProfileFast is ProfileLAN with faster failure detection, for hosts on
	// one site network: probes every 500 ms with a 250 ms timeout, and a
	// suspicion of 4 probe intervals (2 s; memberlist waits longer, up to
	// 12 s, only on clusters of 4 hosts or more, when it expects other
	// members to confirm a suspicion). On three hosts a host that dies is
	// declared dead in 2.8 s instead of LAN's 7 s. Gossip is sent every
	// 100 ms (LAN: 200 ms) and each message 6 times as often as LAN's 4, so
	// that a suspected host hears of it and refutes it within those 2 s on a
	// lossy link. With 20% of packets dropped and two busy loops on a
	// 2-core machine, TestNoFalseDeathUnderLoss (45 s) saw a false death in
	// 3 of 16 runs with LAN's gossip pace and in 0 of 16 with this one (a
	// suspicion of 5 intervals instead: 2 of 8). The default of `kelpie
	// agent`.
	ProfileFast
)

// ParseProfile parses a --gossip-profile value: lan, fast or wan.
func ParseProfile(s string) (Profile, error) {
	switch s {
	case "lan":
		return ProfileLAN, nil
	case "fast":
		return ProfileFast, nil
	case "wan":
		return ProfileWAN, nil
	}
	return 0, fmt.Errorf("gossip profile %q: want lan, fast or wan", s)
}

// Capacity is what a node offers to the scheduler.
type Capacity struct {
	// CPU in millicores (1000 = one core).
	CPU uint64
	// Memory in bytes.
	Memory uint64
}

// Config configures a Node. Build it with DefaultConfig and change what
// differs; New validates it and names the first field it rejects. Fields
// name the `kelpie agent` flag they come from.
type Config struct {
	// NodeName is this node's unique name in the cluster (--node-name);
	// "" means the hostname. Names order the election: the eligible node
	// that sorts first leads.
	NodeName string
	// BindAddr and BindPort are where memberlist listens, UDP and TCP
	// (--bind host:port). Port 0 picks a free port (tests).
	BindAddr string
	BindPort int
	// AdvertiseAddr and AdvertisePort are what peers dial (--advertise);
	// "" and 0 mean the bind address and port (memberlist picks a private
	// address when binding 0.0.0.0).
	AdvertiseAddr string
	AdvertisePort int
	// APIAddr is where this node's HTTP API answers its peers, spread in
	// its metadata: host:port, or ":port" for this node's gossip address
	// on that port (see APIAddrFor, Member.APIAddr). "" advertises
	// nothing: peers assume the gossip address on their own API port.
	APIAddr string
	// Join lists host:port of nodes to join at start (--join). Joining is
	// retried with back-off until one answers; a node with no Join starts a
	// cluster of its own that others join.
	Join []string
	// Key is the gossip keyring (--gossip-key): base64 keys separated by
	// commas, the first primary (see ParseKeys). KeyFile reads it from a
	// file instead (--gossip-key-file). Set at most one.
	Key     string
	KeyFile string
	// Insecure allows gossip without encryption (--insecure-gossip).
	// Without a key and without Insecure, New returns ErrNoKey.
	Insecure bool
	// Labels are the node's labels (--labels k=v,...), for nodeSelector.
	Labels map[string]string
	// Capacity is what the node offers to the scheduler.
	Capacity Capacity
	// Version is the agent's version, shown in status.
	Version string
	// Eligible lets this node be elected scheduler.
	Eligible bool
	// Expect is the expected cluster size (--expect): placement changes
	// need Expect/2+1 alive members. 0 favours availability.
	Expect int
	// StateDir is the host's state dir: the node keeps
	// StateDir/gossip/peers.json and its last placement there. "" keeps
	// nothing (tests, one-shot commands).
	StateDir string
	// RejoinInterval is how often peers known but not alive are joined
	// again; 0 means DefaultRejoinInterval.
	RejoinInterval time.Duration
	// SettlePeriod is how long a view must stay unchanged before a
	// candidate claims leadership; 0 means DefaultSettlePeriod.
	SettlePeriod time.Duration
	// Profile picks memberlist's timing preset; the zero value is ProfileLAN.
	Profile Profile
	// Clock is the source of time; nil means SystemClock.
	Clock Clock
	// Logger receives the node's and memberlist's logs; nil means
	// slog.Default().
	Logger *slog.Logger

	// tune, when set, adjusts memberlist's config last (tests).
	tune func(*memberlist.Config)
	// wrap, when set, wraps the transport (tests: partitions).
	wrap func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport
}

// DefaultConfig returns a Config for a LAN, eligible, bound to all
// addresses on DefaultPort, with the hostname as node name.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		NodeName:       host,
		BindAddr:       "0.0.0.0",
		BindPort:       DefaultPort,
		Eligible:       true,
		RejoinInterval: DefaultRejoinInterval,
		SettlePeriod:   DefaultSettlePeriod,
	}
}

// validate fills the zero fields that have a default, decodes the keyring
// and rejects nonsense with a message naming the flag.
func (c *Config) validate() ([][]byte, error) {
	if c.NodeName == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			return nil, errors.New("--node-name is empty and the hostname is unknown")
		}
		c.NodeName = host
	}
	if len(c.NodeName) > 128 {
		return nil, fmt.Errorf("--node-name %.20q...: longer than 128 bytes", c.NodeName)
	}
	if c.APIAddr != "" {
		if _, port, err := net.SplitHostPort(c.APIAddr); err != nil || port == "" {
			return nil, fmt.Errorf("API address %q: not host:port", c.APIAddr)
		}
	}
	if c.BindAddr == "" {
		c.BindAddr = "0.0.0.0"
	}
	if net.ParseIP(c.BindAddr) == nil {
		return nil, fmt.Errorf("--bind %q: not an IP address", c.BindAddr)
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		return nil, fmt.Errorf("--bind port %d: out of range", c.BindPort)
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		return nil, fmt.Errorf("--advertise %q: not an IP address", c.AdvertiseAddr)
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		return nil, fmt.Errorf("--advertise port %d: out of range", c.AdvertisePort)
	}
	for _, j := range c.Join {
		host, port, err := net.SplitHostPort(j)
		if err != nil || host == "" {
			return nil, fmt.Errorf("--join %q: want host:port", j)
		}
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			return nil, fmt.Errorf("--join %q: bad port", j)
		}
	}
	if c.Expect < 0 {
		return nil, fmt.Errorf("--expect %d: must not be negative", c.Expect)
	}
	if c.RejoinInterval <= 0 {
		c.RejoinInterval = DefaultRejoinInterval
	}
	if c.SettlePeriod <= 0 {
		c.SettlePeriod = DefaultSettlePeriod
	}
	if c.Profile < ProfileLAN || c.Profile > ProfileFast {
		return nil, fmt.Errorf("gossip profile %d: unknown", c.Profile)
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	var keys [][]byte
	var err error
	switch {
	case c.Key != "" && c.KeyFile != "":
		return nil, errors.New("--gossip-key and --gossip-key-file are both set: use one")
	case c.Key != "":
		if keys, err = ParseKeys(c.Key); err != nil {
			return nil, fmt.Errorf("--gossip-key: %w", err)
		}
	case c.KeyFile != "":
		if keys, err = ReadKeyFile(c.KeyFile); err != nil {
			return nil, fmt.Errorf("--gossip-key-file: %w", err)
		}
	}
	if keys != nil && c.Insecure {
		return nil, errors.New("--insecure-gossip is set together with a gossip key: drop one")
	}
	if keys == nil && !c.Insecure {
		return nil, ErrNoKey
	}
	if _, err := encodeMeta(worstMeta(c)); err != nil {
		return nil, err
	}
	return keys, nil
}

// memberlistConfig builds memberlist's config for the profile.
func (c *Config) memberlistConfig() *memberlist.Config {
	var mc *memberlist.Config
	switch c.Profile {
	case ProfileLocal:
		mc = memberlist.DefaultLocalConfig()
		mc.RetransmitMult = 4            // 2 lost gossip at 5 nodes here (PITFALLS.md)
		mc.TCPTimeout = 10 * time.Second // as on a LAN: a stream must be compressed, sent and read within it; 1 s failed a 2 MB placement under load
	case ProfileWAN:
		mc = memberlist.DefaultWANConfig()
	case ProfileFast:
		mc = memberlist.DefaultLANConfig()
		mc.ProbeInterval = 500 * time.Millisecond
		mc.ProbeTimeout = 250 * time.Millisecond
		mc.SuspicionMult = 4
		mc.GossipInterval = 100 * time.Millisecond
		mc.RetransmitMult = 6
	default:
		mc = memberlist.DefaultLANConfig()
	}
	mc.Name = c.NodeName
	mc.BindAddr = c.BindAddr
	mc.BindPort = c.BindPort
	mc.AdvertiseAddr = c.AdvertiseAddr
	mc.AdvertisePort = c.AdvertisePort
	if c.AdvertisePort == 0 {
		mc.AdvertisePort = c.BindPort
	}
	mc.DeadNodeReclaimTime = 30 * time.Second // a host that came back with a new address (DHCP) may reclaim its name
	return mc
}
