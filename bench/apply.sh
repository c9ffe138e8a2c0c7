#!/usr/bin/env bash
# Cold `kelpie apply` of N single-container pods (default 20) until all run,
# beside a baseline in the same run: a shell loop that starts the same N
# containers with `ctr run -d`, each in its own network namespace attached by
# the same CNI bridge plugin (host-local IPAM), one after another. Reports
# both wall times, their ratio, kelpie's peak RSS, the time of a no-op
# `kelpie plan` and `kelpie apply` on NOOP_N (default 50) running pods, and
# of an apply that changes one pod among them.
#
#   N=300 NOOP_N=300 bash bench/apply.sh   # the 300-pod numbers (issue 15)
#
# Needs root, containerd (scripts/containerd.sh starts a private one), the
# CNI plugins and busybox-static. Only namespaces and addresses this script
# creates are used (pods in 10.246.0.0/22 and 10.247.0.0/22).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
N=${N:-20}
NOOP_N=${NOOP_N:-50}

bash scripts/deps.sh
export KELPIE_CI_DIR="${KELPIE_CI_DIR:-/tmp/kelpie-ci}"
started=false
bash scripts/containerd.sh status >/dev/null 2>&1 || started=true
bash scripts/containerd.sh start >/dev/null
eval "$(bash scripts/containerd.sh env)"
ADDR=$KELPIE_CONTAINERD_ADDRESS

work=$(mktemp -d /tmp/kelpie-bench.XXXXXX)
BASE_NS=kelpie-bench-baseline
CNI_BIN=/usr/lib/cni

go build -o "$work/kelpie" ./cmd/kelpie
go run ./internal/testimage/mkimages "$work/images" >/dev/null
KFLAGS=(--containerd-address "$ADDR" --containerd-namespace kelpie-bench --state-dir "$work/state"
  --pod-subnet 10.246.0.0/22 --bridge kbench1 --image-dir "$work/images" --no-color)
PFLAGS=(--node-name bench)

baseline_conf() { # the CNI config the baseline gives the bridge plugin
  cat <<JSON
{"cniVersion":"1.0.0","name":"kbench0","type":"bridge","bridge":"kbench0","isGateway":true,"ipMasq":true,
 "ipam":{"type":"host-local","subnet":"10.247.0.0/22","dataDir":"$work/baseline-ipam"}}
JSON
}
cni() { # cni ADD|DEL NAME
  baseline_conf | CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=/run/netns/$2 CNI_IFNAME=eth0 CNI_PATH=$CNI_BIN \
    "$CNI_BIN/bridge" >/dev/null
}
cleanup() {
  "$work/kelpie" apply -f "$work/empty" --prune --allow-empty "${KFLAGS[@]}" "${PFLAGS[@]}" >/dev/null 2>&1 || true
  for i in $(seq 1 "$N"); do
    ctr -a "$ADDR" -n $BASE_NS tasks kill -s KILL "b$i" >/dev/null 2>&1 || true
  done
  sleep 1
  for i in $(seq 1 "$N"); do
    ctr -a "$ADDR" -n $BASE_NS tasks delete "b$i" >/dev/null 2>&1 || true
    ctr -a "$ADDR" -n $BASE_NS containers delete "b$i" >/dev/null 2>&1 || true
    cni DEL "kb$i" 2>/dev/null || true
    ip netns delete "kb$i" 2>/dev/null || true
  done
  ip link delete kbench0 2>/dev/null || true
  ip link delete kbench1 2>/dev/null || true
  rm -rf "$work"
  if $started; then bash scripts/containerd.sh stop >/dev/null || true; fi
}
trap cleanup EXIT
mkdir -p "$work/empty" "$work/pods" "$work/noop"

# Images: present in both namespaces before timing (a cold start of pods, not of pulls).
ctr -a "$ADDR" -n $BASE_NS images import --all-platforms "$work/images" >/dev/null 2>&1 ||
  (cd "$work/images" && tar -cf "$work/images.tar" . && ctr -a "$ADDR" -n $BASE_NS images import "$work/images.tar" >/dev/null)
"$work/kelpie" image import "$work/images" "${KFLAGS[@]}" >/dev/null

