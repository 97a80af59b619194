#!/usr/bin/env bash
# `hearth run`: greedy tokens against the golden references, seeds, stop
# strings, stdin prompts, the context limit, strict option parsing, the demo.
# Needs HEARTH_BIN, HEARTH_SHARED; python3 for the JSON references.
set -u
H=${HEARTH_BIN:?}
S=${HEARTH_SHARED:?}
G=$S/golden
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# 1. Greedy: `--temp 0 -n 24 --ignore-eos --print-ids` gives the float64
# reference's greedy tokens, up to the first near-tie (golden/README.md).
# F32 files under the default kernels; quantized ones under the reference
# kernels (the exact tier).
greedy_check() { # MODEL KERNELS
    local model=$1 kern=$2 ref=$G/f64/$1.json
    python3 - "$ref" "$T/$model" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for i, c in enumerate(d["cases"]):
    open(f"{sys.argv[2]}.prompt{i}", "w").write(c["prompt"])
    n = 0
    for g in c["greedy_top12_gap_over_std"]:
        if g < 1e-3: break
        n += 1
    open(f"{sys.argv[2]}.want{i}", "w").write(" ".join(map(str, c["greedy"][:n])))
    open(f"{sys.argv[2]}.n{i}", "w").write(str(n))
PY
    local i=0
    while [ -f "$T/$model.prompt$i" ]; do
        local got
        got=$(HEARTH_KERNELS=$kern "$H" run -m "$G/models/$model.gguf" -f "$T/$model.prompt$i" \
            -n 24 --ignore-eos --temp 0 --print-ids -t 2 -q)
        local rc=$? n want
        n=$(cat "$T/$model.n$i")
        want=$(cat "$T/$model.want$i")
        got=$(echo "$got" | tr ' ' '\n' | head -n "$n" | tr '\n' ' ' | sed 's/ $//')
        if [ $rc -ne 0 ]; then fail "greedy $model case $i: exit $rc"
        elif [ "$got" != "$want" ]; then fail "greedy $model case $i: got '$got' want '$want'"
        else ok "greedy $model case $i ($n tokens, kernels ${kern:-default})"; fi
        i=$((i + 1))
    done
    [ $i -gt 0 ] || fail "greedy $model: no cases"
}
greedy_check qwen2-r1distill.f32 ""
greedy_check llama3-bpe.f32 ""
greedy_check llama-spm.q8_0 ref
greedy_check qwen2-chatml.q4_k_m ref

M=$G/models/qwen2-r1distill.q8_0.gguf
P="The quick brown fox"

# 2. Seeds: same seed, same text; different seeds, different text.
a=$("$H" run -m "$M" -p "$P" -n 32 --ignore-eos --temp 1 --seed 11 --print-ids -q)
b=$("$H" run -m "$M" -p "$P" -n 32 --ignore-eos --temp 1 --seed 11 --print-ids -q)
c=$("$H" run -m "$M" -p "$P" -n 32 --ignore-eos --temp 1 --seed 12 --print-ids -q)
[ -n "$a" ] && [ "$a" = "$b" ] && ok "same seed, same tokens" || fail "same seed: '$a' vs '$b'"
[ "$a" != "$c" ] && ok "different seeds differ" || fail "seeds 11 and 12 gave the same tokens"
[ "$(echo "$a" | wc -w)" -eq 32 ] && ok "-n 32 gives 32 tokens" || fail "-n 32: got '$a'"
# the weights mapped or copied into huge pages: the same tokens
d=$("$H" run -m "$M" -p "$P" -n 32 --ignore-eos --temp 1 --seed 11 --print-ids -q --mmap)
e=$("$H" run -m "$M" -p "$P" -n 32 --ignore-eos --temp 1 --seed 11 --print-ids -q --no-mmap)
[ "$a" = "$d" ] && [ "$a" = "$e" ] && ok "--mmap and --no-mmap give the same tokens" ||
    fail "--mmap '$d' / --no-mmap '$e' vs '$a'"

# 3. Only the text on stdout; stats on stderr.
"$H" run -m "$M" -p "$P" -n 8 --ignore-eos --temp 0 >"$T/out" 2>"$T/err"
grep -q "tok/s" "$T/err" && ok "stats on stderr" || fail "no tok/s on stderr: $(cat "$T/err")"
grep -q "tok/s" "$T/out" && fail "stats leaked to stdout" || ok "stdout holds only the text"
"$H" run -m "$M" -p "$P" -n 8 --ignore-eos --temp 0 -q >"$T/out2" 2>/dev/null
cmp -s "$T/out" "$T/out2" && ok "-q changes only stderr" || fail "-q changed stdout"

# 4. Prompt from stdin equals -p.
printf '%s' "$P" | "$H" run -m "$M" -n 8 --ignore-eos --temp 0 -q >"$T/out3" 2>/dev/null
cmp -s "$T/out" "$T/out3" && ok "stdin prompt = -p prompt" || fail "stdin prompt gave other text"

