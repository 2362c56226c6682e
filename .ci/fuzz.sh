#!/usr/bin/env bash
# Run every cargo-fuzz target of fuzz/ for a short time, starting from the checked-in
# seed corpus in fuzz/seeds/<target>/ and the dictionary fuzz/dicts/<target>.dict.
#
#   FUZZ_SECONDS      time per target (default 20; CI passes 30). A campaign gives
#                     more, e.g. `FUZZ_SECONDS=3600 FUZZ_KEEP_CORPUS=1 .ci/fuzz.sh`.
#   FUZZ_TARGETS      space-separated subset of targets (default: all of `cargo fuzz list`)
#   FUZZ_KEEP_CORPUS  1: keep fuzz/corpus/<target> from earlier runs and add the seeds
#                     to it, so that successive campaigns build on each other (default:
#                     start from the seeds alone, as CI does)
#
# Seeds are copied into a fresh corpus directory (fuzz/corpus/<target>, git-ignored) so
# libFuzzer never writes into fuzz/seeds. Exits non-zero when any target finds a crash,
# a timeout or an out-of-memory input; reproducers are left in fuzz/artifacts/<target>/.
# Without a nightly toolchain it prints a notice and exits 0.
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-20}"
keep_corpus="${FUZZ_KEEP_CORPUS:-0}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "fuzz: FUZZ_SECONDS must be a positive number of seconds, got '$seconds'" >&2
    exit 2
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: nightly toolchain not available; fuzzing skipped"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if [[ -n "${FUZZ_TARGETS:-}" ]]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir fuzz)
fi
if [[ ${#targets[@]} -eq 0 ]]; then
    echo "fuzz: no fuzz targets found in fuzz/" >&2
    exit 1
fi

# Build once, so that each target's time budget is spent fuzzing.
cargo +nightly fuzz build --fuzz-dir fuzz

failed=()
for target in "${targets[@]}"; do
    seeds="fuzz/seeds/$target"
    corpus="fuzz/corpus/$target"
    if [[ "$keep_corpus" != 1 ]]; then
        rm -rf "$corpus"
    fi
    mkdir -p "$corpus"
    if [[ -d "$seeds" ]]; then
        cp -R "$seeds/." "$corpus/"
    else
        echo "fuzz: warning: no seeds for $target in $seeds" >&2
    fi
    flags=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
    if [[ -f "fuzz/dicts/$target.dict" ]]; then
        flags+=(-dict="fuzz/dicts/$target.dict")
    fi
    echo "fuzz: running $target for ${seconds}s"
    if ! cargo +nightly fuzz run --fuzz-dir fuzz "$target" "$corpus" -- "${flags[@]}"; then
        echo "fuzz: $target FAILED; reproducer in fuzz/artifacts/$target/" >&2
        failed+=("$target")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: crashes found in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${seconds}s without a crash"
