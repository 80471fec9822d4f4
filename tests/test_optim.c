/* Tests of engine/optim: each optimizer's first steps against numbers worked
 * out by hand and against a double-precision transcription of the formulas,
 * the decay mask, clipping, schedules, update statistics and deltas. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "paramscope/blas.h"
#include "paramscope/optim.h"
#include "paramscope/rng.h"

#define assert_near(a, b, tol)                                               \
    do {                                                                     \
        double a_ = (a), b_ = (b), t_ = (tol);                               \
        if (!(fabs(a_ - b_) <= t_))                                          \
            fail_msg("%s = %.12g, expected %.12g (tolerance %g)", #a, a_,    \
                     b_, t_);                                                \
    } while (0)

/* ---- a hand-made parameter table ---- */

/* Four tensors in an arena of 16 floats with a gap at [12, 14):
 *   0  h.0.mlp.c_fc.weight  [5]   decayed
 *   1  h.0.mlp.c_fc.bias    [3]   bias: not decayed
 *   2  wte.weight           [4]   embedding: not decayed
 *   3  ln_f.weight          [2]   LayerNorm: not decayed */
enum { N_PARAMS = 4, N_FLOATS = 16 };

typedef struct table {
    ps_param p[N_PARAMS];
    float w[N_FLOATS];
    float g[N_FLOATS];
} table;

static void set_param(ps_param *p, const char *name, size_t offset,
                      size_t numel, ps_param_kind kind, int is_bias, float *w)
{
    memset(p, 0, sizeof *p);
    strncpy(p->name, name, PS_NAME_MAX - 1);
    p->ndim = 1;
    p->shape[0] = (int)numel;
    p->shape[1] = 1;
    p->numel = numel;
    p->offset = offset;
    p->data = w + offset;
    p->layer = -1;
    p->kind = kind;
    p->is_bias = is_bias;
}

static void table_init(table *t)
{
    memset(t, 0, sizeof *t);
    set_param(&t->p[0], "h.0.mlp.c_fc.weight", 0, 5, PS_PARAM_KIND_MLP, 0, t->w);
    set_param(&t->p[1], "h.0.mlp.c_fc.bias", 5, 3, PS_PARAM_KIND_MLP, 1, t->w);
    set_param(&t->p[2], "wte.weight", 8, 4, PS_PARAM_KIND_EMBED, 0, t->w);
    set_param(&t->p[3], "ln_f.weight", 14, 2, PS_PARAM_KIND_NORM, 1, t->w);
    t->p[0].layer = t->p[1].layer = 0;
}

/* Whether arena index i belongs to the decayed weight (the test's own mask). */
static int in_weight(size_t i)
{
    return i < 5;
}

static int in_gap(size_t i)
{
    return i == 12 || i == 13;
}

static ps_optim *make_optim(ps_optim_kind kind, float wd, int decay_all)
{
    ps_optim_config cfg = ps_optim_defaults(kind);
    cfg.weight_decay = wd;
    cfg.decay_all = decay_all;
    ps_optim *o = NULL;
    ps_error err = {0};
    int rc = ps_optim_init(&o, &cfg, N_FLOATS, &err);
    if (rc)
        fail_msg("ps_optim_init: %s", err.msg);
    return o;
}

/* ---- numbers worked out by hand ---- */

/* Constant gradient 0.2 on every value, w = 0.5, three steps. */
static void run_constant(table *t, ps_optim *o, float lr, float g)
{
    table_init(t);
    for (int i = 0; i < N_FLOATS; i++) {
        t->w[i] = 0.5f;
        t->g[i] = g;
    }
    for (int s = 0; s < 3; s++)
        ps_optim_step(o, t->p, N_PARAMS, t->g, lr, NULL, NULL);
    assert_int_equal(o->step, 3);
}

