#!/usr/bin/env bash
# git push to running container: a `kelpie agent` follows a local bare
# repository of MANIFESTS manifests (default 200: PODS=20 single-container
# pods, the rest ConfigMaps). PUSHES times (default 10) one pod's env value
# is changed, committed and pushed with the git CLI; the time from `git push`
# returning to the replaced container running is split into phases, read
# from the agent's JSON log and its /metrics:
#
#   detect  push returned → sync started (ref watch: inotify, 50 ms debounce, loop wake)
#   fetch   sync started → reconcile started: fetch, decode and validate the
#           manifests, expand them for the host
#   plan    reconcile started → first action started: observe the host, plan
#   apply   first action started → the new container started, split into
#     stop    → the old container removed (SIGKILL at once: grace 0; delete it)
#     start   → the new one started (CNI DEL, netns, new sandbox, CNI ADD,
#             create and start the container)
#
# where "sync started" is the sync record's time minus its seconds, fetch and
# plan are the sync record's phases (phases.fetch + phases.validate, and
# phases.plan), and the action and container records give the rest. Median
# and max of each.
#
# Baseline, in the same run, for the same pod and value after each push: a
# shell doing what the agent does by hand: `git fetch` into a clone and
# `git show` of the manifest, then the pod's replacement with ip netns, the
# CNI bridge plugin and `ctr run -d` (as bench/apply.sh's baseline).
#
# Then the agent's idle RSS (VmRSS of /proc/PID/status, and VmHWM, its peak)
# once a push of IDLE_PODS pods (default 50) has converged and it has been
# idle for IDLE_SECONDS (default 10). Goal: under 40 MB.
#
# Needs root, containerd (scripts/containerd.sh starts a private one), the CNI
# plugins, git and busybox-static. Uses only what it creates: the containerd
# namespaces kelpie-bench-push and kelpie-bench-push-base, pods in
# 10.245.0.0/24 (bridge kpush1) and 10.245.1.0/24 (kpush0), netns kpb*, and a
# temporary directory; all are removed at the end, the agent stopped by its pid.
#
#   bash bench/push.sh            PUSHES=10 MANIFESTS=200 PODS=20 IDLE_PODS=50 IDLE_SECONDS=10
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
PUSHES=${PUSHES:-10}
MANIFESTS=${MANIFESTS:-200}
PODS=${PODS:-20}
IDLE_PODS=${IDLE_PODS:-50}
IDLE_SECONDS=${IDLE_SECONDS:-10}
[ "$PODS" -lt "$MANIFESTS" ] && [ "$IDLE_PODS" -lt "$MANIFESTS" ] || { echo "push.sh: PODS and IDLE_PODS must be below MANIFESTS" >&2; exit 2; }

bash scripts/deps.sh
export KELPIE_CI_DIR="${KELPIE_CI_DIR:-/tmp/kelpie-ci}"
cd_started=false
bash scripts/containerd.sh status >/dev/null 2>&1 || cd_started=true
bash scripts/containerd.sh start >/dev/null
eval "$(bash scripts/containerd.sh env)"
ADDR=$KELPIE_CONTAINERD_ADDRESS

work=$(mktemp -d /tmp/kelpie-bench-push.XXXXXX)
NS=kelpie-bench-push
BASE_NS=kelpie-bench-push-base
CNI_BIN=/usr/lib/cni
agent_pid=""

go build -o "$work/kelpie" ./cmd/kelpie
go run ./internal/testimage/mkimages "$work/images" >/dev/null
KFLAGS=(--containerd-address "$ADDR" --containerd-namespace $NS --state-dir "$work/state"
  --pod-subnet 10.245.0.0/24 --bridge kpush1 --image-dir "$work/images")
for _ in $(seq 1 50); do # a loopback port nothing listens on
  PORT=$((20000 + RANDOM % 20000))
  ss -Hltn "sport = :$PORT" | grep -q . || break
done
LISTEN=127.0.0.1:$PORT

