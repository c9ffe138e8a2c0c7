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
// # `nft -f -` for the whole table, netlink for small changes
//
// A full load, and any change of an unusual shape, is the text netplan
// writes (Ruleset.Text, Diff, DeleteStale), piped to one `nft -f -`
// process. nft sends a whole file as one netlink batch, which the kernel
// commits entirely or not at all. netplan's tests check that same text
// with `nft -c`, so what is loaded at start is exactly what was tested.
//
// nft, though, reads every chain of the table before it sends anything:
// bench/services.sh measured about 30 ms of CPU for one endpoint change
// among 1,000 Services × 10 endpoints, three times issue 13's budget of
// 10 ms. So an incremental change made only of the commands an endpoint
// change takes (set and map elements, a Service's chains flushed and
// written again, a chain declared: netplan.Change.Ops) is sent by the
// Loader itself as one netlink batch (netlink.go): the same messages nft
// would send (`nft --debug=netlink`), built with the expression encoders
// of github.com/google/nftables, still one atomic transaction. Anything it
// does not translate goes as text through nft; a batch the kernel refuses
// changes nothing and the full text is loaded instead. The tests compare
// `nft list table` after netlink changes of every shape with a full load
// of the same ruleset.
//
// sigs.k8s.io/knftables (kube-proxy's) would not help here: it renders its
// typed objects as text and pipes them to `nft -f -`, paying the same
// cache read.
//
// # Conntrack
//
// Conntrack.DeleteStaleUDP deletes the entries netplan.StaleUDP lists,
// through the kernel's conntrack netlink interface
// (github.com/vishvananda/netlink, as kube-proxy does): one dump of the
// table, matched against every stale flow at once. No conntrack binary is
// needed.
package nft
