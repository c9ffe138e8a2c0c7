package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"path"
	"path/filepath"
	"time"

	"filippo.io/age"

	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/internal/tlsconf"
	"github.com/kelpie-dev/kelpie/netplan"
	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/host"
	"github.com/kelpie-dev/kelpie/runtime/statedir"
	"github.com/kelpie-dev/kelpie/scheduler"
)

// Defaults of a Config.
const (
	DefaultInterval      = 30 * time.Second       // a poll finds pushes no webhook or ref watch reported; a ref check costs a round trip, no more
	DefaultDriftInterval = 10 * time.Second       // fallback when runtime events are missed; Observe of 50 pods takes milliseconds
	DefaultListen        = "127.0.0.1:7070"       // loopback: reads need no token (Host and Origin are checked); 7946 is memberlist's
	DefaultRetryMin      = 2 * time.Second        // first retry of a transient failure: long enough for a restarting containerd
	DefaultRetryMax      = 5 * time.Minute        // as the kubelet's restart back-off cap
	DefaultEventDelay    = 250 * time.Millisecond // gathers the events of one burst (a pod's containers exiting together) into one check
	// LogRotateInterval is how often container logs are checked against
	// ContainerLogs: a container writing 1 MiB/s overshoots by 10 MiB.
	LogRotateInterval = 10 * time.Second
	// LogTimesInterval is how often container logs are sampled for their
	// time index: the resolution of `kelpie logs --since`. A sample is a
	// stat of each log, and a record of ~30 bytes when one grew.
	LogTimesInterval = time.Second
)

// DefaultContainerLogs are the kubelet's defaults: rotate at 10 MiB, keep
// 5 files in all.
var DefaultContainerLogs = host.LogRotation{MaxBytes: 10 << 20, MaxFiles: 5}

