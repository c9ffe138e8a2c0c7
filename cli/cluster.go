package cli

import (
	"bufio"
	"fmt"
	"net"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/gossip"
	"github.com/kelpie-dev/kelpie/scheduler"
)

// clusterFlags are `kelpie agent`'s cluster flags. Any of --bind, --join,
// --gossip-key, --gossip-key-file and --insecure-gossip makes the agent a
// cluster member; without them it runs on its own.
func clusterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "bind", Usage: fmt.Sprintf("gossip address, IP:PORT (default 0.0.0.0:%d in a cluster)", gossip.DefaultPort), EnvVars: envVars("bind")},
		&cli.StringFlag{Name: "advertise", Usage: "gossip address the other members dial, IP[:PORT] (default: the bind address)", EnvVars: envVars("advertise")},
		&cli.StringSliceFlag{Name: "join", Usage: "members to join, HOST:PORT (repeatable or comma separated); retried until one answers", EnvVars: envVars("join")},
		&cli.StringFlag{Name: "gossip-key", Usage: "gossip encryption keyring: base64 keys (16, 24 or 32 bytes; `kelpie keygen`), comma separated, the first primary (prefer the env var)", EnvVars: envVars("gossip-key")},
		&cli.StringFlag{Name: "gossip-key-file", Usage: "file holding the gossip keyring", EnvVars: envVars("gossip-key-file")},
		&cli.BoolFlag{Name: "insecure-gossip", Usage: "gossip without encryption (anyone on the network can join)", EnvVars: envVars("insecure-gossip")},
		&cli.IntFlag{Name: "expect", Usage: "expected cluster size: placement changes need expect/2+1 alive members (0: favour availability)", EnvVars: envVars("expect")},
		&cli.StringFlag{Name: "gossip-profile", Usage: "failure detection preset: fast (a dead host is seen in about 3 s; one site network), lan (memberlist's LAN timings, about 7 s) or wan (across sites)", Value: "fast", EnvVars: envVars("gossip-profile")},
		&cli.DurationFlag{Name: "reschedule-after", Usage: "how long a dead host's replicas wait before they move", Value: scheduler.DefaultRescheduleAfter, EnvVars: envVars("reschedule-after")},
		&cli.BoolFlag{Name: "rebalance", Usage: "move replicas back, one at a time, when a host returns or joins (--rebalance=false: replicas stay where they run)", Value: true, EnvVars: envVars("rebalance")},
		&cli.BoolFlag{Name: "leave-on-stop", Usage: "on SIGTERM, leave the cluster and remove this host's pods: the others take them over at once", EnvVars: envVars("leave-on-stop")},
		&cli.BoolFlag{Name: "scheduler", Usage: "let this host be elected scheduler (--scheduler=false: never lead)", Value: true, EnvVars: envVars("scheduler")},
	}
}

// clusterConfig returns the gossip configuration the flags ask for, or nil
// when no cluster flag is set.
func clusterConfig(c *cli.Context) (*gossip.Config, error) {
	if !c.IsSet("bind") && !c.IsSet("join") && !c.IsSet("gossip-key") && !c.IsSet("gossip-key-file") && !c.IsSet("insecure-gossip") {
		for _, name := range []string{"advertise", "expect", "leave-on-stop", "gossip-profile", "rebalance"} {
			if c.IsSet(name) {
				return nil, usageErrorf(c, "flag --%s needs a cluster: set --bind, --join or --gossip-key too", name)
			}
		}
		return nil, nil
	}
	gc := gossip.DefaultConfig()
	if b := c.String("bind"); b != "" {
		host, port, err := splitAddr(b, gossip.DefaultPort)
		if err != nil {
			return nil, usageErrorf(c, "invalid value %q for flag --bind: %v", b, err)
		}
		gc.BindAddr, gc.BindPort = host, port
	}
	if a := c.String("advertise"); a != "" {
		host, port, err := splitAddr(a, 0)
		if err != nil {
			return nil, usageErrorf(c, "invalid value %q for flag --advertise: %v", a, err)
		}
		gc.AdvertiseAddr, gc.AdvertisePort = host, port
	}
	for _, item := range c.StringSlice("join") {
		for _, j := range strings.Split(item, ",") {
			if j = strings.TrimSpace(j); j != "" {
				gc.Join = append(gc.Join, j)
			}
		}
	}
	gc.Key = c.String("gossip-key")
	gc.KeyFile = c.String("gossip-key-file")
	gc.Insecure = c.Bool("insecure-gossip")
	gc.Expect = c.Int("expect")
	if gc.Expect < 0 {
		return nil, usageErrorf(c, "invalid value %d for flag --expect: must not be negative", gc.Expect)
	}
	gc.Eligible = c.Bool("scheduler")
	profile, err := gossip.ParseProfile(c.String("gossip-profile"))
	if err != nil {
		return nil, usageErrorf(c, "invalid value %q for flag --gossip-profile: want fast, lan or wan", c.String("gossip-profile"))
	}
	gc.Profile = profile
	info, _ := debug.ReadBuildInfo()
	gc.Version = resolveVersion(Version, Commit, info).Version
	gc.Capacity = hostCapacity()
	return &gc, nil
}

