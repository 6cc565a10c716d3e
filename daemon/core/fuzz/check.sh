#!/usr/bin/env bash
# Fuzz smoke check for eew-core: installs cargo-fuzz if missing, seeds the corpus from
# the fixtures, builds every target and runs each for SECONDS (default 10).
#
#   daemon/core/fuzz/check.sh [SECONDS]
#
# Exits non-zero when a target crashes (a panic, a broken report invariant, a timeout or
# a sanitizer error); the input is then in artifacts/<target>/ and printed here in hex.
# Runs on the stable toolchain with RUSTC_BOOTSTRAP=1 (cargo-fuzz needs -Zsanitizer) and
# with debug assertions on, so integer overflow is a crash too.
set -euo pipefail

seconds="${1:-10}"
case "$seconds" in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS]" >&2
    exit 2
    ;;
esac

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

echo "== seeding corpus/"
./seed-corpus.sh

echo "== building every target"
cargo fuzz build --debug-assertions

failed=()
summary=()
started="$(mktemp)" # artifacts newer than this file are this run's
trap 'rm -f "$started"' EXIT
for target in $(cargo fuzz list); do
    echo "== fuzzing $target for ${seconds}s"
    log="$(mktemp)"
    # -timeout: an input that takes more than 10 s is a finding, not a wait.
    if cargo fuzz run --debug-assertions "$target" -- \
        -max_total_time="$seconds" -timeout=10 -dict="$here/eew.dict" \
        -print_final_stats=1 >"$log" 2>&1; then
        crashed=false
    else
        crashed=true
    fi
    # The progress lines (#N NEW/REDUCE/pulse) are many; show the rest.
    grep -v -E '^#[0-9]+|# Uses: ' "$log" | tail -n 60 || true
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
    if "$crashed"; then
        failed+=("$target")
        summary+=("$target: CRASH after ${runs:-?} runs")
    else
        summary+=("$target: ${runs} runs, ${rate} exec/s")
    fi
    rm -f "$log"
done

echo "== summary"
printf '  %s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    for target in "${failed[@]}"; do
        find "artifacts/$target" -type f -newer "$started" 2>/dev/null | while read -r input; do
            echo "== $input ($(wc -c <"$input") bytes):"
            od -A d -t x1 "$input" | head -n 64
        done
    done
    echo "crashed: ${failed[*]} (reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <artifact>)" >&2
    exit 1
fi
