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
#   prometheus                       promtool: checks and tests contrib/prometheus/alerts.yaml
#                                    (no Prometheus server is started: nothing runs it here)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
packages=(containerd runc containernetworking-plugins busybox-static iproute2 iptables nftables docker-registry git make gnupg prometheus)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "deps.sh: missing Debian packages: ${missing[*]}; run as root or: apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
