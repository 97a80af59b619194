#!/usr/bin/env bash
# `hearth pull` and `hearth list` against the hostile loopback server
# (tests/net/hostile_server.py). No network beyond 127.0.0.0/8.
# Every failure case checks: exit status 1 (an error, never a signal), the
# message, and that the final file name was not created.
set -u
BIN=${HEARTH_BIN:?HEARTH_BIN must name the hearth binary}
SRC=${HEARTH_SRC:?HEARTH_SRC must name the repository root}
SHARED=${HEARTH_SHARED:-$SRC/../shared}

TMP=$(mktemp -d /tmp/hearth-pull-test.XXXXXX)
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

# Loopback only: no proxy may see these requests.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy HF_TOKEN
export NO_PROXY='*' no_proxy='*'
export HEARTH_MODELS=$TMP/models
export HEARTH_PULL_CONNECT_TIMEOUT=5 HEARTH_PULL_LOW_SPEED_TIME=2
M=$HEARTH_MODELS

# The served file: a small golden GGUF when ../shared has one (so that
# `hearth list` has an architecture to show), else the server's own bytes.
DATA=$TMP/data.bin
GOLDEN=$SHARED/golden/models/qwen2-chatml.q4_0.gguf
if [ -f "$GOLDEN" ]; then
    cp "$GOLDEN" "$DATA"
    python3 "$SRC/tests/net/hostile_server.py" --file "$DATA" --lifetime 150 >"$TMP/origins" &
else
    python3 "$SRC/tests/net/hostile_server.py" --lifetime 150 >"$TMP/origins" &
fi
SERVER_PID=$!
for _ in $(seq 100); do [ -s "$TMP/origins" ] && break; sleep 0.1; done
read -r HUB CDN <"$TMP/origins" || { echo "FAIL: hostile server did not start"; exit 1; }
if [ ! -f "$GOLDEN" ]; then
    python3 -c "import urllib.request,sys; sys.stdout.buffer.write(urllib.request.urlopen('$CDN/cdn/good/x').read())" >"$DATA"
fi
SIZE=$(stat -c %s "$DATA")
SHA=$(sha256sum "$DATA" | cut -d' ' -f1)
export HEARTH_HF_ENDPOINT=$HUB
echo "server: hub $HUB, cdn $CDN; file $SIZE bytes, sha256 $SHA"

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   $*"; }
bad() {
    FAIL=$((FAIL + 1))
    echo "FAIL $*"
    echo "  --- stderr:"
    sed 's/^/  | /' "$TMP/err" | tail -n 15
}

# pull ARGS...: runs hearth pull, status in RC, output in $TMP/out, $TMP/err.
pull() {
    timeout 60 "$BIN" pull "$@" >"$TMP/out" 2>"$TMP/err"
    RC=$?
}

# expect_ok LABEL NAME [ARGS...]: exit 0, NAME in the store equal to the data,
# no partial file left.
expect_ok() {
    local label=$1 name=$2
    shift 2
    pull "$@"
    if [ "$RC" -ne 0 ]; then bad "$label: exit $RC, expected 0"; return 1; fi
    if ! cmp -s "$M/$name" "$DATA"; then bad "$label: $M/$name differs from the served file"; return 1; fi
    if [ -e "$M/$name.partial" ]; then bad "$label: $name.partial left behind"; return 1; fi
    if [ "$(cat "$TMP/out")" != "$M/$name" ]; then bad "$label: stdout '$(cat "$TMP/out")', expected $M/$name"; return 1; fi
    ok "$label"
}

# expect_fail LABEL NAME MESSAGE [ARGS...]: exit 1 (not a signal), MESSAGE in
# stderr, no file under the final name.
expect_fail() {
    local label=$1 name=$2 msg=$3
    shift 3
    pull "$@"
    if [ "$RC" -ge 128 ] || [ "$RC" -eq 124 ]; then bad "$label: killed or timed out (status $RC)"; return 1; fi
    if [ "$RC" -ne 1 ]; then bad "$label: exit $RC, expected 1"; return 1; fi
    if ! grep -qF -- "$msg" "$TMP/err"; then bad "$label: message lacks '$msg'"; return 1; fi
    if [ -e "$M/$name" ]; then bad "$label: final file $name exists after a failure"; return 1; fi
    ok "$label"
}

