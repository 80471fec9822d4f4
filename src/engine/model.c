/* The GPT-2-architecture model: the parameter table and arena, activations,
 * forward, loss and backward.  Buffer names and the order of operations follow
 * the forward pass of a pre-LayerNorm GPT-2 block:
 *   ln1 = LN(x); qkv = ln1 Wqkv; atty = attn(qkv); resid2 = x + atty Wproj
 *   ln2 = LN(resid2); fch = ln2 Wfc; resid3 = resid2 + gelu(fch) Wfcproj */
#include "paramscope/model.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paramscope/blas.h"
#include "paramscope/kernels.h"
#include "paramscope/rng.h"

#define MAX_LAYERS 256
#define MAX_EMBD 65536
#define MAX_CTX 65536
#define MAX_VOCAB (1 << 24)
#define PARAMS_PER_BLOCK 12

/* ---- configuration ---- */

int ps_config_check(const ps_config *c, ps_error *err)
{
    if (c->n_layer < 1 || c->n_layer > MAX_LAYERS)
        return ps_error_set(err, PS_ERR_INVALID, "n_layer %d is not in [1, %d]", c->n_layer, MAX_LAYERS);
    if (c->n_embd < 1 || c->n_embd > MAX_EMBD)
        return ps_error_set(err, PS_ERR_INVALID, "n_embd %d is not in [1, %d]", c->n_embd, MAX_EMBD);
    if (c->n_head < 1 || c->n_head > c->n_embd)
        return ps_error_set(err, PS_ERR_INVALID, "n_head %d is not in [1, n_embd %d]", c->n_head, c->n_embd);
    if (c->n_embd % c->n_head != 0)
        return ps_error_set(err, PS_ERR_INVALID, "n_embd %d is not divisible by n_head %d", c->n_embd, c->n_head);
    if (c->n_ctx < 1 || c->n_ctx > MAX_CTX)
        return ps_error_set(err, PS_ERR_INVALID, "n_ctx %d is not in [1, %d]", c->n_ctx, MAX_CTX);
    if (c->vocab_size < 1 || c->vocab_size > MAX_VOCAB)
        return ps_error_set(err, PS_ERR_INVALID, "vocab_size %d is not in [1, %d]", c->vocab_size, MAX_VOCAB);
    return PS_OK;
}

size_t ps_config_param_count(const ps_config *c)
{
    size_t C = (size_t)c->n_embd;
    size_t block = 2 * C + (C * 3 * C + 3 * C) + (C * C + C) + 2 * C +
                   (C * 4 * C + 4 * C) + (4 * C * C + C);
    return (size_t)c->vocab_size * C + (size_t)c->n_ctx * C +
           (size_t)c->n_layer * block + 2 * C;
}

/* ---- the parameter table ---- */

