/* Inference with a key/value cache.
 *
 * Why a separate path: the training forward keeps B x T activations of every
 * layer for backward and recomputes the whole sequence each call; generating
 * or predicting on every keystroke only ever needs the newest token's logits.
 * Each block's output at a position depends on earlier positions only through
 * their keys and values, so those are what we keep.
 *
 * The maths is the training forward's, kernel for kernel and in the same
 * order (model.c), over the new rows only; only the shapes of the products
 * differ, so results agree to float rounding.  The LM head, the largest
 * product per token for GPT-2 (n_embd x vocab), runs on the last row alone.
 *
 * Why matrix-vector products for a few rows: one new token multiplies a
 * single row by every weight matrix, which is bound by memory (GPT-2 124M
 * reads 500 MB of weights per token).  BLIS's sgemm packs the weight matrix
 * into micro-panels even for one row, and the 'skx' family that Debian's
 * BLIS 0.9 runs on AVX-512 CPUs has no unpacked path for skinny products.
 * Measured on a 2-core EPYC (load average 2-3, weights out of cache), the 48
 * products of one GPT-2 token took 45 ms with sgemm on 2 threads and 14.5 ms
 * with sgemv (BLIS runs level 2 on one thread, near one core's bandwidth);
 * the LM head 17.6 against 6.4 ms.  For r rows, r sgemv calls over the same
 * matrix find it in cache after the first: 23, 29 and 35 ms for 2, 3 and 4
 * rows against sgemm's 45; at 8 rows sgemm wins (46 against 56 ms).  So up
 * to GEMV_ROWS rows go row by row through sgemv, more through ps_sgemm.
 * blas.h has no matrix-vector product yet, so BLIS is called here directly
 * (after ps_blas has chosen its family); matvec() belongs in blas.c as
 * ps_sgemv. */
#include "paramscope/infer.h"

#include <blis.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "paramscope/blas.h"
#include "paramscope/kernels.h"
#include "vecmath.h"

#define MIN_CAP 64
#define GEMV_ROWS 4
#define GEMV_KB 256
#define TRANS_ROWS 32

struct ps_infer {
    ps_model *m;
    ps_config cfg;            /* of m when made: ps_infer_attach compares */
    uint64_t version;         /* m->version the cached values were computed with */
    int len;                  /* cached positions */
    int cap;                  /* positions k and v hold */
    int rows;                 /* rows the scratch holds: min(PS_INFER_CHUNK, n_ctx) */
    int last_computed;
    size_t bytes;
    int *ids;                 /* [n_ctx] the cached tokens */
    float **k, **v;           /* [L] each [cap, C]: keys and values of every head
                                 side by side, head h in columns h*hd .. */
    float *x;                 /* [rows, C] the residual stream of the new rows */
    float *ln;                /* [rows, C] LayerNorm output, then projections */
    float *qkv;               /* [rows, 3C] */
    float *atty;              /* [rows, C] attention output before c_proj */
    float *fch;               /* [rows, 4C] MLP hidden, GELU in place */
    float *mean, *rstd;       /* [rows] LayerNorm statistics (unused) */
    float *att;               /* [rows, cap] one head's scores, then probabilities */
    float *logits;            /* [V] of the last cached position */
    float *part;              /* [rows, 4C] partial products (linear) */
    int diagnose;             /* ps_infer_find_nonfinite's rerun: check each stage */
    int bad_stage;            /* the first stage with a non-finite value, or -1 */
};

/* ---- versions ---- */

/* The upper 32 bits of m->version: an epoch unique in the process, given the
 * first time we see the model.  A model freed and another allocated at the
 * same address starts at version 0 again; without the epoch a state attached
 * to the old one (ps_infer_attach compares pointers) could take the new
 * model's values for the old ones. */
static atomic_uint_fast64_t epochs;

static uint64_t model_version(ps_model *m)
{
    if ((m->version >> 32) == 0)
        m->version += (uint64_t)(atomic_fetch_add(&epochs, 1) + 1) << 32;
    return m->version;
}

/* ---- products ---- */

/* y[n] = alpha op(A) x: A [rows, cols] with rows lda floats apart; op(A) is
 * A^T when trans (x has rows entries, y cols) and A otherwise (x has cols, y
 * rows). */
