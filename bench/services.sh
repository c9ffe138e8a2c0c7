#!/usr/bin/env bash
# Service data path and DNS benchmarks (issue 13), each beside its
# baseline in the same run, all inside network namespaces this script
# creates (a "node" and two "pods"; the machine's own namespace is never
# programmed):
#   a. programming SERVICES Services x ENDPOINTS endpoints (default 1,000 x
#      10) through kelpie's own path (netplan.BuildRuleset, the text the
#      agent compares, runtime/nft's Loader: one `nft -f -` transaction),
#      vs `nft -f FILE` of the same text (the floor), vs iptables-restore
#      of kube-proxy-shaped nat rules (KUBE-SERVICES, KUBE-SVC-* with
#      statistic random, KUBE-SEP-*) by iptables-nft and iptables-legacy;
#   b. one endpoint change among them (a pod replaced: new address): the
#      Loader's incremental transaction over netlink (no nft process) vs
#      the same Loader before netlink (Config.NoNetlink: the diff piped to
#      `nft -f -`) vs the same diff by `nft -f FILE`,
#      the whole table by `nft -f`, and kube-proxy's full sync (the whole
#      nat table) and partial sync (KUBE-SERVICES and the changed chains);
#      goal: under 10 ms with 10,000 rules;
#   c. TCP connection setup from one pod to the other through a Service IP
#      (DNAT by kelpie's table, with the whole workload loaded) vs to the
#      pod's IP, the two alternating connection by connection; median and
#      p99; goal: within 10 %;
#   d. DNS queries per second from a pod: kelpie's DNS server
#      (runtime/dnsserver) answering Service names, vs dnsmasq answering the
#      same names from a hosts file (the stand-in for the host's resolver:
#      local only, it forwards nowhere), and kelpie's server forwarding
#      other names to that dnsmasq.
# With BEFORE=COMMIT, a and b run first for kelpie's path as of COMMIT (its
# bench/services built from `git archive`), beside this tree's.
# Times are min / median / max over RUNS runs (FULL_RUNS for a; ROUNDS
# rounds for c and d), wall-clock and CPU (user + system of kelpie's
# process and the nft it runs, or of the baseline's process: on a shared
# machine the CPU column is the steadier one).
#
#   SERVICES=1000 ENDPOINTS=10 RUNS=7 FULL_RUNS=3 CONNS=1000 ROUNDS=3 bash bench/services.sh
#
# Needs root, Go, and iproute2, nftables, iptables and dnsmasq-base (installed
# with apt-get when missing). No containerd. Addresses: 10.254.1.0/24 and
# 10.254.2.0/24 inside the namespaces only.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:/usr/sbin:/sbin:$PATH"
SERVICES=${SERVICES:-1000}
ENDPOINTS=${ENDPOINTS:-10}
RUNS=${RUNS:-7}
FULL_RUNS=${FULL_RUNS:-3}
CONNS=${CONNS:-1000}
ROUNDS=${ROUNDS:-3}
DNS_SECONDS=${DNS_SECONDS:-3}

if [ "$(id -u)" != 0 ]; then
  echo "bench/services.sh: needs root (network namespaces, nftables)" >&2
  exit 1
fi
missing=()
for p in iproute2:ip nftables:nft iptables:iptables-nft-restore dnsmasq-base:dnsmasq util-linux:nsenter; do
  command -v "${p#*:}" >/dev/null || missing+=("${p%%:*}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

NODE=kbsvc-$$-node # kelpie's table, the DNS servers
CLI=kbsvc-$$-c     # the client pod, 10.254.1.2
SRV=kbsvc-$$-s     # the server pod, 10.254.2.2
VIP=10.100.0.10:80
POD=10.254.2.2:8080
work=$(mktemp -d /tmp/kelpie-bench-services.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  for n in "$NODE" "$CLI" "$SRV"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/services" ./bench/services
B=$work/services
if [ -n "${BEFORE:-}" ]; then
  mkdir "$work/before"
  git archive "$BEFORE" | tar -x -C "$work/before"
  (cd "$work/before" && go build -o "$work/services-before" ./bench/services)
fi

for n in "$NODE" "$CLI" "$SRV"; do
  ip netns add "$n"
  ip -n "$n" link set lo up
done
ip -n "$NODE" link add vc type veth peer name eth0 netns "$CLI"
ip -n "$NODE" link add vs type veth peer name eth0 netns "$SRV"
ip -n "$NODE" addr add 10.254.1.1/24 dev vc
ip -n "$NODE" addr add 10.254.2.1/24 dev vs
ip -n "$NODE" link set vc up
ip -n "$NODE" link set vs up
ip -n "$CLI" addr add 10.254.1.2/24 dev eth0
ip -n "$CLI" link set eth0 up
ip -n "$CLI" route add default via 10.254.1.1
ip -n "$SRV" addr add 10.254.2.2/24 dev eth0
ip -n "$SRV" link set eth0 up
ip -n "$SRV" route add default via 10.254.2.1
ip netns exec "$NODE" sysctl -qw net.ipv4.ip_forward=1

if [ -n "${BEFORE:-}" ]; then
  echo "== a, b BEFORE, as of $(git rev-parse --short "$BEFORE"): kelpie and the nft floor only"
  ip netns exec "$NODE" "$work/services-before" rules -services "$SERVICES" -endpoints "$ENDPOINTS" -runs "$RUNS" \
    -full-runs "$FULL_RUNS" -dir "$work" -iptables ""
  echo
fi
echo "== a, b: programming $SERVICES Services x $ENDPOINTS endpoints ($FULL_RUNS runs), and one endpoint change ($RUNS runs)"
ip netns exec "$NODE" "$B" rules -services "$SERVICES" -endpoints "$ENDPOINTS" -runs "$RUNS" -full-runs "$FULL_RUNS" -dir "$work" \
  -vip "$VIP" -backend "$POD"

echo
echo "== c: TCP connection setup from a pod, through the Service IP vs to the pod ($CONNS connections each x $ROUNDS rounds; kelpie's table holds the workload above)"
ip netns exec "$SRV" "$B" echo -listen "$POD" &
pids+=($!)
ip netns exec "$CLI" "$B" dial -n "$CONNS" -rounds "$ROUNDS" "$VIP" "$POD"
echo "hairpin check: the server pod reaches itself through the Service IP (masqueraded by kelpie's table):"
ip netns exec "$SRV" "$B" dial -n 20 -rounds 1 "$VIP" | tail -1

echo
echo "== d: DNS queries per second from a pod ($DNS_SECONDS s x $ROUNDS rounds each, 4 clients; $SERVICES Service names)"
"$B" dns -services "$SERVICES" -hosts "$work/hosts"
ip netns exec "$NODE" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
  --addn-hosts="$work/hosts" --listen-address=10.254.1.1 --bind-interfaces --port=5353 \
  --pid-file="$work/dnsmasq.pid" --user=root --group=root --cache-size=10000 &
pids+=($!)
ip netns exec "$NODE" "$B" dns -listen 10.254.1.1:53 -services "$SERVICES" -upstream 10.254.1.1:5353 &
pids+=($!)
ip netns exec "$CLI" "$B" dnsq -duration "${DNS_SECONDS}s" -rounds "$ROUNDS" -services "$SERVICES" \
  "kelpie dnsserver, Service names=10.254.1.1:53" \
  "dnsmasq, same names from a hosts file=10.254.1.1:5353" \
  "kelpie dnsserver forwarding to that dnsmasq=10.254.1.1:53=ext"
