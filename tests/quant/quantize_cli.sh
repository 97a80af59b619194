#!/bin/sh
# hearth quantize, the command: for every golden model and every quantized
# variant the reference runtime wrote, our output file is byte-identical to
# theirs (metadata, tensor order, types and data). Then usage errors exit 2 and
# runtime errors exit 1 with a message naming the problem.
set -u
h="$HEARTH_BIN"
m="$HEARTH_SHARED/golden/models"
out=$(mktemp -d "${TMPDIR:-/tmp}/hearth-qcli-XXXXXX") || exit 1
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

n=0
for name in llama-spm llama3-bpe qwen2-r1distill qwen2-chatml deepseek-v3 deepseek-v2-lite; do
  for t in q4_k_m q8_0 q4_0 q6_k; do
    [ -f "$m/$name.$t.gguf" ] || continue
    T=$(echo "$t" | tr a-z A-Z)
    "$h" quantize "$m/$name.f32.gguf" "$out/x.gguf" "$T" --threads 2 2>"$out/log" ||
      { cat "$out/log"; fail "$name $T: exit $?"; }
    cmp -s "$out/x.gguf" "$m/$name.$t.gguf" || fail "$name $T: file differs from the reference's"
    grep -q "output_norm.weight" "$out/log" || fail "$name $T: no progress line per tensor"
    n=$((n + 1))
  done
done
echo "byte-identical files: $n"
[ "$n" -ge 20 ] || fail "expected at least 20 reference files, found $n"

f="$m/llama-spm.f32.gguf"
"$h" quantize "$f" "$out/y.gguf" 2>/dev/null; [ $? -eq 2 ] || fail "missing TYPE: expected exit 2"
"$h" quantize "$f" "$out/y.gguf" Q4_K_X 2>/dev/null; [ $? -eq 2 ] || fail "bad TYPE: expected exit 2"
"$h" quantize "$f" "$out/y.gguf" Q4_K_M --threads x 2>/dev/null; [ $? -eq 2 ] || fail "bad --threads: expected exit 2"
"$h" quantize "$f" "$out/y.gguf" Q4_K_M --threads 0 2>/dev/null; [ $? -eq 2 ] || fail "--threads 0: expected exit 2"
"$h" quantize "$f" "$out/y.gguf" Q4_K_M --bogus 2>/dev/null; [ $? -eq 2 ] || fail "unknown option: expected exit 2"
e=$("$h" quantize /nonexistent.gguf "$out/y.gguf" Q4_K_M 2>&1); [ $? -eq 1 ] || fail "missing input: expected exit 1"
case "$e" in *nonexistent.gguf*) ;; *) fail "missing input: message lacks the path: $e";; esac
e=$("$h" quantize "$m/llama-spm.q8_0.gguf" "$out/y.gguf" Q4_K_M 2>&1); [ $? -eq 1 ] || fail "requantize: expected exit 1"
case "$e" in *allow-requantize*) ;; *) fail "requantize: message lacks the way out: $e";; esac
[ ! -e "$out/y.gguf" ] || fail "a refused run wrote its output"
"$h" quantize "$m/llama-spm.q8_0.gguf" "$out/y.gguf" Q4_K_M --allow-requantize 2>/dev/null || fail "--allow-requantize: exit $?"
e=$("$h" quantize "$f" /nonexistent-dir/y.gguf Q8_0 2>&1); [ $? -eq 1 ] || fail "unwritable output: expected exit 1"
case "$e" in *nonexistent-dir*) ;; *) fail "unwritable output: message lacks the path: $e";; esac
"$h" quantize --help | grep -q Q4_K_M || fail "--help lists no types"
echo passed