static void test_sgd_by_hand(void **state)
{
    (void)state;
    table t;
    ps_optim *o = make_optim(PS_OPTIM_KIND_SGD, 0.1f, 0);
    assert_null(o->m);
    assert_null(o->v);
    run_constant(&t, o, 0.1f, 0.2f);
    /* Not decayed: 0.5 - 3 * 0.1 * 0.2. */
    assert_near(t.w[5], 0.44, 1e-6);
    assert_near(t.w[8], 0.44, 1e-6);
    assert_near(t.w[15], 0.44, 1e-6);
    /* Decayed (L2 in the gradient): w <- 0.99 w - 0.02:
     * 0.475, 0.45025, 0.4257475. */
    assert_near(t.w[0], 0.4257475, 1e-6);
    assert_near(t.w[4], 0.4257475, 1e-6);
    /* The gap between tensors is nobody's. */
    assert_true(t.w[12] == 0.5f && t.w[13] == 0.5f);
    ps_optim_free(o);
}

static void test_momentum_by_hand(void **state)
{
    (void)state;
    table t;
    ps_optim *o = make_optim(PS_OPTIM_KIND_MOMENTUM, 0.0f, 0);
    assert_non_null(o->m);
    assert_null(o->v);
    run_constant(&t, o, 0.1f, 0.2f);
    /* m: 0.2, 0.38, 0.542 (it accumulates); w = 0.5 - 0.1 * 1.122. */
    assert_near(o->m[0], 0.542, 1e-6);
    assert_near(o->m[15], 0.542, 1e-6);
    assert_near(t.w[0], 0.3878, 1e-6);
    assert_near(t.w[9], 0.3878, 1e-6);
    ps_optim_free(o);
}

static void test_adam_by_hand(void **state)
{
    (void)state;
    table t;
    ps_optim *o = make_optim(PS_OPTIM_KIND_ADAM, 0.0f, 0);
    assert_non_null(o->m);
    assert_non_null(o->v);
    /* A constant gradient makes the bias-corrected moments exact: mhat = g,
     * vhat = g^2, so every step moves w by lr * g / (|g| + eps) ~ lr.
     * Without the corrections the first step alone would be 3.16 lr. */
    run_constant(&t, o, 0.01f, 0.2f);
    for (int i = 0; i < N_FLOATS; i++)
        if (!in_gap(i))
            assert_near(t.w[i], 0.47, 1e-6);
    /* m = 0.2 (1 - 0.9^3), v = 0.04 (1 - 0.999^3). */
    assert_near(o->m[3], 0.2 * (1.0 - 0.729), 1e-7);
    assert_near(o->v[3], 0.04 * (1.0 - 0.997002999), 1e-8);
    ps_optim_free(o);

    o = make_optim(PS_OPTIM_KIND_ADAM, 0.0f, 0);
    run_constant(&t, o, 0.01f, -0.3f);
    assert_near(t.w[7], 0.53, 1e-6);
    ps_optim_free(o);
}

static void test_adamw_by_hand(void **state)
{
    (void)state;
    table t;
    ps_optim *o = make_optim(PS_OPTIM_KIND_ADAMW, 0.1f, 0);
    assert_true(o->cfg.beta2 == 0.95f);
    run_constant(&t, o, 0.01f, 0.2f);
    /* Decayed: w <- w - 0.01 (1 + 0.1 w): 0.4895, 0.4790105, 0.468531... */
    double w = 0.5;
    for (int s = 0; s < 3; s++)
        w -= 0.01 * (1.0 + 0.1 * w);
    assert_near(w, 0.4685314895, 1e-12);   /* the same, worked by hand */
    assert_near(t.w[0], w, 1e-6);
    /* Bias, embedding and LayerNorm: plain Adam steps. */
    assert_near(t.w[6], 0.47, 1e-6);
    assert_near(t.w[10], 0.47, 1e-6);
    assert_near(t.w[14], 0.47, 1e-6);
    ps_optim_free(o);

    /* decay_all decays them too. */
    o = make_optim(PS_OPTIM_KIND_ADAMW, 0.1f, 1);
    run_constant(&t, o, 0.01f, 0.2f);
    assert_near(t.w[6], w, 1e-6);
    assert_near(t.w[10], w, 1e-6);
    assert_near(t.w[14], w, 1e-6);
    ps_optim_free(o);
}

