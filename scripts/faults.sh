#!/usr/bin/env bash
# kelpie's fault suite (`make faults`): starts a private containerd (own root,
# state dir and socket under $KELPIE_CI_DIR, default /tmp/kelpie-ci) unless
# one already answers there, runs the tests of test/faults against it (the
# real `kelpie agent`, git and CNI plugins, one fault at a time), and stops
# the containerd it started. Needs root. KELPIE_FAULTS_LONG=1 runs the long
# variants (30 kill points, 20 in the cluster, a minute without containerd);
# KELPIE_CRASH_SEED replays a crash loop; KELPIE_FAULTS_SERIAL=1 runs the
# single-host tests one by one rather than side by side. CI runs the suite
# as part of `go test ./...` (scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
GO="${GO:-go}"

export KELPIE_CI_DIR="${KELPIE_CI_DIR:-/tmp/kelpie-ci}"
started_containerd=false
if ! bash scripts/containerd.sh status >/dev/null 2>&1; then
  started_containerd=true
fi
on_exit() {
  rc=$?
  if $started_containerd; then
    bash scripts/containerd.sh stop || true
  fi
  exit "$rc"
}
trap on_exit EXIT
bash scripts/containerd.sh start
eval "$(bash scripts/containerd.sh env)"
export KELPIE_CONTAINERD_ADDRESS
export CI="${CI:-true}" # a missing component fails the suite rather than skipping it
# Four of the single-host tests at a time: most of each is waiting.
"$GO" test -count=1 -v -parallel 4 -timeout 30m ./test/faults
