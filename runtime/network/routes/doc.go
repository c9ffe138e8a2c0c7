// Package routes programs the routes between hosts that netplan.Routes
// computes, through rtnetlink (vishvananda/netlink): host-gw routes to the
// slices of peers on a shared link, and for the others a VXLAN device with
// its routes, permanent neighbour entries and FDB entries, as flannel's
// host-gw and vxlan backends do.
//
// Sync is idempotent and derives what is there only from what kelpie marks
// as its own: routes of route protocol Protocol in the main table, and the
// entries of its VXLAN device. It never changes or deletes any other route,
// and never decides which routes a host should have.
package routes
