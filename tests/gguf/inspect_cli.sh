#!/bin/sh
# `hearth inspect` end to end: on every golden model it exits 0, its --json is
# valid JSON, and the KV cache bytes per token it prints equal what this script
# computes itself from the model's hyperparameters; on broken input it exits 1
# (not a signal) with "hearth inspect: FILE: message" on stderr. Needs HEARTH_BIN,
# HEARTH_SHARED and python3.
set -u
h=${HEARTH_BIN:?}
models=${HEARTH_SHARED:?}/golden/models
tmp=${TMPDIR:-/tmp}/hearth_inspect_$$
mkdir -p "$tmp" || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

n=0
for m in "$models"/*.gguf; do
    n=$((n + 1))
    "$h" inspect "$m" >"$tmp/$n.txt" 2>"$tmp/err.txt" || fail "$m: exit $? ($(cat "$tmp/err.txt"))"
    "$h" inspect --json "$m" >"$tmp/$n.json" || fail "$m --json: exit $?"
    echo "$m" >"$tmp/$n.name"
done
python3 - "$tmp" "$n" <<'PY' || exit 1
import json, sys
tmp, n = sys.argv[1], int(sys.argv[2])
for i in range(1, n + 1):
    name = open("%s/%d.name" % (tmp, i)).read().strip()
    d = json.load(open("%s/%d.json" % (tmp, i)))
    text = open("%s/%d.txt" % (tmp, i)).read()
    md = d["metadata"]
    arch = md["general.architecture"]
    g = lambda k, dflt=None: md.get(arch + "." + k, dflt)
    n_layer = g("block_count")
    if arch == "deepseek2":
        per_tok = n_layer * (g("attention.kv_lora_rank") + g("rope.dimension_count"))
    else:
        head_dim = g("attention.key_length", g("embedding_length") // g("attention.head_count"))
        per_tok = 2 * n_layer * g("attention.head_count_kv", g("attention.head_count")) * head_dim
    want = {"f32": 4 * per_tok, "f16": 2 * per_tok}
    if d["kv_bytes_per_token"] != want:
        sys.exit("FAIL: %s: kv_bytes_per_token %s, expected %s" % (name, d["kv_bytes_per_token"], want))
    line = "KV cache bytes per token: %d (F32 cache), %d (F16 cache)" % (want["f32"], want["f16"])
    if line not in text:
        sys.exit("FAIL: %s: text report lacks '%s'" % (name, line))
    prod = lambda s: eval("*".join(map(str, s)))
    if d["n_params"] != sum(prod(t["shape"]) for t in d["tensors"]):
        sys.exit("FAIL: %s: n_params is not the sum of the shapes" % name)
    if sum(v["bytes"] for v in d["bytes_by_type"].values()) != sum(t["bytes"] for t in d["tensors"]):
        sys.exit("FAIL: %s: bytes by type do not add up" % name)
    if "tokenizer.chat_template" in md and md["tokenizer.chat_template"] not in text:
        sys.exit("FAIL: %s: chat template not printed in full" % name)
PY
[ "$n" -ge 30 ] || fail "expected the golden models, found $n files"

# A file cut short: exit 1, a message naming the file, no crash.
head -c 1000 "$models/llama-spm.q8_0.gguf" >"$tmp/cut.gguf"
"$h" inspect "$tmp/cut.gguf" >/dev/null 2>"$tmp/err.txt"
rc=$?
[ $rc -eq 1 ] || fail "truncated file: exit $rc, expected 1"
grep -q "^hearth inspect: $tmp/cut.gguf: .*fit\|^hearth inspect: $tmp/cut.gguf: .*end of the file" "$tmp/err.txt" ||
    fail "truncated file: message: $(cat "$tmp/err.txt")"
# Every truncation of the header region: exit 1, never a signal.
"$h" inspect --json "$models/qwen2-chatml.q4_0.gguf" >"$tmp/out.json" || fail "qwen2-chatml.q4_0 --json"
size=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['data_offset'])" "$tmp/out.json")
for cut in 0 3 4 8 23 24 40 100 1000 5000 $((size - 1)); do
    head -c "$cut" "$models/qwen2-chatml.q4_0.gguf" >"$tmp/cut.gguf"
    "$h" inspect "$tmp/cut.gguf" >/dev/null 2>"$tmp/err.txt"
    rc=$?
    [ $rc -eq 1 ] || fail "cut at $cut: exit $rc, expected 1"
    grep -q "^hearth inspect: $tmp/cut.gguf: " "$tmp/err.txt" || fail "cut at $cut: message: $(cat "$tmp/err.txt")"
done
"$h" inspect /nonexistent.gguf 2>"$tmp/err.txt"
[ $? -eq 1 ] || fail "missing file: expected exit 1"
grep -q "/nonexistent.gguf.*No such file" "$tmp/err.txt" || fail "missing file: message: $(cat "$tmp/err.txt")"
"$h" inspect 2>/dev/null
[ $? -eq 2 ] || fail "no file: expected exit 2"
"$h" inspect --bogus "$models/llama-spm.q8_0.gguf" 2>/dev/null
[ $? -eq 2 ] || fail "unknown option: expected exit 2"
echo "passed ($n models)"