static void matvec(int trans, int rows, int cols, float alpha, const float *A, int lda,
                   const float *x, float *y)
{
    float zero = 0.0f;
    bli_sgemv(trans ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, BLIS_NO_CONJUGATE, rows, cols,
              &alpha, (float *)A, lda, 1, (float *)x, 1, &zero, y, 1);
}

/* out[n, OC] = inp[n, C] W[C, OC] + bias, as ps_matmul_forward (bias added
 * after the product, as there).  Row by row, the sum over C is taken in
 * blocks of GEMV_KB terms, each summed apart into part[OC] and then added,
 * as sgemm sums over k in blocks: sgemv alone adds all C terms into y one
 * after the other, and on GPT-2's shapes its logits were 1.5 times as far
 * from a double-precision forward as the training forward's. */
static void linear(float *out, const float *inp, const float *w, const float *bias,
                   int n, int C, int OC, float *part)
{
    if (n > TRANS_ROWS) {
        ps_matmul_forward(out, inp, w, bias, n, C, OC);
        return;
    }
    if (n > GEMV_ROWS) {
        /* part[OC, n] = W^T inp^T, then transposed back */
        ps_sgemm(1, 1, OC, n, C, 1.0f, w, OC, inp, C, 0.0f, part, n);
        for (int i = 0; i < n; i++) {
            float *y = out + (size_t)i * OC;
            for (int o = 0; o < OC; o++)
                y[o] = part[(size_t)o * n + i] + (bias ? bias[o] : 0.0f);
        }
        return;
    }
    for (int i = 0; i < n; i++) {
        float *y = out + (size_t)i * OC;
        const float *x = inp + (size_t)i * C;
        for (int k0 = 0; k0 < C; k0 += GEMV_KB) {
            int kb = C - k0 < GEMV_KB ? C - k0 : GEMV_KB;
            matvec(1, kb, OC, 1.0f, w + (size_t)k0 * OC, OC, x + k0, k0 ? part : y);
            for (int o = 0; k0 && o < OC; o++)
                y[o] += part[o];
        }
        for (int o = 0; bias && o < OC; o++)
            y[o] += bias[o];
    }
}

/* ---- memory ---- */

static float *alloc_floats(size_t n)
{
    return malloc((n ? n : 1) * sizeof(float));
}

int ps_infer_init(ps_infer **out, ps_model *m, ps_error *err)
{
    *out = NULL;
    const ps_config *c = &m->cfg;
    size_t C = (size_t)c->n_embd;
    ps_infer *inf = calloc(1, sizeof *inf);
    if (!inf)
        goto nomem;
    ps_blas_arch();           /* BLIS initialised by ps_blas: its kernel family */
    inf->m = m;
    inf->cfg = *c;
    inf->rows = c->n_ctx < PS_INFER_CHUNK ? c->n_ctx : PS_INFER_CHUNK;
    size_t R = (size_t)inf->rows;
    inf->ids = malloc(sizeof(int) * (size_t)c->n_ctx);
    inf->k = calloc((size_t)c->n_layer, sizeof *inf->k);
    inf->v = calloc((size_t)c->n_layer, sizeof *inf->v);
    inf->x = alloc_floats(R * C);
    inf->ln = alloc_floats(R * C);
    inf->qkv = alloc_floats(R * 3 * C);
    inf->atty = alloc_floats(R * C);
    inf->fch = alloc_floats(R * 4 * C);
    inf->mean = alloc_floats(R);
    inf->rstd = alloc_floats(R);
    inf->logits = alloc_floats((size_t)c->vocab_size);
    inf->part = alloc_floats(R * 4 * C);
    if (!inf->ids || !inf->k || !inf->v || !inf->x || !inf->ln || !inf->qkv ||
        !inf->atty || !inf->fch || !inf->mean || !inf->rstd || !inf->logits || !inf->part)
        goto nomem;
    inf->bytes = sizeof(int) * (size_t)c->n_ctx +
                 sizeof(float) * (R * 10 * C + 2 * R + (size_t)c->vocab_size + R * 4 * C);
    inf->version = model_version(m);
    *out = inf;
    return PS_OK;
nomem:
    ps_infer_free(inf);
    return ps_error_set(err, PS_ERR_NOMEM, "inference state: out of memory");
}

