#!/bin/sh
# hearth bench from the command line: the bandwidth probe prints positive
# GB/s, -m --json gives valid JSON with every field (dense and MoE golden
# models, and a tiny shape written by --write-shape), bad usage exits 2.
set -eu
H=${HEARTH_BIN:?}
G=${HEARTH_SHARED:?}/golden/models
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$H" bench --bandwidth --size 64 --passes 2 >"$T/bw.txt" || fail "bandwidth exited $?"
cat "$T/bw.txt"
n=$(awk '/GB\/s/ { for (i = 1; i <= NF; i++) if ($(i+1) == "GB/s" && $i + 0 > 0) ok++ } END { print ok + 0 }' "$T/bw.txt")
[ "$n" = 2 ] || fail "expected two positive GB/s figures, found $n"

check_json() { # FILE ARCH MOE
    python3 - "$@" <<'PY'
import json, sys
path, arch, moe = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
held = sys.argv[4] if len(sys.argv) > 4 else None
j = json.load(open(path))
for k in ("model", "path", "arch", "size_bytes", "n_params", "n_threads", "repetitions", "tests",
          "bytes_per_token", "achieved_gbs", "bandwidth", "pct_of_bandwidth", "peak_rss_bytes",
          "weights_memory"):
    assert k in j, "missing " + k
assert j["arch"] == arch, j["arch"]
names = [t["test"] for t in j["tests"]]
assert names == ["pp8", "tg4"], names
for t in j["tests"]:
    assert t["avg_ts"] > 0 and t["stddev_ts"] >= 0 and len(t["samples_ts"]) == 1, t
b = j["bytes_per_token"]
assert b["total"] == b["weights"] + b["embd_row"] + b["experts"] + b["kv"], b
assert b["weights"] > 0 and b["kv"] > 0 and b["kv_positions"] == 2.5, b
assert (b["experts"] > 0) == moe, b
assert 0 < b["total"] <= j["size_bytes"] + b["kv"], b
w = j["weights_memory"]
assert w["held"] in ("mmap", "copy") and (held is None or w["held"] == held), w
assert (w["huge_fraction"] == 0) if w["held"] == "mmap" else (-1 <= w["huge_fraction"] <= 1), w
# the limit is measured with the weights' kind of pages
thp = w["held"] == "copy" and w["huge_fraction"] >= 0.5
assert j["bandwidth"]["gbs"] > 0 and j["bandwidth"]["pages"] == ("2 MiB THP" if thp else "4 KiB"), j
assert j["achieved_gbs"] > 0 and j["pct_of_bandwidth"] > 0
assert abs(j["achieved_gbs"] - b["total"] * j["tests"][1]["avg_ts"] / 1e9) < 1e-4 * j["achieved_gbs"]
assert j["peak_rss_bytes"] > 0
print(path, "ok:", b["total"], "bytes/token")
PY
}

"$H" bench -m "$G/qwen2-chatml.q8_0.gguf" -p 8 -n 4 -r 1 --json --bw-size 16 >"$T/a.json" ||
    fail "bench qwen2 exited $?"
check_json "$T/a.json" qwen2 0 || fail "qwen2 JSON"
"$H" bench -m "$G/qwen2-chatml.q8_0.gguf" -p 8 -n 4 -r 1 --json --bw-size 16 --mmap >"$T/m.json" ||
    fail "bench --mmap exited $?"
check_json "$T/m.json" qwen2 0 mmap || fail "--mmap JSON"
"$H" bench -m "$G/qwen2-chatml.q8_0.gguf" -p 8 -n 4 -r 1 --json --bw-size 16 --no-mmap \
    >"$T/n.json" || fail "bench --no-mmap exited $?"
check_json "$T/n.json" qwen2 0 copy || fail "--no-mmap JSON"
"$H" bench -m "$G/deepseek-v3.q8_0.gguf" -p 8 -n 4 -r 1 --json --bw-size 16 >"$T/b.json" ||
    fail "bench deepseek2 exited $?"
check_json "$T/b.json" deepseek2 1 || fail "deepseek2 JSON"

"$H" bench --write-shape tiny-deepseek2-moe Q4_K_M "$T/tiny.gguf" --seed 5 || fail "write-shape"
"$H" bench -m "$T/tiny.gguf" -p 8 -n 4 -r 1 --json --bw-size 16 >"$T/c.json" || fail "bench tiny"
check_json "$T/c.json" deepseek2 1 || fail "tiny JSON"
"$H" bench -m "$T/tiny.gguf" -p 8 -n 4 -r 2 --bw-size 16 >"$T/table.txt" || fail "table"
grep -q "| *tg4 |" "$T/table.txt" || fail "no tg4 row in the table"
grep -Eq "read bandwidth \((4 KiB|2 MiB THP) pages" "$T/table.txt" || fail "no bandwidth line"
grep -Eq "^weights: (copied into anonymous memory|used from the file mapping)" "$T/table.txt" ||
    fail "no weights line"
"$H" bench -m "$T/tiny.gguf" -p 0 -n 2 -r 1 --bw-size 16 --mmap >"$T/table2.txt" || fail "--mmap"
grep -q "^weights: used from the file mapping (4 KiB pages)" "$T/table2.txt" || fail "--mmap line"
grep -q "read bandwidth (4 KiB pages" "$T/table2.txt" || fail "--mmap bandwidth pages"
grep -Eq "^kernels: (ref|avx2|avx512|neon)$" "$T/table.txt" || fail "no kernels line"
HEARTH_KERNELS=ref "$H" bench -m "$T/tiny.gguf" -p 0 -n 2 -r 1 --json --bw-size 16 >"$T/r.json" ||
    fail "bench ref"
grep -q '"kernels": "ref"' "$T/r.json" || fail "HEARTH_KERNELS=ref not in the JSON"
grep -q '"bf16_products": false' "$T/r.json" || fail "ref multiplies as BF16 in the JSON"

for args in "" "--bandwidth -m x" "--write-shape nope F16 $T/x.gguf" \
    "--write-shape tiny-qwen2 Q5_K $T/x.gguf" "-m x -p 0 -n 0" "-m x -t 0" "--size"; do
    set +e
    # shellcheck disable=SC2086
    "$H" bench $args >/dev/null 2>&1
    rc=$?
    set -e
    [ "$rc" = 2 ] || fail "'hearth bench $args' exited $rc, expected 2"
done
"$H" bench -m "$T/missing.gguf" -p 1 -n 1 >/dev/null 2>&1 && fail "missing model accepted"
echo "bench CLI ok"