static void add_param(ps_model *m, size_t *offset, const char *name, int layer,
                      ps_param_kind kind, int is_bias, int d0, int d1)
{
    ps_param *p = &m->params[m->n_params++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = d1 > 0 ? 2 : 1;
    p->shape[0] = d0;
    p->shape[1] = d1 > 0 ? d1 : 1;
    p->numel = (size_t)d0 * (size_t)p->shape[1];
    p->offset = *offset;
    p->layer = layer;
    p->kind = kind;
    p->is_bias = is_bias;
    *offset += p->numel;
}

static void build_table(ps_model *m)
{
    const ps_config *c = &m->cfg;
    int C = c->n_embd;
    size_t off = 0;
    char name[PS_NAME_MAX];
    m->n_params = 0;
    add_param(m, &off, "wte.weight", -1, PS_PARAM_KIND_EMBED, 0, c->vocab_size, C);
    add_param(m, &off, "wpe.weight", -1, PS_PARAM_KIND_EMBED, 0, c->n_ctx, C);
    for (int l = 0; l < c->n_layer; l++) {
#define P(suffix, kind, bias, d0, d1)                               \
        snprintf(name, sizeof name, "h.%d.%s", l, suffix);          \
        add_param(m, &off, name, l, kind, bias, d0, d1)
        P("ln_1.weight", PS_PARAM_KIND_NORM, 1, C, 0);
        P("ln_1.bias", PS_PARAM_KIND_NORM, 1, C, 0);
        P("attn.c_attn.weight", PS_PARAM_KIND_ATTN, 0, C, 3 * C);
        P("attn.c_attn.bias", PS_PARAM_KIND_ATTN, 1, 3 * C, 0);
        P("attn.c_proj.weight", PS_PARAM_KIND_ATTN, 0, C, C);
        P("attn.c_proj.bias", PS_PARAM_KIND_ATTN, 1, C, 0);
        P("ln_2.weight", PS_PARAM_KIND_NORM, 1, C, 0);
        P("ln_2.bias", PS_PARAM_KIND_NORM, 1, C, 0);
        P("mlp.c_fc.weight", PS_PARAM_KIND_MLP, 0, C, 4 * C);
        P("mlp.c_fc.bias", PS_PARAM_KIND_MLP, 1, 4 * C, 0);
        P("mlp.c_proj.weight", PS_PARAM_KIND_MLP, 0, 4 * C, C);
        P("mlp.c_proj.bias", PS_PARAM_KIND_MLP, 1, C, 0);
#undef P
    }
    add_param(m, &off, "ln_f.weight", -1, PS_PARAM_KIND_NORM, 1, C, 0);
    add_param(m, &off, "ln_f.bias", -1, PS_PARAM_KIND_NORM, 1, C, 0);
    m->n_floats = off;
}

/* Points params[i].data and the per-block shortcuts into the arena w. */
static void bind_params(ps_model *m)
{
    for (int i = 0; i < m->n_params; i++)
        m->params[i].data = m->w + m->params[i].offset;
    m->wte = m->params[0].data;
    m->wpe = m->params[1].data;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        ps_param *p = &m->params[2 + l * PARAMS_PER_BLOCK];
        ps_block *b = &m->blocks[l];
        b->ln1_w = p[0].data;  b->ln1_b = p[1].data;
        b->qkv_w = p[2].data;  b->qkv_b = p[3].data;
        b->proj_w = p[4].data; b->proj_b = p[5].data;
        b->ln2_w = p[6].data;  b->ln2_b = p[7].data;
        b->fc_w = p[8].data;   b->fc_b = p[9].data;
        b->fcproj_w = p[10].data; b->fcproj_b = p[11].data;
    }
    m->lnf_w = m->params[m->n_params - 2].data;
    m->lnf_b = m->params[m->n_params - 1].data;
}

static float *alloc_floats(size_t n)
{
    void *p = NULL;
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    if (bytes == 0)
        bytes = 64;
    if (posix_memalign(&p, 64, bytes) != 0)
        return NULL;
    return p;
}

static int model_alloc(ps_model **out, const ps_config *cfg, float *w, size_t n_floats,
                       const size_t *offsets, ps_error *err)
{
    *out = NULL;
    int rc = ps_config_check(cfg, err);
    if (rc)
        return rc;
    ps_model *m = calloc(1, sizeof *m);
    if (!m)
        goto nomem;
    m->cfg = *cfg;
    m->params = calloc((size_t)cfg->n_layer * PARAMS_PER_BLOCK + 4, sizeof *m->params);
    m->blocks = calloc((size_t)cfg->n_layer, sizeof *m->blocks);
    if (!m->params || !m->blocks)
        goto nomem;
    build_table(m);
    m->n_values = m->n_floats;
    /* A number of its own in the top bits: caches keyed on (model, version)
     * never mistake a new model at a freed one's address for the old one. */
    static atomic_ulong births;
    m->version = (uint64_t)(atomic_fetch_add(&births, 1) + 1) << 32;
    if (offsets) {
        /* a mapped file: the arena is its data area, with holes where the file
         * keeps other tensors; check that every parameter lies inside it */
        for (int i = 0; i < m->n_params; i++) {
            ps_param *p = &m->params[i];
            if (offsets[i] > n_floats || p->numel > n_floats - offsets[i]) {
                ps_model_free(m);
                return ps_error_set(err, PS_ERR_RANGE, "tensor '%s' lies outside the mapped data", p->name);
            }
            p->offset = offsets[i];
        }
        m->n_floats = n_floats;
    }
    if (w) {
        m->w = w;
        m->w_borrowed = 1;
    } else {
        m->w = alloc_floats(m->n_floats);
        if (!m->w)
            goto nomem;
        memset(m->w, 0, m->n_floats * sizeof(float));
    }
    bind_params(m);
    *out = m;
    return PS_OK;
nomem:
    ps_model_free(m);
    return ps_error_set(err, PS_ERR_NOMEM, "model of %zu parameters: out of memory",
                        ps_config_param_count(cfg));
}

