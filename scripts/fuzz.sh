#!/usr/bin/env bash
# Runs every libFuzzer harness (fuzz/fuzz_<name>.c) for SECONDS each, one
# after the other, on a copy of its seed corpus plus its saved regressions.
#
#   scripts/fuzz.sh [SECONDS] [HARNESS...]     default: 15 s, every harness
#
# Builds into build-fuzz with clang -fsanitize=fuzzer,address,undefined
# (-DHEARTH_FUZZ=ON). Each run: -max_total_time=SECONDS -rss_limit_mb=2048
# -timeout=10, the harness's dictionary fuzz/<name>.dict if there is one.
# New corpus inputs go to build-fuzz/corpus/<name>/ (kept between runs, the
# repository is not modified). A crash, leak, timeout or out-of-memory input
# is written to build-fuzz/artifacts/<name>/ and fails the script; with
# FUZZ_SAVE=1 it is also copied to fuzz/regressions/<name>/, where the ctest
# fuzz.replay_<name> replays it in every normal build from then on.
# Environment: HEARTH_SHARED (default ../shared), CC (default clang).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
shift || true
# every harness fuzz/harnesses.cmake lists
read -r -a all <<<"$(sed -n 's/^set(HEARTH_FUZZ_HARNESSES \(.*\))$/\1/p' fuzz/harnesses.cmake)"
[ ${#all[@]} -gt 0 ] || { echo "fuzz.sh: no harness list in fuzz/harnesses.cmake" >&2; exit 2; }
if [ $# -gt 0 ]; then harnesses=("$@"); else harnesses=("${all[@]}"); fi
export HEARTH_SHARED=${HEARTH_SHARED:-$(cd .. && pwd)/shared}
build=build-fuzz

start=$(date +%s)
CC=${CC:-clang} cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHEARTH_FUZZ=ON >/dev/null
cmake --build "$build" --target fuzz_all -j "$(nproc)" >/dev/null

failed=()
for h in "${harnesses[@]}"; do
    bin=$build/fuzz/fuzz_$h
    [ -x "$bin" ] || { echo "fuzz.sh: no harness $h" >&2; exit 2; }
    work=$build/corpus/$h
    art=$build/artifacts/$h
    mkdir -p "$work" "$art"
    cp -n fuzz/corpus/"$h"/* "$work"/ 2>/dev/null || true
    dict=()
    [ -f fuzz/"$h".dict ] && dict=(-dict=fuzz/"$h".dict)
    regress=()
    [ -d fuzz/regressions/"$h" ] && regress=(fuzz/regressions/"$h")
    echo "== fuzz_$h: ${secs} s ($(ls "$work" | wc -l) corpus inputs)"
    log=$build/fuzz-$h.log
    if "$bin" "$work" "${regress[@]}" -max_total_time="$secs" -rss_limit_mb=2048 \
        -timeout=10 -print_final_stats=1 -artifact_prefix="$art"/ "${dict[@]}" >"$log" 2>&1; then
        grep -E "^stat::number_of_executed_units|^stat::new_units_added" "$log" | tr '\n' ' '
        echo
    else
        echo "fuzz_$h FAILED; log: $log"
        grep -E "ERROR|SUMMARY|property violated|Test unit written" "$log" | head -20 || true
        failed+=("$h")
        if [ "${FUZZ_SAVE:-0}" = 1 ]; then
            mkdir -p fuzz/regressions/"$h"
            for a in "$art"/*; do
                [ -f "$a" ] && cp "$a" fuzz/regressions/"$h"/ && echo "saved $a to fuzz/regressions/$h/"
            done
        else
            echo "to keep it as a regression test: cp $art/* fuzz/regressions/$h/"
        fi
    fi
done
echo "fuzz.sh: ${#harnesses[@]} harnesses, ${secs} s each, $(($(date +%s) - start)) s in all"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: findings in: ${failed[*]}" >&2
    exit 1
fi