void ps_infer_free(ps_infer *inf)
{
    if (!inf)
        return;
    for (int l = 0; inf->k && l < inf->cfg.n_layer; l++)
        free(inf->k[l]);
    for (int l = 0; inf->v && l < inf->cfg.n_layer; l++)
        free(inf->v[l]);
    free(inf->k);
    free(inf->v);
    free(inf->ids);
    free(inf->x);
    free(inf->ln);
    free(inf->qkv);
    free(inf->atty);
    free(inf->fch);
    free(inf->mean);
    free(inf->rstd);
    free(inf->att);
    free(inf->logits);
    free(inf->part);
    free(inf);
}

int ps_infer_attach(ps_infer **inf, ps_model *m, ps_error *err)
{
    /* Compares the pointer only: the old model may be gone.  A new model at
     * the same address is caught by its version (see model_version). */
    if (*inf && (*inf)->m == m && !memcmp(&(*inf)->cfg, &m->cfg, sizeof m->cfg))
        return PS_OK;
    ps_infer_free(*inf);
    return ps_infer_init(inf, m, err);
}

/* Room for `need` positions.  Grows by doubling so that generation reallocates
 * a few times at most; on failure the cache keeps its old size and contents
 * (realloc keeps what it moves, and cap changes only at the end). */
static int reserve(ps_infer *inf, int need, ps_error *err)
{
    if (need <= inf->cap)
        return PS_OK;
    int n_ctx = inf->cfg.n_ctx;
    int cap = inf->cap * 2 > need ? inf->cap * 2 : need;
    cap = cap < MIN_CAP ? MIN_CAP : cap;
    cap = cap > n_ctx ? n_ctx : cap;
    size_t C = (size_t)inf->cfg.n_embd;
    for (int l = 0; l < inf->cfg.n_layer; l++) {
        float *k = realloc(inf->k[l], sizeof(float) * (size_t)cap * C);
        if (k)
            inf->k[l] = k;
        float *v = k ? realloc(inf->v[l], sizeof(float) * (size_t)cap * C) : NULL;
        if (v)
            inf->v[l] = v;
        if (!k || !v)
            goto nomem;
    }
    float *att = realloc(inf->att, sizeof(float) * (size_t)inf->rows * cap);
    if (!att)
        goto nomem;
    inf->att = att;
    inf->bytes += sizeof(float) * (size_t)(cap - inf->cap) *
                  (2 * C * (size_t)inf->cfg.n_layer + (size_t)inf->rows);
    inf->cap = cap;
    return PS_OK;
nomem:
    return ps_error_set(err, PS_ERR_NOMEM, "key/value cache for %d positions (%zu MB): out of memory",
                        cap, sizeof(float) * (size_t)cap * C * 2 * (size_t)inf->cfg.n_layer >> 20);
}

/* ---- the forward over new rows ---- */

/* Row i of a [n, T] score matrix belongs to position p0 + i and sees keys
 * 0 .. p0 + i.  The same loop as ps_attention_forward's, so that the
 * probabilities agree with the training forward's bit for bit where the
 * scores do. */
PS_VECTOR_CLONES
static void masked_softmax(float *a, int n, int T, int p0)
{
    for (int i = 0; i < n; i++) {
        float *row = a + (size_t)i * T;
        int t = p0 + i;
        float mx = row[0];
        for (int u = 1; u <= t; u++)
            mx = row[u] > mx ? row[u] : mx;
        float sum = 0.0f;
        for (int u = 0; u <= t; u++) {
            row[u] = ps_expf(row[u] - mx);
            sum += row[u];
        }
        float inv = 1.0f / sum;
        for (int u = 0; u <= t; u++)
            row[u] *= inv;
        for (int u = t + 1; u < T; u++)
            row[u] = 0.0f;
    }
}

/* atty [n, C] for the n new rows of layer l (their keys and values already
 * in the cache at p0 ..): per head, scores = scale Q K^T against every cached
 * key, masked softmax, then times V. */