int ps_model_init(ps_model **out, const ps_config *cfg, ps_error *err)
{
    return model_alloc(out, cfg, NULL, 0, NULL, err);
}

int ps_model_init_borrowed(ps_model **out, const ps_config *cfg, float *w,
                           void (*release)(void *), void *ctx, ps_error *err)
{
    return ps_model_init_mapped(out, cfg, w, 0, NULL, release, ctx, err);
}

int ps_model_init_mapped(ps_model **out, const ps_config *cfg, float *w, size_t n_floats,
                         const size_t *offsets, void (*release)(void *), void *ctx,
                         ps_error *err)
{
    int rc = model_alloc(out, cfg, w, n_floats, offsets, err);
    if (rc == PS_OK) {
        (*out)->w_release = release;
        (*out)->w_release_ctx = ctx;
    }
    return rc;
}

int ps_model_init_shared(ps_model **out, const ps_model *src, ps_error *err)
{
    size_t *offsets = malloc(sizeof *offsets * (size_t)src->n_params);
    if (!offsets)
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    for (int i = 0; i < src->n_params; i++)
        offsets[i] = src->params[i].offset;
    int rc = ps_model_init_mapped(out, &src->cfg, src->w, src->n_floats, offsets, NULL, NULL, err);
    free(offsets);
    return rc;
}

void ps_model_free(ps_model *m)
{
    if (!m)
        return;
    if (m->w_borrowed) {
        if (m->w_release)
            m->w_release(m->w_release_ctx);
    } else {
        free(m->w);
    }
    free(m->grad);
    free(m->acts_mem);
    free(m->ids);
    free(m->targets);
    free(m->params);
    free(m->blocks);
    free(m);
}

void ps_model_init_random(ps_model *m, uint64_t seed)
{
    m->version++;
    ps_rng rng;
    ps_rng_seed(&rng, seed);
    float proj_std = 0.02f / sqrtf(2.0f * m->cfg.n_layer);
    for (int i = 0; i < m->n_params; i++) {
        ps_param *p = &m->params[i];
        int is_ln_weight = p->kind == PS_PARAM_KIND_NORM && strstr(p->name, ".weight");
        int is_proj = strstr(p->name, "c_proj.weight") != NULL;
        for (size_t j = 0; j < p->numel; j++) {
            if (is_ln_weight)
                p->data[j] = 1.0f;
            else if (p->is_bias)
                p->data[j] = 0.0f;
            else
                p->data[j] = ps_rng_normal(&rng) * (is_proj ? proj_std : 0.02f);
        }
    }
}

ps_param *ps_model_find(ps_model *m, const char *name)
{
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, name) == 0)
            return &m->params[i];
    return NULL;
}

int ps_model_param_index(const ps_model *m, const ps_param *p)
{
    return (int)(p - m->params);
}

/* ---- activations ---- */

