#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit, snapshot, property and integration
# tests. Integration tests drive the real binaries with the reference CNI plugins in
# network namespaces, so this needs root.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

[[ $(id -u) == 0 ]] || { echo "test: needs root (network namespaces)" >&2; exit 1; }
./scripts/install-prereqs.sh
# containerd, runc, podman, busybox-static and the Python CRI client of the runtime tests.
./scripts/install-runtimes.sh
rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo deny (licences, duplicate versions, sources; see deny.toml)"
command -v cargo-deny >/dev/null || cargo install --locked --quiet cargo-deny
cargo deny check licenses bans sources
echo "==> cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "==> building binaries"
cargo build --workspace --bins --quiet
echo "==> cargo test"
cargo test --workspace
# The container image: scripts/build-image.sh (installs podman, runc, musl-tools and the
# musl target when missing; static release binaries; podman build; podman save), then
# the image's entrypoint, user, files and binaries are inspected. Fails when podman is
# missing and cannot be installed: never skipped.
echo "==> container image"
cargo test -p multus-node --test image -- --ignored --nocapture
