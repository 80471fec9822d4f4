/* Probes over the kept activations of one forward pass (probe.h).
 *
 * Why doubles in the attribution: its promise is an identity (the parts sum
 * to the logit), and the parts can be large with opposite signs; summing
 * them in float would lose the digits the identity is checked on. */
#include "paramscope/probe.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "paramscope/blas.h"
#include "paramscope/kernels.h"

static int check_pos(const ps_model *m, int b, int t, ps_error *err)
{
    if (!m->has_forward)
        return ps_error_set(err, PS_ERR_STATE, "no forward pass has run");
    if (b < 0 || b >= m->B || t < 0 || t >= m->T)
        return ps_error_set(err, PS_ERR_RANGE, "position (%d, %d) is outside the forward's %d x %d",
                            b, t, m->B, m->T);
    return PS_OK;
}

/* The residual stream at (b, t) after stage s: 0 the embeddings, l + 1 block l. */
static const float *residual_at(const ps_model *m, int s, int b, int t)
{
    size_t C = (size_t)m->cfg.n_embd, row = (size_t)b * m->T + t;
    if (s == 0)
        return m->acts.encoded + row * C;
    return m->acts.resid3 + ((size_t)(s - 1) * m->B * m->T + row) * C;
}

/* ---- the logit lens ---- */

int ps_probe_lens(ps_model *m, int b, int t, float *logits, ps_error *err)
{
    int rc = check_pos(m, b, t, err);
    if (rc)
        return rc;
    int S = m->cfg.n_layer + 1, C = m->cfg.n_embd, V = m->cfg.vocab_size;
    float *x = malloc(((size_t)2 * S * C + 2 * (size_t)S) * sizeof *x);
    if (!x)
        return ps_error_set(err, PS_ERR_NOMEM, "logit lens: out of memory");
    float *y = x + (size_t)S * C, *mean = y + (size_t)S * C, *rstd = mean + S;
    for (int s = 0; s < S; s++)
        memcpy(x + (size_t)s * C, residual_at(m, s, b, t), (size_t)C * sizeof *x);
    ps_layernorm_forward(y, mean, rstd, x, m->lnf_w, m->lnf_b, S, C);
    /* every stage's LM head in one product: logits[S, V] = y[S, C] wte^T */
    ps_sgemm(0, 1, S, V, C, 1.0f, y, C, m->wte, C, 0.0f, logits, V);
    free(x);
    return PS_OK;
}

/* ---- direct logit attribution ---- */

void ps_attribution_clear(ps_attribution *a)
{
    if (!a)
        return;
    free(a->head);
    free(a->attn_bias);
    free(a->mlp);
    memset(a, 0, sizeof *a);
}

/* r * (p . u - mean(p) * s_u) for a part p[C] */
static double part_term(const float *p, const double *u, double s_u, double r, int C)
{
    double pu = 0, ps = 0;
    for (int i = 0; i < C; i++) {
        pu += p[i] * u[i];
        ps += p[i];
    }
    return r * (pu - ps / C * s_u);
}

