#!/usr/bin/env bash
# Installs what multus-rs needs on a fresh Debian machine: the reference CNI plugins
# (the real delegates), ping, iproute2 and python3 (used by the demo and tests).
set -euo pipefail
need=()
[[ -x /usr/lib/cni/bridge ]] || need+=(containernetworking-plugins)
command -v ping >/dev/null || need+=(iputils-ping)
command -v ip >/dev/null || need+=(iproute2)
command -v python3 >/dev/null || need+=(python3)
command -v unshare >/dev/null || need+=(util-linux)
command -v iptables >/dev/null || need+=(iptables)
if ((${#need[@]})); then
    echo "==> installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
