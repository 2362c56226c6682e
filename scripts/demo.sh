#!/usr/bin/env bash
# The multus-rs demo: two "pods" (network namespaces) attached through the thin `multus`
# plugin to a cluster network and two additional networks defined as
# NetworkAttachmentDefinition files in examples/networks, with no Kubernetes API server.
#
# Everything happens inside a private network and mount namespace that plays the node,
# so nothing touches this machine's own interfaces, routes or firewall, and every bridge
# and namespace disappears when the demo ends.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ ${MULTUS_DEMO_INSIDE:-} != 1 ]]; then
    [[ $(id -u) == 0 ]] || { echo "demo: needs root (network namespaces)" >&2; exit 1; }
    "$repo/scripts/install-prereqs.sh"
    echo "==> building multus and multus-ctl (release)"
    cargo build --release --quiet -p multus-cni --bin multus -p multus-ctl --bin multus-ctl \
        --manifest-path "$repo/Cargo.toml"
    echo "==> entering a private node namespace"
    exec env MULTUS_DEMO_INSIDE=1 unshare --net --mount --propagation private -- "$0" "$@"
fi

plugins=${CNI_PLUGIN_DIR:-/usr/lib/cni}
# multus-ctl runs the multus binary beside it (target/release/multus).
ctl="${CARGO_TARGET_DIR:-$repo/target}/release/multus-ctl"
state=$(mktemp -d /tmp/multus-demo.XXXXXX)
trap 'rm -rf "$state"' EXIT

# The node: loopback up, a private /run/netns for the pod namespaces, and the "uplink"
# that the macvlan network (green) hangs off.
ip link set lo up
mkdir -p /run/netns
mount -t tmpfs tmpfs /run/netns
ip link add demo-uplink type bridge
ip link set demo-uplink up

# Render the example config and NADs with this run's state directory.
mkdir -p "$state/networks"
for f in "$repo"/examples/networks/*.yaml; do
    sed "s|@STATE@|$state|g" "$f" >"$state/networks/$(basename "$f")"
done
sed "s|@STATE@|$state|g" "$repo/examples/multus.conf" >"$state/multus.conf"

# cni COMMAND POD NETWORKS [multus-ctl options]: call multus through `multus-ctl exec`,
# exactly as containerd would: CNI_* environment, the configuration on stdin, and the
# pod's annotations in runtimeConfig (io.kubernetes.cri.pod-annotations).
cni() {
    local command=$1 pod=$2 networks=$3
    shift 3
    "$ctl" exec "$command" --conf "$state/multus.conf" --cni-path "$plugins" \
        --netns "/run/netns/$pod" --container-id "sandbox-$pod" \
        --pod "default/$pod" --pod-uid "uid-$pod" \
        --annotation "k8s.v1.cni.cncf.io/networks=$networks" "$@"
}

# What multus-ctl says about a pod: requested networks, the plan, network-status, the
# live interfaces and routes, and any drift (there must be none: exit code 0).
show_pod() {
    "$ctl" pod "default/$1" --conf "$state/multus.conf" --no-api
}

pod_address() {
    ip netns exec "$1" ip -4 -json address show dev "$2" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["addr_info"][0]["local"])'
}

echo "==> ADD pod-a with networks: blue, green (text form)"
ip netns add pod-a
cni add pod-a "blue, green"
echo "==> ADD pod-b with networks: JSON form, green as data0"
ip netns add pod-b
cni add pod-b '[{"name":"blue"},{"name":"green","interface":"data0"}]' >/dev/null
echo "==> multus-ctl pod default/pod-a"
show_pod pod-a
echo "==> multus-ctl state show sandbox-pod-b"
"$ctl" state show sandbox-pod-b --conf "$state/multus.conf"

blue_b=$(pod_address pod-b net1)
green_b=$(pod_address pod-b data0)
echo "==> ping pod-a -> pod-b over blue ($blue_b) and green ($green_b)"
ip netns exec pod-a ping -c 2 -W 2 -I net1 "$blue_b"
ip netns exec pod-a ping -c 2 -W 2 -I net2 "$green_b"

echo "==> DEL both pods"
cni del pod-a "blue, green"
cni del pod-b '[{"name":"blue"},{"name":"green","interface":"data0"}]'

echo "==> checking that nothing leaked"
leaks=0
for pod in pod-a pod-b; do
    extra=$(ip netns exec "$pod" ip -brief link show | awk '$1 != "lo"')
    if [[ -n $extra ]]; then echo "leaked interface in $pod: $extra"; leaks=1; fi
done
leases=$(find "$state/ipam" -type f ! -name lock ! -name 'last_reserved_ip.*' | sort)
if [[ -n $leases ]]; then echo "leaked IP leases: $leases"; leaks=1; fi
records=$(find "$state/multus/sandboxes" -type f 2>/dev/null)
if [[ -n $records ]]; then echo "leaked state: $records"; leaks=1; fi
"$ctl" state list --conf "$state/multus.conf" || leaks=1
if [[ $leaks != 0 ]]; then echo "demo: FAILED, see above" >&2; exit 1; fi
echo "no interfaces, IP leases or state records left behind"
echo "demo: OK"