/* Lays out every activation for (B, T) over base (NULL: only count). */
static size_t layout_acts(ps_acts *a, const ps_config *c, int B, int T, float *base)
{
    size_t L = c->n_layer, C = c->n_embd, NH = c->n_head, V = c->vocab_size;
    size_t BT = (size_t)B * T;
    size_t off = 0;
#define TAKE(field, count)                                   \
    do {                                                     \
        a->field = base ? base + off : NULL;                 \
        off += ((size_t)(count) + 15) & ~(size_t)15;         \
    } while (0)
    TAKE(encoded, BT * C);
    TAKE(ln1, L * BT * C);
    TAKE(ln1_mean, L * BT);
    TAKE(ln1_rstd, L * BT);
    TAKE(qkv, L * BT * 3 * C);
    TAKE(atty, L * BT * C);
    TAKE(att, L * B * NH * T * T);
    TAKE(resid2, L * BT * C);
    TAKE(ln2, L * BT * C);
    TAKE(ln2_mean, L * BT);
    TAKE(ln2_rstd, L * BT);
    TAKE(fch, L * BT * 4 * C);
    TAKE(fch_gelu, L * BT * 4 * C);
    TAKE(resid3, L * BT * C);
    TAKE(lnf, BT * C);
    TAKE(lnf_mean, BT);
    TAKE(lnf_rstd, BT);
    TAKE(logits, BT * V);
    TAKE(probs, BT * V);
    TAKE(losses, BT);
    TAKE(dresid, BT * C);
    TAKE(dbuf_c, BT * C);
    TAKE(dbuf_c2, BT * C);
    TAKE(dqkv, BT * 3 * C);
    TAKE(dfch, BT * 4 * C);
    TAKE(datt, B * NH * T * T);
    TAKE(dlogits, BT * V);
#undef TAKE
    return off;
}

int ps_model_reserve(ps_model *m, int B, int T, ps_error *err)
{
    if (B < 1 || T < 1)
        return ps_error_set(err, PS_ERR_INVALID, "batch %d x sequence %d: both must be positive", B, T);
    if (T > m->cfg.n_ctx)
        return ps_error_set(err, PS_ERR_RANGE, "sequence length %d is longer than n_ctx %d", T, m->cfg.n_ctx);
    if (B <= m->cap_B && T <= m->cap_T && m->acts_mem)
        return PS_OK;
    int nB = B > m->cap_B ? B : m->cap_B;
    int nT = T > m->cap_T ? T : m->cap_T;
    ps_acts a;
    size_t n = layout_acts(&a, &m->cfg, nB, nT, NULL);
    float *mem = alloc_floats(n);
    int *ids = malloc(sizeof(int) * (size_t)nB * nT);
    int *targets = malloc(sizeof(int) * (size_t)nB * nT);
    if (!mem || !ids || !targets) {
        free(mem);
        free(ids);
        free(targets);
        return ps_error_set(err, PS_ERR_NOMEM, "activations for batch %d x sequence %d (%zu MB): out of memory",
                            nB, nT, n * sizeof(float) >> 20);
    }
    free(m->acts_mem);
    free(m->ids);
    free(m->targets);
    m->acts_mem = mem;
    m->ids = ids;
    m->targets = targets;
    m->cap_B = nB;
    m->cap_T = nT;
    m->has_forward = m->has_loss = 0;
    return PS_OK;
}

int ps_model_grad_alloc(ps_model *m, ps_error *err)
{
    if (!m->grad) {
        m->grad = alloc_floats(m->n_floats);
        if (!m->grad)
            return ps_error_set(err, PS_ERR_NOMEM, "gradients (%zu MB): out of memory",
                                m->n_floats * sizeof(float) >> 20);
    }
    memset(m->grad, 0, m->n_floats * sizeof(float));
    return PS_OK;
}

/* ---- forward ---- */

static int check_ids(const ps_model *m, const int *ids, int n, const char *what,
                     ps_error *err)
{
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab_size)
            return ps_error_set(err, PS_ERR_RANGE, "%s %d at position %d is not in [0, %d)",
                                what, ids[i], i, m->cfg.vocab_size);
    return PS_OK;
}

/* Blocks `from` .. L-1, ln_f and the LM head over the activations laid out
 * for the current (B, T).  at_proj: block `from` starts at its attention
 * output (atty) instead of its input residual. */
