#!/usr/bin/env bash
# CPU of `kelpie agent` probing N pods (default 100), as % of one core over
# a fixed window (WINDOW seconds, default 30; utime+stime of the agent from
# /proc/PID/stat), beside a baseline in the same run that makes the same
# probes from a shell loop (user+sys of the loop and every process it ran):
#   - httpGet probes every 1 s   (N HTTP probes/s) vs a loop of `wget`
#   - exec probes every 10 s     (N/10 execs/s)    vs a loop of `ctr task exec`
#   - no probes at all: what the agent costs with the same N pods (its
#     drift checks and status), which the probes add to (IDLE=0 skips it)
# and the agent's RSS (VmRSS) in each phase and its peak (VmHWM).
# Issue 12's goal: 100 HTTP probes/s under 5% of one core. containerd's and
# the shims' CPU (which an exec costs in both cases) is not counted.
#
#   N=100 WINDOW=60 bash bench/probes.sh
#
# The agent runs in a network namespace of its own (its bridge, pod veths,
# iptables and nftables rules live and die there); the wget loop runs there
# too. Everything the script creates goes when it exits: the agent (by its
# pid), the pods, the network namespace, the containerd namespace, the
# work dir. Needs root, containerd (scripts/containerd.sh starts a private
# one), the CNI plugins, iproute2, nsenter, git, jq, wget (or busybox), GNU
# time and busybox-static. PERF_OUT=FILE also records a perf profile of the
# agent making the HTTP probes (20 s, after the measured window);
# KELPIE_BIN=PATH measures that kelpie binary instead of building one.
#
# BEFORE=COMMIT also builds kelpie at COMMIT and measures both agents on
# the same pods in the httpGet phase, one after the other, ROUNDS times
# each (default 3; the agent is restarted on the other binary between
# windows, and its pods stay), and prints min/median/max of each side by
# side: the machine's load changes less between two windows than between
# two runs. EXEC=0 skips the exec phase, LOOPS=0 the wget and ctr loops.
#
#   BEFORE=main ROUNDS=5 EXEC=0 IDLE=0 LOOPS=0 bash bench/probes.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
N=${N:-100}
WINDOW=${WINDOW:-30}
WAIT=${WAIT:-900} # seconds for N pods to run and be Ready, per phase

bash scripts/deps.sh
export KELPIE_CI_DIR="${KELPIE_CI_DIR:-/tmp/kelpie-ci}"
started=false
bash scripts/containerd.sh status >/dev/null 2>&1 || started=true
bash scripts/containerd.sh start >/dev/null
eval "$(bash scripts/containerd.sh env)"
ADDR=$KELPIE_CONTAINERD_ADDRESS
NS=kelpie-bench-probes-$$ # containerd namespace: unique per run (runc's state root is shared)
NETNS=kbprobe$$
IN=(nsenter "--net=/run/netns/$NETNS" --)
LISTEN=127.0.0.1:18412
TOKEN=bench-probes-token-0123456789

work=$(mktemp -d /tmp/kelpie-bench-probes.XXXXXX)
KFLAGS=(--containerd-address "$ADDR" --containerd-namespace "$NS" --state-dir "$work/state"
  --pod-subnet 10.246.0.0/22 --bridge kbprobe1 --image-dir "$work/images" --no-color)
PFLAGS=(--node-name bench)
WGET=(wget)
command -v wget >/dev/null || WGET=(busybox wget)

