#!/usr/bin/env bash
# Fuzzes Basalt's decoders of untrusted input (src/fuzz_targets.rs) with cargo-fuzz on the
# stable toolchain (no sanitizer), each target for RUNS executions (default 1,000,000),
# starting from and adding to the checked-in corpus in fuzz/corpus/<target>, which the unit
# test `fuzz_targets::tests::the_fuzz_corpus_replays_without_panics` replays in CI. A crash
# leaves its input in fuzz/artifacts/<target>/: add it to the corpus once fixed.
#
#   scripts/fuzz.sh                 # every target, 1,000,000 runs each
#   RUNS=100000 scripts/fuzz.sh resp_request dump_payload
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-1000000}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(ls fuzz/fuzz_targets | sed 's/\.rs$//')
fi
cd fuzz
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    echo "== $target: $runs runs"
    log=$(mktemp)
    status=0
    cargo fuzz run --sanitizer none -O "$target" "corpus/$target" -- \
        -runs="$runs" -max_len=4096 -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^stat::(number_of_executed_units|new_units_added)' "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -40 "$log"
        echo "$target failed (exit $status): the input is in fuzz/artifacts/$target/"
        exit "$status"
    fi
    rm -f "$log"
    # Keep the checked-in corpus small: only inputs that add coverage.
    cargo fuzz cmin --sanitizer none -O "$target" "corpus/$target" >/dev/null 2>&1
done
