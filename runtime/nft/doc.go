// Package nft programs kelpie's nftables table, `table ip kelpie`, on this
// host from the rulesets that package netplan builds, and deletes the UDP
// conntrack entries a change leaves pointing at endpoints that are gone.
// It never decides what the table holds (netplan does), and it never reads
// or changes another table: every command it sends names `ip kelpie`.
//
// A Loader applies each change as one transaction: the full text of the
// ruleset at start (Load), then only the difference (Apply, from
// netplan.Diff), falling back to the full text when the difference fails
// (someone changed the table by hand, or it is gone). Chains a change
// empties are deleted by the Loader's own timer a little later (the
// kernel releases a chain's last reference late before Linux 6.2).
//
// # Why `nft -f -`
//
// Each transaction is the text netplan writes (Ruleset.Text, Diff,
// DeleteStale), piped to one `nft -f -` process. nft sends a whole file as
// one netlink batch, which the kernel commits entirely or not at all, so a
// change of any size is one atomic transaction and one process, never a
// command per rule. netplan's tests already check that same text with
// `nft -c`, so what is loaded is exactly what was tested.
//
// The alternatives do no better here:
//
//   - sigs.k8s.io/knftables (kube-proxy's) works the same way: it renders
//     its typed objects as text and pipes them to `nft -f -` in one
//     transaction. Using it would mean translating netplan's ruleset into
//     knftables objects only for knftables to print them back as text: a
//     second model of the ruleset and a new dependency, for the same
//     process and the same kernel transaction.
//   - github.com/google/nftables speaks netlink itself and starts no
//     process, but it takes the ruleset as kernel expressions (registers,
//     payload offsets, numgen, verdict maps and NAT assembled by hand): a
//     second model of the ruleset to keep in step with netplan's, which
//     `nft -c` cannot check. What it saves is one short-lived nft process
//     per change, which reads every chain of the table before it sends
//     anything: bench/services.sh measures it at about 30 ms of CPU for
//     one endpoint change among 1,000 Services × 10 endpoints (a chain per
//     Service), most of the change; under issue 13's 10 ms it would be
//     worth the second model.
//
// # Conntrack
//
// Conntrack.DeleteStaleUDP deletes the entries netplan.StaleUDP lists,
// through the kernel's conntrack netlink interface
// (github.com/vishvananda/netlink, as kube-proxy does): one dump of the
// table, matched against every stale flow at once. No conntrack binary is
// needed.
package nft