baseline_conf() { # the CNI config the baseline gives the bridge plugin
  cat <<JSON
{"cniVersion":"1.0.0","name":"kpush0","type":"bridge","bridge":"kpush0","isGateway":true,"ipMasq":true,
 "ipam":{"type":"host-local","subnet":"10.245.1.0/24","dataDir":"$work/baseline-ipam"}}
JSON
}
cni() { # cni ADD|DEL NAME
  baseline_conf | CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=/run/netns/$2 CNI_IFNAME=eth0 CNI_PATH=$CNI_BIN \
    "$CNI_BIN/bridge" >/dev/null
}
bctr() { ctr -a "$ADDR" -n $BASE_NS "$@"; }
base_stop() { # base_stop K: remove baseline pod K (container, task, CNI, netns)
  bctr tasks kill -s KILL "b$1" >/dev/null 2>&1 || true
  for _ in $(seq 1 100); do # the task is deleted once it exited
    bctr tasks delete "b$1" >/dev/null 2>&1 && break
    bctr tasks ls -q | grep -qx "b$1" || break
    sleep 0.01
  done
  bctr containers delete "b$1" >/dev/null 2>&1 || true
  cni DEL "kpb$1" 2>/dev/null || true
  ip netns delete "kpb$1" 2>/dev/null || true
}
base_start() { # base_start K VALUE: baseline pod K with VERSION=VALUE
  ip netns add "kpb$1"
  cni ADD "kpb$1"
  bctr run -d --env "VERSION=$2" --with-ns "network:/run/netns/kpb$1" docker.io/library/busybox:1.36 "b$1" sleep 3600 >/dev/null
}
cleanup() {
  set +e
  if [ -n "$agent_pid" ]; then
    kill -TERM "$agent_pid" 2>/dev/null
    wait "$agent_pid" 2>/dev/null
  fi
  mkdir -p "$work/empty"
  "$work/kelpie" apply -f "$work/empty" --prune --allow-empty --no-color "${KFLAGS[@]}" --node-name bench >/dev/null 2>&1
  for i in $(seq 1 "$PODS"); do base_stop "$i"; done
  for n in $NS $BASE_NS; do
    ctr -a "$ADDR" -n "$n" images ls -q 2>/dev/null | xargs -r ctr -a "$ADDR" -n "$n" images rm --sync >/dev/null 2>&1
    ctr -a "$ADDR" -n "$n" content ls -q 2>/dev/null | xargs -r ctr -a "$ADDR" -n "$n" content rm >/dev/null 2>&1
    for _ in $(seq 1 20); do # once containerd's garbage collection freed the images' content
      ctr -a "$ADDR" namespaces remove "$n" >/dev/null 2>&1 && break
      sleep 0.5
    done
  done
  ip link delete kpush0 2>/dev/null
  ip link delete kpush1 2>/dev/null
  rm -rf "$work"
  if $cd_started; then bash scripts/containerd.sh stop >/dev/null; fi
}
trap cleanup EXIT

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $* }"; }
epoch() { date -d "$1" +%s.%N; } # RFC 3339 → seconds
http_get() { # http_get PATH: the body of GET http://$LISTEN/PATH, with bash's /dev/tcp only
  local body
  exec 3<>"/dev/tcp/127.0.0.1/$PORT"
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" "$LISTEN" >&3
  body=$(cat <&3)
  exec 3<&-
  printf '%s\n' "${body#*$'\r\n\r\n'}"
}
metric() { http_get /metrics | awk -v m="$1" '$1 == m { print $2 }'; }
running() { http_get /api/v1/status | grep -c '"ready": "1/1"' || true; } # pods whose one container runs

# Images: present in both namespaces before timing (a push, not a pull).
(cd "$work/images" && tar -cf "$work/images.tar" .)
bctr images import "$work/images.tar" >/dev/null
"$work/kelpie" image import "$work/images" "${KFLAGS[@]}" --no-color >/dev/null

# The site repository: pods p1..pN, ConfigMaps c1..cM, one file each.
declare -A version
write_site() { # write_site PODS
  rm -rf "$work/wt/apps"
  mkdir -p "$work/wt/apps"
  local i
  for i in $(seq 1 "$1"); do
    cat >"$work/wt/apps/p$i.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: p$i, namespace: bench}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: busybox:1.36
    command: [sleep, "3600"]
    env: [{name: VERSION, value: "${version[$i]:-v0}"}]
YAML
  done
  for i in $(seq 1 $((MANIFESTS - $1))); do
    cat >"$work/wt/apps/c$i.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata: {name: c$i, namespace: bench}
data: {index: "$i", text: "configuration $i, unchanged by the pushes"}
YAML
  done
}
g() { git -C "$work/wt" -c user.name=bench -c user.email=bench@kelpie.dev -c commit.gpgsign=false "$@"; }
git init -q --bare -b main "$work/site.git"
git init -q -b main "$work/wt"
write_site "$PODS"
g add -A && g commit -q -m v0 && g push -q "$work/site.git" main
git clone -q "$work/site.git" "$work/base-clone"