static void forward_blocks(ps_model *m, int from, int at_proj)
{
    ps_acts *a = &m->acts;
    int B = m->B, T = m->T;
    int C = m->cfg.n_embd, NH = m->cfg.n_head, L = m->cfg.n_layer, V = m->cfg.vocab_size;
    int BT = B * T;
    size_t sC = (size_t)BT * C, s3C = 3 * sC, s4C = 4 * sC, sN = (size_t)BT;
    size_t sAtt = (size_t)B * NH * T * T;

    for (int l = from; l < L; l++) {
        const ps_block *w = &m->blocks[l];
        const float *x = l == 0 ? a->encoded : a->resid3 + (l - 1) * sC;
        float *ln1 = a->ln1 + l * sC, *qkv = a->qkv + l * s3C, *atty = a->atty + l * sC;
        float *resid2 = a->resid2 + l * sC, *ln2 = a->ln2 + l * sC;
        float *fch = a->fch + l * s4C, *fch_gelu = a->fch_gelu + l * s4C;
        float *resid3 = a->resid3 + l * sC;

        if (!(at_proj && l == from)) {
            ps_layernorm_forward(ln1, a->ln1_mean + l * sN, a->ln1_rstd + l * sN, x, w->ln1_w, w->ln1_b, BT, C);
            ps_matmul_forward(qkv, ln1, w->qkv_w, w->qkv_b, BT, C, 3 * C);
            ps_attention_forward(atty, a->att + l * sAtt, qkv, B, T, C, NH);
        }
        ps_matmul_forward(resid2, atty, w->proj_w, w->proj_b, BT, C, C);
        ps_residual_forward(resid2, resid2, x, (int)sC);
        ps_layernorm_forward(ln2, a->ln2_mean + l * sN, a->ln2_rstd + l * sN, resid2, w->ln2_w, w->ln2_b, BT, C);
        ps_matmul_forward(fch, ln2, w->fc_w, w->fc_b, BT, C, 4 * C);
        ps_gelu_forward(fch_gelu, fch, (int)s4C);
        ps_matmul_forward(resid3, fch_gelu, w->fcproj_w, w->fcproj_b, BT, 4 * C, C);
        ps_residual_forward(resid3, resid3, resid2, (int)sC);
    }
    const float *last = L == 0 ? a->encoded : a->resid3 + (L - 1) * sC;
    ps_layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, last, m->lnf_w, m->lnf_b, BT, C);
    /* The LM head is tied to the token embedding: logits = lnf wte^T. */
    ps_sgemm(0, 1, BT, V, C, 1.0f, a->lnf, C, m->wte, C, 0.0f, a->logits, V);
}

int ps_model_forward(ps_model *m, const int *ids, int B, int T, ps_error *err)
{
    int rc = ps_model_reserve(m, B, T, err);
    if (!rc)
        rc = check_ids(m, ids, B * T, "token id", err);
    if (rc)
        return rc;
    /* Activations are laid out for the current (B, T) inside the reserved block
     * so that every buffer is contiguous for the shapes the kernels see. */
    layout_acts(&m->acts, &m->cfg, B, T, m->acts_mem);
    memcpy(m->ids, ids, sizeof(int) * (size_t)B * T);
    m->B = B;
    m->T = T;
    m->has_forward = m->has_loss = m->has_grad = 0;
    ps_encoder_forward(m->acts.encoded, ids, m->wte, m->wpe, B, T, m->cfg.n_embd);
    forward_blocks(m, 0, 0);
    m->has_forward = 1;
    return PS_OK;
}

int ps_model_forward_from(ps_model *m, int layer, int at_proj, ps_error *err)
{
    if (!m->has_forward)
        return ps_error_set(err, PS_ERR_STATE, "a partial forward needs a whole one first");
    if (layer < 0 || layer > m->cfg.n_layer || (at_proj && layer == m->cfg.n_layer))
        return ps_error_set(err, PS_ERR_RANGE, "block %d: the model has blocks 0..%d", layer,
                            m->cfg.n_layer - 1);
    m->has_loss = m->has_grad = 0;
    forward_blocks(m, layer, at_proj);
    return PS_OK;
}

void ps_forward_stage_name(int n_layer, int stage, char *buf, size_t size)
{
    if (stage <= 0)
        snprintf(buf, size, "embeddings");
    else if (stage <= 2 * n_layer)
        snprintf(buf, size, "block %d (%s)", (stage - 1) / 2, stage % 2 ? "attention" : "MLP");
    else if (stage == 2 * n_layer + 1)
        snprintf(buf, size, "ln_f");
    else
        snprintf(buf, size, "the LM head");
}

static int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

