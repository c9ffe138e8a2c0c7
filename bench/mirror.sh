#!/usr/bin/env bash
# Air-gap bundles: `kelpie mirror create` and `kelpie mirror import` of a repo
# of 200 manifests using 5 images (busybox + an 8 MiB incompressible payload
# each), beside a baseline in the same run: `cp` of the very same bundle file
# to the same file system. Reports the full bundle's size, create time (from
# an image dir, and from containerd when the private test containerd runs),
# import time into an empty mirror and its throughput against cp, and against
# cp plus an fsync of the copy (import makes its data durable before its
# renames), as ratios,
# and the size and times of an incremental bundle for a one-line change.
#
# Each timing is the best of RUNS (default 3) runs; page cache warm for both
# import and cp. Needs git and busybox-static; containerd is optional (never
# started or stopped here). Only files under a temporary directory are written.
#
#   bash bench/mirror.sh            MANIFESTS=200 IMAGES=5 PAYLOAD_MB=8 RUNS=3
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
MANIFESTS=${MANIFESTS:-200}
IMAGES=${IMAGES:-5}
PAYLOAD_MB=${PAYLOAD_MB:-8}
RUNS=${RUNS:-3}

work=$(mktemp -d /tmp/kelpie-bench-mirror.XXXXXX)
trap 'rm -rf "$work"' EXIT
go build -o "$work/kelpie" ./cmd/kelpie
KELPIE_MIRROR_BENCH_OUT="$work/fixture" KELPIE_MIRROR_BENCH_MANIFESTS=$MANIFESTS \
  KELPIE_MIRROR_BENCH_IMAGES=$IMAGES KELPIE_MIRROR_BENCH_PAYLOAD_MB=$PAYLOAD_MB \
  go test -count=1 -run '^TestWriteBenchFixture$' ./mirror >/dev/null
repo=$work/fixture/repo
K=("$work/kelpie" --no-color)

now() { date +%s.%N; }
# best CMD...: run CMD RUNS times (after a "prep" function when set), print the best wall time in seconds.
best() {
  local b="" s e t
  for _ in $(seq 1 "$RUNS"); do
    if declare -F prep >/dev/null; then prep; fi
    s=$(now); "$@" >/dev/null; e=$(now)
    t=$(echo "$e - $s" | bc -l)
    if [ -z "$b" ] || (( $(echo "$t < $b" | bc -l) )); then b=$t; fi
  done
  printf '%.3f' "$b"
}
size() { stat -c %s "$1"; }
mib() { echo "scale=1; $1 / 1048576" | bc -l; }

# Full bundle from the image dir.
create_full() { "${K[@]}" mirror create --repo "$repo" --path deploy --out "$work/full.kbundle" --image-dir "$work/fixture/images"; }
t_create=$(best create_full)
full=$(size "$work/full.kbundle")

# From containerd too, when the private test containerd runs.
t_create_cd="-"
if bash scripts/containerd.sh status >/dev/null 2>&1; then
  eval "$(bash scripts/containerd.sh env)"
  CD=(--containerd-address "$KELPIE_CONTAINERD_ADDRESS" --containerd-namespace kelpie-bench-mirror)
  "${K[@]}" image import "$work/fixture/images" "${CD[@]}" >/dev/null
  create_cd() { "${K[@]}" mirror create --repo "$repo" --path deploy --out "$work/cd.kbundle" "${CD[@]}"; }
  t_create_cd=$(best create_cd)
  for i in $(seq 0 $((IMAGES - 1))); do
    ctr -a "$KELPIE_CONTAINERD_ADDRESS" -n kelpie-bench-mirror images rm --sync "registry.local/bench/app$i:1" >/dev/null 2>&1 || true
  done
  ctr -a "$KELPIE_CONTAINERD_ADDRESS" namespaces rm kelpie-bench-mirror >/dev/null 2>&1 || true
fi

# Import into an empty mirror, against cp of the same file to the same file system.
prep() { rm -rf "$work/mirror" "$work/copy"; sync; }
import_full() { "${K[@]}" mirror import "$work/full.kbundle" --dir "$work/mirror"; }
cp_full() { cp "$work/full.kbundle" "$work/copy"; }
cp_sync() { cp "$work/full.kbundle" "$work/copy" && sync "$work/copy"; }
t_cp=$(best cp_full)
t_cp_sync=$(best cp_sync)
t_import=$(best import_full)
unset -f prep

# A one-line change: one manifest's replicas 2 → 3; no image changes.
sed -i 's/replicas: 2/replicas: 3/' "$repo/deploy/app000.yaml"
git -C "$repo" -c commit.gpgsign=false -c user.name=bench -c user.email=bench@example.com commit -qam "scale app000"
create_inc() { "${K[@]}" mirror create --repo "$repo" --path deploy --out "$work/inc.kbundle" --since "$work/full.kbundle" --image-dir "$work/fixture/images"; }
t_create_inc=$(best create_inc)
inc=$(size "$work/inc.kbundle")
cp -a "$work/mirror" "$work/mirror-base"
prep() { rm -rf "$work/mirror"; cp -a "$work/mirror-base" "$work/mirror"; sync; }
import_inc() { "${K[@]}" mirror import "$work/inc.kbundle" --dir "$work/mirror"; }
t_import_inc=$(best import_inc)
unset -f prep
"${K[@]}" mirror ls "$work/mirror" | tail -1

echo
echo "repo: $MANIFESTS manifests, $IMAGES images of busybox + ${PAYLOAD_MB} MiB payload; best of $RUNS runs"
printf '%-44s %s\n' "full bundle size" "$full B ($(mib "$full") MiB)"
printf '%-44s %s s\n' "create, images from --image-dir" "$t_create"
printf '%-44s %s s\n' "create, images from containerd" "$t_create_cd"
printf '%-44s %s s (%s MiB/s)\n' "import into an empty mirror" "$t_import" "$(echo "scale=1; $full / 1048576 / $t_import" | bc -l)"
printf '%-44s %s s (%s MiB/s)\n' "baseline: cp of the same file" "$t_cp" "$(echo "scale=1; $full / 1048576 / $t_cp" | bc -l)"
printf '%-44s %s s (%s MiB/s)\n' "baseline: cp + fsync of the copy" "$t_cp_sync" "$(echo "scale=1; $full / 1048576 / $t_cp_sync" | bc -l)"
printf '%-44s %s\n' "import time / cp time" "$(echo "scale=1; $t_import / $t_cp" | bc -l)"
printf '%-44s %s\n' "import time / (cp + fsync) time" "$(echo "scale=1; $t_import / $t_cp_sync" | bc -l)"
printf '%-44s %s B\n' "incremental bundle, one-line change" "$inc"
printf '%-44s %s s\n' "create incremental" "$t_create_inc"
printf '%-44s %s s\n' "import incremental" "$t_import_inc"