// splitAddr splits IP[:PORT], with port def when it is missing.
func splitAddr(s string, def int) (string, int, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if net.ParseIP(s) == nil {
			return "", 0, fmt.Errorf("want IP:PORT")
		}
		return s, def, nil
	}
	if net.ParseIP(host) == nil {
		return "", 0, fmt.Errorf("%q is not an IP address", host)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("bad port %q", port)
	}
	return host, p, nil
}

// hostCapacity is what this host offers the scheduler: its CPUs and its
// memory (MemTotal), both as the kernel reports them.
func hostCapacity() gossip.Capacity {
	capacity := gossip.Capacity{CPU: uint64(goruntime.NumCPU()) * 1000}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return capacity
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			if kb, err := strconv.ParseUint(fields[1], 10, 64); err == nil {
				capacity.Memory = kb * 1024
			}
			break
		}
	}
	return capacity
}

// keygenCommand is `kelpie keygen`.
func keygenCommand() *cli.Command {
	return &cli.Command{
		Name:  "keygen",
		Usage: "print a new gossip encryption key for --gossip-key (or, with --mirror, a cluster's peer-sync token)",
		Description: "Prints a random 32-byte key, base64-encoded. Give the same key to every agent of\n" +
			"a cluster (--gossip-key or KELPIE_GOSSIP_KEY, or a file with --gossip-key-file).\n" +
			"To rotate: add the new key second on every agent, then first, then drop the old one.\n\n" +
			"With --mirror, prints instead the token agents of the cluster whose key is\n" +
			"--gossip-key (or --gossip-key-file) accept on /mirror/ (--serve-mirror without\n" +
			"--mirror-token): what a host outside the cluster puts in its --repo and\n" +
			"--registry-mirror URLs.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "mirror", Usage: "print the peer-sync (/mirror/) token derived from the primary gossip key", EnvVars: envVars("mirror")},
			&cli.StringFlag{Name: "gossip-key", Usage: "with --mirror: the cluster's gossip keyring", EnvVars: envVars("gossip-key")},
			&cli.StringFlag{Name: "gossip-key-file", Usage: "with --mirror: a file holding the cluster's gossip keyring", EnvVars: envVars("gossip-key-file")},
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usageErrorf(c, "unexpected argument %q", c.Args().First())
			}
			if c.Bool("mirror") {
				var keys [][]byte
				var err error
				switch {
				case c.String("gossip-key") != "" && c.String("gossip-key-file") != "":
					return usageErrorf(c, "flags --gossip-key and --gossip-key-file are both set: use one")
				case c.String("gossip-key") != "":
					keys, err = gossip.ParseKeys(c.String("gossip-key"))
				case c.String("gossip-key-file") != "":
					keys, err = gossip.ReadKeyFile(c.String("gossip-key-file"))
				default:
					return usageErrorf(c, "flag --mirror needs the cluster's key: set --gossip-key or --gossip-key-file")
				}
				if err != nil {
					return usageErrorf(c, "invalid gossip key: %v", err)
				}
				_, err = fmt.Fprintln(c.App.Writer, agent.MirrorTokenFromKey(keys[0]))
				return err
			}
			key, err := gossip.GenerateKey()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(c.App.Writer, key)
			return err
		},
	}
}
