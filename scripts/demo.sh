#!/usr/bin/env bash
# kelpie demo: what an operator does before a `git push`. Builds kelpie,
# validates the bundled example site, commits it to a scratch git repository,
# makes a change and shows `kelpie diff` (text and JSON), then shows how a
# broken manifest is refused with its position.
#
# Needs Go and git; as root on Debian it installs git (and make) if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

need() { command -v "$1" >/dev/null 2>&1; }
if ! need git; then
  if [ "$(id -u)" = 0 ] && need apt-get; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git >/dev/null
  else
    echo "demo: git is required (apt-get install git)" >&2; exit 1
  fi
fi
export PATH="$PATH:/usr/local/go/bin"
need go || { echo "demo: Go 1.26 is required (https://go.dev/doc/install)" >&2; exit 1; }

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "build"
go build -o bin/kelpie ./cmd/kelpie
kelpie="$root/bin/kelpie"
"$kelpie" version

step "validate the bundled example (examples/site)"
show "$kelpie" validate examples/site

work=$(mktemp -d /tmp/kelpie-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
export GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@kelpie.dev GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@kelpie.dev
git init -q -b main "$work/site"
cp -r examples/site/. "$work/site/"
git -C "$work/site" add -A
git -C "$work/site" -c commit.gpgsign=false commit -q -m "example site"

step "change the working tree: scale web to 3, new greeting, rotate the db password"
cd "$work/site"
sed -i 's/replicas: 2/replicas: 3/' apps/web.yaml
sed -i 's/greeting: hello/greeting: hallo/' config/web.yaml
sed -i 's/password: change-me/password: n3w-s3cret/' config/web.yaml
set +e
show "$kelpie" diff
echo "(exit status $?: 2 means changes are pending)"
show "$kelpie" diff -o json
set -e

step "commit, then compare two commits"
git -c commit.gpgsign=false commit -qam "scale web"
set +e
show "$kelpie" diff HEAD~1 HEAD
set -e

step "a broken manifest is refused with file:line:col"
cat >> apps/web.yaml <<'YAML'
---
apiVersion: v1
kind: Pod
metadata: {name: oops}
spec:
  containers: [{name: a, image: busybox, ports: [{containerPort: eighty}]}]
YAML
set +e
show "$kelpie" validate .
echo "(exit status $?)"
set -e

printf '\nTry it on your own repository: %s diff --repo DIR --path SUBDIR [FROM [TO]]\n' "$kelpie"