agent_pid=
netns_made=false
cleanup() {
  local rc=$?
  set +e
  if [ -n "$agent_pid" ]; then
    kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
    if [ $rc -ne 0 ] && [ -f "$work/agent.log" ]; then
      echo "--- last lines of the agent's log:" >&2
      tail -n 30 "$work/agent.log" >&2
    fi
  fi
  if $netns_made; then
    "${IN[@]}" "$work/kelpie" apply -f "$work/empty" --prune --allow-empty "${KFLAGS[@]}" "${PFLAGS[@]}" >/dev/null 2>&1 ||
      echo "cleanup: prune failed; the pods of containerd namespace $NS may remain" >&2
    ip netns delete "$NETNS" 2>/dev/null
  fi
  if [ -x "$work/kelpie" ]; then
    for img in $(ctr -a "$ADDR" -n "$NS" images ls -q 2>/dev/null); do
      ctr -a "$ADDR" -n "$NS" images rm "$img" >/dev/null 2>&1
    done
    # containerd collects the images' content and snapshots in the
    # background, when it gets to it: remove them.
    for snap in $(ctr -a "$ADDR" -n "$NS" snapshots ls 2>/dev/null | awk 'NR > 1 { print $1 }'); do
      ctr -a "$ADDR" -n "$NS" snapshots rm "$snap" >/dev/null 2>&1
    done
    for blob in $(ctr -a "$ADDR" -n "$NS" content ls -q 2>/dev/null); do
      ctr -a "$ADDR" -n "$NS" content rm "$blob" >/dev/null 2>&1
    done
    for _ in $(seq 1 30); do
      ctr -a "$ADDR" namespaces remove "$NS" >/dev/null 2>&1 && break
      sleep 1
    done
    ctr -a "$ADDR" namespaces ls -q | grep -qx "$NS" &&
      echo "cleanup: containerd namespace $NS is not empty; left in place" >&2
  fi
  rm -rf "$work"
  if $started; then bash scripts/containerd.sh stop >/dev/null; fi
  return $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$work/empty"

if [ -n "${KELPIE_BIN:-}" ]; then cp "$KELPIE_BIN" "$work/kelpie"; else go build -trimpath -o "$work/kelpie" ./cmd/kelpie; fi
ROUNDS=${ROUNDS:-3}
if [ -n "${BEFORE:-}" ]; then
  mkdir "$work/before-src"
  git archive "$(git rev-parse --verify "$BEFORE^{commit}")" | tar -x -C "$work/before-src"
  (cd "$work/before-src" && go build -trimpath -o "$work/kelpie-before" ./cmd/kelpie) # -trimpath: the build cache serves both
  rm -rf "$work/before-src"
fi
go run ./internal/testimage/mkimages "$work/images" >/dev/null
ip netns add "$NETNS"
netns_made=true
ip -n "$NETNS" link set lo up

now() { date +%s.%N; }
calc() { awk "BEGIN { print $* }"; }

# pods PROBE: N busybox httpd pods (each serves /www/healthz and has
# /tmp/ready), each with the readiness probe PROBE (YAML flow mapping; none
# when empty).
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
YAML
    if [ -n "$1" ]; then echo "    readinessProbe: $1"; fi
    echo "---"
  done
}
# Kubernetes' defaults (timeoutSeconds 1, failureThreshold 3) but for the
# period, and for the exec probes' timeout: on a busy 2-core machine runc
# takes 2-3 s for each of 8 concurrent execs (`ctr task exec` as much),
# and 100 pods ask for 10 execs a second.
HTTP_PROBE='{httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}'
EXEC_PROBE='{exec: {command: [test, -f, /tmp/ready]}, periodSeconds: 10, timeoutSeconds: 5}'

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

status() { "${IN[@]}" "$work/kelpie" status -o json --agent "$LISTEN" --api-token "$TOKEN" 2>/dev/null || true; }
sync_now() { "${IN[@]}" "$work/kelpie" sync --agent "$LISTEN" --api-token "$TOKEN" >/dev/null 2>&1 || true; }

# wait_ready COMMIT [running]: until the agent applied COMMIT and runs N
# pods, all Ready (all running, with "running"). On a timeout it says
# which pods are not, and why (the agent's log has each readiness
# transition, with the probe's output).
wait_ready() {
  local t0=$SECONDS deadline=$((SECONDS + WAIT)) s applied ready want=podReady
  if [ "${2:-}" = running ]; then want=running; fi
  while :; do
    s=$(status)
    applied=$(jq -r '.applied.commit // ""' <<<"$s" 2>/dev/null || true)
    ready=$(jq --arg w "$want" '[.pods[]? | select(if $w == "running" then .state == "Running" else .podReady end)] | length' <<<"$s" 2>/dev/null || echo 0)
    if [ "$applied" = "$1" ] && [ "$ready" -ge "$N" ]; then
      echo "$N pods $want $((SECONDS - t0)) s after the push" >&2
      return 0
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "timed out after $WAIT s waiting for $N pods $want at $1 (applied: ${applied:-none}, $ready $want)" >&2
      jq -r '.pending // empty, .lastError // empty, (.pods[]? | select(.podReady | not) | "\(.name) \(.state) \(.ready)")' <<<"$s" | head -n 20 >&2
      grep -E 'NotReady|WARN|ERROR' "$work/agent.log" | tail -n 20 >&2
      exit 1
    fi
    sleep 2
  done
}
# ready_count: the pods Ready now.
ready_count() { status | jq '[.pods[]? | select(.podReady)] | length'; }

