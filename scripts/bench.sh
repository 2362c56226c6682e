#!/usr/bin/env bash
# Benchmark: median ADD+DEL wall time through multus versus the same delegates run
# directly, for 1, 4 and 16 additional networks, with a no-op delegate and with
# bridge+host-local. Runs in a private node namespace; reports figures only.
#
# MULTUS_BENCH_TARGET=x86_64-unknown-linux-musl measures the static binaries the image
# ships (built as scripts/build-image.sh builds them: musl-gcc, no ELF interpreter)
# instead of the host's default target; the musl target and musl-tools are installed
# when missing. MULTUS_BENCH_ONLY=overhead|parallel runs one part.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ $(id -u) == 0 ]] || { echo "bench: needs root (network namespaces)" >&2; exit 1; }
"$repo/scripts/install-prereqs.sh"
target_dir=${CARGO_TARGET_DIR:-$repo/target}
build=(cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p multus-cni -p multus-bench)
target=${MULTUS_BENCH_TARGET:-}
if [[ -n $target ]]; then
    if [[ $target == *-musl ]]; then
        if ! command -v musl-gcc >/dev/null; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools >/dev/null
        fi
        export "CC_${target//-/_}=musl-gcc"
    fi
    rustup target list --installed | grep -qx "$target" || rustup target add "$target"
    build+=(--target "$target")
    bin_dir=$target_dir/$target/release
else
    bin_dir=$target_dir/release
fi
"${build[@]}"
exec env MULTUS_BENCH_PRIVATE=1 unshare --net --mount --propagation private -- \
    sh -c 'mkdir -p /run/netns && mount -t tmpfs tmpfs /run/netns && exec "$0"' \
    "$bin_dir/multus-bench"
