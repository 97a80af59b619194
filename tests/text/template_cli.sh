#!/usr/bin/env sh
# `hearth template`: --template and -m (GGUF) paths, tools, extras, errors.
# Needs HEARTH_BIN, HEARTH_SHARED.
set -u
H=${HEARTH_BIN:?}
S=${HEARTH_SHARED:?}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

cat >"$T/chatml.jinja" <<'X'
{% for message in messages %}
{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}
{% endfor %}
{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}
X
printf '[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi \\u00e9"}]' >"$T/m.json"

# 1. --template, generation prompt, exact bytes (no newline added at the end);
#    the newline after a '}}' stays (trim_blocks only trims after block tags)
"$H" template --template "$T/chatml.jinja" --messages "$T/m.json" --add-generation-prompt \
    >"$T/out" 2>"$T/err"
rc=$?
printf '<|im_start|>system\nBe brief.<|im_end|>\n\n<|im_start|>user\nHi \303\251<|im_end|>\n\n<|im_start|>assistant\n' >"$T/want"
[ $rc -eq 0 ] && cmp -s "$T/out" "$T/want" && ok "--template renders exactly" ||
    fail "--template: rc=$rc $(cat "$T/err") got: $(cat "$T/out")"

# 2. without the generation prompt
"$H" template --template "$T/chatml.jinja" --messages "$T/m.json" >"$T/out" 2>"$T/err"
printf '<|im_start|>system\nBe brief.<|im_end|>\n\n<|im_start|>user\nHi \303\251<|im_end|>\n\n' >"$T/want"
cmp -s "$T/out" "$T/want" && ok "no generation prompt" || fail "no generation prompt: $(cat "$T/out")"

# 3. an object with messages and tools; tojson keeps key order and Python's spacing
cat >"$T/tools.jinja" <<'X'
{%- for tool in tools %}{{ tool | tojson }};{% endfor %}
{{- bos_token ~ '|' ~ eos_token ~ '|' ~ messages | length ~ '|' ~ (enable_thinking is defined) -}}
X
printf '{"messages": [{"role": "user", "content": "x"}], "tools": [{"name": "f", "b": [1, 2.5, null], "a": {}}]}' >"$T/mt.json"
"$H" template --template "$T/tools.jinja" --messages "$T/mt.json" --bos '<s>' --eos '</s>' \
    --extra '{"enable_thinking": false}' >"$T/out" 2>"$T/err"
printf '{"name": "f", "b": [1, 2.5, null], "a": {}};<s>|</s>|1|True' >"$T/want"
cmp -s "$T/out" "$T/want" && ok "tools, bos/eos, extra" || fail "tools: $(cat "$T/out") $(cat "$T/err")"

# 4. --tools file overrides; no tools at all gives tools = none
printf '[{"name": "g"}]' >"$T/t.json"
"$H" template --template "$T/tools.jinja" --messages "$T/m.json" --tools "$T/t.json" >"$T/out" 2>&1
printf '{"name": "g"};||2|False' >"$T/want"
cmp -s "$T/out" "$T/want" && ok "--tools file" || fail "--tools: $(cat "$T/out")"
printf '{{ tools is none }}' >"$T/none.jinja"
"$H" template --template "$T/none.jinja" --messages "$T/m.json" >"$T/out" 2>&1
[ "$(cat "$T/out")" = "True" ] && ok "tools none" || fail "tools none: $(cat "$T/out")"

# 5. -m: the GGUF's template and its BOS text (Llama 3 template starts with bos_token)
M=$S/golden/models/llama3-bpe.q8_0.gguf
"$H" template -m "$M" --messages "$T/m.json" --add-generation-prompt >"$T/out" 2>"$T/err"
rc=$?
printf '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi \303\251<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n' >"$T/want"
[ $rc -eq 0 ] && cmp -s "$T/out" "$T/want" && ok "-m llama3 template with BOS" ||
    fail "-m: rc=$rc $(cat "$T/err") got: $(cat "$T/out")"
M2=$S/golden/models/qwen2-r1distill.q8_0.gguf
"$H" template -m "$M2" --messages "$T/m.json" --add-generation-prompt --bos '' >"$T/out" 2>"$T/err"
printf 'Be brief.<\357\275\234User\357\275\234>Hi \303\251<\357\275\234Assistant\357\275\234><think>\n' >"$T/want"
cmp -s "$T/out" "$T/want" && ok "-m R1 template, --bos override" || fail "-m R1: $(cat "$T/out") $(cat "$T/err")"

# 6. errors: exit 1 with the construct and line; usage errors exit 2
printf 'line one\n{{ messages | frobnicate }}' >"$T/bad.jinja"
"$H" template --template "$T/bad.jinja" --messages "$T/m.json" >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 1 ] && grep -q "unknown filter 'frobnicate'" "$T/err" && grep -q "line 2" "$T/err" &&
    ok "unknown filter: exit 1, names filter and line" || fail "unknown filter: rc=$rc $(cat "$T/err")"
printf "{{ raise_exception('System role not supported') }}" >"$T/raise.jinja"
"$H" template --template "$T/raise.jinja" --messages "$T/m.json" >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 1 ] && grep -q "System role not supported" "$T/err" && [ ! -s "$T/out" ] &&
    ok "raise_exception message" || fail "raise_exception: rc=$rc $(cat "$T/err")"
printf '[{"role": ' >"$T/badjson.json"
"$H" template --template "$T/chatml.jinja" --messages "$T/badjson.json" >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 1 ] && grep -q "invalid JSON" "$T/err" && ok "bad JSON: exit 1" || fail "bad JSON: rc=$rc $(cat "$T/err")"
"$H" template --template "$T/chatml.jinja" >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 2 ] && ok "missing --messages: exit 2" || fail "missing --messages: rc=$rc"
"$H" template --template "$T/nope.jinja" --messages "$T/m.json" >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 1 ] && grep -q "nope.jinja" "$T/err" && ok "missing template file" || fail "missing file: rc=$rc"

[ $fails -eq 0 ] && echo "all template CLI checks passed" && exit 0
echo "$fails template CLI check(s) failed"
exit 1
