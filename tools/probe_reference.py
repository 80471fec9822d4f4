#!/usr/bin/env python3
"""Reference values for tests/test_probe.c, from an independent numpy
implementation of GPT-2's forward pass in float64.

The model is tiny and its weights come from a formula both sides compute
(weight(name, j) below, mirrored by the C test), so no file is shared.  It
prints a C header: the attention patterns, the logit lens at the last
position, the direct logit attribution of the top token there, and one
neuron's activations.

    /usr/bin/python3 tools/probe_reference.py > tests/probe_reference.h
"""
import math

import numpy as np

L, NH, C, NCTX, V = 2, 2, 8, 8, 11
IDS = [3, 1, 4, 1, 5, 9]
NEURON = (1, 5)                  # block, neuron


def name_phase(name):
    return sum((i + 1) * b for i, b in enumerate(name.encode())) % 1000 / 100.0


def weight(name, shape):
    n = int(np.prod(shape))
    j = np.arange(n, dtype=np.float64)
    s = np.sin(j * 0.731 + name_phase(name))
    if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
        v = 1.0 + 0.2 * s
    elif name.endswith("bias"):
        v = 0.1 * s
    elif name.endswith("c_attn.weight"):
        v = 1.5 * s              # sharp attention, so heads differ
    else:
        v = 0.5 * s
    return v.astype(np.float32).astype(np.float64).reshape(shape)


def layernorm(x, w, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + 1e-5)
    return (x - mu) * rstd * w + b, rstd


def gelu(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def main():
    P = {"wte.weight": weight("wte.weight", (V, C)), "wpe.weight": weight("wpe.weight", (NCTX, C))}
    for l in range(L):
        for n, shp in [("ln_1.weight", (C,)), ("ln_1.bias", (C,)),
                       ("attn.c_attn.weight", (C, 3 * C)), ("attn.c_attn.bias", (3 * C,)),
                       ("attn.c_proj.weight", (C, C)), ("attn.c_proj.bias", (C,)),
                       ("ln_2.weight", (C,)), ("ln_2.bias", (C,)),
                       ("mlp.c_fc.weight", (C, 4 * C)), ("mlp.c_fc.bias", (4 * C,)),
                       ("mlp.c_proj.weight", (4 * C, C)), ("mlp.c_proj.bias", (C,))]:
            key = "h.%d.%s" % (l, n)
            P[key] = weight(key, shp)
    P["ln_f.weight"] = weight("ln_f.weight", (C,))
    P["ln_f.bias"] = weight("ln_f.bias", (C,))

    T = len(IDS)
    hd = C // NH
    x = P["wte.weight"][IDS] + P["wpe.weight"][:T]
    stages = [x.copy()]
    atts, ys, gs = [], [], []
    mask = np.tril(np.ones((T, T), dtype=bool))
    for l in range(L):
        g = lambda n: P["h.%d.%s" % (l, n)]
        h, _ = layernorm(x, g("ln_1.weight"), g("ln_1.bias"))
        qkv = h @ g("attn.c_attn.weight") + g("attn.c_attn.bias")
        q, k, v = qkv[:, :C], qkv[:, C:2 * C], qkv[:, 2 * C:]
        y = np.zeros((T, C))
        att_l = []
        for hh in range(NH):
            sl = slice(hh * hd, (hh + 1) * hd)
            s = q[:, sl] @ k[:, sl].T / math.sqrt(hd)
            s = np.where(mask, s, -np.inf)
            a = softmax(s)
            att_l.append(a)
            y[:, sl] = a @ v[:, sl]
        atts.append(att_l)
        ys.append(y)
        x = x + y @ g("attn.c_proj.weight") + g("attn.c_proj.bias")
        h2, _ = layernorm(x, g("ln_2.weight"), g("ln_2.bias"))
        f = gelu(h2 @ g("mlp.c_fc.weight") + g("mlp.c_fc.bias"))
        gs.append(f)
        x = x + f @ g("mlp.c_proj.weight") + g("mlp.c_proj.bias")
        stages.append(x.copy())
    lnf, rstd = layernorm(x, P["ln_f.weight"], P["ln_f.bias"])
    logits = lnf @ P["wte.weight"].T
    last = T - 1
    top = int(np.argmax(logits[last]))

    lens = []
    for s in stages:
        z, _ = layernorm(s[last], P["ln_f.weight"], P["ln_f.bias"])
        lens.append(softmax(z @ P["wte.weight"].T))

    # attribution of `top` at the last position: each part's term
    u = P["ln_f.weight"] * P["wte.weight"][top]
    r = rstd[last, 0]

    def term(p):
        return r * (p @ u - p.mean() * u.sum())

    parts = {"token": term(P["wte.weight"][IDS[last]]), "pos": term(P["wpe.weight"][last])}
    heads, biases, mlps = [], [], []
    for l in range(L):
        g = lambda n: P["h.%d.%s" % (l, n)]
        for hh in range(NH):
            sl = slice(hh * hd, (hh + 1) * hd)
            heads.append(term(ys[l][last, sl] @ g("attn.c_proj.weight")[sl]))
        biases.append(term(g("attn.c_proj.bias")))
        mlps.append(term(gs[l][last] @ g("mlp.c_proj.weight") + g("mlp.c_proj.bias")))
    beta = P["ln_f.bias"] @ P["wte.weight"][top]

    def arr(name, a):
        flat = np.asarray(a, dtype=np.float64).ravel()
        body = ", ".join("%.10g" % v for v in flat)
        print("static const double %s[%d] = {%s};" % (name, flat.size, body))

    print("/* Made by tools/probe_reference.py: do not edit. */")
    print("enum { REF_L = %d, REF_NH = %d, REF_C = %d, REF_NCTX = %d, REF_V = %d, REF_T = %d, REF_TOP = %d,"
          % (L, NH, C, NCTX, V, T, top))
    print("       REF_NEURON_LAYER = %d, REF_NEURON = %d };" % NEURON)
    print("static const int ref_ids[%d] = {%s};" % (T, ", ".join(map(str, IDS))))
    arr("ref_att", atts)
    arr("ref_lens_probs", lens)
    arr("ref_logits_last", logits[last])
    arr("ref_attr_heads", heads)
    arr("ref_attr_bias", biases)
    arr("ref_attr_mlp", mlps)
    print("static const double ref_attr_token = %.10g, ref_attr_pos = %.10g, ref_attr_lnf_bias = %.10g;"
          % (parts["token"], parts["pos"], beta))
    arr("ref_neuron", gs[NEURON[0]][:, NEURON[1]])


if __name__ == "__main__":
    main()