// Config configures an agent. Build it with DefaultConfig and change what
// differs; New validates it, fills the zero fields that have a default and
// names the first field it rejects. Each field names its `kelpie agent`
// flag; every flag also has a KELPIE_* environment variable (docs/agent.md).
type Config struct {
	// Repos are the repository URLs (--repo, repeatable): https, ssh, git,
	// file:// or a plain path to a bare or non-bare repository. The first is
	// the origin; the others are mirrors tried when it fails. Required.
	Repos []string
	// Ref is the branch, tag or full commit hash to follow (--ref); ""
	// means "main".
	Ref string
	// Path is the directory of the manifests inside the repository (--path);
	// "" means the repository's root. Slash separated, relative.
	Path string
	// Interval is how often the repository is polled (--interval); 0 means
	// DefaultInterval. Ref watches, the webhook, SIGHUP and `kelpie sync`
	// trigger a sync in between.
	Interval time.Duration
	// FetchStallTimeout gives up on a repository URL that sends nothing
	// for this long during a fetch (--fetch-stall-timeout): the sync fails
	// with a fetch error (or goes on to the next mirror) and is retried
	// with back-off, while the last good commit keeps running. 0 means
	// source.DefaultStallTimeout.
	FetchStallTimeout time.Duration
	// DriftInterval is how often the host is observed and repaired when no
	// runtime event says it changed; 0 means DefaultDriftInterval.
	DriftInterval time.Duration
	// StateDir is the host's state dir (--state-dir): the agent keeps
	// StateDir/agent/state.json and its git cache there. "" means
	// Runtime.StateDir, or statedir.Default when that is empty too.
	StateDir string
	// Listen is the address of the HTTP endpoints (--listen); "" means
	// DefaultListen.
	Listen string
	// WebhookSecret is the HMAC key (GitHub, Gitea, Forgejo) or token
	// (GitLab) /hooks/git checks (--webhook-secret). Without it /hooks/git
	// answers 404.
	WebhookSecret string
	// SSHKeyFile and KnownHostsFile authenticate ssh remotes (--ssh-key,
	// --known-hosts).
	SSHKeyFile, KnownHostsFile string
	// VerifyKeysFile holds armored OpenPGP public keys (--verify-keys): when
	// set, only commits signed by one of them are applied.
	VerifyKeysFile string
	// AllowRewrite lets a head that does not descend from the applied commit
	// be applied (--allow-rewrite). Off, such a head is refused.
	AllowRewrite bool
	// Prune deletes pods and networks the manifests no longer name
	// (--prune). DefaultConfig turns it on: the agent owns the host, so a
	// workload removed from git is removed from the host. The empty-desired
	// guard still holds unless AllowEmpty.
	Prune bool
	// AllowEmpty lets a commit whose manifests give this host no pod remove
	// every pod (--allow-empty). Off, such a commit is refused: a wrong
	// --path or a deleted directory must not wipe a host.
	AllowEmpty bool
	// Host names this host and its labels, for nodeSelector and DaemonSets
	// (--node-name, --labels). Host.Name is required.
	Host reconciler.Host
	// Runtime configures containerd, CNI and volumes (the runtime flags).
	Runtime host.Config
	// Parallelism bounds the actions of a stage that run at once; 0 means
	// reconciler.DefaultParallelism.
	Parallelism int
	// RetryMin and RetryMax bound the back-off between retries of a
	// transient failure (a fetch, observe or apply that failed); 0 means
	// DefaultRetryMin and DefaultRetryMax.
	RetryMin, RetryMax time.Duration
	// EventDelay is how long after a runtime event the host is checked, so
	// one burst of events makes one check; 0 means DefaultEventDelay.
	EventDelay time.Duration
	// Cluster, when set, makes the agent a member of a cluster: Open
	// starts a gossip node with it (--bind, --join, --gossip-key, …);
	// Cluster.NodeName is Host.Name and Cluster.StateDir the state dir.
	// Nil runs the agent on its own.
	Cluster *gossip.Config
	// LeaveOnStop makes a clustered agent leave the cluster when it stops
	// (--leave-on-stop): the leader hands its replicas over at once.
	// Without it a stopped agent looks dead to the others, and its
	// replicas move after RescheduleAfter (a reboot keeps them).
	LeaveOnStop bool
	// RescheduleAfter is how long a dead host's replicas wait before the
	// leader places them elsewhere (--reschedule-after); 0 means
	// scheduler.DefaultRescheduleAfter. Only in a cluster (Deps.Cluster).
	RescheduleAfter time.Duration
	// Rebalance lets the leader move replicas back towards an even spread
	// when a host returns or joins (--rebalance; DefaultConfig turns it
	// on): one replica of a workload at a time, once all of its replicas
	// run and are ready, never one bound to a claim. Off, replicas stay
	// where they run (sticky sites). Only in a cluster.
	Rebalance bool
	// ServeMirror serves this host's applied commit and images to its peers
	// on Listen, read-only, under /mirror/ (--serve-mirror): a peer follows
	// it with --repo http://kelpie:TOKEN@HOST:PORT/mirror/git/repo.git and
	// --registry-mirror docker.io=http://kelpie:TOKEN@HOST:PORT/mirror, so
	// one host with an uplink or a USB stick feeds a whole site. Listen
	// must then be an address the peers reach.
	ServeMirror bool
	// MirrorToken is the secret every /mirror/ request must carry, as the
	// basic-auth password or a bearer token (--mirror-token,
	// KELPIE_MIRROR_TOKEN); at least 16 characters. "" in a cluster with a
	// gossip key accepts MirrorTokenFromKey of each of its keys; "" outside
	// one is an error with ServeMirror.
	MirrorToken string
	// APIToken is the secret that mutating API requests (POST
	// /api/v1/sync), and every request but /healthz, /metrics, the
	// webhook and /mirror/ when Listen is not a loopback address, must
	// carry as a bearer token or basic-auth password (--api-token,
	// KELPIE_API_TOKEN); at least 16 characters. "" means the token kept in
	// APITokenPath, made at the first start (0600, readable by root only).
	APIToken string
	// TLS names the PEM files of the agent's TLS: with a certificate it
	// serves HTTPS on Listen (--tls-cert, --tls-key); with a client CA,
	// /mirror/ needs a client certificate it signed (--tls-client-ca); a CA
	// file is trusted beside the system roots by the agent's clients: https
	// --repo URLs and registry mirrors (--tls-ca), to which the agent's own
	// certificate is presented when they ask for one.
	TLS tlsconf.Files
	// Log receives one record per sync outcome and per action, each with
	// the commit it came from. nil discards. The cli passes slog.Default(),
	// which --log-format and --log-level set up.
	Log *slog.Logger
	// Network is the cluster's networking configuration: the pod range cut
	// into a slice per host (--cluster-cidr, --pod-slice-size). Zero fields
	// take netplan's defaults. Runtime.PodSubnet (--pod-subnet), when set,
	// pins this host's slice; empty, the leader (or, on its own, the agent)
	// gives it one.
	Network netplan.Config
	// PodNetworkMode is how pods reach the other hosts' pods
	// (--pod-network-mode): host-gw routes where a peer shares a link,
	// VXLAN where it does not (auto, the default), or one of them for
	// every peer.
	PodNetworkMode netplan.PodNetworkMode
	// SkipKinds are kinds left out of the manifests (--skip-kind; the
	// manifests' .kelpie.yaml may add skipKinds): listed in status notices,
	// never run.
	SkipKinds []string
	// AgeIdentities decrypt SOPS-encrypted manifests (--age-key-file),
	// in memory only. A commit with a file none of them decrypts is
	// refused as a whole.
	AgeIdentities []age.Identity
	// HistoryLimit is how many syncs the history keeps
	// (StateDir/agent/history.jsonl, /api/v1/history, `kelpie history`);
	// 0 means DefaultHistoryLimit, at most 10000.
	HistoryLimit int
	// Notify are the URLs a JSON POST goes to when something goes wrong
	// and when it recovers (--notify, repeatable): a commit refused, syncs
	// failing, a container crash-looping, a host lost, quorum lost. The
	// body is Alertmanager's webhook shape with a Slack-style "text".
	Notify []string
	// NotifySecret signs each notification: X-Kelpie-Signature carries
	// "sha256=" and the hex HMAC-SHA256 of the body with it
	// (--notify-secret, KELPIE_NOTIFY_SECRET). "" sends them unsigned.
	NotifySecret string
	// ContainerLogs bounds each container's log files
	// (--container-log-max-size, --container-log-max-files); zero fields
	// mean DefaultContainerLogs'.
	ContainerLogs host.LogRotation
	// NodeIP is this host's address where NodePorts answer (--node-ip).
	// Invalid means the gossip address in a cluster, and the host's
	// non-loopback IPv4 addresses outside the cluster pod range on its
	// own.
	NodeIP netip.Addr
	// Clock is the agent's time; nil means SystemClock.
	Clock Clock
}

