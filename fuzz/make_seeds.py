#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<harness>/ from the golden files and
fixtures in ../shared and the small valid models of tests/crafted/gen_crafted.

usage: fuzz/make_seeds.py CRAFTED_DIR [SHARED_DIR]
  CRAFTED_DIR: where `gen_crafted DIR` wrote its files (build/tests/crafted
  after ctest, or run the generator by hand). Rerun after changing the
  harnesses' input formats; commit the result (kept small: ~1 MB in all)."""
import json
import os
import struct
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
crafted = sys.argv[1]
shared = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "..", "shared")
corpus = os.path.join(root, "fuzz", "corpus")


def write(harness, name, data):
    d = os.path.join(corpus, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gguf_data_offset(b):
    """Offset of the data section of GGUF bytes b (no validation: trusted input)."""
    pos = 4 + 4
    n_t, n_kv = struct.unpack_from("<QQ", b, pos)
    pos += 16
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    align = 32

    def rstr(p):
        (n,) = struct.unpack_from("<Q", b, p)
        return b[p + 8:p + 8 + n], p + 8 + n

    for _ in range(n_kv):
        key, pos = rstr(pos)
        (t,) = struct.unpack_from("<I", b, pos)
        pos += 4
        if t == 8:
            _, pos = rstr(pos)
        elif t == 9:
            et, n = struct.unpack_from("<IQ", b, pos)
            pos += 12
            if et == 8:
                for _ in range(n):
                    _, pos = rstr(pos)
            else:
                pos += n * sizes[et]
        else:
            if key == b"general.alignment":
                (align,) = struct.unpack_from("<I", b, pos)
            pos += sizes[t]
    for _ in range(n_t):
        _, pos = rstr(pos)
        (nd,) = struct.unpack_from("<I", b, pos)
        pos += 4 + 8 * nd + 4 + 8
    return (pos + align - 1) // align * align


# GGUF reader and model loader: the small valid models, and the metadata +
# tensor infos of each golden model family (data cut off).
small = ["valid_spm_small", "valid_bpe_small", "valid_q4_0", "valid_f16", "valid_deepseek2", "all_value_types",
         "all_value_types_v2"]
for n in small:
    with open(os.path.join(crafted, n + ".gguf"), "rb") as f:
        b = f.read()
    write("gguf", n, b)
    if not n.startswith("all_"):
        write("model", n, b)
for fam in ["llama-spm", "llama3-bpe", "qwen2-r1distill", "qwen2-chatml", "deepseek-v3",
            "deepseek-v2-lite"]:
    with open(os.path.join(shared, "golden", "models", fam + ".q4_0.gguf"), "rb") as f:
        b = f.read(1 << 20)
    write("gguf", "golden-head-" + fam, b[:gguf_data_offset(b)])

# Tokenizer: byte 0 selects the vocabulary (fuzz_tokenizer.c's table) and the
# flags; the strings of the tokenizer fixtures.
vocabs = ["ggml-vocab-llama-spm", "ggml-vocab-gpt-2", "ggml-vocab-qwen2",
          "ggml-vocab-deepseek-llm", "ggml-vocab-deepseek-v3"]
sep = "\n__ggml_vocab_test__\n"
for vi, v in enumerate(vocabs):
    with open(os.path.join(shared, "tokenizer", "gguf", v + ".gguf.inp"), encoding="utf-8") as f:
        strings = f.read().split(sep)
    for si, s in enumerate(strings):
        if not s and si:
            continue
        sel = vi | ((si % 4) << 4)  # add_special / parse_special vary
        write("tokenizer", "%s-%02d" % (v, si), bytes([sel]) + s.encode("utf-8"))
for vi, tag in [(5, "llama3-bpe"), (6, "qwen2-r1distill"), (7, "llama-spm-small")]:
    write("tokenizer", tag + "-special",
          bytes([vi | 0x70]) + "<|im_start|>user\nHi <think>x</think> \u00e9\U0001F600\xff".encode(
              "utf-8", "surrogateescape") + b"\xff\xfe\xc3")

# Template and chat JSON: the chat template cases.
with open(os.path.join(shared, "chat", "cases.json"), encoding="utf-8") as f:
    cases = json.load(f)
order = []
for ci, c in enumerate(cases):
    if c["template"] not in order:
        order.append(c["template"])
    flags = (1 if c["add_generation_prompt"] else 0) | (2 if c.get("bos_token") else 0) | \
        (4 if c.get("eos_token") else 0) | (8 if ci % 2 else 0)
    msgs = json.dumps(c["messages"], ensure_ascii=False).encode("utf-8")
    tools = json.dumps(c["tools"], ensure_ascii=False).encode("utf-8") if c.get("tools") else b""
    extra = b'{"enable_thinking": false}' if "qwen3" in c["name"] else b""
    write("template", "case-%02d-%s" % (ci, c["name"]),
          bytes([flags]) + c["template"].encode("utf-8") + b"\0" + msgs + b"\0" + tools + b"\0" +
          extra)
    sel = order.index(c["template"]) | (16 if c["add_generation_prompt"] else 0) | 0x60
    write("chat_json", "case-%02d-%s" % (ci, c["name"]), bytes([sel]) + msgs + b"\0" + tools +
          b"\0" + extra)
# Hand-written templates: loops, macros, filters, deep nesting.
extra_templates = [
    "{% for i in range(3) %}{% for j in range(i) %}{{ i * j }},{% endfor %}{% endfor %}",
    "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ n }}{% endif %}{% endmacro %}{{ f(5) }}",
    "{{ messages | tojson }}{{ (messages | length) ~ 'x' | upper }}{{ 'a,b' .split(',') | join('-') }}",
    "{% set ns = namespace(x=0) %}{% for m in messages %}{% set ns.x = ns.x + 1 %}"
    "{% if loop.last %}{{ ns.x }}{% endif %}{% endfor %}",
    "{{ x[1:] ~ x[::-1] }}{{ n // 3 }}{{ n % 7 }}{{ 2 ** 10 }}{{ '%s' }}{{ z is none }}",
    "((((((((((((((((((((1))))))))))))))))))))" * 1,
    "{{" + "(" * 300 + "1" + ")" * 300 + "}}",
    "{% if b %}" * 40 + "x" + "{% endif %}" * 40,
    "{% for m in messages %}{{ m.role|trim }}{{ m['content'] | replace('a', 'b') }}"
    "{% if m.tool_calls is defined %}{{ m.tool_calls[0].function.arguments | tojson }}{% endif %}"
    "{% endfor %}{{ raise_exception('stop') if n > 1000 else '' }}",
]
for i, t in enumerate(extra_templates):
    write("template", "extra-%02d" % i, bytes([8 | 1]) + t.encode("utf-8"))

# Importance matrices: a GGUF one (two tensors, one of them 2 experts) and
# the legacy binary format of the same values.
def gguf_imatrix(entries):
    """GGUF v3 bytes: general.type, imatrix.* keys, <name>.in_sum2 / .counts."""
    def gstr(x):
        return struct.pack("<Q", len(x)) + x
    kv = [(b"general.type", struct.pack("<I", 8) + gstr(b"imatrix")),
          (b"imatrix.datasets", struct.pack("<IIQ", 9, 8, 1) + gstr(b"seed.txt")),
          (b"imatrix.chunk_count", struct.pack("<II", 4, 3)),
          (b"imatrix.chunk_size", struct.pack("<II", 4, 64))]
    tensors = []
    for name, sums, counts in entries:
        tensors.append((name + b".in_sum2", len(sums[0]), len(sums), [v for r in sums for v in r]))
        tensors.append((name + b".counts", 1, len(counts), counts))
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for k, v in kv:
        head += gstr(k) + v
    data, off = b"", 0
    for name, ne0, ne1, vals in tensors:
        head += gstr(name) + struct.pack("<IQQIQ", 2, ne0, ne1, 0, off)
        blob = struct.pack("<%df" % len(vals), *vals)
        blob += b"\0" * ((-len(blob)) % 32)
        data += blob
        off += len(blob)
    head += b"\0" * ((-len(head)) % 32)
    return head + data


im_entries = [(b"blk.0.attn_q.weight", [[1.5, 2.0, 0.25, 8.0]], [3.0]),
              (b"blk.0.ffn_down_exps.weight", [[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]],
               [2.0, 0.0])]
write("imatrix", "gguf-small", gguf_imatrix(im_entries))
legacy = struct.pack("<i", len(im_entries))
for name, sums, counts in im_entries:
    vals = [v for r in sums for v in r]
    legacy += struct.pack("<i", len(name)) + name + struct.pack("<ii", int(counts[0]), len(vals))
    legacy += struct.pack("<%df" % len(vals), *vals)
legacy += struct.pack("<ii", 3, 8) + b"seed.txt"
write("imatrix", "legacy-small", legacy)
print("seeds written under", corpus)
