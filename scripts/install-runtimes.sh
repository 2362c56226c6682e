#!/usr/bin/env bash
# Installs what the container-runtime tests (tests/tests/runtime_*.rs) need on a fresh
# Debian machine: containerd, runc, podman and busybox-static from Debian, and a small
# Python CRI v1 client (PyPI `container-runtime-interface-api` + `grpcio`) in a venv
# under target/cri-venv ($CARGO_TARGET_DIR/cri-venv when set), with `cel-python`
# (multus-node/tests/status_policy.rs evaluates the admission policy's CEL with it).
# Nothing is started or configured system-wide: each test runs its own containerd
# (root, state, socket and CNI dirs under a temp dir).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
command -v podman >/dev/null || need+=(podman)
[[ -x /bin/busybox ]] || need+=(busybox-static)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if ((${#need[@]})); then
    echo "==> installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
venv="${CARGO_TARGET_DIR:-$repo/target}/cri-venv"
if ! "$venv/bin/python" -c 'import grpc, cri_api, celpy' 2>/dev/null; then
    echo "==> CRI client venv in target/cri-venv"
    mkdir -p "$repo/target"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check \
        'container-runtime-interface-api==2.0.1' grpcio 'cel-python==0.5.0'
fi