static void test_decay_mask(void **state)
{
    (void)state;
    table t;
    table_init(&t);
    ps_optim_config c = ps_optim_defaults(PS_OPTIM_KIND_ADAMW);
    assert_true(ps_optim_decays(&c, &t.p[0]));
    assert_false(ps_optim_decays(&c, &t.p[1]));
    assert_false(ps_optim_decays(&c, &t.p[2]));
    assert_false(ps_optim_decays(&c, &t.p[3]));
    c.decay_all = 1;
    for (int i = 0; i < N_PARAMS; i++)
        assert_true(ps_optim_decays(&c, &t.p[i]));

    /* Zero gradient: only the decay moves anything. */
    for (int all = 0; all < 2; all++) {
        ps_optim *o = make_optim(PS_OPTIM_KIND_ADAMW, 0.1f, all);
        table_init(&t);
        for (int i = 0; i < N_FLOATS; i++)
            t.w[i] = 0.25f + 0.125f * (float)i;
        ps_optim_step(o, t.p, N_PARAMS, t.g, 0.01f, NULL, NULL);
        for (int i = 0; i < N_FLOATS; i++) {
            float w0 = 0.25f + 0.125f * (float)i;
            if (in_gap(i))
                assert_true(t.w[i] == w0);
            else if (all || in_weight(i))
                assert_near(t.w[i], w0 * (1.0 - 0.01 * 0.1), 3e-7);
            else
                assert_true(t.w[i] == w0);   /* bit for bit */
        }
        ps_optim_free(o);
    }
}

static void test_adam_vs_adamw(void **state)
{
    (void)state;
    /* Zero gradient, weight decay 0.1: Adam feeds 0.1 w through the
     * normalisation, so its first step is lr * sign(w); AdamW shrinks w by
     * lr * wd * w.  Same settings otherwise. */
    table a, b;
    ps_optim_config cfg = ps_optim_defaults(PS_OPTIM_KIND_ADAM);
    cfg.weight_decay = 0.1f;
    ps_optim *oa = NULL, *ob = NULL;
    assert_int_equal(ps_optim_init(&oa, &cfg, N_FLOATS, NULL), 0);
    cfg.kind = PS_OPTIM_KIND_ADAMW;
    assert_int_equal(ps_optim_init(&ob, &cfg, N_FLOATS, NULL), 0);
    table_init(&a);
    table_init(&b);
    for (int i = 0; i < N_FLOATS; i++)
        a.w[i] = b.w[i] = (i % 2) ? 0.5f : -0.5f;
    ps_optim_step(oa, a.p, N_PARAMS, a.g, 0.01f, NULL, NULL);
    ps_optim_step(ob, b.p, N_PARAMS, b.g, 0.01f, NULL, NULL);
    assert_near(a.w[0], -0.49, 1e-6);
    assert_near(a.w[1], 0.49, 1e-6);
    assert_near(b.w[0], -0.4995, 1e-7);
    assert_near(b.w[1], 0.4995, 1e-7);
    /* Not decayed in either: zero gradient, no move. */
    assert_true(a.w[5] == 0.5f && b.w[5] == 0.5f);
    ps_optim_free(oa);
    ps_optim_free(ob);
}

/* ---- against the formulas in double ---- */

typedef struct ref_state {
    double w[N_FLOATS], m[N_FLOATS], v[N_FLOATS];
} ref_state;