int ps_probe_attribute(ps_model *m, int b, int t, int token, ps_attribution *a, ps_error *err)
{
    memset(a, 0, sizeof *a);
    int rc = check_pos(m, b, t, err);
    if (rc)
        return rc;
    const ps_config *cf = &m->cfg;
    int L = cf->n_layer, NH = cf->n_head, C = cf->n_embd, hd = C / NH, C4 = 4 * C;
    if (token < 0 || token >= cf->vocab_size)
        return ps_error_set(err, PS_ERR_RANGE, "token id %d is outside the vocabulary (0..%d)", token,
                            cf->vocab_size - 1);
    a->n_layer = L;
    a->n_head = NH;
    a->token = token;
    a->head = calloc((size_t)L * NH, sizeof *a->head);
    a->attn_bias = calloc((size_t)L, sizeof *a->attn_bias);
    a->mlp = calloc((size_t)L, sizeof *a->mlp);
    double *u = malloc((size_t)C * sizeof *u);
    /* uo[C, 2] = [u, 1]; wu[4C, 2] = W [u, 1] for c_proj and the MLP's c_proj */
    float *uo = malloc((size_t)(2 * C + 8 * C) * sizeof *uo), *wu = uo ? uo + 2 * C : NULL;
    if (!a->head || !a->attn_bias || !a->mlp || !u || !uo) {
        free(u);
        free(uo);
        ps_attribution_clear(a);
        return ps_error_set(err, PS_ERR_NOMEM, "attribution: out of memory");
    }

    size_t row = (size_t)b * m->T + t, per_layer = (size_t)m->B * m->T;
    const float *wv = m->wte + (size_t)token * C;
    double s_u = 0, beta = 0;
    for (int i = 0; i < C; i++) {
        u[i] = (double)m->lnf_w[i] * wv[i];
        s_u += u[i];
        beta += (double)m->lnf_b[i] * wv[i];
        uo[2 * i] = (float)u[i];
        uo[2 * i + 1] = 1.0f;
    }
    double r = m->acts.lnf_rstd[row];
    a->token_embed = part_term(m->wte + (size_t)m->ids[row] * C, u, s_u, r, C);
    a->pos_embed = part_term(m->wpe + (size_t)t * C, u, s_u, r, C);
    a->lnf_bias = beta;
    double total = a->token_embed + a->pos_embed + beta;

    for (int l = 0; l < L; l++) {
        const ps_block *bl = &m->blocks[l];
        /* a part p = y W (+ bias) has p . u = y . (W u) and sum(p) = y . (W 1):
         * one product of W with [u, 1] gives both for every head at once */
        const float *y = m->acts.atty + ((size_t)l * per_layer + row) * C;     /* [C] */
        ps_sgemm(0, 0, C, 2, C, 1.0f, bl->proj_w, C, uo, 2, 0.0f, wu, 2);
        for (int h = 0; h < NH; h++) {
            double pu = 0, pm = 0;
            for (int i = h * hd; i < (h + 1) * hd; i++) {
                pu += (double)y[i] * wu[2 * i];
                pm += (double)y[i] * wu[2 * i + 1];
            }
            a->head[l * NH + h] = r * (pu - pm / C * s_u);
            total += a->head[l * NH + h];
        }
        a->attn_bias[l] = part_term(bl->proj_b, u, s_u, r, C);

        const float *g = m->acts.fch_gelu + ((size_t)l * per_layer + row) * C4;  /* [4C] */
        ps_sgemm(0, 0, C4, 2, C, 1.0f, bl->fcproj_w, C, uo, 2, 0.0f, wu, 2);
        double pu = 0, pm = 0;
        for (int k = 0; k < C4; k++) {
            pu += (double)g[k] * wu[2 * k];
            pm += (double)g[k] * wu[2 * k + 1];
        }
        for (int j = 0; j < C; j++) {
            pu += bl->fcproj_b[j] * u[j];
            pm += bl->fcproj_b[j];
        }
        a->mlp[l] = r * (pu - pm / C * s_u);
        total += a->attn_bias[l] + a->mlp[l];
    }
    a->total = total;
    a->logit = m->acts.logits[row * cf->vocab_size + token];
    free(u);
    free(uo);
    return PS_OK;
}

/* ---- neurons ---- */

int ps_probe_neuron(const ps_model *m, int layer, int neuron, int b, float *act, ps_error *err)
{
    int rc = check_pos(m, b, 0, err);
    if (rc)
        return rc;
    int C4 = 4 * m->cfg.n_embd;
    if (layer < 0 || layer >= m->cfg.n_layer)
        return ps_error_set(err, PS_ERR_RANGE, "block %d: the model has blocks 0..%d", layer,
                            m->cfg.n_layer - 1);
    if (neuron < 0 || neuron >= C4)
        return ps_error_set(err, PS_ERR_RANGE, "neuron %d: the MLP has neurons 0..%d", neuron, C4 - 1);
    const float *g = m->acts.fch_gelu + ((size_t)layer * m->B + b) * m->T * C4;
    for (int t = 0; t < m->T; t++)
        act[t] = g[(size_t)t * C4 + neuron];
    return PS_OK;
}

