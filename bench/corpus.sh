#!/usr/bin/env bash
# How much of a public corpus of Kubernetes manifests `kelpie validate`
# accepts, file by file, beside a baseline binary in the same run, with the
# refusals grouped by reason (the first error of each refused file).
#
#   CORPUS=/path/to/kubernetes-examples BEFORE=<commit> bash bench/corpus.sh
#
# CORPUS is a directory of manifests (e.g. a checkout of
# github.com/kubernetes/examples); every *.yaml and *.yml below it is
# validated on its own, as a user trying one example would. BEFORE, when
# set, builds the baseline kelpie from that commit (git worktree under a
# temporary directory) and counts it beside this tree's.
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${CORPUS:?set CORPUS to a directory of manifests}
tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/before" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT

go build -o "$tmp/kelpie-after" ./cmd/kelpie
bins=(after)
if [ -n "${BEFORE:-}" ]; then
  git worktree add -q --detach "$tmp/before" "$BEFORE"
  (cd "$tmp/before" && go build -o "$tmp/kelpie-before" ./cmd/kelpie)
  bins=(before after)
fi

mapfile -t files < <(find "$corpus" -type f \( -name '*.yaml' -o -name '*.yml' \) -not -path '*/.git/*' | LC_ALL=C sort)
echo "corpus: $corpus (${#files[@]} files)"

# reason prints a refusal's first error as a category: the kind for a kind
# refused, else the field (indices dropped) and the message's first words.
reason() {
  sed -n '1p' | sed -E \
    -e 's/^[^ ]+:[0-9]+(:[0-9]+)?: //' \
    -e 's/^kind: kind ([A-Za-z]+) .*/kind \1 (refused with a hint)/' \
    -e 's/^kind: unsupported kind "([^"]+)" \(apiVersion ([^)]+)\).*/unsupported kind \1 (\2)/' \
    -e 's/\[[0-9]+\]/[]/g' \
    -e 's/"[^"]*"/"…"/g' \
    -e 's/(not supported by kelpie).*/\1/' \
    | cut -c1-90
}

for b in "${bins[@]}"; do
  ok=0
  : >"$tmp/reasons-$b"
  for f in "${files[@]}"; do
    if "$tmp/kelpie-$b" validate "$f" >/dev/null 2>"$tmp/err"; then
      ok=$((ok + 1))
    else
      grep -v -e '^✗' -e '^$' "$tmp/err" | reason >>"$tmp/reasons-$b"
    fi
  done
  echo "$b: $ok of ${#files[@]} files valid"
done
echo
for b in "${bins[@]}"; do
  echo "refusals by reason ($b):"
  sort "$tmp/reasons-$b" | uniq -c | sort -rn
  echo
done