/* The update rules of optim.h, one element at a time, in double. */
static void ref_step(ref_state *r, const ps_optim_config *c, const float *g,
                     double lr, int t)
{
    double b1 = c->beta1, b2 = c->beta2, eps = c->eps, wd = c->weight_decay;
    for (int i = 0; i < N_FLOATS; i++) {
        if (in_gap(i))
            continue;
        int decayed = c->decay_all || in_weight(i);
        double gi = g[i];
        double gl2 = gi + (decayed ? wd * r->w[i] : 0.0);
        double mhat, vhat;
        switch (c->kind) {
        case PS_OPTIM_KIND_SGD:
            r->w[i] -= lr * gl2;
            break;
        case PS_OPTIM_KIND_MOMENTUM:
            r->m[i] = b1 * r->m[i] + gl2;
            r->w[i] -= lr * r->m[i];
            break;
        case PS_OPTIM_KIND_ADAM:
            r->m[i] = b1 * r->m[i] + (1 - b1) * gl2;
            r->v[i] = b2 * r->v[i] + (1 - b2) * gl2 * gl2;
            mhat = r->m[i] / (1 - pow(b1, t));
            vhat = r->v[i] / (1 - pow(b2, t));
            r->w[i] -= lr * mhat / (sqrt(vhat) + eps);
            break;
        case PS_OPTIM_KIND_ADAMW:
            r->m[i] = b1 * r->m[i] + (1 - b1) * gi;
            r->v[i] = b2 * r->v[i] + (1 - b2) * gi * gi;
            mhat = r->m[i] / (1 - pow(b1, t));
            vhat = r->v[i] / (1 - pow(b2, t));
            r->w[i] -= lr * (mhat / (sqrt(vhat) + eps)
                             + (decayed ? wd * r->w[i] : 0.0));
            break;
        }
    }
}

static void test_three_steps_vs_formulas(void **state)
{
    (void)state;
    const ps_optim_kind kinds[] = {PS_OPTIM_KIND_SGD, PS_OPTIM_KIND_MOMENTUM,
                                   PS_OPTIM_KIND_ADAM, PS_OPTIM_KIND_ADAMW};
    for (int k = 0; k < 4; k++) {
        for (int all = 0; all < 2; all++) {
            ps_optim *o = make_optim(kinds[k], 0.05f, all);
            table t;
            ref_state r = {0};
            table_init(&t);
            for (int i = 0; i < N_FLOATS; i++)
                r.w[i] = t.w[i] = 0.3f * (float)sin(0.7 * i + 0.2);
            const float lr[3] = {0.05f, 0.03f, 0.02f};
            for (int s = 0; s < 3; s++) {
                /* A gradient that changes sign and size from step to step, so
                 * the moments matter. */
                for (int i = 0; i < N_FLOATS; i++)
                    t.g[i] = 0.4f * (float)cos(1.3 * i + 2.1 * s) + 0.05f * s;
                ps_optim_step(o, t.p, N_PARAMS, t.g, lr[s], NULL, NULL);
                ref_step(&r, &o->cfg, t.g, lr[s], s + 1);
                for (int i = 0; i < N_FLOATS; i++) {
                    if (!(fabs(t.w[i] - r.w[i]) <= 1e-6))
                        fail_msg("%s decay_all=%d step %d: w[%d] = %.9g, "
                                 "formula %.9g", ps_optim_kind_name(kinds[k]),
                                 all, s + 1, i, (double)t.w[i], r.w[i]);
                    if (o->m)
                        assert_near(o->m[i], r.m[i], 1e-6);
                    if (o->v)
                        assert_near(o->v[i], r.v[i], 1e-8);
                }
            }
            ps_optim_free(o);
        }
    }
}

/* ---- update statistics and delta ---- */