# expect_err_has TEXT: the last stderr contains TEXT.
expect_err_has() {
    if grep -qF -- "$1" "$TMP/err"; then ok "  ...says '$1'"; else bad "stderr lacks '$1'"; fi
}

stats() { python3 -c "import json,urllib.request; d=json.load(urllib.request.urlopen('$HUB/stats')); print($1)"; }
psize() { stat -c %s "$M/$1.partial" 2>/dev/null || echo none; }

# --- good paths
expect_ok "hf:// through a CDN redirect, X-Linked-ETag" good.gguf hf://t/good/good.gguf \
    && expect_err_has "SHA-256 $SHA verified (expected value from X-Linked-ETag)"
pull hf://t/good/good.gguf
[ "$RC" -eq 0 ] && grep -qF "already in the store" "$TMP/err" && ok "second pull: already there" \
    || bad "second pull: exit $RC"
pull --sha256 "$(printf 1%.0s $(seq 64))" hf://t/good/good.gguf
[ "$RC" -eq 1 ] && grep -qF "already in the store but its SHA-256 differs" "$TMP/err" && cmp -s "$M/good.gguf" "$DATA" \
    && ok "already there, checked against a wrong --sha256: error, file untouched" || bad "existing file vs wrong --sha256: exit $RC"
printf 'stale' >"$M/forced.gguf"
expect_ok "--force replaces an existing file" forced.gguf --force hf://t/good/forced.gguf
expect_ok "hf:// with an explicit revision" rev.gguf hf://t/good/rev.gguf@v1.0
expect_ok "plain 200 with a sha256 ETag" direct.gguf hf://t/direct/direct.gguf \
    && expect_err_has "expected value from ETag"
expect_ok "plain http URL following the redirect" plain.gguf "$HUB/t/good/resolve/main/plain.gguf"
expect_ok "--sha256 given and right" given.gguf --sha256 "$SHA" "$CDN/cdn/good/given.gguf" \
    && expect_err_has "expected value from --sha256"
expect_ok "no expected hash: reported, not verified" unverified.gguf "$CDN/cdn/good/unverified.gguf" \
    && expect_err_has "SHA-256 $SHA NOT verified"
expect_ok "five redirects are allowed" chain5.gguf hf://t/chain5/chain5.gguf
expect_ok "--name renames" renamed.gguf --name renamed.gguf hf://t/good/whatever.gguf

# --- integrity failures
expect_fail "X-Linked-ETag that does not match" badsha.gguf "SHA-256 mismatch for badsha.gguf: expected" \
    hf://t/badsha/badsha.gguf && expect_err_has "found $SHA"
[ "$(psize badsha.gguf)" = none ] && ok "  ...mismatching download deleted" || bad "badsha.gguf.partial kept"
expect_fail "--sha256 given and wrong" wrongsha.gguf "(from --sha256)" \
    --sha256 "$(printf 0%.0s $(seq 64))" hf://t/good/wrongsha.gguf
# A malformed --sha256 is a usage error (exit 2, as for every command's bad option values).
pull --sha256 xyz hf://t/good/notes.gguf
[ "$RC" -eq 2 ] && grep -qF -- "--sha256: expected 64 hex digits" "$TMP/err" && [ ! -e "$M/notes.gguf" ] &&
    ok "--sha256 not hex: usage error" || bad "--sha256 not hex: exit $RC, $(cat "$TMP/err")"
expect_fail "short body" short.gguf "short body: expected $SIZE bytes, received $((SIZE / 2))" \
    hf://t/short/short.gguf
