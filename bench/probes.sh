#!/usr/bin/env bash
# CPU of `kelpie agent` probing N pods (default 100), as % of one core over
# a fixed window (WINDOW seconds, default 30; utime+stime from
# /proc/PID/stat), beside a baseline making the same probes from a shell
# loop (user+sys of the loop and every process it ran):
#   - httpGet probes every 1 s   (N HTTP probes/s) vs a loop of `wget`
#   - exec probes every 10 s     (N/10 execs/s)    vs a loop of `ctr task exec`
# Issue 12's goal: 100 HTTP probes/s under 5% of one core. containerd's and
# the shims' CPU (which an exec costs in both cases) is not counted.
#
#   N=100 WINDOW=60 bash bench/probes.sh
#
# Needs root, containerd (scripts/containerd.sh starts a private one), the
# CNI plugins, git, wget (or busybox) and busybox-static. Only the namespace
# and the addresses this script creates are used (pods in 10.246.0.0/22).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
N=${N:-100}
WINDOW=${WINDOW:-30}

bash scripts/deps.sh
export KELPIE_CI_DIR="${KELPIE_CI_DIR:-/tmp/kelpie-ci}"
started=false
bash scripts/containerd.sh status >/dev/null 2>&1 || started=true
bash scripts/containerd.sh start >/dev/null
eval "$(bash scripts/containerd.sh env)"
ADDR=$KELPIE_CONTAINERD_ADDRESS
NS=kelpie-bench-probes
LISTEN=127.0.0.1:${PORT:-18412}
TOKEN=bench-probes-token-0123456789

work=$(mktemp -d /tmp/kelpie-bench-probes.XXXXXX)
go build -o "$work/kelpie" ./cmd/kelpie
go run ./internal/testimage/mkimages "$work/images" >/dev/null
KFLAGS=(--containerd-address "$ADDR" --containerd-namespace $NS --state-dir "$work/state"
  --pod-subnet 10.246.0.0/22 --bridge kbprobe1 --image-dir "$work/images" --no-color)
PFLAGS=(--node-name bench)
WGET=(wget)
command -v wget >/dev/null || WGET=(busybox wget)

agent_pid=
cleanup() {
  if [ -n "$agent_pid" ]; then kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true; fi
  "$work/kelpie" apply -f "$work/empty" --prune --allow-empty "${KFLAGS[@]}" "${PFLAGS[@]}" >/dev/null 2>&1 || true
  ip link delete kbprobe1 2>/dev/null || true
  rm -rf "$work"
  if $started; then bash scripts/containerd.sh stop >/dev/null || true; fi
}
trap cleanup EXIT
mkdir -p "$work/empty"

now() { date +%s.%N; }
calc() { awk "BEGIN { print $* }"; }

# pods PROBE: N busybox httpd pods (each serves /www/healthz and has
# /tmp/ready), each with the readiness probe PROBE (YAML flow mapping).
pods() {
  for i in $(seq 1 "$N"); do
    cat <<YAML
apiVersion: v1
kind: Pod
metadata: {name: p$i, namespace: default}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: busybox:1.36
    command: [sh, -c, "mkdir -p /www && echo ok > /www/healthz && touch /tmp/ready && exec httpd -f -p 8080 -h /www"]
    readinessProbe: $1
---
YAML
  done
}
HTTP_PROBE='{httpGet: {path: /healthz, port: 8080}, periodSeconds: 1, failureThreshold: 3}'
EXEC_PROBE='{exec: {command: [test, -f, /tmp/ready]}, periodSeconds: 10, failureThreshold: 3}'

# The repository the agent follows.
git init -q "$work/site"
git -C "$work/site" checkout -q -b main
git init -q --bare "$work/site.git"
push() { # push MESSAGE PROBE
  mkdir -p "$work/site/apps"
  pods "$2" >"$work/site/apps/pods.yaml"
  git -C "$work/site" add -A
  git -C "$work/site" -c user.name=bench -c user.email=bench@localhost commit -q -m "$1"
  git -C "$work/site" push -q "$work/site.git" main
  git -C "$work/site" rev-parse HEAD
}

status() { "$work/kelpie" status -o json --agent "$LISTEN" --api-token "$TOKEN" 2>/dev/null || true; }