static void test_stats_and_delta(void **state)
{
    (void)state;
    /* Sizes around the kernel's block of 256 and its 8-wide lanes, with gaps
     * between tensors. */
    enum { NP = 5 };
    const size_t numel[NP] = {1000, 3, 513, 256, 9};
    ps_param p[NP];
    size_t n = 0, offs[NP];
    for (int i = 0; i < NP; i++) {
        offs[i] = n;
        n += numel[i] + 7;
    }
    float *w = malloc(n * sizeof *w), *w2 = malloc(n * sizeof *w2);
    float *old = malloc(n * sizeof *old), *g = malloc(n * sizeof *g);
    float *delta = malloc(n * sizeof *delta);
    ps_rng r;
    ps_rng_seed(&r, 17);
    for (size_t i = 0; i < n; i++) {
        w[i] = w2[i] = old[i] = 0.1f * ps_rng_normal(&r);
        g[i] = 0.01f * ps_rng_normal(&r);
        delta[i] = 12345.0f;
    }
    for (int i = 0; i < NP; i++)
        set_param(&p[i], i % 2 ? "x.bias" : "x.weight", offs[i], numel[i],
                  PS_PARAM_KIND_ATTN, i % 2, w);

    const ps_optim_kind kinds[] = {PS_OPTIM_KIND_ADAMW, PS_OPTIM_KIND_SGD};
    for (int k = 0; k < 2; k++) {
        ps_optim_config cfg = ps_optim_defaults(kinds[k]);
        cfg.weight_decay = 0.1f;
        ps_optim *o1 = NULL, *o2 = NULL;
        assert_int_equal(ps_optim_init(&o1, &cfg, n, NULL), 0);
        assert_int_equal(ps_optim_init(&o2, &cfg, n, NULL), 0);
        ps_param p2[NP];
        memcpy(p2, p, sizeof p);
        for (int i = 0; i < NP; i++)
            p2[i].data = w2 + offs[i];
        for (int s = 0; s < 2; s++) {
            ps_update_stats st[NP];
            memcpy(old, w, n * sizeof *w);
            ps_optim_step(o1, p, NP, g, 1e-2f, delta, st);
            ps_optim_step(o2, p2, NP, g, 1e-2f, NULL, NULL);
            /* Asking for figures does not change the update. */
            assert_memory_equal(w, w2, n * sizeof *w);
            for (int i = 0; i < NP; i++) {
                double usq = 0.0, wsq = 0.0;
                for (size_t j = offs[i]; j < offs[i] + numel[i]; j++) {
                    float d = w[j] - old[j];
                    if (delta[j] != d)
                        fail_msg("delta[%zu] = %g, new - old = %g", j,
                                 (double)delta[j], (double)d);
                    usq += (double)d * d;
                    wsq += (double)old[j] * old[j];
                }
                assert_true(usq > 0.0);
                assert_near(st[i].update_sq, usq, 1e-5 * usq);
                assert_near(st[i].weight_sq, wsq, 1e-5 * wsq);
                /* The gap after each tensor is left alone. */
                for (size_t j = offs[i] + numel[i]; j < offs[i] + numel[i] + 7; j++)
                    assert_true(delta[j] == 12345.0f && w[j] == old[j]);
            }
        }
        ps_optim_free(o1);
        ps_optim_free(o2);
    }
    free(w);
    free(w2);
    free(old);
    free(g);
    free(delta);
}

/* ---- clipping ---- */

static void test_grad_norm_and_clip(void **state)
{
    (void)state;
    enum { N = 1003 };
    float g[N], g0[N];
    ps_rng r;
    ps_rng_seed(&r, 21);
    double sq = 0.0;
    for (int i = 0; i < N; i++) {
        g0[i] = ps_rng_normal(&r);
        sq += (double)g0[i] * g0[i];
    }
    assert_near(ps_grad_norm(g0, N), sqrt(sq), 1e-12 * sqrt(sq));
    /* Scale to norm 10. */
    for (int i = 0; i < N; i++)
        g0[i] = (float)(g0[i] * 10.0 / sqrt(sq));
    memcpy(g, g0, sizeof g);

    double before = ps_grad_clip(g, N, 1.0);
    assert_near(before, 10.0, 1e-5);
    assert_near(ps_grad_norm(g, N), 1.0, 1e-6);
    /* Same direction: every entry scaled by the same 1/10. */
    for (int i = 0; i < N; i++)
        assert_near(g[i], g0[i] / before, 1e-6 * fabs(g0[i]) + 1e-12);

    /* At or below the threshold, or with clipping off: untouched. */
    memcpy(g, g0, sizeof g);
    assert_near(ps_grad_clip(g, N, 20.0), 10.0, 1e-5);
    assert_memory_equal(g, g0, sizeof g);
    assert_near(ps_grad_clip(g, N, 0.0), 10.0, 1e-5);
    assert_memory_equal(g, g0, sizeof g);

    /* A NaN or an Inf is reported, and nothing is scaled. */
    g[17] = NAN;
    memcpy(g0, g, sizeof g);
    assert_true(isnan(ps_grad_clip(g, N, 1.0)));
    assert_memory_equal(g, g0, sizeof g);
    g[17] = INFINITY;
    memcpy(g0, g, sizeof g);
    assert_true(isinf(ps_grad_clip(g, N, 1.0)));
    assert_memory_equal(g, g0, sizeof g);
    assert_near(ps_grad_norm(g, 0), 0.0, 0.0);
}

