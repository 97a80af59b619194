#!/usr/bin/env bash
# What every hearth command promises the same way: --help exits 0 on stdout;
# an unknown option or a bad number exits 2; a runtime error exits 1 with
# "hearth CMD: ..." on stderr; `-m` (or the model argument) accepts the demo
# model everywhere; inputs are read whole or refused with a message, never
# cut. Needs HEARTH_BIN.
set -u
H=${HEARTH_BIN:?}
T=$(mktemp -d)
export HOME=$T/home # the demo model goes into a fresh store
mkdir -p "$HOME"
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
# expect RC GREP_PATTERN CMD...: exit status RC and stderr matching the pattern
expect() {
    local want=$1 pat=$2
    shift 2
    "$H" "$@" </dev/null >"$T/out" 2>"$T/err"
    local rc=$?
    if [ "$rc" -ne "$want" ]; then
        fail "$*: exit $rc, expected $want ($(head -c 300 "$T/err"))"
    elif [ -n "$pat" ] && ! grep -q -- "$pat" "$T/err"; then
        fail "$*: stderr lacks '$pat': $(head -c 300 "$T/err")"
    else
        ok "$*"
    fi
}

for c in run chat pull list logits bench inspect tokenize detokenize template quantize perplexity; do
    "$H" $c --help >"$T/out" 2>/dev/null
    rc=$?
    if [ $rc -ne 0 ] || ! grep -q "usage" "$T/out"; then fail "$c --help: exit $rc"; else ok "$c --help"; fi
    expect 2 "^hearth $c: .*\(unknown.*--bogus\|--bogus.*unknown\)" $c --bogus
done

# Numbers: out of range, trailing junk, missing values are usage errors.
expect 2 "^hearth perplexity: -c: expected an integer" perplexity -m demo -f /dev/null -c 2
expect 2 "^hearth perplexity: -t: expected an integer" perplexity -m demo -f /dev/null -t 100000
expect 2 "^hearth perplexity: -c needs a value" perplexity -m demo -f /dev/null -c
expect 2 "^hearth bench: -t: expected an integer" bench -m demo -t 0
expect 2 "^hearth bench: -n: expected an integer" bench -m demo -n -1
expect 2 "^hearth bench: -p: expected an integer" bench -m demo -p 12x
expect 2 "^hearth quantize: --threads: expected an integer" quantize demo "$T/q.gguf" Q8_0 --threads 99999
expect 2 "^hearth pull: --sha256: expected 64 hex digits" pull --sha256 zz http://127.0.0.1:1/x.gguf
expect 2 "^hearth pull: --name: expected a file name" pull --name ../x http://127.0.0.1:1/x.gguf
expect 2 "^hearth template: --extra: expected a JSON object" template --template /dev/null --messages /dev/null --extra '{bad'
expect 2 "^hearth template: --extra: expected a JSON object" template --template /dev/null --messages /dev/null --extra '[1]'
# -t: every command takes the thread pool's own limit (512) as its range, so a
# count the pool refuses is a usage error before the model loads.
for c in run chat; do
    expect 2 "^hearth $c: -t: expected an integer in \[1, 512\]" $c -m demo -t 1024
done
expect 2 "^hearth logits: --greedy: expected an integer" logits -m demo -f /dev/null -o "$T/l" --greedy -1

# `-m demo` (a store name, not a path) works for every model command.
printf 'the quick brown fox jumps over the lazy dog. %.0s' $(seq 40) >"$T/text.txt"
expect 0 "" perplexity -m demo -f "$T/text.txt" -c 16 --chunks 1
expect 0 "" bench -m demo -p 4 -n 2 -r 1 -t 1
expect 0 "" quantize demo "$T/q.gguf" Q8_0
expect 0 "" inspect "$T/q.gguf"
expect 1 "^hearth perplexity: .*nonexistent" perplexity -m "$T/nonexistent.gguf" -f "$T/text.txt"
expect 1 "^hearth bench: .*nonexistent" bench -m "$T/nonexistent.gguf"
expect 1 "^hearth quantize: .*nonexistent" quantize "$T/nonexistent.gguf" "$T/q2.gguf" Q8_0

# Runtime errors name the command.
expect 1 "^hearth inspect: /dev/null: " inspect /dev/null
expect 1 "^hearth quantize: " quantize /dev/null "$T/q3.gguf" Q8_0
expect 1 "^hearth perplexity: $T/missing.txt: " perplexity -m demo -f "$T/missing.txt"
expect 1 "^hearth logits: $T/missing.txt: " logits -m demo -f "$T/missing.txt" -o "$T/l"
expect 1 "^hearth template: $T/missing.json: " template --template /dev/null --messages "$T/missing.json"

# Inputs that cannot be read whole are refused with a message.
expect 1 "^hearth run: $T: read failed" run -m demo -f "$T" -n 1
expect 1 "^hearth perplexity: $T: read failed" perplexity -m demo -f "$T"
printf 'hi\0there' >"$T/nul.txt"
expect 1 "^hearth run: --chat: the prompt contains a NUL byte" run -m demo -f "$T/nul.txt" --chat -n 1

# Text from a model file never reaches the terminal raw: an escape sequence
# in general.architecture is shown with '?' by hearth list.
mkdir -p "$T/store"
python3 - "$T/store/esc.gguf" <<'PY'
import struct, sys
key, val = b"general.architecture", b"\x1b]0;pwned\x07\x1b[31mllama"
kv = struct.pack("<Q", len(key)) + key + struct.pack("<I", 8) + struct.pack("<Q", len(val)) + val
open(sys.argv[1], "wb").write(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + kv)
PY
HEARTH_MODELS=$T/store "$H" list >"$T/out" 2>"$T/err"
if [ $? -ne 0 ]; then
    fail "list: exit $? ($(cat "$T/err"))"
elif LC_ALL=C grep -q "$(printf '\033')" "$T/out"; then
    fail "list printed an escape byte from the file"
elif ! grep -q "esc.gguf.*?]0;pwned??\[31mllama" "$T/out"; then
    fail "list: arch not shown sanitized: $(cat "$T/out")"
else
    ok "list: control bytes of the file shown as '?'"
fi

[ $fails -eq 0 ] && echo "passed" || { echo "$fails failed"; exit 1; }
