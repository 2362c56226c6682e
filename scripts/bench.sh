#!/usr/bin/env bash
# Benchmark: median ADD+DEL wall time through multus versus the same delegates run
# directly, for 1, 4 and 16 additional networks, with a no-op delegate and with
# bridge+host-local. Runs in a private node namespace; reports figures only.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ $(id -u) == 0 ]] || { echo "bench: needs root (network namespaces)" >&2; exit 1; }
"$repo/scripts/install-prereqs.sh"
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p multus-cni -p multus-bench
exec env MULTUS_BENCH_PRIVATE=1 unshare --net --mount --propagation private -- \
    sh -c 'mkdir -p /run/netns && mount -t tmpfs tmpfs /run/netns && exec "$0"' \
    "${CARGO_TARGET_DIR:-$repo/target}/release/multus-bench"