/* ---- schedules ---- */

static void test_schedule_cosine(void **state)
{
    (void)state;
    ps_schedule s = {.kind = PS_SCHED_KIND_COSINE, .lr = 0.6f, .warmup = 4,
                     .total = 104, .min_lr = 0.1f};
    /* Warmup: 0.6 * (step + 1) / 4. */
    assert_near(ps_schedule_lr(&s, 0), 0.15, 1e-7);
    assert_near(ps_schedule_lr(&s, 1), 0.30, 1e-7);
    assert_near(ps_schedule_lr(&s, 3), 0.60, 1e-7);
    /* End of warmup: the peak. */
    assert_near(ps_schedule_lr(&s, 4), 0.60, 1e-7);
    /* A quarter of the way: 0.1 + 0.5 (1 + cos(pi / 4)) / 2. */
    assert_near(ps_schedule_lr(&s, 29), 0.1 + 0.25 * (1.0 + sqrt(0.5)), 1e-7);
    /* Midway: (lr + min_lr) / 2. */
    assert_near(ps_schedule_lr(&s, 54), 0.35, 1e-7);
    /* At and after total: the floor. */
    assert_near(ps_schedule_lr(&s, 104), 0.1, 1e-7);
    assert_near(ps_schedule_lr(&s, 105), 0.1, 1e-7);
    assert_near(ps_schedule_lr(&s, 150), 0.1, 1e-7);
    assert_near(ps_schedule_lr(&s, 500), 0.1, 1e-7);
    for (long i = 4; i < 104; i++)
        assert_true(ps_schedule_lr(&s, i + 1) < ps_schedule_lr(&s, i));
    /* No room for the decay: straight to the floor after warmup. */
    s.total = 3;
    assert_near(ps_schedule_lr(&s, 4), 0.1, 1e-7);
}

static void test_schedule_step_and_constant(void **state)
{
    (void)state;
    ps_schedule s = {.kind = PS_SCHED_KIND_STEP, .lr = 1.0f, .warmup = 2,
                     .step_size = 10, .gamma = 0.5f};
    assert_near(ps_schedule_lr(&s, 0), 0.5, 0.0);
    assert_near(ps_schedule_lr(&s, 1), 1.0, 0.0);
    assert_near(ps_schedule_lr(&s, 2), 1.0, 0.0);
    assert_near(ps_schedule_lr(&s, 11), 1.0, 0.0);
    assert_near(ps_schedule_lr(&s, 12), 0.5, 0.0);   /* first drop */
    assert_near(ps_schedule_lr(&s, 21), 0.5, 0.0);
    assert_near(ps_schedule_lr(&s, 22), 0.25, 0.0);
    assert_near(ps_schedule_lr(&s, 52), 1.0 / 32.0, 0.0);

    ps_schedule c = {.kind = PS_SCHED_KIND_CONSTANT, .lr = 3e-4f, .warmup = 5};
    assert_near(ps_schedule_lr(&c, 0), (double)3e-4f / 5, 1e-11);
    assert_near(ps_schedule_lr(&c, 4), (double)3e-4f, 0.0);
    assert_near(ps_schedule_lr(&c, 100000), (double)3e-4f, 0.0);
    c.warmup = 0;
    assert_near(ps_schedule_lr(&c, 0), (double)3e-4f, 0.0);
}

/* ---- names and configuration ---- */