// DefaultConfig returns the configuration `kelpie agent` starts from: prune
// on, everything else at its zero-value default.
func DefaultConfig() Config {
	return Config{
		Interval:      DefaultInterval,
		DriftInterval: DefaultDriftInterval,
		Listen:        DefaultListen,
		Prune:         true, // the agent owns the host: what git no longer names goes
		Rebalance:     true,
	}
}

// StatePath is where the agent keeps its state: StateDir/agent/state.json.
func (c *Config) StatePath() string { return filepath.Join(c.StateDir, "agent", "state.json") }

// APITokenPath is where the agent keeps its API token when APIToken is
// empty: StateDir/agent/api-token.
func (c *Config) APITokenPath() string { return filepath.Join(c.StateDir, "agent", "api-token") }

// JobsPath is where the agent keeps its Job records: StateDir/agent/jobs.json.
func (c *Config) JobsPath() string { return JobsPath(c.StateDir) }

// CacheDir is where the agent keeps its git cache: StateDir/agent/git.
func (c *Config) CacheDir() string { return filepath.Join(c.StateDir, "agent", "git") }

// validate fills the defaults and rejects nonsense, naming the field.
func (c *Config) validate() error {
	if len(c.Repos) == 0 {
		return errors.New("agent config: Repos (--repo) is empty: name the repository to follow")
	}
	for i, r := range c.Repos {
		if r == "" {
			return fmt.Errorf("agent config: Repos[%d] (--repo) is empty", i)
		}
	}
	if c.Ref == "" {
		c.Ref = "main" // as source.RemoteConfig: git's and the git hosts' default branch
	}
	if c.Path == "" {
		c.Path = "."
	}
	if path.IsAbs(c.Path) || !fs.ValidPath(path.Clean(c.Path)) {
		return fmt.Errorf("agent config: Path %q (--path): want a relative, slash-separated directory inside the repository", c.Path)
	}
	c.Path = path.Clean(c.Path)
	durations := []struct {
		name, flag string
		d          *time.Duration
		def        time.Duration
	}{
		{"Interval", "--interval", &c.Interval, DefaultInterval},
		{"DriftInterval", "", &c.DriftInterval, DefaultDriftInterval},
		{"RetryMin", "", &c.RetryMin, DefaultRetryMin},
		{"RetryMax", "", &c.RetryMax, DefaultRetryMax},
		{"EventDelay", "", &c.EventDelay, DefaultEventDelay},
		{"RescheduleAfter", "--reschedule-after", &c.RescheduleAfter, scheduler.DefaultRescheduleAfter},
	}
	for _, d := range durations {
		switch {
		case *d.d == 0:
			*d.d = d.def
		case *d.d < 0:
			flag := ""
			if d.flag != "" {
				flag = " (" + d.flag + ")"
			}
			return fmt.Errorf("agent config: %s %v%s: must be positive", d.name, *d.d, flag)
		}
	}
	if c.ContainerLogs.MaxBytes == 0 {
		c.ContainerLogs.MaxBytes = DefaultContainerLogs.MaxBytes
	}
	if c.ContainerLogs.MaxFiles == 0 {
		c.ContainerLogs.MaxFiles = DefaultContainerLogs.MaxFiles
	}
	if err := c.ContainerLogs.Validate(); err != nil {
		return fmt.Errorf("agent config: ContainerLogs (--container-log-max-size, --container-log-max-files): %w", err)
	}
	if c.RetryMax < c.RetryMin {
		return fmt.Errorf("agent config: RetryMax %v is less than RetryMin %v", c.RetryMax, c.RetryMin)
	}
	switch {
	case c.StateDir == "" && c.Runtime.StateDir == "":
		c.StateDir = statedir.Default
	case c.StateDir == "":
		c.StateDir = c.Runtime.StateDir
	}
	if !filepath.IsAbs(c.StateDir) {
		return fmt.Errorf("agent config: StateDir %q (--state-dir): must be an absolute path", c.StateDir)
	}
	c.StateDir = filepath.Clean(c.StateDir)
	if c.Runtime.StateDir == "" {
		c.Runtime.StateDir = c.StateDir
	} else if filepath.Clean(c.Runtime.StateDir) != c.StateDir {
		return fmt.Errorf("agent config: StateDir %q and Runtime.StateDir %q differ: the agent and the runtime share one state dir", c.StateDir, c.Runtime.StateDir)
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("agent config: Listen %q (--listen): want HOST:PORT: %w", c.Listen, err)
	}
	if err := c.TLS.Validate(); err != nil {
		return fmt.Errorf("agent config: TLS: %w", err)
	}
	if c.APIToken != "" && len(c.APIToken) < minAPITokenLen {
		return fmt.Errorf("agent config: APIToken (--api-token) has %d characters: want at least %d of a random secret", len(c.APIToken), minAPITokenLen)
	}
	switch {
	case c.MirrorToken != "" && !c.ServeMirror:
		return errors.New("agent config: MirrorToken (--mirror-token) is set but ServeMirror (--serve-mirror) is not")
	case c.MirrorToken != "" && len(c.MirrorToken) < minMirrorTokenLen:
		return fmt.Errorf("agent config: MirrorToken (--mirror-token) has %d characters: want at least %d of a random secret", len(c.MirrorToken), minMirrorTokenLen)
	case c.ServeMirror && c.MirrorToken == "" && (c.Cluster == nil || c.Cluster.Key == "" && c.Cluster.KeyFile == ""):
		return errors.New("agent config: ServeMirror (--serve-mirror) needs MirrorToken (--mirror-token) or a cluster gossip key (--gossip-key) to derive it from")
	}
	if c.Host.Name == "" {
		return errors.New("agent config: Host.Name (--node-name) is empty")
	}
	if err := c.Network.Validate(); err != nil {
		return fmt.Errorf("agent config: %w", err)
	}
	if s := c.Runtime.PodSubnet; s != "" {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() || p != p.Masked() || p.Bits() > 30 {
			return fmt.Errorf("agent config: Runtime.PodSubnet %q (--pod-subnet): want an IPv4 network address of at most /30, or nothing to take the slice the cluster gives", s)
		}
	}
	if c.Parallelism < 0 {
		return fmt.Errorf("agent config: Parallelism %d: want 0 (the default) or more", c.Parallelism)
	}
	if c.Parallelism == 0 {
		c.Parallelism = reconciler.DefaultParallelism
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	return nil
}

// displayRepos returns the repository URLs without their userinfo
// (https://user:token@host/… → https://host/…), for status and logs:
// credentials in a URL are used, never shown.
func displayRepos(repos []string) []string {
	out := make([]string, len(repos))
	for i, r := range repos {
		out[i] = r
		if u, err := url.Parse(r); err == nil && u.Scheme != "" && u.User != nil {
			u.User = nil
			out[i] = u.String()
		}
	}
	return out
}
