#!/usr/bin/env bash
# `hearth chat`: through a pipe (answers, commands, /save, thinking labels)
# and under a real terminal with tmux (prompt, answer, Ctrl-C, /bye).
# Needs HEARTH_BIN, HEARTH_SHARED; python3 (JSON check) and tmux.
set -u
H=${HEARTH_BIN:?}
S=${HEARTH_SHARED:?}
T=$(mktemp -d)
export HEARTH_MODELS=$T/models
R1=$S/golden/models/qwen2-r1distill.q8_0.gguf
SOCK=hearth-chat-test-$$
cleanup() {
    tmux -L "$SOCK" kill-server 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# --- through a pipe ---------------------------------------------------------

# Greedy, /reset between two equal questions: the same answer twice (the
# second turn after /reset starts from the same rendered prompt).
printf 'hello\n/reset\nhello\n/bye\nnot read\n' |
    "$H" chat -m demo --temp 0 -n 40 -t 2 >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 0 ] && ok "pipe: /bye exits 0" || fail "pipe: exit $rc: $(cat "$T/err")"
grep -q "demo model: random weights, its output is noise" "$T/err" && ok "demo notice" ||
    fail "demo notice missing"
[ "$(wc -l <"$T/out")" -eq 2 ] && [ "$(sed -n 1p "$T/out")" = "$(sed -n 2p "$T/out")" ] &&
    [ -n "$(sed -n 1p "$T/out")" ] && ok "pipe: answers, /reset, greedy repeatable" ||
    fail "pipe answers: $(cat -v "$T/out")"
[ "$(grep -c 'tok/s' "$T/err")" -eq 2 ] && ok "stats after each turn on stderr" ||
    fail "stats: $(cat "$T/err")"
grep -q "tok/s" "$T/out" && fail "stats on stdout" || true

# Second turn reuses the KV cache: "(N reused)" in its stats.
printf 'hello\nmore\n' | "$H" chat -m demo -n 20 -t 2 >/dev/null 2>"$T/err"
[ $? -eq 0 ] && ok "pipe: end of input exits 0" || fail "EOF exit"
grep -q "reused" "$T/err" && ok "second turn reuses the cache" || fail "no reuse: $(cat "$T/err")"

# Commands: /system, /set (good and bad), /save as JSON messages.
printf '/system You are terse.\n/set temp 0\n/set temp abc\n/set bogus 1\nhi\n/save %s\n/bye\n' \
    "$T/conv.json" | "$H" chat -m demo -n 10 -t 2 >"$T/out" 2>"$T/err"
[ $? -eq 0 ] || fail "commands: exit $?"
grep -q "temp: expected a number" "$T/err" && ok "/set temp abc refused" ||
    fail "/set temp abc: $(cat "$T/err")"
grep -q "unknown parameter 'bogus'" "$T/err" && ok "/set bogus refused" || fail "/set bogus"
python3 - "$T/conv.json" <<'PY' && ok "/save writes the messages" || fail "/save: $(cat "$T/conv.json")"
import json, sys
m = json.load(open(sys.argv[1]))
assert [x["role"] for x in m] == ["system", "user", "assistant"], m
assert m[0]["content"] == "You are terse." and m[1]["content"] == "hi", m
PY

# A message of several lines between """ markers (ollama's convention), also
# one closed on its own line and one closed on the same line.
printf '"""\nline one\n  line two\n"""\n"""one line"""\n"""first\nlast"""\n/save %s\n/bye\n' \
    "$T/multi.json" | "$H" chat -m demo -n 3 -t 2 >"$T/out" 2>"$T/err"
python3 - "$T/multi.json" <<'PY' && ok 'multi-line """ messages' || fail "multi-line: $(cat "$T/multi.json")"
import json, sys
m = [x["content"] for x in json.load(open(sys.argv[1])) if x["role"] == "user"]
assert m == ["line one\n  line two", "one line", "first\nlast"], m
PY

# A line with a NUL byte is refused whole (never cut at the NUL); /save fails
# rather than dropping a message jansson cannot hold (a non-UTF-8 /system).
printf 'hi\0there\n/save %s\n/system \377\n/save %s\n/bye\n' "$T/nul.json" "$T/bad.json" |
    "$H" chat -m demo -n 4 -t 2 >"$T/out" 2>"$T/err"
grep -q "the line contains a NUL byte; ignored" "$T/err" && ok "NUL line refused" ||
    fail "NUL line: $(cat "$T/err")"
[ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$T/nul.json")" = 0 ] &&
    ok "NUL line not stored" || fail "NUL line stored: $(cat "$T/nul.json")"
grep -q "cannot write $T/bad.json" "$T/err" && [ ! -e "$T/bad.json" ] && ok "/save of non-UTF-8 fails" ||
    fail "/save non-UTF-8: $(cat "$T/err"; cat "$T/bad.json" 2>/dev/null)"