static void test_names_and_init(void **state)
{
    (void)state;
    const char *names[] = {"sgd", "momentum", "adam", "adamw"};
    for (int k = 0; k < 4; k++) {
        assert_int_equal(ps_optim_kind_parse(names[k]), k);
        assert_string_equal(ps_optim_kind_name((ps_optim_kind)k), names[k]);
    }
    assert_int_equal(ps_optim_kind_parse("adamx"), -1);
    assert_int_equal(ps_optim_kind_parse(""), -1);
    assert_int_equal(ps_optim_kind_parse(NULL), -1);
    const char *sched[] = {"constant", "cosine", "step"};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(ps_sched_kind_parse(sched[k]), k);
        assert_string_equal(ps_sched_kind_name((ps_sched_kind)k), sched[k]);
    }
    assert_int_equal(ps_sched_kind_parse("linear"), -1);

    ps_optim_config c = ps_optim_defaults(PS_OPTIM_KIND_ADAM);
    assert_true(c.beta1 == 0.9f && c.beta2 == 0.999f && c.eps == 1e-8f &&
                c.weight_decay == 0.0f);
    static ps_optim dummy;
    ps_optim *o = &dummy;   /* must come back NULL on failure */
    ps_error err = {0};
    c.beta1 = 1.5f;
    assert_int_equal(ps_optim_init(&o, &c, 10, &err), PS_ERR_RANGE);
    assert_null(o);
    assert_non_null(strstr(err.msg, "beta1"));
    c = ps_optim_defaults(PS_OPTIM_KIND_ADAMW);
    c.eps = 0.0f;
    assert_int_equal(ps_optim_init(&o, &c, 10, &err), PS_ERR_RANGE);
    c = ps_optim_defaults(PS_OPTIM_KIND_SGD);
    c.weight_decay = -1.0f;
    assert_int_equal(ps_optim_init(&o, &c, 10, &err), PS_ERR_RANGE);
    c.weight_decay = 0.0f;
    c.kind = (ps_optim_kind)9;
    assert_int_equal(ps_optim_init(&o, &c, 10, &err), PS_ERR_INVALID);
    ps_optim_free(NULL);
}

/* A tensor larger than one work item (2^18 values), split over two threads:
 * every value follows AdamW's formula, the per-tensor figures are the sums
 * over all items, and one thread gives the same bits. */
static void run_big(int threads, float *w, float *g, size_t n, ps_update_stats *st, float *delta)
{
    ps_blas_init(threads, NULL);
    ps_blas_set_threads(threads, NULL);
    ps_rng r;
    ps_rng_seed(&r, 9);
    for (size_t i = 0; i < n; i++) {
        w[i] = ps_rng_normal(&r);
        g[i] = ps_rng_normal(&r) * 0.1f;
    }
    ps_param p = {.name = "h.0.mlp.c_fc.weight", .ndim = 2, .shape = {(int)(n / 1000), 1000},
                  .numel = n, .offset = 0, .data = w, .layer = 0, .kind = PS_PARAM_KIND_MLP};
    ps_optim_config c = ps_optim_defaults(PS_OPTIM_KIND_ADAMW);
    ps_optim *o = NULL;
    assert_int_equal(ps_optim_init(&o, &c, n, NULL), PS_OK);
    ps_optim_step(o, &p, 1, g, 0.01f, delta, st);
    ps_optim_free(o);
}

static void test_adamw_split_over_threads(void **state)
{
    (void)state;
    size_t n = 700000;
    float *w1 = malloc(n * sizeof(float)), *w2 = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
    float *d1 = malloc(n * sizeof(float)), *d2 = malloc(n * sizeof(float));
    ps_update_stats s1, s2;
    run_big(2, w1, g, n, &s1, d1);
    run_big(1, w2, g, n, &s2, d2);
    assert_memory_equal(w1, w2, n * sizeof(float));
    assert_memory_equal(d1, d2, n * sizeof(float));
    /* step 1 of AdamW: m = 0.1 g, v = 0.05 g^2 (beta2 0.95), bias-corrected to g and g^2 */
    ps_rng r;
    ps_rng_seed(&r, 9);
    double usq = 0, wsq = 0;
    for (size_t i = 0; i < n; i++) {
        double w0 = ps_rng_normal(&r), gi = (float)(ps_rng_normal(&r) * 0.1f);
        double want = w0 - 0.01 * (gi / (fabs(gi) + 1e-8) + 0.1 * w0);
        if (fabs(w1[i] - want) > 1e-5 * fmax(1.0, fabs(want)))
            fail_msg("value %zu: %.9g, formula %.9g", i, (double)w1[i], want);
        usq += (double)d1[i] * d1[i];
        wsq += w0 * w0;
    }
    assert_true(fabs(s1.update_sq - usq) < 1e-6 * usq);   /* float partials per block of 256 */
    assert_true(fabs(s1.weight_sq - wsq) < 1e-6 * wsq);
    /* the global norm is the same split or not */
    ps_blas_set_threads(2, NULL);
    double n2 = ps_grad_norm(g, n);
    ps_blas_set_threads(1, NULL);
    assert_true(ps_grad_norm(g, n) == n2);
    double ref = 0;
    for (size_t i = 0; i < n; i++) ref += (double)g[i] * g[i];
    assert_true(fabs(n2 - sqrt(ref)) < 1e-12 * sqrt(ref));
    free(w1); free(w2); free(g); free(d1); free(d2);
}