# Baseline pods, as the agent's first sync makes its own.
for i in $(seq 1 "$PODS"); do base_start "$i" v0; done

"$work/kelpie" --log-format json agent --repo "$work/site.git" --ref main --path apps --listen "$LISTEN" \
  --interval 1h "${KFLAGS[@]}" --node-name bench 2>"$work/agent.log" &
agent_pid=$!
wait_synced() { # wait_synced SHA: until the agent logged the sync of SHA; prints that record
  local short=${1:0:12} line
  for _ in $(seq 1 6000); do
    line=$(grep -F '"msg":"sync"' "$work/agent.log" | grep -F "\"commit\":\"$short\"" | tail -1 || true)
    if [ -n "$line" ]; then printf '%s\n' "$line"; return 0; fi
    kill -0 "$agent_pid" 2>/dev/null || { echo "push.sh: the agent exited:" >&2; tail -20 "$work/agent.log" >&2; exit 1; }
    sleep 0.01
  done
  echo "push.sh: no sync of $short within 60 s:" >&2; tail -20 "$work/agent.log" >&2; exit 1
}
wait_synced "$(g rev-parse HEAD)" >/dev/null
for _ in $(seq 1 600); do [ "$(running)" -ge "$PODS" ] && break; sleep 0.1; done
sleep 1
proc() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$agent_pid/status"; } # proc FIELD: KiB
rss_first=$(proc VmRSS)

field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"; } # field NAME < record: a JSON field's value
: >"$work/rows"
for i in $(seq 1 "$PUSHES"); do
  k=$(( (i - 1) % PODS + 1 ))
  version[$k]="r$i"
  write_site "$PODS"
  g add -A && g commit -q -m "push $i: p$k VERSION=r$i"
  sha=$(g rev-parse HEAD)
  sleep 1 # the previous push's drift check (its containers' exit events) is over
  lines0=$(wc -l <"$work/agent.log")

  g push -q "$work/site.git" main
  t_push=$(now)
  rec=$(wait_synced "$sha")

  sync_end=$(epoch "$(field time <<<"$rec")")
  sync_start=$(calc "$sync_end - $(field seconds <<<"$rec")")
  act=$(tail -n +"$((lines0 + 1))" "$work/agent.log" | grep -F '"msg":"action"' | grep -F "pod bench/p$k " | head -1)
  rrec=$(tail -n +"$((lines0 + 1))" "$work/agent.log" | grep -F '"msg":"container removed"' | grep -F "\"pod\":\"bench/p$k\"" | tail -1)
  crec=$(tail -n +"$((lines0 + 1))" "$work/agent.log" | grep -F '"msg":"container started"' | grep -F "\"pod\":\"bench/p$k\"" | tail -1)
  [ -n "$act" ] && [ -n "$rrec" ] && [ -n "$crec" ] || { echo "push.sh: push $i: no action or container start of p$k logged" >&2; tail -20 "$work/agent.log" >&2; exit 1; }
  act_start=$(calc "$(epoch "$(field time <<<"$act")") - $(field seconds <<<"$act")")
  t_run=$(epoch "$(field time <<<"$crec")")
  t_removed=$(epoch "$(field time <<<"$rrec")")
  fetch=$(calc "$(field fetch <<<"$rec") + $(field validate <<<"$rec")")
  plan=$(field plan <<<"$rec")
  detect=$(calc "$sync_start - $t_push")
  apply=$(calc "$t_run - $act_start")
  total=$(calc "$t_run - $t_push")

  # Baseline: the same change by hand.
  b0=$(now)
  git -C "$work/base-clone" fetch -q origin main
  value=$(git -C "$work/base-clone" show FETCH_HEAD:apps/p$k.yaml | sed -n 's/.*value: "\([^"]*\)".*/\1/p')
  b1=$(now)
  base_stop "$k"
  b2=$(now)
  base_start "$k" "$value"
  b3=$(now)
  [ "$value" = "r$i" ] || { echo "push.sh: baseline read VERSION=$value from p$k, want r$i" >&2; exit 1; }
  echo "$i $detect $fetch $plan $apply $(calc "$t_removed - $act_start") $(calc "$t_run - $t_removed") $total" \
    "$(calc "$b1 - $b0") $(calc "$b3 - $b1") $(calc "$b2 - $b1") $(calc "$b3 - $b2") $(calc "$b3 - $b0")" >>"$work/rows"
