// Package scheduler owns cluster placement: Place decides which node runs
// each replica of the desired state's Deployments and Pods, given the nodes
// the caller sees and the placement in force. It is pure: it takes values
// and returns values, with no I/O, no goroutines, no clock (the time is
// Options.Now) and no randomness, and the same input always gives the same
// output, whatever the order of the nodes given.
//
// The rules, in the order they apply:
//
//   - Sticky: a replica keeps its node while that node is up (alive or
//     suspect), or dead for less than Options.RescheduleAfter, and still
//     matches the replica's nodeSelector, has room for its requests and has
//     its host ports free. A node that left gracefully, or is not in the node
//     list at all, hands its replicas over at once.
//   - Volumes: a replica whose pod uses a PersistentVolumeClaim runs on the
//     node that holds the claim's data (the binding in the previous
//     Placement.Volumes, else the node reporting it in Node.Volumes), and
//     so do all replicas of every workload using that claim. It is never
//     moved automatically. A replica the dead node ran stays assigned to it
//     however long it is dead, reported Waiting (with a zero MoveAt), so
//     that the node, back, keeps running it; any other replica of it (one
//     not placed before, or on a node that left) is unassigned and
//     reported Unplaceable with the reason, and goes there when the node
//     returns.
//     An unbound claim is bound to the node the first replica using it is
//     placed on, and the binding is kept in Placement.Volumes.
//   - Spread: every other replica goes to the eligible alive node, among
//     those matching its nodeSelector with room for its cpu and memory
//     requests and its host ports, that runs the fewest replicas of the same
//     workload; then the least utilised (the larger of its cpu and memory
//     fractions); then the one running the fewest replicas; then the
//     first by name.
//   - A replica no node can take is reported Unplaceable with a reason in
//     the manner of Nomad ("Dimension memory exhausted on 2 nodes").
//
// Replicas are named as reconciler.Expand names pods: a Deployment NAME
// with n replicas has replicas "NAMESPACE/NAME-0" … "NAMESPACE/NAME-(n-1)",
// so scaling down removes the highest ordinals first; a Pod is one replica
// "NAMESPACE/NAME". DaemonSets are not placed: each host decides from its
// own labels with DaemonSetRunsOn. Jobs and CronJobs are not placed while
// the host runtime does not run them (reconciler.Expand says the same);
// they are listed in Report.Skipped.
//
// scheduler never does I/O, never decides leadership or quorum (package
// gossip does, and calls Place only when it may change the placement), and
// never decides what a host runs beyond the assignment (package reconciler
// does).
package scheduler
