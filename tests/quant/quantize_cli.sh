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

# hearth imatrix, then quantize --imatrix with its file
cat "$HEARTH_SHARED/README.md" "$HEARTH_SHARED/docs/architecture.md" >"$out/calib.txt"
f="$m/qwen2-r1distill.f32.gguf"
"$h" imatrix -m "$f" -f "$out/calib.txt" -o "$out/im.gguf" -c 64 --chunks 8 2>"$out/log" ||
  { cat "$out/log"; fail "imatrix: exit $?"; }
grep -q "8 chunks of 64 tokens" "$out/log" || fail "imatrix: no summary line: $(cat "$out/log")"
"$h" inspect "$out/im.gguf" >"$out/insp" 2>&1 || fail "imatrix: output does not inspect"
grep -q "blk.0.ffn_down.weight.in_sum2" "$out/insp" || fail "imatrix: no ffn_down sums"
grep -qE '^ +output\.weight' "$out/insp" && fail "imatrix: output.weight without --process-output"
"$h" imatrix -m "$f" -f "$out/calib.txt" -o "$out/im2.gguf" -c 64 --chunks 2 --process-output 2>/dev/null ||
  fail "imatrix --process-output: exit $?"
"$h" inspect "$out/im2.gguf" 2>&1 | grep -qE '^ +output\.weight\.in_sum2' || fail "--process-output: no output.weight"
"$h" quantize "$f" "$out/w.gguf" Q4_K_M --imatrix "$out/im.gguf" 2>"$out/log" ||
  { cat "$out/log"; fail "quantize --imatrix: exit $?"; }
grep -q "weighted by it" "$out/log" || fail "quantize --imatrix: no summary line"
"$h" inspect "$out/w.gguf" 2>&1 | grep -q "quantize.imatrix.file" || fail "quantize --imatrix: no quantize.imatrix.file key"
cmp -s "$out/w.gguf" "$m/qwen2-r1distill.q4_k_m.gguf" && fail "quantize --imatrix: same bytes as without"
"$h" imatrix -m "$f" 2>/dev/null; [ $? -eq 2 ] || fail "imatrix without -f: expected exit 2"
"$h" imatrix -m "$f" -f "$out/calib.txt" -c 1 2>/dev/null; [ $? -eq 2 ] || fail "imatrix -c 1: expected exit 2"
"$h" imatrix -m "$f" -f "$out/calib.txt" --bogus 2>/dev/null; [ $? -eq 2 ] || fail "imatrix --bogus: expected exit 2"
e=$("$h" imatrix -m "$f" -f "$out/calib.txt" -c 100000 -o "$out/x.gguf" 2>&1); [ $? -eq 1 ] || fail "imatrix, text shorter than a chunk: expected exit 1"
case "$e" in *tokens*) ;; *) fail "short text: message lacks the token count: $e";; esac
e=$("$h" quantize "$f" "$out/y.gguf" Q4_K_M --imatrix /nonexistent.imatrix 2>&1); [ $? -eq 1 ] || fail "missing imatrix: expected exit 1"
case "$e" in *nonexistent.imatrix*) ;; *) fail "missing imatrix: message lacks the path: $e";; esac
e=$("$h" quantize "$f" "$out/y.gguf" Q4_K_M --imatrix "$f" 2>&1); [ $? -eq 1 ] || fail "a model as imatrix: expected exit 1"
"$h" quantize "$f" "$out/y.gguf" Q4_K_M --imatrix 2>/dev/null; [ $? -eq 2 ] || fail "--imatrix without a value: expected exit 2"
echo passed
