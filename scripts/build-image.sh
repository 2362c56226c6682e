#!/usr/bin/env bash
# Builds the multus-rs container image from scratch and saves it as a tarball:
#
#   1. installs what it needs (root, Debian): the Rust musl target, musl-tools (C code
#      such as ring's), podman and runc;
#   2. builds the image's binaries as static release binaries for
#      x86_64-unknown-linux-musl (only the packages that provide them, with -p);
#   3. checks that each is statically linked (no ELF interpreter);
#   4. `podman build -f deployments/Containerfile` on a context holding only bin/,
#      with podman's storage and run state in the output directory (nothing in /run or
#      /var/lib/containers), timestamps zeroed so the same binaries give the same image;
#   5. `podman save` to <out>/multus-rs.tar (docker-archive) and an inspection report
#      (entrypoint, user, env, files, sizes) in <out>/report.txt.
#
# Binaries whose package is not in the workspace yet are reported and left out; the
# image test (multus-node/tests/image.rs) fails when a binary the manifests run is
# missing. Exits non-zero on any failure, podman missing included: it never skips.
#
# Environment: MULTUS_IMAGE (tag, default ghcr.io/multus-rs/multus-rs:latest),
# MULTUS_IMAGE_OUT (default target/image), MULTUS_IMAGE_BINS, MULTUS_IMAGE_LTO (release LTO: "fat" as the
# workspace's release profile, or "thin", faster to build; default thin).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

image=${MULTUS_IMAGE:-ghcr.io/multus-rs/multus-rs:latest}
out=${MULTUS_IMAGE_OUT:-$repo/target/image}
lto=${MULTUS_IMAGE_LTO:-thin}
target=x86_64-unknown-linux-musl
# The binaries of the image, in the order the Containerfile lists them
# (MULTUS_IMAGE_BINS="a b" restricts the set, for development).
read -r -a wanted <<<"${MULTUS_IMAGE_BINS:-multus multus-shim multus-daemon multus-node multus-ctl passthru}"

say() { echo "==> build-image: $*"; }
die() { echo "build-image: error: $*" >&2; exit 1; }

# --- 1. prerequisites --------------------------------------------------------------
need=()
command -v musl-gcc >/dev/null || need+=(musl-tools)
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v readelf >/dev/null || need+=(binutils)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
    [[ $(id -u) == 0 ]] || die "needs ${need[*]} (apt-get install -y ${need[*]}); run as root to install them"
    say "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v podman >/dev/null || die "podman is not installed (apt-get install -y podman runc)"
if ! rustup target list --installed | grep -qx "$target"; then
    say "rustup target add $target"
    rustup target add "$target"
fi