void ps_neuron_scan_free(ps_neuron_scan *s)
{
    if (!s)
        return;
    free(s->hits);
    free(s);
}

const ps_neuron_hit *ps_neuron_scan_hits(const ps_neuron_scan *s, int layer, int neuron)
{
    return s->hits + ((size_t)layer * s->n_neuron + neuron) * s->k;
}

/* Keeps the k largest of a neuron's activations, strongest first. */
static void offer(ps_neuron_hit *h, int k, float act, size_t pos)
{
    if (h[k - 1].pos != SIZE_MAX && !(act > h[k - 1].act))
        return;
    int i = k - 1;
    while (i > 0 && (h[i - 1].pos == SIZE_MAX || act > h[i - 1].act)) {
        h[i] = h[i - 1];
        i--;
    }
    h[i].act = act;
    h[i].pos = pos;
}

/* Offers every activation of a forward over B windows of T tokens that
 * start at stream position `base`. */
static void collect(ps_neuron_scan *s, const ps_model *m, size_t base, int B, int T)
{
    int C4 = s->n_neuron;
    for (int l = 0; l < s->n_layer; l++) {
        const float *g = m->acts.fch_gelu + (size_t)l * B * T * C4;
        for (int r = 0; r < B * T; r++) {
            const float *row = g + (size_t)r * C4;
            ps_neuron_hit *hl = s->hits + (size_t)l * C4 * s->k;
            for (int n = 0; n < C4; n++)
                offer(hl + (size_t)n * s->k, s->k, row[n], base + (size_t)r);
        }
    }
}

int ps_neuron_scan_run(ps_neuron_scan **out, ps_model *m, const int *tokens, size_t n, int seq,
                       int batch, int k, int (*progress)(void *ctx, size_t done, size_t total),
                       void *ctx, ps_error *err)
{
    *out = NULL;
    if (seq < 1 || seq > m->cfg.n_ctx || batch < 1 || k < 1 || k > 1000)
        return ps_error_set(err, PS_ERR_RANGE, "neuron scan: seq %d (1..%d), batch %d, k %d (1..1000)",
                            seq, m->cfg.n_ctx, batch, k);
    if (n == 0)
        return ps_error_set(err, PS_ERR_INVALID, "neuron scan: the text is empty");
    ps_neuron_scan *s = calloc(1, sizeof *s);
    size_t n_hits = (size_t)m->cfg.n_layer * 4 * m->cfg.n_embd * k;
    if (!s || !(s->hits = malloc(n_hits * sizeof *s->hits))) {
        free(s);
        return ps_error_set(err, PS_ERR_NOMEM, "neuron scan: out of memory for %zu hits", n_hits);
    }
    s->n_layer = m->cfg.n_layer;
    s->n_neuron = 4 * m->cfg.n_embd;
    s->k = k;
    s->n_tokens = n;
    s->model_version = m->version;
    for (size_t i = 0; i < n_hits; i++)
        s->hits[i] = (ps_neuron_hit){0.0f, SIZE_MAX};

    int rc = PS_OK;
    size_t pos = 0, window = (size_t)seq * batch;
    while (pos < n) {
        int B, T;
        if (n - pos >= window) {
            B = batch;
            T = seq;
        } else if (n - pos >= (size_t)seq) {
            B = (int)((n - pos) / seq);
            T = seq;
        } else {
            B = 1;
            T = (int)(n - pos);
        }
        if ((rc = ps_model_forward(m, tokens + pos, B, T, err)))
            break;
        collect(s, m, pos, B, T);
        pos += (size_t)B * T;
        if (progress && progress(ctx, pos, n)) {
            rc = ps_error_set(err, PS_ERR_INTERRUPTED, "neuron scan: interrupted after %zu of %zu tokens",
                              pos, n);
            break;
        }
    }
    if (rc) {
        ps_neuron_scan_free(s);
        return rc;
    }
    *out = s;
    return PS_OK;
}