# 5. Stop string: the output stops right before it, never includes it.
full=$("$H" run -m "$M" -p "$P" -n 40 --ignore-eos --temp 0 -q 2>/dev/null; echo x)
full=${full%x}
stop=${full:10:3}
pre=${full%%"$stop"*}
got=$("$H" run -m "$M" -p "$P" -n 40 --ignore-eos --temp 0 -q --stop "$stop" 2>/dev/null; echo x)
got=${got%x}
[ "$got" = "$pre" ] && ok "stop string cuts before it (${#pre} bytes)" ||
    fail "stop '$stop': got '$got' want '$pre'"

# 6. A prompt longer than the context: exit 1, both numbers in the message.
long=$(printf 'word %.0s' $(seq 1 40))
e=$("$H" run -m "$M" -p "$long" -c 16 -n 4 2>&1 >/dev/null)
rc=$?
n=$("$H" run -m "$M" -p "$long" -c 4096 -n 0 2>&1 >/dev/null | sed -n 's/^prompt \([0-9]*\) tok.*/\1/p')
[ $rc -eq 1 ] && ok "long prompt: exit 1" || fail "long prompt: exit $rc"
case "$e" in *"prompt is $n tokens, context is 16"*) ok "long prompt message: $e" ;;
*) fail "long prompt message lacks both numbers ($n, 16): $e" ;; esac

# 7. Context end: reported, exit 0.
e=$("$H" run -m "$M" -p "$P" -c 24 --ignore-eos --temp 0 2>&1 >/dev/null)
[ $? -eq 0 ] && case "$e" in *"context"*full*) true ;; *) false ;; esac &&
    ok "context end reported" || fail "context end: $e"

# 8. Strict options: exit 2 with a message.
usage_err() { # DESCRIPTION ARGS...
    local d=$1
    shift
    local e
    e=$("$H" run "$@" 2>&1 >/dev/null)
    local rc=$?
    if [ $rc -eq 2 ] && [ -n "$e" ]; then ok "usage error: $d"; else fail "$d: exit $rc, '$e'"; fi
}
usage_err "--temp abc" -m "$M" -p x --temp abc
usage_err "--temp 1.5x" -m "$M" -p x --temp 1.5x
usage_err "negative -n" -m "$M" -p x -n -5
usage_err "-n 3.5" -m "$M" -p x -n 3.5
usage_err "--top-p 1.5" -m "$M" -p x --top-p 1.5
usage_err "--top-p 0" -m "$M" -p x --top-p 0
usage_err "--min-p -0.1" -m "$M" -p x --min-p -0.1
usage_err "--top-k -1" -m "$M" -p x --top-k -1
usage_err "--repeat-penalty 0" -m "$M" -p x --repeat-penalty 0
usage_err "--seed -1" -m "$M" -p x --seed -1
usage_err "--seed huge" -m "$M" -p x --seed 99999999999999999999999
usage_err "-c 0" -m "$M" -p x -c 0
usage_err "-t 0" -m "$M" -p x -t 0
usage_err "--temp nan" -m "$M" -p x --temp nan
usage_err "missing value" -m "$M" -p x --temp
usage_err "unknown option" -m "$M" -p x --bogus
usage_err "no -m" -p x
usage_err "empty --stop" -m "$M" -p x --stop ""
e=$("$H" run -m /nonexistent/model.gguf -p x 2>&1)
[ $? -eq 1 ] && case "$e" in *nonexistent*) true ;; *) false ;; esac &&
    ok "missing model: exit 1 naming it" || fail "missing model: $e"

# 9. --chat renders the template; R1's template opens <think>, so with
# --hide-thinking nothing of a random model's (unclosed) thinking is shown.
"$H" run -m "$M" --chat -p "hi" -n 8 --seed 1 -q >"$T/chat" 2>"$T/chat.err"
[ $? -eq 0 ] && ok "--chat runs" || fail "--chat: $(cat "$T/chat.err")"
"$H" run -m "$M" --chat -p "hi" -n 8 --seed 1 -q --hide-thinking >"$T/chat2" 2>/dev/null
[ -s "$T/chat" ] && [ ! -s "$T/chat2" ] && ok "--hide-thinking hides the open thinking" ||
    fail "--hide-thinking: $(wc -c <"$T/chat") vs $(wc -c <"$T/chat2") bytes"

# 10. The demo model: written on first use, with the notice.
export HEARTH_MODELS=$T/models
e=$("$H" run -m demo -p "Hello" -n 16 --seed 3 2>&1 >"$T/demo")
[ $? -eq 0 ] && [ -f "$T/models/demo-random.gguf" ] && ok "demo model written" ||
    fail "demo: $e"
case "$e" in *"demo model: random weights, its output is noise"*) ok "demo notice" ;;
*) fail "demo notice missing: $e" ;; esac
"$H" run -m demo -p "Hello" -n 16 --seed 3 -q >"$T/demo2" 2>/dev/null
cmp -s "$T/demo" "$T/demo2" && ok "demo model reused, same output" || fail "demo output differs"

echo "$fails failure(s)"
[ $fails -eq 0 ]
