#!/usr/bin/env bash
# What the reference plugins themselves gain from running at once, without multus: ADD
# and DEL of 16 bridge+host-local networks in one pod namespace, one after the other and
# then all at once, in a private node namespace. The ceiling of parallel attach on this
# machine. Reports figures only.
set -euo pipefail
[[ $(id -u) == 0 ]] || { echo "bench: needs root (network namespaces)" >&2; exit 1; }
plugins=${CNI_PLUGIN_DIR:-/usr/lib/cni}
exec unshare --net --mount --propagation private -- bash -s "$plugins" <<'EOS'
set -euo pipefail
plugins=$1
mkdir -p /run/netns && mount -t tmpfs tmpfs /run/netns
ip link set lo up
ip netns add pod
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
call() {
    printf '{"cniVersion":"1.0.0","name":"n%s","type":"bridge","bridge":"b%s","ipam":{"type":"host-local","subnet":"10.%s.0.0/24","dataDir":"%s"}}' \
        "$1" "$1" $((100 + $1)) "$data" |
        CNI_COMMAND=$2 CNI_CONTAINERID=c1 CNI_NETNS=/run/netns/pod CNI_IFNAME=net$1 \
        CNI_PATH=$plugins "$plugins/bridge" >/dev/null
}
ms() { echo $((($(date +%s%N) - $1) / 1000000)); }
for round in 1 2 3; do
    t=$(date +%s%N); for i in $(seq 16); do call "$i" ADD; done; add=$(ms "$t")
    t=$(date +%s%N); for i in $(seq 16); do call "$i" DEL; done; del=$(ms "$t")
    t=$(date +%s%N); for i in $(seq 16); do call "$i" ADD & done; wait; padd=$(ms "$t")
    t=$(date +%s%N); for i in $(seq 16); do call "$i" DEL & done; wait; pdel=$(ms "$t")
    echo "round $round: serial ADD $add ms, DEL $del ms; all at once ADD $padd ms, DEL $pdel ms"
done
EOS
