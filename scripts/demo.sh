#!/usr/bin/env bash
# kelpie demo: git push to deploy, for real, on this machine.
#
#   scripts/demo.sh          (make demo)        set up, wait for the first sync, then run the
#                                               agent in the foreground until Ctrl-C
#   scripts/demo.sh --check  (make demo-check)  the same, non-interactive: push one change, wait
#                                               for it to converge, print status, clean up, exit 0
#                                               (KELPIE_DEMO_ONESHOT=1 does the same)
#   scripts/demo.sh clean    (make demo-clean)  remove the demo's pods, stop what it started, remove its dir
#
# It installs what is missing (scripts/deps.sh: Debian packages, as root), builds
# bin/kelpie, starts a private containerd (scripts/containerd.sh with its own
# root, state dir and socket under the demo dir), writes the example images
# (busybox-static, no registry) into an image dir, makes a bare git repository
# of examples/site and runs `kelpie agent` on it with its own state dir,
# containerd namespace, bridge and pod subnet. Everything lives under
# KELPIE_DEMO_DIR (default /tmp/kelpie-demo); nothing else of the host is
# touched. Needs root (containers, network namespaces) and Go 1.26.
#
# Environment: KELPIE_DEMO_DIR, KELPIE_DEMO_PORT (default: 7070, or the next
# free port), KELPIE_DEMO_ONESHOT=1 (= --check), KELPIE_DEMO_TIMEOUT (seconds
# to wait for a sync, default 180).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export PATH="$PATH:/usr/local/go/bin"

demo=${KELPIE_DEMO_DIR:-/tmp/kelpie-demo}
timeout=${KELPIE_DEMO_TIMEOUT:-180}
namespace=kelpie-demo       # containerd namespace of the demo's containers
bridge=kdemo0               # the demo's default pod network bridge
pod_subnet=10.244.250.0/24  # a slice no default kelpie host uses (that is 10.244.0.0/24)
kelpie="$root/bin/kelpie"
marker="$demo/.kelpie-demo" # clean removes only a directory that holds it

mode=run
case "${1:-}" in
  "") [ "${KELPIE_DEMO_ONESHOT:-}" = 1 ] && mode=check ;;
  --check | check) mode=check ;;
  clean | --clean) mode=clean ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [--check|clean]" >&2; exit 2 ;;
esac

bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m' "$*"; else printf '%s' "$*"; fi; }
step() { printf '\n%s\n' "$(bold "== $*")"; }
show() { printf '$ %s\n' "$*"; "$@"; }
die() { echo "demo: $*" >&2; exit 1; }

# The private containerd's files live under $demo/containerd (scripts/containerd.sh).
containerd_sh() { KELPIE_CI_DIR="$demo" bash "$root/scripts/containerd.sh" "$@"; }
sock="$demo/containerd/containerd.sock"

# runtime_flags are the flags of every kelpie command that acts on the demo host.
runtime_flags=(--containerd-address "$sock" --containerd-namespace "$namespace" --state-dir "$demo/state"
  --image-dir "$demo/images" --bridge "$bridge" --pod-subnet "$pod_subnet")

# alive PIDFILE PATTERN prints the pid recorded in PIDFILE when that process
# runs and its command line holds PATTERN (a recycled pid is not ours).
alive() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$2" || return 1
  echo "$pid"
}