# wait_ready COMMIT: until the agent applied COMMIT and N pods are Ready.
wait_ready() {
  local deadline=$((SECONDS + 600)) s ready
  while :; do
    s=$(status)
    ready=$(grep -cE '"podReady": ?true' <<<"$s" || true)
    if grep -q "$1" <<<"$s" && [ "$ready" -ge "$N" ]; then return 0; fi
    if [ $SECONDS -ge $deadline ]; then
      echo "timed out waiting for $N Ready pods at $1 ($ready Ready)" >&2
      exit 1
    fi
    sleep 1
  done
}

# cpu_ticks PID: utime+stime of PID, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# agent_cpu: % of one core the agent used over WINDOW seconds.
agent_cpu() {
  local c0 c1 t0 t1
  c0=$(cpu_ticks "$agent_pid"); t0=$(now)
  sleep "$WINDOW"
  c1=$(cpu_ticks "$agent_pid"); t1=$(now)
  calc "($c1 - $c0) / $HZ / ($t1 - $t0) * 100"
}

# loop_cpu PERIOD CMD...: run CMD once per pod (its argument: the pod's
# index) every PERIOD seconds for WINDOW seconds; % of one core it used
# (the loop's shell and every process it ran).
loop_cpu() {
  local period=$1 out e u s
  shift
  out=$(
    /usr/bin/time -f '%e %U %S' bash -c '
      period=$1 window=$2 n=$3; shift 3
      end=$((SECONDS + window))
      while [ $SECONDS -lt $end ]; do
        next=$((SECONDS + period))
        for i in $(seq 1 "$n"); do "$@" "$i" >/dev/null 2>&1 || true; done
        while [ $SECONDS -lt $next ] && [ $SECONDS -lt $end ]; do sleep 0.05; done
      done' loop "$period" "$WINDOW" "$N" "$@" 2>&1 >/dev/null | tail -1
  )
  read -r e u s <<<"$out"
  calc "($u + $s) / $e * 100"
}

# The IPs of the pods, by index (p1 first), for the wget baseline.
pod_ips() {
  status | tr -d '\n ' | grep -oE '"name":"p[0-9]+"[^}]*"ip":"[0-9.]+"' |
    sed -E 's/"name":"p([0-9]+)".*"ip":"([0-9.]+)"/\1 \2/' | sort -n | awk '{ print $2 }'
}

"$work/kelpie" image import "$work/images" "${KFLAGS[@]}" >/dev/null

# 1. httpGet probes every second.
c1=$(push "http probes" "$HTTP_PROBE")
"$work/kelpie" agent --repo "$work/site.git" --ref main --path apps --listen "$LISTEN" --interval 1h \
  --api-token "$TOKEN" "${KFLAGS[@]}" "${PFLAGS[@]}" >"$work/agent.log" 2>&1 &
agent_pid=$!
wait_ready "$c1"
sleep 5 # let the start-up's syncs settle before the window
http_agent=$(agent_cpu)

mapfile -t IPS < <(pod_ips)
if [ "${#IPS[@]}" -ne "$N" ]; then
  echo "found ${#IPS[@]} pod IPs in the status, want $N" >&2
  exit 1
fi
printf '%s\n' "${IPS[@]}" >"$work/ips"
export work WGET_BIN="${WGET[*]}"
http_base=$(loop_cpu 1 bash -c 'ip=$(sed -n "${1}p" "$work/ips"); $WGET_BIN -q -T 1 -O /dev/null "http://$ip:8080/healthz"' wget)

# 2. exec probes every 10 seconds (the pods are replaced: their spec changed).
c2=$(push "exec probes" "$EXEC_PROBE")
wait_ready "$c2"
sleep 5
exec_agent=$(agent_cpu)
export ADDR NS
exec_base=$(loop_cpu 10 bash -c 'ctr -a "$ADDR" -n "$NS" task exec --exec-id "bench$1-$RANDOM" "default_p$1_main" test -f /tmp/ready' ctr)

printf 'pods: %d, window: %d s\n' "$N" "$WINDOW"
printf 'httpGet every 1 s  (%3d probes/s):  kelpie agent %6.2f %% of one core   shell loop of wget         %6.2f %%\n' \
  "$N" "$http_agent" "$http_base"
printf 'exec every 10 s    (%3s probes/s):  kelpie agent %6.2f %% of one core   shell loop of ctr task exec %6.2f %%\n' \
  "$(calc "$N / 10")" "$exec_agent" "$exec_base"
if awk "BEGIN { exit !($N >= 100 && $http_agent >= 5) }"; then
  echo "goal missed: 100 HTTP probes/s should take under 5% of one core"
fi