static void attend(ps_infer *inf, int l, int p0, int n)
{
    int C = inf->cfg.n_embd, NH = inf->cfg.n_head, hd = C / NH, T = p0 + n;
    float scale = 1.0f / sqrtf((float)hd);
    if (n <= GEMV_ROWS) {
        /* row by row: position t sees keys 0 .. t, no mask needed */
        for (int i = 0; i < n; i++) {
            int t = p0 + i;
            for (int h = 0; h < NH; h++) {
                const float *q = inf->qkv + (size_t)i * 3 * C + h * hd;
                matvec(0, t + 1, hd, scale, inf->k[l] + h * hd, C, q, inf->att);
                masked_softmax(inf->att, 1, t + 1, t);
                matvec(1, t + 1, hd, 1.0f, inf->v[l] + h * hd, C, inf->att,
                       inf->atty + (size_t)i * C + h * hd);
            }
        }
        return;
    }
    for (int h = 0; h < NH; h++) {
        const float *q = inf->qkv + h * hd;           /* rows 3C apart */
        const float *k = inf->k[l] + h * hd;          /* rows C apart */
        const float *v = inf->v[l] + h * hd;
        ps_sgemm(0, 1, n, T, hd, scale, q, 3 * C, k, C, 0.0f, inf->att, T);
        masked_softmax(inf->att, n, T, p0);
        ps_sgemm(0, 0, n, hd, T, 1.0f, inf->att, T, v, C, 0.0f, inf->atty + h * hd, C);
    }
}

/* Only during ps_infer_find_nonfinite's rerun: notes stage (ps_forward_stage
 * numbering) if it is the first whose output x [n] holds a NaN or infinity. */
static void note_stage(ps_infer *inf, int stage, const float *x, size_t n)
{
    if (!inf->diagnose || inf->bad_stage >= 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) {
            inf->bad_stage = stage;
            return;
        }
}

/* Runs ids [n <= rows] at positions len .. len + n - 1 (room reserved, ids
 * checked), appends their keys and values, and if want_logits computes the
 * logits of the last one. */
static void forward_rows(ps_infer *inf, const int *ids, int n, int want_logits)
{
    const ps_model *m = inf->m;
    int C = inf->cfg.n_embd, V = inf->cfg.vocab_size, p0 = inf->len;
    size_t sC = (size_t)n * C;
    for (int i = 0; i < n; i++) {
        float *x = inf->x + (size_t)i * C;
        const float *te = m->wte + (size_t)ids[i] * C, *pe = m->wpe + (size_t)(p0 + i) * C;
        for (int c = 0; c < C; c++)
            x[c] = te[c] + pe[c];
        inf->ids[p0 + i] = ids[i];
    }
    note_stage(inf, 0, inf->x, sC);
    for (int l = 0; l < inf->cfg.n_layer; l++) {
        const ps_block *w = &m->blocks[l];
        ps_layernorm_forward(inf->ln, inf->mean, inf->rstd, inf->x, w->ln1_w, w->ln1_b, n, C);
        linear(inf->qkv, inf->ln, w->qkv_w, w->qkv_b, n, C, 3 * C, inf->part);
        for (int i = 0; i < n; i++) {
            const float *row = inf->qkv + (size_t)i * 3 * C;
            memcpy(inf->k[l] + (size_t)(p0 + i) * C, row + C, sizeof(float) * (size_t)C);
            memcpy(inf->v[l] + (size_t)(p0 + i) * C, row + 2 * C, sizeof(float) * (size_t)C);
        }
        attend(inf, l, p0, n);
        linear(inf->ln, inf->atty, w->proj_w, w->proj_b, n, C, C, inf->part);
        ps_residual_forward(inf->x, inf->ln, inf->x, (int)sC);
        note_stage(inf, 1 + 2 * l, inf->x, sC);
        ps_layernorm_forward(inf->ln, inf->mean, inf->rstd, inf->x, w->ln2_w, w->ln2_b, n, C);
        linear(inf->fch, inf->ln, w->fc_w, w->fc_b, n, C, 4 * C, inf->part);
        ps_gelu_forward(inf->fch, inf->fch, (int)(4 * sC));
        linear(inf->ln, inf->fch, w->fcproj_w, w->fcproj_b, n, 4 * C, C, inf->part);
        ps_residual_forward(inf->x, inf->ln, inf->x, (int)sC);
        note_stage(inf, 2 + 2 * l, inf->x, sC);
    }
    inf->len = p0 + n;
    if (!want_logits)
        return;
    /* Only the last row's logits are wanted: logits = wte [V, C] times that
     * row, one matrix-vector product. */
    ps_layernorm_forward(inf->ln, inf->mean, inf->rstd, inf->x + (size_t)(n - 1) * C,
                         m->lnf_w, m->lnf_b, 1, C);
    note_stage(inf, 1 + 2 * inf->cfg.n_layer, inf->ln, (size_t)C);
    matvec(0, V, C, 1.0f, m->wte, C, inf->ln, inf->logits);
    note_stage(inf, 2 + 2 * inf->cfg.n_layer, inf->logits, (size_t)V);
}