# --- 2. which packages provide the wanted binaries -----------------------------------
mapfile -t found < <(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, os, sys
wanted = sys.argv[1:]
meta = json.load(sys.stdin)
for pkg in meta["packages"]:
    for t in pkg["targets"]:
        # A target whose source is not written yet does not count.
        if "bin" in t["kind"] and t["name"] in wanted and os.path.exists(t["src_path"]):
            print(pkg["name"], t["name"])
' "${wanted[@]}")
packages=()
bins=()
for line in "${found[@]}"; do
    read -r pkg bin <<<"$line"
    [[ " ${packages[*]} " == *" $pkg "* ]] || packages+=("$pkg")
    bins+=("$bin")
done
missing=()
for bin in "${wanted[@]}"; do
    [[ " ${bins[*]} " == *" $bin "* ]] || missing+=("$bin")
done
((${#bins[@]})) || die "no binary of the image is in the workspace"
if ((${#missing[@]})); then
    echo "build-image: warning: not in the workspace yet, left out of the image: ${missing[*]}" >&2
fi

# --- 3. static release binaries ------------------------------------------------------
say "cargo build --release --target $target (lto=$lto): ${bins[*]}"
args=()
for pkg in "${packages[@]}"; do args+=(-p "$pkg"); done
for bin in "${bins[@]}"; do args+=(--bin "$bin"); done
started=$SECONDS
CC_x86_64_unknown_linux_musl=musl-gcc \
    cargo build --release --locked --target "$target" \
    --config "profile.release.lto=\"$lto\"" "${args[@]}"
say "binaries built in $((SECONDS - started)) s"
built="${CARGO_TARGET_DIR:-$repo/target}/$target/release"
rm -rf "$out/context"
mkdir -p "$out/context/bin"
for bin in "${bins[@]}"; do
    file="$built/$bin"
    [[ -x $file ]] || die "$file was not built"
    if readelf -l "$file" | grep -q 'Requesting program interpreter'; then
        die "$file is dynamically linked (it has an ELF interpreter)"
    fi
    if readelf -d "$file" 2>/dev/null | grep -q '(NEEDED)'; then
        die "$file needs shared libraries"
    fi
    install -m 0755 "$file" "$out/context/bin/$bin"
done

# --- 4. the image --------------------------------------------------------------------
storage=(--root "$out/storage" --runroot "$out/runroot" --tmpdir "$out/tmp"
    --storage-driver vfs --events-backend none --cgroup-manager cgroupfs)
mkdir -p "$out/storage" "$out/runroot" "$out/tmp"
say "podman build -t $image"
podman "${storage[@]}" build --quiet --format docker --timestamp 0 \
    -f "$repo/deployments/Containerfile" -t "$image" "$out/context" >/dev/null
rm -f "$out/multus-rs.tar"
podman "${storage[@]}" save --format docker-archive -o "$out/multus-rs.tar" "$image"
# The storage is a cache of the tarball: drop it (vfs keeps full copies of each layer).
podman "${storage[@]}" rmi --all --force >/dev/null 2>&1 || true

# --- 5. inspection -------------------------------------------------------------------
python3 - "$out/multus-rs.tar" "$image" "${bins[@]}" <<'PY' | tee "$out/report.txt"
import io, json, os, sys, tarfile
path, image, bins = sys.argv[1], sys.argv[2], sys.argv[3:]
archive = tarfile.open(path)
manifest = json.load(archive.extractfile("manifest.json"))[0]
config = json.load(archive.extractfile(manifest["Config"]))["config"]
files = {}
for layer in manifest["Layers"]:
    with tarfile.open(fileobj=io.BytesIO(archive.extractfile(layer).read())) as t:
        for m in t.getmembers():
            files["/" + m.name.lstrip("./")] = m
size = sum(m.size for m in files.values())
print(f"image:       {image}")
print(f"tags:        {manifest.get('RepoTags')}")
print(f"entrypoint:  {config.get('Entrypoint')}")
print(f"cmd:         {config.get('Cmd')}")
print(f"user:        {config.get('User')!r}")
print(f"env:         {config.get('Env')}")
print(f"layers:      {len(manifest['Layers'])}")
print(f"size:        {size} bytes ({size / 1048576:.1f} MiB uncompressed), tarball {os.path.getsize(path)} bytes")
print("files:")
for name, m in sorted(files.items()):
    kind = "dir " if m.isdir() else f"{m.mode & 0o7777:04o}"
    print(f"  {kind} {m.size:>10} {name}")
errors = []
for b in bins:
    m = files.get(f"/usr/src/multus-cni/bin/{b}")
    if m is None or not m.isfile() or not m.mode & 0o111:
        errors.append(f"/usr/src/multus-cni/bin/{b} is missing or not executable")
if any(n.startswith(("/bin/", "/usr/bin/")) or n.endswith("/sh") for n in files):
    errors.append("the image has a shell or system binaries")
if config.get("User") not in ("0:0", "0"):
    errors.append(f"user is {config.get('User')!r}, expected 0:0")
if errors:
    print("ERRORS:\n  " + "\n  ".join(errors))
    sys.exit(1)
PY
say "saved $out/multus-rs.tar; report in $out/report.txt"