# stop_agent stops the demo's agent by its pid: TERM, then KILL after 15 s.
stop_agent() {
  local pid i
  pid=$(alive "$demo/agent.pid" "--state-dir $demo/state") || { rm -f "$demo/agent.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$demo/agent.pid"
  echo "agent stopped (pid $pid); its containers keep running"
}

# clean removes the demo's pods and networks, stops its agent and
# containerd, and removes the demo dir.
clean() {
  if [ ! -e "$demo" ]; then
    echo "nothing to clean: $demo does not exist"
    return 0
  fi
  [ -f "$marker" ] || die "$demo was not made by the demo (no $marker); not touching it"
  stop_agent
  if containerd_sh status >/dev/null 2>&1; then
    [ -x "$kelpie" ] || (cd "$root" && go build -o bin/kelpie ./cmd/kelpie)
    mkdir -p "$demo/empty"
    # --parallel 8: each delete waits out the pod's grace period, all at once.
    show "$kelpie" apply -f "$demo/empty" --prune --allow-empty --parallel 8 "${runtime_flags[@]}"
    containerd_sh stop
  fi
  # The bridge outlives its pods; the Network bridges went with the prune.
  if ip link show "$bridge" >/dev/null 2>&1; then
    ip link del "$bridge" && echo "bridge $bridge removed"
  fi
  # The demo agent's Service data path stays after the agent stops (traffic
  # keeps flowing while an agent restarts); the demo is the only kelpie here.
  if nft list table ip kelpie >/dev/null 2>&1; then
    nft delete table ip kelpie && echo "nftables table ip kelpie removed"
  fi
  if grep -qF " $demo/" /proc/self/mounts; then
    die "mounts under $demo are left (grep $demo /proc/self/mounts); not removing it"
  fi
  rm -rf "$demo"
  echo "removed $demo"
}

if [ "$mode" = clean ]; then
  [ "$(id -u)" = 0 ] || die "run as root (the demo's containers are root's)"
  clean
  exit 0
fi

# ---------------------------------------------------------------------------
step "prepare this machine"
[ "$(id -u)" = 0 ] || die "run as root: containers and network namespaces need it (sudo make demo)"
bash scripts/deps.sh
command -v go >/dev/null 2>&1 || die "Go 1.26 is required (https://go.dev/doc/install)"
if [ -e "$demo" ]; then
  echo "a previous demo is in $demo: cleaning it up first"
  clean
fi
mkdir -p "$demo"
: >"$marker"

# on_exit stops the agent when setup fails; in check mode it cleans up.
on_exit() {
  local rc=$?
  [ "$rc" = 0 ] && return
  echo "demo: failed (exit $rc)" >&2
  if [ -s "$demo/agent.log" ]; then
    echo "last lines of $demo/agent.log:" >&2
    tail -n 20 "$demo/agent.log" >&2 || true
  fi
  if [ "$mode" = check ]; then
    clean || true
  else
    stop_agent || true
    echo "demo: the demo's pods may be running; remove everything with: make demo-clean" >&2
  fi
}
trap on_exit EXIT

step "build kelpie"
make --no-print-directory -s build GO=go
"$kelpie" version

step "start a private containerd (root, state and socket under $demo/containerd)"
containerd_sh start

step "build the example images from busybox-static (no registry needed)"
show go run ./internal/testimage/mkimages "$demo/images"

step "make a git repository of examples/site"
show "$kelpie" validate examples/site
export GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@kelpie.dev GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@kelpie.dev
git init -q --bare -b main "$demo/site.git"
git init -q -b main "$demo/seed"
cp -r examples/site/. "$demo/seed/"
git -C "$demo/seed" add -A
git -C "$demo/seed" -c commit.gpgsign=false commit -q -m "example site"
git -C "$demo/seed" push -q "$demo/site.git" main
rm -rf "$demo/seed"
echo "bare repository $demo/site.git, branch main: $(git -C "$demo/site.git" log --oneline -1 main)"

# A free loopback port for the agent's HTTP endpoints.
port=${KELPIE_DEMO_PORT:-}
if [ -z "$port" ]; then
  for p in $(seq 7070 7099); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
  done
  [ -n "$port" ] || die "no free port in 127.0.0.1:7070-7099 (set KELPIE_DEMO_PORT)"
fi
listen=127.0.0.1:$port

# The demo host's settings as environment variables, for kelpie ps, logs, status.
cat >"$demo/env" <<EOF
# kelpie demo: source this file to point kelpie at the demo host.
export KELPIE_AGENT=$listen
export KELPIE_CONTAINERD_ADDRESS=$sock
export KELPIE_CONTAINERD_NAMESPACE=$namespace
export KELPIE_STATE_DIR=$demo/state
export KELPIE_IMAGE_DIR=$demo/images
export KELPIE_BRIDGE=$bridge
export KELPIE_POD_SUBNET=$pod_subnet
EOF

step "start kelpie agent (log: $demo/agent.log)"
agent_args=(agent --repo "$demo/site.git" --ref main --path . --listen "$listen" "${runtime_flags[@]}")
printf '$ %s' "$kelpie"; printf ' %q' "${agent_args[@]}"; echo
"$kelpie" "${agent_args[@]}" >>"$demo/agent.log" 2>&1 &
agent_pid=$!
echo "$agent_pid" >"$demo/agent.pid"


# status_has PATTERN waits until `kelpie status` prints a line matching PATTERN
# (an extended regexp), and fails after $timeout seconds.
status_has() {
  local deadline=$((SECONDS + timeout)) out
  while :; do
    kill -0 "$agent_pid" 2>/dev/null || die "the agent exited"
    if out=$(NO_COLOR=1 "$kelpie" status --agent "$listen" 2>/dev/null) && grep -Eq -- "$1" <<<"$out"; then
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$out" >&2
      die "no line matching /$1/ in kelpie status within ${timeout}s"
    fi
    sleep 0.5
  done
}

head=$(git -C "$demo/site.git" rev-parse main)
echo "waiting for the first sync to apply ${head:0:12} (images import, pods start)..."
status_has "^Applied: +${head:0:12} "
status_has "^default +web-1 +1/1 +Running"
show "$kelpie" status --agent "$listen"

# The instructions, exactly as the check mode runs them.
clone="$demo/site"
change_cmds=(
  "git clone $demo/site.git $clone && cd $clone"
  "sed -i 's/replicas: 2/replicas: 3/' apps/web.yaml"
  "sed -i 's/greeting: hello/greeting: hallo/' config/web.yaml"
  "git -c user.name=you -c user.email=you@example.com commit -qam 'scale web to 3, new greeting'"
  "$kelpie diff HEAD~1 HEAD      # the preview: exit 2 = changes pending"
  "git push -q origin main"
)
instructions() {
  cat <<EOF

$(bold "kelpie agent runs (pid $agent_pid) and follows $demo/site.git (branch main).")

Deploy a change with git, in another shell as root:

$(printf '  %s\n' "${change_cmds[@]}")

The agent sees the push within a second: web-2 starts at once; the new
greeting replaces web-0 and web-1, which first wait out their 30 s stop grace
period (busybox httpd ignores SIGTERM). Watch it:

  $kelpie status --agent $listen        # or: . $demo/env && $kelpie status
  http://$listen/                 # the dashboard (reloads every 5s); JSON: http://$listen/api/v1/status
  . $demo/env && $kelpie ps              # pods, containers, IPs (the demo's containerd)
  tail -f $demo/agent.log

Stop: Ctrl-C stops the agent only; the workloads keep running (a restarted
agent takes them over without restarting them). Remove the demo's pods,
networks, its containerd and $demo with:

  make demo-clean        # or: scripts/demo.sh clean
EOF
}

if [ "$mode" = run ]; then
  instructions
  step "agent log (Ctrl-C stops the agent)"
  tail -n +1 -f --pid="$agent_pid" "$demo/agent.log" &
  tail_pid=$!
  interrupted() {
    trap - INT TERM
    echo
    stop_agent
    kill "$tail_pid" 2>/dev/null || true
    echo "the demo's pods keep running; remove them and the demo with: make demo-clean"
    exit 0
  }
  trap interrupted INT TERM
  # Reached when the agent exits without this shell seeing the signal (it
  # got the Ctrl-C itself, or someone else stopped it): 0 is a clean stop.
  rc=0
  wait "$agent_pid" || rc=$?
  trap - INT TERM
  kill "$tail_pid" 2>/dev/null || true
  rm -f "$demo/agent.pid"
  if [ "$rc" = 0 ]; then
    echo "the agent stopped; the demo's pods keep running; remove them and the demo with: make demo-clean"
    exit 0
  fi
  echo "the agent exited with status $rc; see $demo/agent.log" >&2
  exit 1
fi

# ---------------------------------------------------------------------------
# Check mode: run the printed commands, wait for them to converge, clean up.
instructions
step "check: push a change as the instructions say"
(
  unset GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL
  for c in "${change_cmds[@]}"; do
    printf '$ %s\n' "$c"
    # kelpie diff exits 2 when changes are pending, as it should here.
    if [[ "$c" == "$kelpie diff"* ]]; then
      set +e; eval "$c"; rc=$?; set -e
      [ "$rc" = 2 ] || die "kelpie diff exited $rc, want 2 (changes pending)"
    else
      eval "$c"
    fi
  done
)
v2=$(git -C "$demo/site.git" rev-parse main)
echo "waiting for ${v2:0:12} to converge..."
status_has "^Applied: +${v2:0:12} "
status_has "^default +web-2 +1/1 +Running"
show "$kelpie" status --agent "$listen"

step "check: the dashboard at http://$listen/"
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' "$listen" >&3
page=$(cat <&3)
exec 3<&-
head -n 1 <<<"$page"
grep -q "${v2:0:12}" <<<"$page" || die "the dashboard does not show ${v2:0:12}"
grep -q "web-2" <<<"$page" || die "the dashboard does not show web-2"
echo "the dashboard shows ${v2:0:12} and web-2"

step "check: the agent's sync log"
grep -E 'msg=(sync|action|"agent started")' "$demo/agent.log" || true

step "check: clean up"
clean
trap - EXIT
step "demo check passed"
