#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/ (committed; rerun only to
change them).  Small, valid-or-nearly inputs that reach each parser's checks;
libFuzzer mutates from here."""
import json, os, struct, sys

here = os.path.dirname(os.path.abspath(__file__))

def put(target, name, data):
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

# ---- safetensors ----
def st(tensors, meta=None, pad=True):
    """tensors: list of (name, dtype, shape, raw bytes)."""
    hdr, off, blob = {}, 0, b""
    if meta is not None:
        hdr["__metadata__"] = meta
    for name, dtype, shape, raw in tensors:
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blob += raw
    h = json.dumps(hdr).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob

def f32(n, v=0.5):
    return struct.pack("<%df" % n, *([v] * n))

def gpt2_tensors(L=1, C=8, T=4, V=6):
    out = [("wte.weight", "F32", [V, C], f32(V * C, 0.1)),
           ("wpe.weight", "F32", [T, C], f32(T * C, 0.2))]
    for i in range(L):
        p = "h.%d." % i
        out += [(p + "ln_1.weight", "F32", [C], f32(C, 1.0)), (p + "ln_1.bias", "F32", [C], f32(C, 0)),
                (p + "attn.c_attn.weight", "F32", [C, 3 * C], f32(3 * C * C, 0.01)),
                (p + "attn.c_attn.bias", "F32", [3 * C], f32(3 * C, 0)),
                (p + "attn.c_proj.weight", "F32", [C, C], f32(C * C, 0.01)),
                (p + "attn.c_proj.bias", "F32", [C], f32(C, 0)),
                (p + "ln_2.weight", "F32", [C], f32(C, 1.0)), (p + "ln_2.bias", "F32", [C], f32(C, 0)),
                (p + "mlp.c_fc.weight", "F32", [C, 4 * C], f32(4 * C * C, 0.01)),
                (p + "mlp.c_fc.bias", "F32", [4 * C], f32(4 * C, 0)),
                (p + "mlp.c_proj.weight", "F32", [4 * C, C], f32(4 * C * C, 0.01)),
                (p + "mlp.c_proj.bias", "F32", [C], f32(C, 0))]
    out += [("ln_f.weight", "F32", [C], f32(C, 1.0)), ("ln_f.bias", "F32", [C], f32(C, 0))]
    return out

words = ["<unk>", "the", "sky", "is", "blue", "."]
meta = {"format": "paramscope", "architecture": "gpt2", "n_layer": "1", "n_head": "2",
        "n_embd": "8", "n_ctx": "4", "vocab_size": "6", "tokenizer": "words",
        "vocab": json.dumps(words)}
put("safetensors", "model", st(gpt2_tensors(), meta))
put("safetensors", "model-train-meta", st(gpt2_tensors(), dict(meta, **{"train.step": "3", "train.seed": "1"})))
put("safetensors", "empty", st([]))
put("safetensors", "meta-only", st([], {"format": "pt"}))
put("safetensors", "dtypes", st([("a", "F16", [2, 2], b"\x00\x3c" * 4), ("b", "BF16", [3], b"\x80\x3f" * 3),
                                 ("c", "F64", [1], struct.pack("<d", 1.5)), ("d", "I64", [1], b"\0" * 8),
                                 ("e", "I32", [2], b"\0" * 8), ("f", "U8", [3], b"abc"),
                                 ("g", "BOOL", [1], b"\1"), ("h", "F32", [0], b"")]))
put("safetensors", "scalar", st([("s", "F32", [], f32(1))], pad=False))
put("safetensors", "short", b"\x10\0\0\0\0\0\0\0{}")

# ---- GPT-2 BPE texts (the same as fuzz_gpt2_texts in common.c) ----
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xa1, 0xad)) + list(range(0xae, 0x100))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}

b2u = bytes_to_unicode()
merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("s", "k"), ("Ġ", "sk"), ("Ġsk", "y"), ("i", "s"), ("Ġ", "is")]
vocab = {b2u[b]: b for b in range(256)}
for i, (a, b) in enumerate(merges):
    vocab[a + b] = 256 + i
vocab["<|endoftext|>"] = 256 + len(merges)
put("vocab_json", "tiny", json.dumps(vocab, ensure_ascii=False))
put("vocab_json", "tiny-ascii", json.dumps(vocab, ensure_ascii=True))
put("vocab_json", "tiny-spaced", json.dumps(vocab, ensure_ascii=False, indent=1))
put("vocab_json", "not-object", "[1, 2]")
put("merges_txt", "tiny", "#version: 0.2\n" + "".join("%s %s\n" % m for m in merges))
put("merges_txt", "no-version", "".join("%s %s\n" % m for m in merges))
put("merges_txt", "crlf", "#version: 0.2\r\n" + "".join("%s %s\r\n" % m for m in merges))
put("merges_txt", "unknown-part", "#version: 0.2\nĠ q\n")

# ---- config.json ----
cfg = {"model_type": "gpt2", "n_layer": 1, "n_head": 2, "n_embd": 8, "n_positions": 8,
       "vocab_size": 265, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
       "scale_attn_weights": True, "architectures": ["GPT2LMHeadModel"]}
put("hf_config", "full", json.dumps(cfg, indent=2))
put("hf_config", "n_ctx", json.dumps({"n_head": 2, "n_ctx": 8}))
put("hf_config", "minimal", json.dumps({"n_head": 2}))
put("hf_config", "wrong-layers", json.dumps({"n_head": 2, "n_layer": 3}))
put("hf_config", "other", json.dumps({"model_type": "bert", "activation_function": "relu"}))

# ---- tokenizers ----
put("words", "sentence", "The sky is blue. Isn't it?")
put("words", "mixed", "don't 123abc (the) x'y  'quote' \t\n3.14 !?;:")
put("words", "utf8", "caf\xc3\xa9 na\xc3\xafve \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x99\x82 \xff\xfe")
put("words", "json", json.dumps(["<unk>", "a", "b", "it's", "."]))
put("bpe", "sentence", " the sky is blue, isn't it? I'll say it's 2024.")
put("bpe", "special", "hello<|endoftext|> the<|endof")
put("bpe", "utf8", " \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x99\x82 ok \xc3\xa9\xff\x80")
put("bpe", "spaces", "a   b\n\n\t c  \r\n   ")

# ---- addresses (the tiny model: 1 layer, 2 heads, n_embd 8, n_ctx 8) ----
for i, a in enumerate(["h.0.attn.c_attn.weight[3,17]", "wte", "wpe[2]", "wte[\"sky\"]",
                       "h.0.attn.q[1]", "h.0.attn.k[0:2]", "h.0.attn.head[1]", "h.0.mlp.neuron[5]",
                       "h.0.attn.q[1][0:4,:]", "h.0.attn.c_attn.weight[:, -1]",
                       "h.0.attn.c_attn.weight[0:8][2]", "ln_f.bias[-3:]", " h.0.ln_1.weight [ 1 : 4 ] ",
                       "h.0.mlp.c_fc.weight[2:,:5]", "wte[\"the\"][0:3]", "h.0.attn.v"]):
    put("addr", "a%02d" % i, a)

# ---- command lines ----
put("repl", "predict", "predict the sky is\nbaseline the sky\npredict\nset top 3\npredict the sky is blue\n")
put("repl", "edits", "h.0.ln_1.bias[0:3] = 0.5\nscale h.0.ln_1.bias 2\nhistory\nundo\nredo\ndiff\nreset\n")
put("repl", "views", "show h.0.attn.q[1]\nstats wte\nhist wpe 5\nablate head 0.1\nablate neuron 0.3\nzero h.0.mlp.neuron[2]\nundo\n")
put("repl", "train", "train set batch 2\ntrain set seq 4\ntrain step\ntrain phase\ntrain phase\nloss\neval\ngrad wte\nupdate wte\nadam wte\n")
put("repl", "misc", "help\nhelp scale\ntensors h.0.*\ncount\nnoise wte 0.1 7\nprune wte 50\nquantize wte 4\ngenerate 5 the sky\nset temperature 0.5\nset\ntrain set\n")