for i in $(seq 1 "$N"); do
  cat >>"$work/pods/pods.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: p$i}
spec:
  terminationGracePeriodSeconds: 0
  containers: [{name: main, image: busybox:1.36, command: [sleep, "3600"]}]
---
YAML
done

now() { date +%s.%N; }
calc() { awk "BEGIN { print $* }"; }
less() { awk "BEGIN { exit !($1 < $2) }"; }

# Baseline: ip netns + CNI bridge ADD + ctr run -d, sequentially.
t0=$(now)
for i in $(seq 1 "$N"); do
  ip netns add "kb$i"
  cni ADD "kb$i"
  ctr -a "$ADDR" -n $BASE_NS run -d --with-ns "network:/run/netns/kb$i" docker.io/library/busybox:1.36 "b$i" sleep 3600 >/dev/null
done
t1=$(now)
running=$(ctr -a "$ADDR" -n $BASE_NS tasks ls | grep -c RUNNING || true)
base=$(calc "$t1 - $t0")

# kelpie: one cold apply; it returns when every pod's task has started.
t0=$(now)
/usr/bin/time -f "%M" -o "$work/rss" "$work/kelpie" apply -f "$work/pods" "${KFLAGS[@]}" "${PFLAGS[@]}" >/dev/null
t1=$(now)
kel=$(calc "$t1 - $t0")
krunning=$("$work/kelpie" ps -o json "${KFLAGS[@]}" | grep -c '"state": "Running"' || true)
rss=$(cat "$work/rss")

printf 'pods: %d\n' "$N"
printf 'baseline (ip netns + CNI ADD + ctr run -d, sequential): %6.2f s  (%d running)\n' "$base" "$running"
printf 'kelpie apply (cold):                                    %6.2f s  (%d running)\n' "$kel" "$krunning"
printf 'ratio kelpie/baseline: %.2f\n' "$(calc "$kel / $base")"
printf 'kelpie apply peak RSS: %d KiB\n' "$rss"

# No-op plan and apply on NOOP_N running pods.
"$work/kelpie" apply -f "$work/empty" --prune --allow-empty "${KFLAGS[@]}" "${PFLAGS[@]}" >/dev/null
for i in $(seq 1 "$NOOP_N"); do
  printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: q%d}\nspec:\n  terminationGracePeriodSeconds: 0\n  containers: [{name: main, image: busybox:1.36, command: [sleep, "3600"]}]\n---\n' "$i" >>"$work/noop/pods.yaml"
done
"$work/kelpie" apply -f "$work/noop" "${KFLAGS[@]}" "${PFLAGS[@]}" >/dev/null
best_plan=999; best_apply=999
for r in 1 2 3 4 5; do
  t0=$(now); "$work/kelpie" plan -f "$work/noop" "${KFLAGS[@]}" "${PFLAGS[@]}" >/dev/null; t1=$(now)
  p=$(calc "$t1 - $t0"); if less "$p" "$best_plan"; then best_plan=$p; fi
  t0=$(now); "$work/kelpie" apply -f "$work/noop" "${KFLAGS[@]}" "${PFLAGS[@]}" >/dev/null; t1=$(now)
  a=$(calc "$t1 - $t0"); if less "$a" "$best_apply"; then best_apply=$a; fi
done
printf 'no-op plan on %d running pods (best of 5):  %4.0f ms\n' "$NOOP_N" "$(calc "$best_plan * 1000")"
printf 'no-op apply on %d running pods (best of 5): %4.0f ms\n' "$NOOP_N" "$(calc "$best_apply * 1000")"

# One pod changed among NOOP_N: its command, so it is replaced.
sed -i '0,/command: \[sleep, "3600"\]/s//command: [sleep, "3601"]/' "$work/noop/pods.yaml"
t0=$(now); "$work/kelpie" apply -f "$work/noop" "${KFLAGS[@]}" "${PFLAGS[@]}" >/dev/null; t1=$(now)
printf 'apply of one changed pod among %d running pods: %4.0f ms\n' "$NOOP_N" "$(calc "($t1 - $t0) * 1000")"
