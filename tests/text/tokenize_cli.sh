#!/bin/sh
# `hearth tokenize` / `hearth detokenize` end to end: round trips through the
# CLI, the golden prompts' ids, --special, and refusals of bad input.
# Needs HEARTH_BIN and HEARTH_SHARED (set by ctest).
set -eu
H="$HEARTH_BIN"
S="$HEARTH_SHARED"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

printf 'Hello, world! \tThis is 🦙.cpp — naïve café\n\n  x' > "$T/in"
for v in llama-spm gpt-2 qwen2 deepseek-llm deepseek-v3; do
    m="$S/tokenizer/gguf/ggml-vocab-$v.gguf"
    "$H" tokenize -m "$m" --ids-only < "$T/in" > "$T/ids" || fail "$v: tokenize"
    [ -s "$T/ids" ] || fail "$v: no ids"
    "$H" detokenize -m "$m" < "$T/ids" > "$T/out" || fail "$v: detokenize"
    cmp -s "$T/in" "$T/out" || fail "$v: round trip differs"
done

# The first golden prompt gives the reference ids (BOS per the model).
m="$S/golden/models/llama3-bpe.f32.gguf"
printf 'The quick brown fox jumps over the lazy dog. Free software is a matter of liberty, not price.' |
    "$H" tokenize -m "$m" --ids-only > "$T/ids"
want=$(grep -o '"tokens": *\[[0-9, ]*\]' "$S/golden/ref/llama3-bpe.f32.json" | head -n 1 |
    sed 's/.*\[//; s/\]//; s/,/ /g; s/  */ /g')
[ -n "$want" ] || fail "could not read the reference ids"
[ "$(cat "$T/ids")" = "$want" ] || fail "llama3-bpe ids: got '$(cat "$T/ids")' want '$want'"

# --special turns control texts into single tokens; pieces are listed.
m="$S/tokenizer/gguf/ggml-vocab-qwen2.gguf"
[ "$(printf '<|im_start|>' | "$H" tokenize -m "$m" --special --ids-only)" = "151644" ] ||
    fail "--special"
[ "$(printf '<|im_start|>' | "$H" tokenize -m "$m" --ids-only | wc -w)" -gt 1 ] ||
    fail "without --special a control text must be plain text"
printf 'hi' | "$H" tokenize -m "$m" | grep -q "'hi'" || fail "pieces are not shown"
[ "$(echo 151645 | "$H" detokenize -m "$m")" = "" ] || fail "control token rendered without --special"
[ "$(echo 151645 | "$H" detokenize -m "$m" --special)" = "<|im_end|>" ] || fail "--special render"

# Bad ids: exit 1 and a message naming the id; nothing on stdout.
for bad in "1 2 151669" "-1" "12abc" "99999999999999999999"; do
    if echo "$bad" | "$H" detokenize -m "$m" > "$T/out" 2> "$T/err"; then fail "accepted '$bad'"; fi
    [ -s "$T/err" ] || fail "no message for '$bad'"
    [ ! -s "$T/out" ] || fail "output for '$bad'"
done
echo "1 2 151669" | "$H" detokenize -m "$m" 2>&1 >/dev/null | grep -q "151669" || fail "message must name the id"
# A NUL byte in the ids: refused, not a silent end of the input.
if printf '1 2\0 3' | "$H" detokenize -m "$m" > "$T/out" 2> "$T/err"; then fail "accepted a NUL byte"; fi
grep -q "NUL byte at offset 3" "$T/err" || fail "NUL message: $(cat "$T/err")"
[ ! -s "$T/out" ] || fail "output for ids with a NUL byte"

# Missing model, missing -m, unknown option.
if "$H" tokenize -m "$T/none.gguf" < /dev/null 2>/dev/null; then fail "missing file accepted"; fi
set +e
"$H" tokenize < /dev/null 2>/dev/null; [ $? -eq 2 ] || fail "no -m must be a usage error"
"$H" detokenize -m "$m" --bogus < /dev/null 2>/dev/null; [ $? -eq 2 ] || fail "unknown option"
set -e
echo "tokenize/detokenize CLI: ok"