/* ---- activation patching ---- */

#define PATCH_BATCH 8         /* patched sequences per forward */

void ps_patching_clear(ps_patching *p)
{
    if (!p)
        return;
    free(p->resid);
    free(p->head);
    memset(p, 0, sizeof *p);
}

/* Where the residual stream entering block l lives in the activations. */
static float *resid_in(ps_model *m, int l)
{
    size_t sC = (size_t)m->B * m->T * m->cfg.n_embd;
    return l == 0 ? m->acts.encoded : m->acts.resid3 + (size_t)(l - 1) * sC;
}

static double logit_diff(ps_model *m, int b, int answer, int wrong)
{
    const float *z = ps_model_logits(m, b, m->T - 1);
    return (double)z[answer] - z[wrong];
}

/* One sequence's run: its logit difference and, per stage, the residual
 * entering each block [L + 1][T, C] and each block's attention output [L][T, C]. */
static int run_one(ps_model *m, const int *ids, int T, int answer, int wrong, float *resid,
                   float *atty, double *ld, ps_error *err)
{
    int rc = ps_model_forward(m, ids, 1, T, err);
    if (rc)
        return rc;
    size_t tc = (size_t)T * m->cfg.n_embd;
    for (int l = 0; l <= m->cfg.n_layer; l++)
        memcpy(resid + l * tc, resid_in(m, l), tc * sizeof *resid);
    for (int l = 0; l < m->cfg.n_layer; l++)
        memcpy(atty + l * tc, m->acts.atty + l * tc, tc * sizeof *atty);
    *ld = logit_diff(m, 0, answer, wrong);
    return PS_OK;
}

static double restored(double ld, const ps_patching *p)
{
    return (ld - p->ld_corrupt) / (p->ld_clean - p->ld_corrupt);
}