int ps_model_find_nonfinite(const ps_model *m, char *where, size_t size)
{
    if (size)
        where[0] = '\0';
    if (!m->has_forward)
        return 0;
    const ps_acts *a = &m->acts;
    int L = m->cfg.n_layer;
    size_t sC = (size_t)m->B * m->T * m->cfg.n_embd;
    int stage = -1;
    if (!all_finite(a->encoded, sC))
        stage = 0;
    for (int l = 0; l < L && stage < 0; l++) {
        if (!all_finite(a->resid2 + l * sC, sC))
            stage = 1 + 2 * l;
        else if (!all_finite(a->resid3 + l * sC, sC))
            stage = 2 + 2 * l;
    }
    if (stage < 0 && !all_finite(a->lnf, sC))
        stage = 1 + 2 * L;
    if (stage < 0 && !all_finite(a->logits, (size_t)m->B * m->T * m->cfg.vocab_size))
        stage = 2 + 2 * L;
    if (stage < 0)
        return 0;
    ps_forward_stage_name(L, stage, where, size);
    return 1;
}

int ps_model_loss(ps_model *m, const int *targets, float *loss, ps_error *err)
{
    if (!m->has_forward)
        return ps_error_set(err, PS_ERR_STATE, "loss needs a forward pass first");
    int BT = m->B * m->T, V = m->cfg.vocab_size;
    int rc = check_ids(m, targets, BT, "target id", err);
    if (rc)
        return rc;
    memcpy(m->targets, targets, sizeof(int) * (size_t)BT);
    ps_acts *a = &m->acts;
    ps_softmax_crossentropy(a->probs, a->losses, a->logits, targets, BT, V);
    double sum = 0.0;
    for (int i = 0; i < BT; i++)
        sum += a->losses[i];
    m->mean_loss = (float)(sum / BT);
    if (loss)
        *loss = m->mean_loss;
    m->has_loss = 1;
    m->has_grad = 0;
    return PS_OK;
}

/* ---- backward ---- */

static void backward_from_dlogits(ps_model *m);

int ps_model_backward(ps_model *m, ps_error *err)
{
    if (!m->has_loss)
        return ps_error_set(err, PS_ERR_STATE, "backward needs the loss first");
    int rc = ps_model_grad_alloc(m, err);
    if (rc)
        return rc;
    ps_crossentropy_softmax_backward(m->acts.dlogits, m->acts.probs, m->targets, 1.0f / (m->B * m->T),
                                     m->B * m->T, m->cfg.vocab_size);
    backward_from_dlogits(m);
    return PS_OK;
}

int ps_model_backward_logits(ps_model *m, ps_error *err)
{
    if (!m->has_forward)
        return ps_error_set(err, PS_ERR_STATE, "backward needs a forward pass first");
    int rc = ps_model_grad_alloc(m, err);
    if (rc)
        return rc;
    backward_from_dlogits(m);
    return PS_OK;
}

const float *ps_model_input_grad(const ps_model *m, int b)
{
    return m->has_grad ? m->acts.dresid + (size_t)b * m->T * m->cfg.n_embd : NULL;
}