/* Settings with per-optimizer defaults follow the kind whatever the order
 * of changes (sgd -> adamw has AdamW's decay 0.1, adamw -> adam has Adam's
 * 0), and the ones set by hand stay. */
static void test_with_kind_follows_defaults(void **state)
{
    (void)state;
    const ps_optim_kind kinds[] = {PS_OPTIM_KIND_SGD, PS_OPTIM_KIND_MOMENTUM, PS_OPTIM_KIND_ADAM,
                                   PS_OPTIM_KIND_ADAMW};
    assert_float_equal(ps_optim_defaults(PS_OPTIM_KIND_ADAMW).weight_decay, 0.1f, 0);
    assert_float_equal(ps_optim_defaults(PS_OPTIM_KIND_ADAMW).beta2, 0.95f, 0);
    assert_float_equal(ps_optim_defaults(PS_OPTIM_KIND_ADAM).weight_decay, 0.0f, 0);
    assert_float_equal(ps_optim_defaults(PS_OPTIM_KIND_ADAM).beta2, 0.999f, 0);
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            ps_optim_config from = ps_optim_defaults(kinds[a]);
            ps_optim_config got = ps_optim_with_kind(&from, kinds[b]);
            ps_optim_config want = ps_optim_defaults(kinds[b]);
            assert_memory_equal(&got, &want, sizeof got);
            /* by way of every other kind: still the same */
            for (int c = 0; c < 4; c++) {
                ps_optim_config mid = ps_optim_with_kind(&from, kinds[c]);
                ps_optim_config end = ps_optim_with_kind(&mid, kinds[b]);
                assert_memory_equal(&end, &want, sizeof end);
            }
            /* chosen by hand: weight decay and beta2 stay, the rest follow */
            ps_optim_config hand = from;
            hand.weight_decay = 0.05f;
            hand.beta2 = 0.9f;
            hand.set = PS_OPTIM_SET_WEIGHT_DECAY | PS_OPTIM_SET_BETA2;
            hand.decay_all = 1;
            got = ps_optim_with_kind(&hand, kinds[b]);
            assert_int_equal(got.kind, kinds[b]);
            assert_float_equal(got.weight_decay, 0.05f, 0);
            assert_float_equal(got.beta2, 0.9f, 0);
            assert_float_equal(got.beta1, want.beta1, 0);
            assert_float_equal(got.eps, want.eps, 0);
            assert_int_equal(got.decay_all, 1);
            assert_int_equal(got.set, hand.set);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_by_hand),
        cmocka_unit_test(test_adamw_split_over_threads),
        cmocka_unit_test(test_momentum_by_hand),
        cmocka_unit_test(test_adam_by_hand),
        cmocka_unit_test(test_adamw_by_hand),
        cmocka_unit_test(test_decay_mask),
        cmocka_unit_test(test_adam_vs_adamw),
        cmocka_unit_test(test_three_steps_vs_formulas),
        cmocka_unit_test(test_stats_and_delta),
        cmocka_unit_test(test_grad_norm_and_clip),
        cmocka_unit_test(test_schedule_cosine),
        cmocka_unit_test(test_schedule_step_and_constant),
        cmocka_unit_test(test_names_and_init),
        cmocka_unit_test(test_with_kind_follows_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
