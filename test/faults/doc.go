// Package faults is kelpie's fault suite: tests that run the real `kelpie
// agent` binary on a private host of the machine's real containerd, CNI
// plugins and iptables, following a real git repository pushed to with the
// git CLI, break one thing at a time on purpose (a stalled or truncating
// git remote, a CNI plugin that fails every third call, containerd stopped
// and restarted, a full state dir at the fetch or after it, a torn CNI
// result cache, SIGKILL in the middle of a sync, of a lone agent or of a
// member of a three-agent cluster) and then check the invariants: the
// desired pods run exactly once, nothing kelpie made is leaked, no data of
// a claim is lost, and the agent's status tells what happened and clears
// once it is over.
//
// The package holds only tests. They need root, containerd (the socket in
// KELPIE_CONTAINERD_ADDRESS; `make faults` starts a private one), git and
// the CNI plugins: without them they skip, or fail under CI=true.
// KELPIE_FAULTS_LONG=1 runs the long variants (more kill points);
// KELPIE_CRASH_SEED replays a crash loop.
package faults