/* Runs ids [n] after the cache in chunks of at most `rows`; logits of the
 * last one if want_logits. */
static void run(ps_infer *inf, const int *ids, int n, int want_logits)
{
    for (int done = 0; done < n;) {
        int r = n - done < inf->rows ? n - done : inf->rows;
        forward_rows(inf, ids + done, r, want_logits && done + r == n);
        done += r;
    }
}

static int check_ids(const ps_infer *inf, const int *ids, int n, ps_error *err)
{
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= inf->cfg.vocab_size)
            return ps_error_set(err, PS_ERR_RANGE, "token id %d at position %d is not in [0, %d)",
                                ids[i], i, inf->cfg.vocab_size);
    return PS_OK;
}

/* ---- the API ---- */

void ps_infer_reset(ps_infer *inf)
{
    inf->len = 0;
    inf->last_computed = 0;
}

void ps_infer_invalidate(ps_infer *inf)
{
    ps_infer_reset(inf);
}

int ps_infer_append(ps_infer *inf, const int *ids, int n, ps_error *err)
{
    if (n < 1)
        return ps_error_set(err, PS_ERR_INVALID, "append: %d tokens; need at least one", n);
    int old = inf->len;
    if (n > inf->cfg.n_ctx - old)
        return ps_error_set(err, PS_ERR_RANGE, "%d cached tokens and %d new ones are more than n_ctx %d",
                            old, n, inf->cfg.n_ctx);
    int rc = check_ids(inf, ids, n, err);
    if (!rc)
        rc = reserve(inf, old + n, err);
    if (rc)
        return rc;
    inf->last_computed = n;
    uint64_t version = model_version(inf->m);
    if (version != inf->version) {
        /* The parameters changed since the cache was filled: recompute the
         * cached tokens (their ids are kept) before the new ones. */
        inf->version = version;
        inf->len = 0;
        run(inf, inf->ids, old, 0);
        inf->last_computed += old;
    }
    run(inf, ids, n, 1);
    return PS_OK;
}

int ps_infer_prompt(ps_infer *inf, const int *ids, int n, ps_error *err)
{
    if (n < 1)
        return ps_error_set(err, PS_ERR_INVALID, "prompt: no tokens");
    if (n > inf->cfg.n_ctx)
        return ps_error_set(err, PS_ERR_RANGE, "prompt of %d tokens is longer than n_ctx %d",
                            n, inf->cfg.n_ctx);
    int rc = check_ids(inf, ids, n, err);
    if (!rc)
        rc = reserve(inf, n, err);
    if (rc)
        return rc;
    uint64_t version = model_version(inf->m);
    if (version != inf->version) {
        inf->version = version;
        inf->len = 0;
    }
    int same = 0;
    while (same < inf->len && same < n && inf->ids[same] == ids[same])
        same++;
    if (same == n && inf->len == n) {
        inf->last_computed = 0;       /* the logits of position n - 1 are at hand */
        return PS_OK;
    }
    /* Keep the common prefix, but recompute at least the last token: only the
     * last cached position's logits are kept. */
    int keep = same < n ? same : n - 1;
    inf->len = keep;
    inf->last_computed = n - keep;
    run(inf, ids + keep, n - keep, 1);
    return PS_OK;
}

int ps_infer_find_nonfinite(ps_infer *inf, char *where, size_t size)
{
    if (size)
        where[0] = '\0';
    if (inf->len < 1)
        return 0;
    /* The same parameters give the same values, so the rerun leaves the
     * cache as it was; only the checks are new. */
    int len = inf->len;
    inf->diagnose = 1;
    inf->bad_stage = -1;
    inf->len = 0;
    run(inf, inf->ids, len, 1);
    inf->diagnose = 0;
    if (inf->bad_stage < 0)
        return 0;
    ps_forward_stage_name(inf->cfg.n_layer, inf->bad_stage, where, size);
    return 1;
}

const float *ps_infer_logits(const ps_infer *inf)
{
    return inf->len > 0 ? inf->logits : NULL;
}

int ps_infer_len(const ps_infer *inf)
{
    return inf->len;
}

const int *ps_infer_ids(const ps_infer *inf)
{
    return inf->ids;
}

int ps_infer_last_computed(const ps_infer *inf)
{
    return inf->last_computed;
}

size_t ps_infer_bytes(const ps_infer *inf)
{
    return inf->bytes;
}
