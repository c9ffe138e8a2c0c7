// Command services is the Go side of bench/services.sh: it times kelpie's
// Service data path (netplan's ruleset programmed through runtime/nft)
// against its baselines, and serves and measures the connections and DNS
// queries of the latency and DNS parts. The script runs each subcommand
// inside the network namespaces it creates; nothing here creates or
// leaves a namespace.
//
//	services rules -services 1000 -endpoints 10 -runs 7 -dir DIR   (a, b: programming, one endpoint change)
//	services echo -listen IP:PORT                                 (c: a TCP echo server, a "pod")
//	services dial -n 2000 -rounds 3 VIP:PORT POD:PORT             (c: connection setup, alternating)
//	services dns -listen IP:PORT -services 1000 [-upstream IP:PORT] (d: kelpie's DNS server)
//	services dnsq -server IP:PORT -duration 5s NAME...            (d: queries per second)
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: services rules|echo|dial|dns|dnsq [flags]")
		os.Exit(2)
	}
	cmds := map[string]func([]string) error{
		"rules": rulesCmd,
		"echo":  echoCmd,
		"dial":  dialCmd,
		"dns":   dnsCmd,
		"dnsq":  dnsqCmd,
	}
	run := cmds[os.Args[1]]
	if run == nil {
		fmt.Fprintf(os.Stderr, "services: unknown subcommand %q\n", os.Args[1])
		os.Exit(2)
	}
	if err := run(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "services %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