[ "$(psize short.gguf)" = $((SIZE / 2)) ] && ok "  ...partial kept for resume" || bad "short.gguf.partial: $(psize short.gguf)"
expect_fail "X-Linked-Size disagrees with Content-Length" sizelie.gguf "size mismatch: the hub announced $((SIZE + 1)) bytes" \
    hf://t/sizelie/sizelie.gguf
expect_fail "endless body after an announced size" endless.gguf "server sent more than the announced $SIZE bytes" \
    hf://t/endless/endless.gguf
p=$(psize endless.gguf)
[ "$p" != none ] && [ "$p" -le "$SIZE" ] && ok "  ...nothing beyond the size written ($p bytes)" || bad "endless.gguf.partial: $p"
HEARTH_PULL_MAX_BYTES=3000000 expect_fail "endless body, no size, bounded by HEARTH_PULL_MAX_BYTES" endless0.gguf \
    "more than 3000000 bytes without announcing a size" hf://t/endless0/endless0.gguf
p=$(psize endless0.gguf)
[ "$p" != none ] && [ "$p" -le 3000000 ] && ok "  ...at most the limit written ($p bytes)" || bad "endless0.gguf.partial: $p"
expect_fail "malformed Content-Length" badlen.gguf "malformed Content-Length '12abc'" hf://t/badlen/badlen.gguf
start=$(date +%s)
expect_fail "stalled transfer hits the low-speed timeout" stall.gguf "transfer too slow" hf://t/stall/stall.gguf
[ $(($(date +%s) - start)) -le 20 ] && ok "  ...within 20 s" || bad "stall took $(($(date +%s) - start)) s"

# --- HTTP errors and redirects
expect_fail "404" e404.gguf "HTTP 404 Not Found from $HUB/t/e404/resolve/main/e404.gguf (body: Entry not found)" \
    hf://t/e404/e404.gguf
[ "$(psize e404.gguf)" = none ] && ok "  ...no empty partial file left" || bad "e404.gguf.partial: $(psize e404.gguf)"
expect_fail "500" e500.gguf "HTTP 500" hf://t/e500/e500.gguf
expect_fail "redirect loop" loop.gguf "too many redirects: more than 5" hf://t/loop/loop.gguf
n=$(stats "d['counts'].get('loop')")
[ "$n" = 6 ] && ok "  ...gave up after 6 requests" || bad "loop: $n requests, expected 6"
expect_fail "six redirects" chain6.gguf "too many redirects: more than 5" hf://t/chain6/chain6.gguf
expect_fail "connection refused" refused.gguf "cannot fetch" "http://127.0.0.1:1/refused.gguf"
expect_fail "not http(s)" ftp.gguf "expected hf://ORG/REPO/FILE.gguf or an http(s):// URL" "ftp://127.0.0.1/ftp.gguf"
expect_fail "hf:// with too few segments" x.gguf "expected hf://ORG/REPO/FILE.gguf[@REVISION]" "hf://t/x.gguf"
expect_fail "hf:// with a .. segment" x.gguf "'..'" "hf://t/good/../x.gguf"

# --- tokens: to the hub only
expect_fail "hub wants a token" auth.gguf "HTTP 401" hf://t/auth/auth.gguf
HF_TOKEN=sekrit-test-token expect_ok "HF_TOKEN sent to the hub, not to the CDN" auth.gguf hf://t/auth/auth.gguf
n=$(stats "d['cdn_saw_auth']")
[ "$n" = 0 ] && ok "  ...CDN never saw an Authorization header" || bad "CDN saw Authorization $n times"
HF_TOKEN=sekrit-test-token expect_fail "HF_TOKEN not sent for plain URLs" authurl.gguf "HTTP 401" \
    "$HUB/t/auth/resolve/main/authurl.gguf"

HF_TOKEN=$(printf 'abc\r\nX-Injected: 1') expect_fail "HF_TOKEN with a line break is refused" inj.gguf \
    "HF_TOKEN: expected printable ASCII" hf://t/good/inj.gguf

