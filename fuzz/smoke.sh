#!/usr/bin/env bash
# Builds the fuzz targets and runs each for SECONDS (default 20) on the stable toolchain, for CI.
# Exits non-zero when a target crashes; the crashing input is left in fuzz/artifacts/<target>/.
#
#   fuzz/smoke.sh [SECONDS]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Corpora accumulate in fuzz/corpus/<target>/.
set -euo pipefail

seconds="${1:-20}"
cd "$(dirname "$0")"
targets=(batch_decode log_open index_lookup kafka_frame kafka_peer)
log_dir="$(mktemp -d)"
trap 'rm -rf "$log_dir"' EXIT

cargo fuzz build --sanitizer none 2>&1 | tail -n 1
status=0
for target in "${targets[@]}"; do
    log="$log_dir/$target.log"
    if cargo fuzz run --sanitizer none "$target" -- \
        -max_total_time="$seconds" -max_len=8192 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
        echo "$target: ok, $runs runs, $rate exec/s"
    else
        echo "$target: FAILED"
        grep -E "panicked|ERROR|SUMMARY|Test unit written|^artifact" "$log" || tail -n 30 "$log"
        status=1
    fi
done
exit "$status"