int ps_probe_patch(ps_model *m, const int *clean, const int *corrupt, int T, int answer, int wrong,
                   ps_patching *out, ps_error *err)
{
    memset(out, 0, sizeof *out);
    const ps_config *cf = &m->cfg;
    int L = cf->n_layer, NH = cf->n_head, C = cf->n_embd, hd = C / NH;
    if (T < 1 || T > cf->n_ctx)
        return ps_error_set(err, PS_ERR_RANGE, "patching: %d tokens (1..%d)", T, cf->n_ctx);
    if (answer < 0 || answer >= cf->vocab_size || wrong < 0 || wrong >= cf->vocab_size)
        return ps_error_set(err, PS_ERR_RANGE, "patching: token ids %d and %d (0..%d)", answer, wrong,
                            cf->vocab_size - 1);
    size_t tc = (size_t)T * C, per_run = (size_t)(2 * L + 1) * tc;
    float *saved = malloc(2 * per_run * sizeof *saved);
    int *batch = malloc((size_t)(PATCH_BATCH > NH ? PATCH_BATCH : NH) * T * sizeof *batch);
    out->resid = malloc((size_t)(L + 1) * T * sizeof *out->resid);
    out->head = malloc((size_t)L * NH * sizeof *out->head);
    int rc = PS_OK;
    if (!saved || !batch || !out->resid || !out->head) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "patching: out of memory");
        goto fail;
    }
    out->n_layer = L;
    out->n_head = NH;
    out->T = T;
    out->answer = answer;
    out->wrong = wrong;
    float *c_resid = saved, *c_atty = saved + (size_t)(L + 1) * tc;              /* clean */
    float *x_resid = saved + per_run, *x_atty = x_resid + (size_t)(L + 1) * tc;  /* corrupt */
    if ((rc = run_one(m, clean, T, answer, wrong, c_resid, c_atty, &out->ld_clean, err)) ||
        (rc = run_one(m, corrupt, T, answer, wrong, x_resid, x_atty, &out->ld_corrupt, err)))
        goto fail;

    /* the residual stream: sequence b of a batch has position p0 + b
     * patched; PATCH_BATCH positions at a time keep the activations to a
     * few forwards' worth however long the prompt */
    for (int p0 = 0; p0 < T; p0 += PATCH_BATCH) {
        int nb = T - p0 < PATCH_BATCH ? T - p0 : PATCH_BATCH;
        for (int b = 0; b < nb; b++)
            memcpy(batch + (size_t)b * T, corrupt, (size_t)T * sizeof *batch);
        if ((rc = ps_model_forward(m, batch, nb, T, err)))
            goto fail;
        for (int l = 0; l <= L; l++) {
            float *x = resid_in(m, l);
            for (int b = 0; b < nb; b++) {
                size_t at = (size_t)(p0 + b) * C;
                memcpy(x + b * tc, x_resid + l * tc, tc * sizeof *x);
                memcpy(x + b * tc + at, c_resid + l * tc + at, (size_t)C * sizeof *x);
            }
            if ((rc = ps_model_forward_from(m, l, 0, err)))
                goto fail;
            for (int b = 0; b < nb; b++)
                out->resid[l * T + p0 + b] = restored(logit_diff(m, b, answer, wrong), out);
        }
    }

    /* heads: sequence h of the batch has head h's output patched */
    for (int b = 0; b < NH; b++)
        memcpy(batch + (size_t)b * T, corrupt, (size_t)T * sizeof *batch);
    if ((rc = ps_model_forward(m, batch, NH, T, err)))
        goto fail;
    for (int l = 0; l < L; l++) {
        float *x = resid_in(m, l), *y = m->acts.atty + (size_t)l * NH * tc;
        for (int b = 0; b < NH; b++) {
            memcpy(x + b * tc, x_resid + l * tc, tc * sizeof *x);
            memcpy(y + b * tc, x_atty + l * tc, tc * sizeof *y);
            for (int t = 0; t < T; t++)
                memcpy(y + b * tc + (size_t)t * C + (size_t)b * hd, c_atty + l * tc + (size_t)t * C + (size_t)b * hd,
                       (size_t)hd * sizeof *y);
        }
        if ((rc = ps_model_forward_from(m, l, 1, err)))
            goto fail;
        for (int h = 0; h < NH; h++)
            out->head[l * NH + h] = restored(logit_diff(m, h, answer, wrong), out);
    }
    free(saved);
    free(batch);
    return PS_OK;
fail:
    free(saved);
    free(batch);
    ps_patching_clear(out);
    return rc;
}

/* ---- saliency ---- */

int ps_probe_saliency(ps_model *m, int token, float *grad_norm, float *grad_x_input, ps_error *err)
{
    if (!m->has_forward || m->B != 1)
        return ps_error_set(err, PS_ERR_STATE, "saliency needs a forward pass of one sequence");
    int T = m->T, C = m->cfg.n_embd, V = m->cfg.vocab_size;
    if (token < 0 || token >= V)
        return ps_error_set(err, PS_ERR_RANGE, "token id %d is outside the vocabulary (0..%d)", token, V - 1);
    /* d log p(token) / d logits = onehot(token) - softmax(logits), last position only */
    float *dl = m->acts.dlogits;
    memset(dl, 0, (size_t)T * V * sizeof *dl);
    float *last = dl + (size_t)(T - 1) * V;
    ps_softmax(last, ps_model_logits(m, 0, T - 1), V, 1.0f);
    for (int v = 0; v < V; v++)
        last[v] = -last[v];
    last[token] += 1.0f;
    int rc = ps_model_backward_logits(m, err);
    if (rc)
        return rc;
    const float *g = ps_model_input_grad(m, 0);
    for (int t = 0; t < T; t++) {
        const float *gt = g + (size_t)t * C, *xt = m->acts.encoded + (size_t)t * C;
        double n2 = 0, dot = 0;
        for (int i = 0; i < C; i++) {
            n2 += (double)gt[i] * gt[i];
            dot += (double)gt[i] * xt[i];
        }
        grad_norm[t] = (float)sqrt(n2);
        grad_x_input[t] = (float)dot;
    }
    return PS_OK;
}