# cpu_ticks PID: utime+stime of PID, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
# rss PID FIELD: FIELD (VmRSS, VmHWM) of PID, in MiB.
rss() { awk -v f="$2:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# probes_made: probes the agent made so far (kelpie_probes_total), or
# nothing when it does not count them.
probes_made() {
  "${IN[@]}" "${WGET[@]}" -q -O - "http://$LISTEN/metrics" 2>/dev/null |
    awk '/^kelpie_probes_total/ { n += $NF; found = 1 } END { if (found) print n }'
}
# not_ready: the NotReady transitions in the agent's log so far.
not_ready() { grep -c 'event=NotReady' "$work/agent.log" || true; }

# switches PID: context switches of all the threads of PID so far.
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { n += $2 } END { print n + 0 }'; }

# agent_cpu: % of one core the agent used over WINDOW seconds, then the
# probes it made per second in it (n/a when it does not count them), the
# NotReady transitions it logged and its threads' context switches per
# second (each a wake-up of the agent; on a VM they cost more than on
# metal).
agent_cpu() {
  local c0 c1 t0 t1 p0 p1 f0 f1 s0 s1
  c0=$(cpu_ticks "$agent_pid")
  s0=$(switches "$agent_pid")
  t0=$(now)
  p0=$(probes_made)
  f0=$(not_ready)
  sleep "$WINDOW"
  c1=$(cpu_ticks "$agent_pid")
  s1=$(switches "$agent_pid")
  t1=$(now)
  p1=$(probes_made)
  f1=$(not_ready)
  printf '%s %s %s %s\n' "$(calc "($c1 - $c0) / $HZ / ($t1 - $t0) * 100")" \
    "$(if [ -n "$p0" ] && [ -n "$p1" ]; then calc "($p1 - $p0) / ($t1 - $t0)"; else echo n/a; fi)" "$((f1 - f0))" \
    "$(awk "BEGIN { printf \"%.0f\", ($s1 - $s0) / ($t1 - $t0) }")"
}

# loop_cpu WHERE PERIOD LIST CMD...: in the agent's network namespace
# (WHERE netns) or the machine's (host), every PERIOD seconds for WINDOW seconds, run
# CMD once for each line of the file LIST (the line's words its last
# arguments), one after another; % of one core it used (the loop's shell
# and every process it ran), then the runs per second it made.
loop_cpu() {
  local where=$1 period=$2 list=$3 out e u s runs pre=()
  shift 3
  if [ "$where" = netns ]; then pre=("${IN[@]}"); fi
  out=$(
    "${pre[@]}" /usr/bin/time -f '%e %U %S' bash -c '
      period=$1 window=$2 list=$3; shift 3
      mapfile -t args <"$list"
      end=$((SECONDS + window)) runs=0
      while [ $SECONDS -lt $end ]; do
        next=$((SECONDS + period))
        for a in "${args[@]}"; do
          read -ra more <<<"$a"
          "$@" "${more[@]}" >/dev/null 2>&1 || true
          runs=$((runs + 1))
        done
        while [ $SECONDS -lt $next ] && [ $SECONDS -lt $end ]; do sleep 0.05; done
      done
      echo "$runs" >"$list.runs"' loop "$period" "$WINDOW" "$list" "$@" 2>&1 >/dev/null | tail -n 1
  )
  read -r e u s <<<"$out"
  printf '%s %s\n' "$(calc "($u + $s) / $e * 100")" "$(calc "$(cat "$list.runs") / $e")"
}

"$work/kelpie" image import "$work/images" "${KFLAGS[@]}" >/dev/null

# start_agent BIN: runs the agent BIN (its log appended to agent.log).
start_agent() {
  "${IN[@]}" "$1" agent --repo "$work/site.git" --ref main --path apps --listen "$LISTEN" --interval 1h \
    --api-token "$TOKEN" "${KFLAGS[@]}" "${PFLAGS[@]}" >>"$work/agent.log" 2>&1 &
  agent_pid=$!
}
# stop_agent: stops the agent (its pods keep running).
stop_agent() {
  kill "$agent_pid"
  wait "$agent_pid" || true
  agent_pid=
}
# stats X...: min/median/max of the numbers X.
stats() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f/%.2f/%.2f", v[1], m, v[NR] }'; }

# 1. httpGet probes every second.
c1=$(push "http probes" "$HTTP_PROBE")
if [ -n "${BEFORE:-}" ]; then
  # The agent at BEFORE, then this one, on the same pods: ROUNDS windows
  # each, alternating; this one is the one that stays.
  before_cpu=() after_cpu=() before_cs=() after_cs=() before_fail=0 after_fail=0
  for r in $(seq 1 "$ROUNDS"); do
    for bin in before after; do
      if [ -n "$agent_pid" ]; then stop_agent; fi
      if [ "$bin" = before ]; then start_agent "$work/kelpie-before"; else start_agent "$work/kelpie"; fi
      wait_ready "$c1"
      sleep 5 # let the start-up's syncs settle before the window
      read -r http_agent http_rate http_fail http_cs < <(agent_cpu)
      echo "httpGet: agent ($bin, round $r) $http_agent % ($http_rate probes/s, $http_fail NotReady, $http_cs context switches/s), load $(cut -d' ' -f1 /proc/loadavg)" >&2
      if [ "$bin" = before ]; then
        before_cpu+=("$http_agent") before_cs+=("$http_cs") before_fail=$((before_fail + http_fail))
      else
        after_cpu+=("$http_agent") after_cs+=("$http_cs") after_fail=$((after_fail + http_fail))
      fi
    done
  done
else
  start_agent "$work/kelpie"
  wait_ready "$c1"
  sleep 5 # let the start-up's syncs settle before the window
  read -r http_agent http_rate http_fail http_cs < <(agent_cpu)
  echo "httpGet: agent $http_agent % ($http_rate probes/s, $http_fail NotReady, $http_cs context switches/s), load $(cut -d' ' -f1 /proc/loadavg)" >&2
fi
http_rss=$(rss "$agent_pid" VmRSS)
if [ -n "${PERF_OUT:-}" ]; then # after the window: perf's own cost stays out of it
  perf record -q -F 499 -g -p "$agent_pid" -o "$PERF_OUT" -- sleep 20 >/dev/null 2>&1 ||
    echo "perf record failed" >&2
fi

http_base=n/a http_base_rate=n/a
if [ "${LOOPS:-1}" != 0 ]; then
  # The pods' URLs, for the wget loop.
  status | jq -r '.pods[].ip | "http://\(.):8080/healthz"' >"$work/urls"
  if [ "$(wc -l <"$work/urls")" -ne "$N" ]; then
    echo "found $(wc -l <"$work/urls") pod IPs in the status, want $N" >&2
    exit 1
  fi
  read -r http_base http_base_rate < <(loop_cpu netns 1 "$work/urls" "${WGET[@]}" -q -T 1 -O /dev/null)
  echo "httpGet: wget loop $http_base % ($http_base_rate probes/s)" >&2
fi

# 2. exec probes every 10 seconds (the pods are replaced: their spec
# changed; EXEC=0 skips it).
exec_agent=n/a exec_rate=n/a exec_fail=n/a exec_rss=n/a exec_ready=n/a exec_base=n/a exec_base_rate=n/a
if [ "${EXEC:-1}" != 0 ]; then
  c2=$(push "exec probes" "$EXEC_PROBE")
  sync_now
  # Running, not Ready: on a busy machine the execs of 100 pods can take
  # longer than their timeout, and a pod goes Ready only after a passed
  # probe. The probes made and the pods Ready are reported instead.
  wait_ready "$c2" running
  sleep 15 # every pod's first exec probe is due in its first 10 s
  read -r exec_agent exec_rate exec_fail _ < <(agent_cpu)
  exec_rss=$(rss "$agent_pid" VmRSS)
  exec_ready=$(ready_count)
  echo "exec: agent $exec_agent % ($exec_rate probes/s, $exec_fail NotReady, $exec_ready Ready), load $(cut -d' ' -f1 /proc/loadavg)" >&2
  if [ "${LOOPS:-1}" != 0 ]; then
    for i in $(seq 1 "$N"); do echo "default_p${i}_main test -f /tmp/ready"; done >"$work/execs"
    read -r exec_base exec_base_rate < <(loop_cpu host 10 "$work/execs" ctr -a "$ADDR" -n "$NS" task exec --exec-id bench-probe)
  fi
fi

# 3. The same pods without probes (IDLE=0 skips it).
idle_agent=n/a idle_rss=n/a idle_cs=n/a
if [ "${IDLE:-1}" != 0 ]; then
  c3=$(push "no probes" "")
  sync_now
  wait_ready "$c3"
  sleep 5
  read -r idle_agent _ _ idle_cs < <(agent_cpu)
  idle_rss=$(rss "$agent_pid" VmRSS)
fi
peak_rss=$(rss "$agent_pid" VmHWM)

# per_probe CPU% RATE: CPU milliseconds per probe (n/a without a rate).
per_probe() { if [ "$2" = n/a ] || [ "$(calc "$2 <= 0")" = 1 ]; then echo n/a; else awk "BEGIN { printf \"%.2f\", $1 * 10 / $2 }"; fi; }
printf 'pods: %d, window: %d s, %s\n' "$N" "$WINDOW" "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'httpGet every 1 s:  kelpie agent %6.2f %% of one core (%s probes/s, %s ms CPU/probe, %s NotReady, RSS %s MiB)\n' \
  "$http_agent" "$http_rate" "$(per_probe "$http_agent" "$http_rate")" "$http_fail" "$http_rss"
if [ -n "${BEFORE:-}" ]; then
  printf '                    min/median/max of %d windows: kelpie agent %s %% of one core (%d NotReady), at %s %s %% (%d NotReady)\n' \
    "$ROUNDS" "$(stats "${after_cpu[@]}")" "$after_fail" "$BEFORE" "$(stats "${before_cpu[@]}")" "$before_fail"
  printf '                    context switches/s, min/median/max: kelpie agent %s, at %s %s\n' \
    "$(stats "${after_cs[@]}")" "$BEFORE" "$(stats "${before_cs[@]}")"
  http_agent=$(stats "${after_cpu[@]}" | cut -d/ -f2)
fi
printf '                    loop of wget          %6s %% of one core (%s probes/s, %s ms CPU/probe)\n' \
  "$http_base" "$http_base_rate" "$(per_probe "$http_base" "$http_base_rate")"
printf 'exec every 10 s:    kelpie agent %6s %% of one core (%s probes/s, %s ms CPU/probe, %s NotReady, RSS %s MiB; %s of %s pods Ready)\n' \
  "$exec_agent" "$exec_rate" "$(per_probe "$exec_agent" "$exec_rate")" "$exec_fail" "$exec_rss" "$exec_ready" "$N"
printf '                    loop of ctr task exec %6s %% of one core (%s probes/s, %s ms CPU/probe)\n' \
  "$exec_base" "$exec_base_rate" "$(per_probe "$exec_base" "$exec_base_rate")"
printf 'no probes:          kelpie agent %6s %% of one core (%s context switches/s, RSS %s MiB, peak %s MiB)\n' \
  "$idle_agent" "$idle_cs" "$idle_rss" "$peak_rss"
if awk "BEGIN { exit !($N >= 100 && $http_agent >= 5) }"; then
  echo "goal missed: 100 HTTP probes/s should take under 5% of one core"
fi
