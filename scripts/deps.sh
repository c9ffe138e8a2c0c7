#!/usr/bin/env bash
# Installs (apt-get, as root) the Debian packages kelpie's tests and demo use,
# when any is missing. Prints what it installs; a no-op when all are there.
#
#   containerd, runc                 the container runtime runtime/host drives
#   containernetworking-plugins      CNI plugins in /usr/lib/cni (pod networks)
#   busybox-static                   /bin/busybox, the content of the test images
#   iproute2, iptables               network namespaces, routes, service NAT
#   nftables                         nft: checks the Service ruleset (netplan) and loads it
#   docker-registry                  a local registry for the image pull tests
#   git, make                        the repository tests and the Makefile
#   gnupg                            gpg and gpg-agent: the signed-commit tests sign with `git commit -S`
#   chromium, fonts-dejavu-core      headless browser and its font: the dashboard's browser test, `make screenshots`
# and promtool (checks and tests contrib/prometheus/alerts.yaml), taken out of
# Debian's prometheus package into /usr/local/bin: installing the package
# would start a Prometheus server on a machine with systemd; and sops (the
# SOPS interoperability tests encrypt with the real one), built once with
# `go install` from the Go module proxy into $(go env GOPATH)/bin: Debian 12
# has no package.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
sops_version=v3.13.3 # internal/testenv.SOPSVersion
if command -v go >/dev/null && ! command -v sops >/dev/null; then
  gobin="$(go env GOBIN)"
  [ -n "$gobin" ] || gobin="$(go env GOPATH | cut -d: -f1)/bin"
  if ! [ -x "$gobin/sops" ]; then
    echo "installing: sops $sops_version (go install, into $gobin)"
    GOBIN="$gobin" go install "github.com/getsops/sops/v3/cmd/sops@$sops_version"
  fi
fi
packages=(containerd runc containernetworking-plugins busybox-static iproute2 iptables nftables docker-registry git make gnupg chromium fonts-dejavu-core)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
need_promtool=false
command -v promtool >/dev/null || need_promtool=true
[ ${#missing[@]} -eq 0 ] && ! $need_promtool && exit 0
if [ "$(id -u)" != 0 ]; then
  $need_promtool && missing+=("promtool (from the prometheus package)")
  echo "deps.sh: missing: ${missing[*]}; run as root" >&2
  exit 1
fi
apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if $need_promtool; then
  echo "installing: promtool (from Debian's prometheus package, unpacked; no server)"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1 && dpkg-deb -x prometheus_*.deb root)
  install -m 0755 "$tmp/root/usr/bin/promtool" /usr/local/bin/promtool
  rm -rf "$tmp"
fi
