#!/bin/sh
# A/B (or A/B/C...) of hearth configurations on the anchored files, in one
# run: the configurations alternate per file and round, so that a shared,
# noisy machine's drift falls on all of them alike.
#
#   bench/ab.sh [DIR] -- CONFIG [CONFIG...]
#
# A CONFIG is one word-split string: leading NAME=VALUE words are set in the
# environment, the rest are passed to `hearth bench`; "" is the default.
#   bench/ab.sh -- "" "HEARTH_AVX512_BF16=0"            # BF16 products on / off
#   bench/ab.sh -- "" "HEARTH_KERNELS=avx2" "--mmap"
# DIR (default /tmp/hearth-bench) holds the files (written when missing, as
# bench/run.sh does) and the JSON of every run. Environment: HEARTH, ONLY, P,
# N, REPS (default 1 per run), ROUNDS (default 3), THREADS, SEED, as run.sh.
# Prints per file and configuration the median over rounds of pp and tg, the
# share of the bandwidth limit measured in each run, and the kernels used.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
dir=/tmp/hearth-bench
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
    dir=$1
    shift
fi
[ "${1:-}" = "--" ] || {
    echo "usage: bench/ab.sh [DIR] -- CONFIG [CONFIG...]" >&2
    exit 2
}
shift
[ $# -gt 0 ] || {
    echo "bench/ab.sh: no configurations" >&2
    exit 2
}
H=${HEARTH:-$here/build/tools/hearth}
P=${P:-512}
N=${N:-128}
REPS=${REPS:-1}
ROUNDS=${ROUNDS:-3}
SEED=${SEED:-1}
[ -x "$H" ] || {
    echo "ab.sh: no hearth binary at $H (build first or set HEARTH)" >&2
    exit 1
}
mkdir -p "$dir/ab"
rm -f "$dir/ab/"*.json
n_cfg=$#
i=0
for c in "$@"; do
    echo "$c" >"$dir/ab/config$i"
    i=$((i + 1))
done

# shellcheck source=bench/files.sh
. "$here/bench/files.sh"

echo "$FILES" | while read -r label shape type; do
    f=$(bench_file "$label" "$shape" "$type") || continue
    r=0
    while [ "$r" -lt "$ROUNDS" ]; do
        i=0
        while [ "$i" -lt "$n_cfg" ]; do
            cfg=$(cat "$dir/ab/config$i")
            out="$dir/ab/$label.c$i.r$r.json"
            echo "== $label round $r: [$cfg]" >&2
            # shellcheck disable=SC2086
            if ! (
                set -- $cfg
                while [ $# -gt 0 ]; do
                    case $1 in
                    *=*) export "${1?}" ;;
                    *) break ;;
                    esac
                    shift
                done
                extra=""
                [ -n "${THREADS:-}" ] && extra="-t $THREADS"
                exec "$H" bench -m "$f" -p "$P" -n "$N" -r "$REPS" --json $extra "$@"
            ) >"$out.tmp"; then
                echo "ab.sh: hearth bench failed: $label [$cfg]" >&2
                rm -f "$out.tmp"
            else
                mv "$out.tmp" "$out"
            fi
            i=$((i + 1))
        done
        r=$((r + 1))
    done
done

python3 - "$dir/ab" "$n_cfg" <<'PY'
import glob, json, os, statistics, sys
d, n_cfg = sys.argv[1], int(sys.argv[2])
cfgs = [open(os.path.join(d, f"config{i}")).read().strip() or "(default)" for i in range(n_cfg)]
labels = ["qwen2-Q8_0", "qwen2-Q4_K_M", "qwen2-F16", "moe-Q8_0", "moe-Q4_K_M"]
hdr = ("file", "config", "kernels", "pp t/s", "tg t/s", "% BW", "BW GB/s", "runs")
print("| " + " | ".join(hdr) + " |")
print("|" + "|".join("---" for _ in hdr) + "|")
for label in labels:
    for i, cfg in enumerate(cfgs):
        runs = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(d, f"{label}.c{i}.r*.json")))]
        if not runs:
            continue
        def med(key):
            v = [t["avg_ts"] for j in runs for t in j["tests"] if t["test"].startswith(key)]
            return f"{statistics.median(v):.1f} ({min(v):.1f}-{max(v):.1f})" if v else "-"
        pct = statistics.median(j["pct_of_bandwidth"] for j in runs)
        bw = statistics.median(j["bandwidth"]["gbs"] for j in runs)
        kern = runs[0]["kernels"] + (" bf16" if runs[0].get("bf16_products") else "") + (" amx" if runs[0].get("amx") else "")
        pages = runs[0]["bandwidth"]["pages"]
        print(f"| {label} | {cfg} | {kern} | {med('pp')} | {med('tg')} | {pct:.0f}% | "
              f"{bw:.1f} {pages} | {len(runs)} |")
PY