# --- two pulls of one file at a time: the second is refused while the first holds the lock
# (flock is util-linux, Essential on Debian)
: >"$M/locked.gguf.partial"
flock "$M/locked.gguf.partial" sleep 3 &
LOCK_PID=$!
sleep 0.5
expect_fail "a second pull of the same file is refused" locked.gguf "another hearth pull is downloading it" \
    hf://t/good/locked.gguf
wait "$LOCK_PID"
expect_ok "  ...and goes ahead once the first is gone" locked.gguf hf://t/good/locked.gguf

# --- resume
expect_fail "resume: first attempt cut at half" resume.gguf "short body" hf://t/resume/resume.gguf
[ "$(psize resume.gguf)" = $((SIZE / 2)) ] && ok "  ...half kept" || bad "resume.gguf.partial: $(psize resume.gguf)"
expect_ok "resume: rerun completes with Range and verifies" resume.gguf hf://t/resume/resume.gguf \
    && expect_err_has "resuming resume.gguf at $((SIZE / 2)) bytes" && expect_err_has "verified"
expect_fail "no-range server: first attempt cut at half" norange.gguf "short body" hf://t/norange/norange.gguf
expect_ok "no-range server: rerun restarts from zero and verifies" norange.gguf hf://t/norange/norange.gguf \
    && expect_err_has "server ignored the range request; restarting from zero"
head -c 1000 "$DATA" >"$M/badrange.gguf.partial"
expect_ok "206 for the wrong bytes: starts over and verifies" badrange.gguf hf://t/badrange/badrange.gguf \
    && expect_err_has "starting over"
head -c 1000 /dev/zero >"$M/corrupt.gguf.partial"
expect_fail "corrupt partial file: hash mismatch after resume" corrupt.gguf "SHA-256 mismatch" hf://t/good/corrupt.gguf
expect_ok "  ...and the rerun starts clean" corrupt.gguf hf://t/good/corrupt.gguf
cp "$DATA" "$M/complete.gguf.partial"
expect_ok "partial already complete (416): verified and renamed" complete.gguf hf://t/good/complete.gguf
head -c $((SIZE + 5)) /dev/zero >"$M/toolong.gguf.partial"
expect_ok "partial longer than the file (416): starts over" toolong.gguf hf://t/good/toolong.gguf

# --- the store
"$BIN" list >"$TMP/out" 2>"$TMP/err"
RC=$?
if [ "$RC" -eq 0 ] && grep -q "^good.gguf " "$TMP/out" && grep -q "short.gguf.partial" "$TMP/out"; then
    ok "hearth list shows good.gguf and the partial short.gguf"
else
    bad "hearth list (exit $RC): $(head -c 400 "$TMP/out")"
fi
if [ -f "$GOLDEN" ]; then
    grep -E "^good.gguf .* qwen2 " "$TMP/out" >/dev/null && ok "  ...with the GGUF architecture" \
        || bad "hearth list lacks the architecture: $(grep '^good' "$TMP/out")"
fi
out=$("$BIN" list --resolve good 2>"$TMP/err")
[ "$out" = "$M/good.gguf" ] && ok "-m good resolves to the store" || bad "list --resolve good: '$out'"
out=$("$BIN" list --resolve rena 2>"$TMP/err")
[ "$out" = "$M/renamed.gguf" ] && ok "-m by unique prefix" || bad "list --resolve rena: '$out'"
"$BIN" list --resolve c >"$TMP/out" 2>"$TMP/err"
RC=$?
[ "$RC" -eq 1 ] && grep -q "ambiguous" "$TMP/err" && grep -q "chain5.gguf" "$TMP/err" \
    && ok "-m ambiguous prefix lists candidates" || bad "list --resolve c: exit $RC"
"$BIN" list --resolve nosuchmodel >"$TMP/out" 2>"$TMP/err"
RC=$?
[ "$RC" -eq 1 ] && grep -qF "not found" "$TMP/err" && grep -qF "$M" "$TMP/err" \
    && ok "-m unknown name names the models directory" || bad "list --resolve nosuchmodel: exit $RC"

echo "pull tests: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
