/* Optimizers, gradient clipping and learning-rate schedules.
 *
 * The update of GPT-2 small touches ~124M floats per step and reads and writes
 * several arenas (w, g, m, v, maybe delta: 28-32 bytes per float), so it is
 * bound by memory bandwidth, or close to it on a machine with a lot of it.
 * So each tensor is walked once, in blocks of BLOCK floats, and everything
 * that does not depend on the element (the kind, whether the tensor decays,
 * the bias corrections) is decided before the inner loops, which are plain
 * branch-free loops over contiguous arrays that gcc -O3 vectorises.  The
 * per-tensor sums for the interface are taken block by block while the block
 * is still in L1, so they cost no extra trip to memory. */
#include "paramscope/optim.h"
#include "pool.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Floats per block: small enough to stay in L1 between the weight sum, the
 * update and the update sum; large enough that the per-block overhead (a
 * switch, a float-to-double add) vanishes.  A float partial over 256 squares
 * loses at most ~256 ulp, far below what the figures are used for. */
#define BLOCK 256

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* The build targets baseline x86-64 (SSE2), where the AdamW loop on a fast
 * machine is limited by sqrt and divide throughput rather than by memory.  An
 * AVX2 copy picked at load time by CPUID (gcc's target_clones, an ifunc) does
 * twice the work per instruction: 0.60 -> 0.50 ns per float plain and 0.71 ->
 * 0.53 with stats, on 50M floats on an EPYC.  The copies give the same bits:
 * C11 mode keeps -ffp-contract=off (no fused multiply-adds), IEEE sqrt and
 * divide are exact in both, and the 8 summation lanes are fixed in the code. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    __GNUC__ >= 11 && !defined(PS_NO_CLONES)
#define SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define SIMD_CLONES
#endif

/* ---- names and configuration ---- */

static const char *const optim_names[] = {
    [PS_OPTIM_KIND_SGD] = "sgd",
    [PS_OPTIM_KIND_MOMENTUM] = "momentum",
    [PS_OPTIM_KIND_ADAM] = "adam",
    [PS_OPTIM_KIND_ADAMW] = "adamw",
};

#define N_OPTIM_KINDS ((int)(sizeof optim_names / sizeof optim_names[0]))

const char *ps_optim_kind_name(ps_optim_kind kind)
{
    if ((int)kind < 0 || (int)kind >= N_OPTIM_KINDS)
        return "unknown";
    return optim_names[kind];
}

int ps_optim_kind_parse(const char *name)
{
    if (!name)
        return -1;
    for (int k = 0; k < N_OPTIM_KINDS; k++)
        if (strcmp(name, optim_names[k]) == 0)
            return k;
    return -1;
}

ps_optim_config ps_optim_defaults(ps_optim_kind kind)
{
    ps_optim_config c = {
        .kind = kind,
        .beta1 = 0.9f,
        .beta2 = 0.999f,
        .eps = 1e-8f,
        .weight_decay = 0.0f,
        .decay_all = 0,
        .set = 0,
    };
    if (kind == PS_OPTIM_KIND_ADAMW) {
        c.beta2 = 0.95f;
        c.weight_decay = 0.1f;
    }
    return c;
}

ps_optim_config ps_optim_with_kind(const ps_optim_config *cur, ps_optim_kind kind)
{
    ps_optim_config c = ps_optim_defaults(kind);
    c.decay_all = cur->decay_all;
    c.set = cur->set;
    if (cur->set & PS_OPTIM_SET_BETA1)
        c.beta1 = cur->beta1;
    if (cur->set & PS_OPTIM_SET_BETA2)
        c.beta2 = cur->beta2;
    if (cur->set & PS_OPTIM_SET_EPS)
        c.eps = cur->eps;
    if (cur->set & PS_OPTIM_SET_WEIGHT_DECAY)
        c.weight_decay = cur->weight_decay;
    return c;
}

int ps_optim_decays(const ps_optim_config *cfg, const ps_param *p)
{
    if (cfg->decay_all)
        return 1;
    return !p->is_bias && p->kind != PS_PARAM_KIND_EMBED;
}

static int in_unit_interval(float x)
{
    return x >= 0.0f && x < 1.0f;   /* false for NaN */
}

static int check_config(const ps_optim_config *c, ps_error *err)
{
    const char *name = ps_optim_kind_name(c->kind);
    if (ps_optim_kind_parse(name) < 0)
        return ps_error_set(err, PS_ERR_INVALID, "optimizer: unknown kind %d",
                            (int)c->kind);
    int adam = c->kind == PS_OPTIM_KIND_ADAM || c->kind == PS_OPTIM_KIND_ADAMW;
    if (c->kind != PS_OPTIM_KIND_SGD && !in_unit_interval(c->beta1))
        return ps_error_set(err, PS_ERR_RANGE,
                            "optimizer %s: beta1 %g is outside [0, 1)", name,
                            (double)c->beta1);
    if (adam && !in_unit_interval(c->beta2))
        return ps_error_set(err, PS_ERR_RANGE,
                            "optimizer %s: beta2 %g is outside [0, 1)", name,
                            (double)c->beta2);
    /* eps = 0 would turn a zero gradient on a fresh moment into 0/0. */
    if (adam && !(c->eps > 0.0f && isfinite(c->eps)))
        return ps_error_set(err, PS_ERR_RANGE,
                            "optimizer %s: eps %g must be positive", name,
                            (double)c->eps);
    if (!(c->weight_decay >= 0.0f && isfinite(c->weight_decay)))
        return ps_error_set(err, PS_ERR_RANGE,
                            "optimizer %s: weight decay %g must be >= 0", name,
                            (double)c->weight_decay);
    return 0;
}

int ps_optim_init(ps_optim **out, const ps_optim_config *cfg, size_t n,
                  ps_error *err)
{
    *out = NULL;
    int rc = check_config(cfg, err);
    if (rc)
        return rc;
    ps_optim *o = calloc(1, sizeof *o);
    if (!o)
        goto fail;
    o->cfg = *cfg;
    o->n = n;
    /* calloc: the zero moments an optimizer starts from, and untouched pages
     * of a large arena cost nothing until the first step. */
    size_t alloc = n ? n : 1;
    if (cfg->kind != PS_OPTIM_KIND_SGD) {
        o->m = calloc(alloc, sizeof *o->m);
        if (!o->m)
            goto fail;
    }
    if (cfg->kind == PS_OPTIM_KIND_ADAM || cfg->kind == PS_OPTIM_KIND_ADAMW) {
        o->v = calloc(alloc, sizeof *o->v);
        if (!o->v)
            goto fail;
    }
    *out = o;
    return 0;

fail:
    ps_optim_free(o);
    return ps_error_set(err, PS_ERR_NOMEM,
                        "optimizer %s: cannot allocate moments for %zu floats",
                        ps_optim_kind_name(cfg->kind), n);
}

void ps_optim_free(ps_optim *o)
{
    if (!o)
        return;
    free(o->m);
    free(o->v);
    free(o);
}

/* ---- the update kernels ---- */

/* Everything an inner loop needs, fixed for the whole step. */
typedef struct coeffs {
    float lr;
    float beta1, beta2;
    float one_minus_beta1, one_minus_beta2;
    float step_size;      /* Adam: lr * sqrt(1 - beta2^t) / (1 - beta1^t) */
    float eps_hat;        /* Adam: eps * sqrt(1 - beta2^t) */
    float l2;             /* weight decay added to the gradient */
    float lr_wd;          /* AdamW: lr * weight decay, applied to w directly */
} coeffs;

/* With mhat = m / bc1 and vhat = v / bc2,
 *   lr * mhat / (sqrt(vhat) + eps) = step_size * m / (sqrt(v) + eps_hat),
 * which leaves one multiply, one sqrt and one divide per element.  `decay` is
 * a literal at every call site, so each kernel exists twice and neither copy
 * tests anything per element. */

ALWAYS_INLINE void sgd_block(const coeffs *k, int decay, size_t n,
                             float *restrict w, const float *restrict g,
                             float *restrict d)
{
    const float lr = k->lr, l2 = k->l2;
    for (size_t j = 0; j < n; j++) {
        float wj = w[j];
        float gj = decay ? g[j] + l2 * wj : g[j];
        float wn = wj - lr * gj;
        d[j] = wn - wj;
        w[j] = wn;
    }
}

ALWAYS_INLINE void momentum_block(const coeffs *k, int decay, size_t n,
                                  float *restrict w, const float *restrict g,
                                  float *restrict m, float *restrict d)
{
    const float lr = k->lr, l2 = k->l2, b1 = k->beta1;
    for (size_t j = 0; j < n; j++) {
        float wj = w[j];
        float gj = decay ? g[j] + l2 * wj : g[j];
        float mj = b1 * m[j] + gj;
        float wn = wj - lr * mj;
        m[j] = mj;
        d[j] = wn - wj;
        w[j] = wn;
    }
}

ALWAYS_INLINE void adam_block(const coeffs *k, int decay, size_t n,
                              float *restrict w, const float *restrict g,
                              float *restrict m, float *restrict v,
                              float *restrict d)
{
    const float b1 = k->beta1, b2 = k->beta2;
    const float c1 = k->one_minus_beta1, c2 = k->one_minus_beta2;
    const float step = k->step_size, eps = k->eps_hat, l2 = k->l2;
    for (size_t j = 0; j < n; j++) {
        float wj = w[j];
        float gj = decay ? g[j] + l2 * wj : g[j];
        float mj = b1 * m[j] + c1 * gj;
        float vj = b2 * v[j] + c2 * gj * gj;
        float wn = wj - step * mj / (sqrtf(vj) + eps);
        m[j] = mj;
        v[j] = vj;
        d[j] = wn - wj;
        w[j] = wn;
    }
}

ALWAYS_INLINE void adamw_block(const coeffs *k, int decay, size_t n,
                               float *restrict w, const float *restrict g,
                               float *restrict m, float *restrict v,
                               float *restrict d)
{
    const float b1 = k->beta1, b2 = k->beta2;
    const float c1 = k->one_minus_beta1, c2 = k->one_minus_beta2;
    const float step = k->step_size, eps = k->eps_hat, lr_wd = k->lr_wd;
    for (size_t j = 0; j < n; j++) {
        float wj = w[j];
        float gj = g[j];
        float mj = b1 * m[j] + c1 * gj;
        float vj = b2 * v[j] + c2 * gj * gj;
        float u = step * mj / (sqrtf(vj) + eps);
        float wn = decay ? wj - (u + lr_wd * wj) : wj - u;
        m[j] = mj;
        v[j] = vj;
        d[j] = wn - wj;
        w[j] = wn;
    }
}

/* Sum of squares of a block in eight independent float lanes, a shape gcc
 * vectorises without -ffast-math (a single running sum would be a serial
 * dependency it must not reorder). */
ALWAYS_INLINE float block_sumsq(const float *restrict x, size_t n)
{
    float lane[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            lane[l] += x[i + l] * x[i + l];
    float s = 0.0f;
    for (; i < n; i++)
        s += x[i] * x[i];
    for (int l = 0; l < 8; l++)
        s += lane[l];
    return s;
}

enum {
    KERNEL_SGD, KERNEL_SGD_DECAY,
    KERNEL_MOMENTUM, KERNEL_MOMENTUM_DECAY,
    KERNEL_ADAM, KERNEL_ADAM_DECAY,
    KERNEL_ADAMW, KERNEL_ADAMW_DECAY,
};

SIMD_CLONES
static void update_tensor(const coeffs *k, int kernel, size_t n,
                          float *restrict w, const float *restrict g,
                          float *restrict m, float *restrict v,
                          float *restrict delta, ps_update_stats *st)
{
    float scratch[BLOCK];
    double update_sq = 0.0, weight_sq = 0.0;
    for (size_t i = 0; i < n; i += BLOCK) {
        size_t len = n - i < BLOCK ? n - i : BLOCK;
        float *d = delta ? delta + i : scratch;
        if (st)
            weight_sq += block_sumsq(w + i, len);
        switch (kernel) {
        case KERNEL_SGD:
            sgd_block(k, 0, len, w + i, g + i, d);
            break;
        case KERNEL_SGD_DECAY:
            sgd_block(k, 1, len, w + i, g + i, d);
            break;
        case KERNEL_MOMENTUM:
            momentum_block(k, 0, len, w + i, g + i, m + i, d);
            break;
        case KERNEL_MOMENTUM_DECAY:
            momentum_block(k, 1, len, w + i, g + i, m + i, d);
            break;
        case KERNEL_ADAM:
            adam_block(k, 0, len, w + i, g + i, m + i, v + i, d);
            break;
        case KERNEL_ADAM_DECAY:
            adam_block(k, 1, len, w + i, g + i, m + i, v + i, d);
            break;
        case KERNEL_ADAMW:
            adamw_block(k, 0, len, w + i, g + i, m + i, v + i, d);
            break;
        case KERNEL_ADAMW_DECAY:
            adamw_block(k, 1, len, w + i, g + i, m + i, v + i, d);
            break;
        }
        if (st)
            update_sq += block_sumsq(d, len);
    }
    if (st) {
        st->update_sq = update_sq;
        st->weight_sq = weight_sq;
    }
}

/* ---- one step, split over the thread pool ---- */

#define PAR_CHUNK ((size_t)1 << 18)

typedef struct step_item {
    int param;
    size_t start, len;
    ps_update_stats st;
} step_item;

typedef struct step_job {
    const coeffs *k;
    int base;
    const ps_optim_config *c;
    ps_optim *o;
    const ps_param *params;
    const float *grad;
    float *delta;
    step_item *items;
    int want_stats;
} step_job;

static void step_items(void *p, int j0, int j1)
{
    step_job *j = p;
    for (int it = j0; it < j1; it++) {
        step_item *item = &j->items[it];
        const ps_param *prm = &j->params[item->param];
        int decay = j->c->weight_decay != 0.0f && ps_optim_decays(j->c, prm);
        size_t off = prm->offset + item->start;
        update_tensor(j->k, j->base + decay, item->len, prm->data + item->start, j->grad + off,
                      j->o->m ? j->o->m + off : NULL, j->o->v ? j->o->v + off : NULL,
                      j->delta ? j->delta + off : NULL, j->want_stats ? &item->st : NULL);
    }
}

void ps_optim_step(ps_optim *o, const ps_param *params, int n_params,
                   const float *grad, float lr, float *delta,
                   ps_update_stats *stats)
{
    const ps_optim_config *c = &o->cfg;
    /* Bias corrections once per step, in double: beta2^t for beta2 = 0.999
     * stays meaningful long after float would have rounded it. */
    double t = (double)(o->step + 1);
    double bc1 = 1.0 - pow((double)c->beta1, t);
    double sqrt_bc2 = sqrt(1.0 - pow((double)c->beta2, t));
    coeffs k = {
        .lr = lr,
        .beta1 = c->beta1,
        .beta2 = c->beta2,
        .one_minus_beta1 = (float)(1.0 - (double)c->beta1),
        .one_minus_beta2 = (float)(1.0 - (double)c->beta2),
        .step_size = (float)((double)lr * sqrt_bc2 / bc1),
        .eps_hat = (float)((double)c->eps * sqrt_bc2),
        .l2 = c->weight_decay,
        .lr_wd = (float)((double)lr * (double)c->weight_decay),
    };
    int base = 2 * (int)c->kind;   /* KERNEL_<KIND>, +1 for the decayed copy */

    /* Work items of at most PAR_CHUNK values, the same for any thread count,
     * so that results do not depend on how many cores run them. */
    size_t n_items = 0;
    for (int i = 0; i < n_params; i++)
        n_items += (params[i].numel + PAR_CHUNK - 1) / PAR_CHUNK;
    step_item *items = malloc(sizeof *items * (n_items ? n_items : 1));
    step_job job = {&k, base, c, o, params, grad, delta, items, stats != NULL};
    if (!items) {
        /* no memory for the split: do it in one thread, tensor by tensor */
        for (int i = 0; i < n_params; i++) {
            const ps_param *p = &params[i];
            int decay = c->weight_decay != 0.0f && ps_optim_decays(c, p);
            size_t off = p->offset;
            update_tensor(&k, base + decay, p->numel, p->data, grad + off,
                          o->m ? o->m + off : NULL, o->v ? o->v + off : NULL,
                          delta ? delta + off : NULL, stats ? &stats[i] : NULL);
        }
        o->step++;
        return;
    }
    size_t at = 0;
    for (int i = 0; i < n_params; i++) {
        assert(params[i].offset <= o->n && params[i].numel <= o->n - params[i].offset);
        for (size_t s0 = 0; s0 < params[i].numel; s0 += PAR_CHUNK) {
            items[at].param = i;
            items[at].start = s0;
            items[at].len = params[i].numel - s0 < PAR_CHUNK ? params[i].numel - s0 : PAR_CHUNK;
            at++;
        }
    }
    ps_parallel_for((int)n_items, step_items, &job);
    if (stats) {
        for (int i = 0; i < n_params; i++)
            stats[i] = (ps_update_stats){0, 0};
        for (size_t j = 0; j < n_items; j++) {
            stats[items[j].param].update_sq += items[j].st.update_sq;
            stats[items[j].param].weight_sq += items[j].st.weight_sq;
        }
    }
    free(items);
    o->step++;
}

/* ---- gradient norm and clipping ---- */

SIMD_CLONES
static double sum_sq_double(const float *g, size_t n)
{
    /* Sixteen double lanes: exact enough for 124M terms, and enough
     * independent adds (four 4-wide chains with AVX2) to hide the latency of
     * each, so the loop runs at memory speed. */
    double lane[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++)
            lane[l] += (double)g[i + l] * (double)g[i + l];
    double s = 0.0;
    for (; i < n; i++)
        s += (double)g[i] * (double)g[i];
    for (int l = 0; l < 16; l++)
        s += lane[l];
    return s;
}

typedef struct norm_job { float *g; size_t n; double *part; float scale; } norm_job;

static void norm_chunks(void *p, int c0, int c1)
{
    norm_job *j = p;
    for (int c = c0; c < c1; c++) {
        size_t a = (size_t)c * PAR_CHUNK, len = j->n - a < PAR_CHUNK ? j->n - a : PAR_CHUNK;
        j->part[c] = sum_sq_double(j->g + a, len);
    }
}

double ps_grad_norm(const float *g, size_t n)
{
    size_t chunks = (n + PAR_CHUNK - 1) / PAR_CHUNK;
    if (chunks <= 1)
        return sqrt(sum_sq_double(g, n));
    double *part = malloc(sizeof *part * chunks);
    if (!part)
        return sqrt(sum_sq_double(g, n));
    norm_job j = {(float *)g, n, part, 0.0f};
    ps_parallel_for((int)chunks, norm_chunks, &j);
    double s = 0.0;
    for (size_t c = 0; c < chunks; c++)   /* in order: the same sum for any thread count */
        s += part[c];
    free(part);
    return sqrt(s);
}

static void scale_chunks(void *p, int c0, int c1)
{
    norm_job *j = p;
    size_t a = (size_t)c0 * PAR_CHUNK, b = (size_t)c1 * PAR_CHUNK < j->n ? (size_t)c1 * PAR_CHUNK : j->n;
    for (size_t i = a; i < b; i++)
        j->g[i] *= j->scale;
}

double ps_grad_clip(float *g, size_t n, double max_norm)
{
    double norm = ps_grad_norm(g, n);
    /* A non-finite norm is reported, not "clipped": scaling by max/Inf would
     * turn every finite entry into 0 and the Inf into NaN. */
    if (max_norm > 0.0 && isfinite(norm) && norm > max_norm) {
        norm_job j = {g, n, NULL, (float)(max_norm / norm)};
        ps_parallel_for((int)((n + PAR_CHUNK - 1) / PAR_CHUNK), scale_chunks, &j);
    }
    return norm;
}

/* ---- schedules ---- */

static const char *const sched_names[] = {
    [PS_SCHED_KIND_CONSTANT] = "constant",
    [PS_SCHED_KIND_COSINE] = "cosine",
    [PS_SCHED_KIND_STEP] = "step",
};

#define N_SCHED_KINDS ((int)(sizeof sched_names / sizeof sched_names[0]))

const char *ps_sched_kind_name(ps_sched_kind kind)
{
    if ((int)kind < 0 || (int)kind >= N_SCHED_KINDS)
        return "unknown";
    return sched_names[kind];
}

int ps_sched_kind_parse(const char *name)
{
    if (!name)
        return -1;
    for (int k = 0; k < N_SCHED_KINDS; k++)
        if (strcmp(name, sched_names[k]) == 0)
            return k;
    return -1;
}

float ps_schedule_lr(const ps_schedule *s, long step)
{
    const double pi = 3.14159265358979323846;
    double lr = s->lr;
    if (step < 0)
        step = 0;
    if (s->warmup > 0 && step < s->warmup)
        return (float)(lr * (double)(step + 1) / (double)s->warmup);

    long after = step - (s->warmup > 0 ? s->warmup : 0);
    switch (s->kind) {
    case PS_SCHED_KIND_CONSTANT:
        return s->lr;
    case PS_SCHED_KIND_COSINE: {
        long span = s->total - (s->warmup > 0 ? s->warmup : 0);
        /* total at or before the end of warmup: the decay is already over. */
        double progress = span > 0 ? (double)after / (double)span : 1.0;
        if (progress > 1.0)
            progress = 1.0;
        double min_lr = s->min_lr;
        return (float)(min_lr + (lr - min_lr) * 0.5 * (1.0 + cos(pi * progress)));
    }
    case PS_SCHED_KIND_STEP:
        if (s->step_size <= 0)
            return s->lr;
        return (float)(lr * pow((double)s->gamma, (double)(after / s->step_size)));
    }
    return s->lr;
}
