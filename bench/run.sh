#!/bin/sh
# Benchmarks hearth on the anchored files of ../shared/bench/README.md.
#
#   bench/run.sh [DIR]        (default DIR: /tmp/hearth-bench)
#
# Writes the random-weight files that DIR lacks (hearth bench --write-shape;
# the F16 one is 3.5 GB), runs `hearth bench` on each (JSON kept in DIR), and
# prints hearth's numbers next to the anchors. Environment:
#   HEARTH   the binary (default: build/tools/hearth of this checkout)
#   ONLY     a subset of the labels below, e.g. ONLY="qwen2-Q8_0 moe-Q4_K_M"
#   P N REPS THREADS   -p, -n, -r, -t of hearth bench (default 512 128 3, all CPUs)
#   SEED     weights' seed (default 1)
# Slow: minutes per file on two cores. Compare runs made side by side.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-/tmp/hearth-bench}
H=${HEARTH:-$here/build/tools/hearth}
P=${P:-512}
N=${N:-128}
REPS=${REPS:-3}
SEED=${SEED:-1}
[ -x "$H" ] || { echo "run.sh: no hearth binary at $H (build first or set HEARTH)" >&2; exit 1; }
mkdir -p "$dir"

# shellcheck source=bench/files.sh
. "$here/bench/files.sh"

echo "$FILES" | while read -r label shape type; do
    f=$(bench_file "$label" "$shape" "$type") || continue
    echo "== benchmarking $f" >&2
    set -- -m "$f" -p "$P" -n "$N" -r "$REPS" --json
    [ -n "${THREADS:-}" ] && set -- "$@" -t "$THREADS"
    if "$H" bench "$@" >"$dir/$label.json.tmp"; then
        mv "$dir/$label.json.tmp" "$dir/$label.json"
    else
        echo "run.sh: hearth bench failed on $f" >&2
        rm -f "$dir/$label.json.tmp"
    fi
done

python3 - "$dir" "$P" "$N" <<'PY'
import json, os, sys
d, p, n = sys.argv[1], sys.argv[2], sys.argv[3]
# ../shared/bench/README.md: llama.cpp and ik_llama.cpp, -t 2, pp512 / tg128 (t/s)
anchors = {
    "qwen2-Q8_0":   ((62.7, 14.8), (131.4, 18.1)),
    "qwen2-Q4_K_M": ((43.0, 21.8), (129.9, 29.7)),
    "qwen2-F16":    ((58.9, 12.2), (127.1, 11.6)),
    "moe-Q8_0":     ((210.7, 51.1), (645.6, 48.3)),
    "moe-Q4_K_M":   ((218.6, 59.0), (480.9, 69.6)),
}
print(f"\nhearth vs anchors (pp{p}, tg{n}; anchors are pp512/tg128 on the 2-core AVX-512 machine)")
hdr = ("file", f"pp{p} hearth", "llama.cpp", "ik_llama", f"tg{n} hearth", "llama.cpp", "ik_llama",
       "GB/tok", "GB/s", "BW limit", "% BW", "peak RSS")
print("| " + " | ".join(f"{h:>13}" if i else f"{h:<13}" for i, h in enumerate(hdr)) + " |")
print("|" + "|".join("-" * 15 for _ in hdr) + "|")
for label, (lc, ik) in anchors.items():
    path = os.path.join(d, label + ".json")
    if not os.path.exists(path):
        continue
    j = json.load(open(path))
    t = {x["test"][:2]: x for x in j["tests"]}
    def ts(k):
        return f"{t[k]['avg_ts']:.1f} ± {t[k]['stddev_ts']:.1f}" if k in t else "-"
    row = (label, ts("pp"), f"{lc[0]:.1f}", f"{ik[0]:.1f}", ts("tg"), f"{lc[1]:.1f}", f"{ik[1]:.1f}",
           f"{j['bytes_per_token']['total'] / 1e9:.3f}", f"{j['achieved_gbs']:.1f}",
           f"{j['bandwidth']['gbs']:.1f} {'THP' if 'THP' in j['bandwidth']['pages'] else '4K'}",
           f"{j['pct_of_bandwidth']:.0f}%",
           f"{j['peak_rss_bytes'] / 2**30:.2f} GiB")
    print("| " + " | ".join(f"{c:>13}" if i else f"{c:<13}" for i, c in enumerate(row)) + " |")
PY