# Reasoning model through a pipe: labelled, no raw markers; hidden on request;
# the stored assistant message holds no thinking.
printf 'hi\n/save %s\n' "$T/r1.json" | "$H" chat -m "$R1" -n 12 --seed 1 -t 2 >"$T/out" 2>"$T/err"
grep -q '^\[thinking\]' "$T/out" && ok "pipe: thinking labelled" || fail "no [thinking]: $(cat -v "$T/out")"
grep -q '<think>' "$T/out" && fail "raw <think> in the output" || true
python3 -c "import json,sys; m=json.load(open(sys.argv[1])); assert m[-1]['role']=='assistant' and m[-1]['content']=='', m" \
    "$T/r1.json" && ok "thinking not stored in history" || fail "stored: $(cat "$T/r1.json")"
printf 'hi\n' | "$H" chat -m "$R1" -n 12 --seed 1 -t 2 --hide-thinking >"$T/out" 2>/dev/null
grep -q 'thinking' "$T/out" && fail "--hide-thinking showed thinking" || ok "--hide-thinking"

# Usage errors.
"$H" chat -m demo --temp abc </dev/null >/dev/null 2>&1
[ $? -eq 2 ] && ok "chat --temp abc: exit 2" || fail "chat --temp abc"
"$H" chat </dev/null >/dev/null 2>&1
[ $? -eq 2 ] && ok "chat without -m: exit 2" || fail "chat without -m"

# --- under a terminal (tmux) ------------------------------------------------
if ! command -v tmux >/dev/null; then
    fail "tmux is not installed (scripts/setup.sh installs it)"
else
    tm() { tmux -L "$SOCK" "$@"; }
    pane() { tm capture-pane -p -t chat 2>/dev/null; }
    wait_for() { # PATTERN SECONDS: until the pane matches (grep -E)
        local i=0
        while [ $i -lt $(($2 * 10)) ]; do
            pane | grep -Eq "$1" && return 0
            sleep 0.1
            i=$((i + 1))
        done
        return 1
    }
    # A session that outlives the test's sessions keeps the tmux server up:
    # without it, killing the last session shuts the server down, and a
    # new-session racing that shutdown fails ("server exited unexpectedly").
    tm new-session -d -s keep "sleep 3600"
    # A long answer (ignore-eos, big context) so Ctrl-C lands mid-answer.
    tm new-session -d -s chat -x 120 -y 40 \
        "HEARTH_MODELS='$HEARTH_MODELS' '$H' chat -m demo -c 8192 --ignore-eos -t 1; echo EXITED \$?; sleep 30"
    wait_for '^> ?$' 60 && ok "tty: prompt appears" || fail "tty: no prompt: $(pane)"
    pane | grep -q "demo model: random weights" && ok "tty: demo notice shown" || fail "tty: notice"
    tm send-keys -t chat "hello" Enter
    sleep 0.5
    tm send-keys -t chat C-c
    wait_for '\(stopped\)' 30 && ok "tty: Ctrl-C stops the answer" || fail "tty: no (stopped): $(pane)"
    wait_for 'tok/s' 10 && ok "tty: stats after the turn" || fail "tty: stats"
    # back at the prompt: a line that is only "> " after the stats
    wait_for '^> ?$' 10 && ok "tty: back at the prompt" || fail "tty: no prompt after Ctrl-C: $(pane)"
    pane | grep -q EXITED && fail "tty: Ctrl-C ended the program" || true
    tm send-keys -t chat "/bye" Enter
    wait_for 'EXITED 0' 10 && ok "tty: /bye exits 0" || fail "tty: /bye: $(pane)"
    tm kill-session -t chat

    # Ctrl-C twice at the prompt leaves.
    tm new-session -d -s chat -x 120 -y 40 \
        "HEARTH_MODELS='$HEARTH_MODELS' '$H' chat -m demo -t 1; echo EXITED \$?; sleep 30"
    wait_for '^> ?$' 60 || fail "tty2: no prompt"
    tm send-keys -t chat C-c
    wait_for 'Ctrl-C again' 10 && ok "tty: first Ctrl-C at the prompt warns" || fail "tty: $(pane)"
    pane | grep -q EXITED && fail "tty: first Ctrl-C exited" || true
    tm send-keys -t chat C-c
    wait_for 'EXITED 0' 10 && ok "tty: second Ctrl-C exits" || fail "tty: second Ctrl-C: $(pane)"
    tm kill-session -t chat

    # Thinking is dimmed (SGR 2) on a terminal, without raw markers.
    tm new-session -d -s chat -x 120 -y 40 \
        "'$H' chat -m '$R1' -n 12 --seed 1 -t 1; echo EXITED \$?; sleep 30"
    wait_for '^> ?$' 60 || fail "tty3: no prompt"
    tm send-keys -t chat "hi" Enter
    wait_for 'tok/s' 30 || fail "tty3: no answer"
    tm capture-pane -e -p -t chat | grep -q $'\033\\[2m' && ok "tty: thinking dimmed" ||
        fail "tty: no SGR 2 in: $(tm capture-pane -e -p -t chat | cat -v)"
    pane | grep -q '<think>' && fail "tty: raw <think>" || true
    tm send-keys -t chat C-d
    wait_for 'EXITED 0' 10 && ok "tty: Ctrl-D exits 0" || fail "tty: Ctrl-D: $(pane)"
fi

echo "$fails failure(s)"
[ $fails -eq 0 ]