done

# Idle RSS with IDLE_PODS pods.
for i in $(seq 1 "$IDLE_PODS"); do version[$i]=idle; done
write_site "$IDLE_PODS"
g add -A && g commit -q -m "idle: $IDLE_PODS pods" && g push -q "$work/site.git" main
wait_synced "$(g rev-parse HEAD)" >/dev/null
for _ in $(seq 1 600); do [ "$(running)" -ge "$IDLE_PODS" ] && break; sleep 0.1; done
idle_running=$(running)
sleep "$IDLE_SECONDS"
rss=$(proc VmRSS); hwm=$(proc VmHWM); anon=$(proc RssAnon); file=$(proc RssFile)
heap=$(metric go_memstats_heap_inuse_bytes)

printf 'manifests: %d (%d pods, the rest ConfigMaps); %d pushes, each replacing one pod (env change)\n' "$MANIFESTS" "$PODS" "$PUSHES"
printf '%-4s %6s %6s %6s %6s %6s %6s %6s | %7s %7s %7s %7s %7s\n' push detect fetch plan apply stop start total b.fetch b.apply b.stop b.start b.total
awk '{ printf "%-4s", $1; for (i = 2; i <= NF; i++) { w = i <= 8 ? 6 : 7; if ($i == "NA") printf " %*s", w, "n/a"; else printf " %*.0f", w, $i * 1000; if (i == 8) printf " |" } printf "\n" }' "$work/rows"
echo "(milliseconds; apply = stop (container killed, removed) + start (old sandbox torn down, new one, container"
echo " created, started); b.* = baseline: git fetch + git show; stop: ctr kill, rm, CNI DEL, ip netns del;"
echo " start: ip netns add, CNI ADD, ctr run -d)"
stats() { # stats COLUMN NAME: median and max of a column, n/a rows skipped
  awk -v c="$1" '$c != "NA" { print $c }' "$work/rows" | sort -g | awk -v n="$2" '
    { v[NR] = $1 } END {
      if (NR == 0) { printf "%-28s n/a\n", n; exit }
      m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%-28s median %6.0f ms   max %6.0f ms   (%d pushes)\n", n, m * 1000, v[NR] * 1000, NR }'
}
stats 2 "detect"
stats 3 "fetch (+validate)"
stats 4 "plan (+observe)"
stats 5 "apply"
stats 6 "  stop"
stats 7 "  start"
stats 8 "kelpie push -> running"
stats 9 "baseline fetch"
stats 10 "baseline apply"
stats 11 "  stop"
stats 12 "  start"
stats 13 "baseline total"
if awk '$2 < 0 { found = 1 } END { exit !found }' "$work/rows"; then
  echo "(detect < 0: the sync started before git push returned; git updates the ref before it exits)"
fi
printf 'agent idle with %d pods running (%d wanted), %d s after converging: VmRSS %.1f MB (goal < 40 MB)\n' \
  "$idle_running" "$IDLE_PODS" "$IDLE_SECONDS" "$(calc "$rss / 1024")"
printf '  of which RssAnon %.1f MB (Go heap in use %.1f MB), RssFile %.1f MB (the %.1f MB binary'"'"'s pages); VmHWM %.1f MB\n' \
  "$(calc "$anon / 1024")" "$(calc "$heap / 1048576")" "$(calc "$file / 1024")" "$(calc "$(stat -c %s "$work/kelpie") / 1048576")" "$(calc "$hwm / 1024")"
printf '  (VmRSS %.1f MB after the first sync, %d pods; `kelpie version` alone peaks at %.1f MB)\n' \
  "$(calc "$rss_first / 1024")" "$PODS" "$(calc "$(/usr/bin/time -f %M "$work/kelpie" version 2>&1 >/dev/null | tail -1) / 1024")"