/* The gradient of whatever acts.dlogits is the gradient of. */
static void backward_from_dlogits(ps_model *m)
{
    ps_acts *a = &m->acts;
    int B = m->B, T = m->T;
    int C = m->cfg.n_embd, NH = m->cfg.n_head, L = m->cfg.n_layer, V = m->cfg.vocab_size;
    int BT = B * T;
    size_t sC = (size_t)BT * C, s3C = 3 * sC, s4C = 4 * sC, sN = (size_t)BT;
    size_t sAtt = (size_t)B * NH * T * T;
    float *g = m->grad;
#define GRAD(ptr) (g + ((ptr) - m->w))

    /* logits = lnf wte^T:  dwte += dlogits^T lnf;  dlnf = dlogits wte */
    ps_sgemm(1, 0, V, C, BT, 1.0f, a->dlogits, V, a->lnf, C, 1.0f, GRAD(m->wte), C);
    ps_sgemm(0, 0, BT, C, V, 1.0f, a->dlogits, V, m->wte, C, 0.0f, a->dbuf_c, C);
    memset(a->dresid, 0, sC * sizeof(float));
    ps_layernorm_backward(a->dresid, GRAD(m->lnf_w), GRAD(m->lnf_b), a->dbuf_c,
                          a->resid3 + (L - 1) * sC, m->lnf_w, a->lnf_mean, a->lnf_rstd, BT, C);

    for (int l = L - 1; l >= 0; l--) {
        const ps_block *w = &m->blocks[l];
        const float *x = l == 0 ? a->encoded : a->resid3 + (l - 1) * sC;
        const float *fch = a->fch + l * s4C;
        /* dresid holds d(resid3); the skip passes it to resid2 unchanged. */
        ps_matmul_backward(a->dfch, GRAD(w->fcproj_w), GRAD(w->fcproj_b), a->dresid,
                           a->fch_gelu + l * s4C, w->fcproj_w, BT, 4 * C, C);
        ps_gelu_backward(a->dfch, fch, a->dfch, (int)s4C);
        ps_matmul_backward(a->dbuf_c, GRAD(w->fc_w), GRAD(w->fc_b), a->dfch,
                           a->ln2 + l * sC, w->fc_w, BT, C, 4 * C);
        ps_layernorm_backward(a->dresid, GRAD(w->ln2_w), GRAD(w->ln2_b), a->dbuf_c,
                              a->resid2 + l * sC, w->ln2_w, a->ln2_mean + l * sN,
                              a->ln2_rstd + l * sN, BT, C);
        /* dresid holds d(resid2); the skip passes it to x unchanged. */
        ps_matmul_backward(a->dbuf_c2, GRAD(w->proj_w), GRAD(w->proj_b), a->dresid,
                           a->atty + l * sC, w->proj_w, BT, C, C);
        ps_attention_backward(a->dqkv, a->datt, a->dbuf_c2, a->qkv + l * s3C,
                              a->att + l * sAtt, B, T, C, NH);
        ps_matmul_backward(a->dbuf_c, GRAD(w->qkv_w), GRAD(w->qkv_b), a->dqkv,
                           a->ln1 + l * sC, w->qkv_w, BT, C, 3 * C);
        ps_layernorm_backward(a->dresid, GRAD(w->ln1_w), GRAD(w->ln1_b), a->dbuf_c, x,
                              w->ln1_w, a->ln1_mean + l * sN, a->ln1_rstd + l * sN, BT, C);
    }
    ps_encoder_backward(GRAD(m->wte), GRAD(m->wpe), a->dresid, m->ids, B, T, C);
#undef GRAD
    m->has_grad = 1;
}

/* ---- access ---- */

float *ps_model_logits(ps_model *m, int b, int t)
{
    return m->acts.logits + ((size_t)b * m->T + t) * m->cfg.vocab_size;
}

float *ps_model_probs(ps_model *m, int b, int t)
{
    return m->acts.probs + ((size_t)b * m->T + t) * m->cfg.vocab_size;
}

float *ps_model_attention(ps_model *m, int layer, int b, int head)
{
    size_t per_layer = (size_t)m->B * m->cfg.n_head * m->T * m->T;
    return m->acts.att + layer * per_layer + ((size_t)b * m->cfg.n_head + head) * m->T * m->T;
}

float *ps_model_residual(ps_model *m, int layer, int b)
{
    size_t per_layer = (size_t)m->B * m->T * m->cfg.n_embd;
    return m->acts.resid3 + layer * per_layer + (size_t)b * m->T * m->cfg.n_embd;
}

float *ps_model_param_grad(ps_model *m, const ps_param *p)
{
    return m->grad && m->has_grad ? m->grad + p->offset : NULL;
}

double ps_model_forward_flops(const ps_config *c, int B, int T)
{
    double C = c->n_embd, L = c->n_layer, V = c->vocab_size, N = (double)B * T;
    double per_token = L * (2 * C * 3 * C + 2 * C * C + 2 * C * 4 * C * 2) + 2 * C * V;
    /* attention: QK^T and att V, the full T x T square as computed */
    double attn = L * 2.0 * 2.0 * B * (double)T * T * C;
    return per_token * N + attn;
}
