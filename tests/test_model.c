/* The whole model: logits against an independent double-precision forward
 * written here from the GPT-2 equations, and every parameter's gradient
 * against central finite differences of that reference.
 *
 * Tolerances: logits within 1e-5 of max(1, |reference|); each tensor's
 * gradient within 2e-4 of max(1e-2, max |reference gradient|) — float32
 * forward/backward against a double reference with h = 1e-6. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paramscope/blas.h"
#include "paramscope/model.h"
#include "paramscope/rng.h"

static const ps_config tiny = {.n_layer = 2, .n_head = 2, .n_embd = 8, .n_ctx = 8, .vocab_size = 11};

/* ---- the double-precision reference ---- */

typedef struct ref {
    const ps_model *m;     /* for the table */
    const double *w;       /* [n_floats] */
} ref;

static const double *P(const ref *r, const char *name)
{
    ps_param *p = ps_model_find((ps_model *)r->m, name);
    assert_non_null(p);
    return r->w + p->offset;
}

static void ln(double *y, const double *x, const double *g, const double *b, int C)
{
    double m = 0, v = 0;
    for (int c = 0; c < C; c++) m += x[c];
    m /= C;
    for (int c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
    v /= C;
    for (int c = 0; c < C; c++) y[c] = (x[c] - m) / sqrt(v + 1e-5) * g[c] + b[c];
}

static void lin(double *y, const double *x, const double *W, const double *b, int in, int out)
{
    for (int o = 0; o < out; o++) {
        double s = b[o];
        for (int i = 0; i < in; i++) s += x[i] * W[i * out + o];
        y[o] = s;
    }
}

/* Mean cross-entropy over B x T; logits_out [B*T*V] if not NULL. */
static double ref_loss(const ref *r, const int *ids, const int *tg, int B, int T, double *logits_out)
{
    const ps_config *c = &r->m->cfg;
    int C = c->n_embd, NH = c->n_head, hd = C / NH, V = c->vocab_size;
    double x[8][64], tmp[8][256], qkv[8][192], y[8][64];
    double total = 0;
    char name[64];
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++)
            for (int i = 0; i < C; i++)
                x[t][i] = P(r, "wte.weight")[ids[b * T + t] * C + i] + P(r, "wpe.weight")[t * C + i];
        for (int l = 0; l < c->n_layer; l++) {
#define W(s) (snprintf(name, sizeof name, "h.%d.%s", l, s), P(r, name))
            for (int t = 0; t < T; t++) {
                ln(tmp[t], x[t], W("ln_1.weight"), W("ln_1.bias"), C);
                lin(qkv[t], tmp[t], W("attn.c_attn.weight"), W("attn.c_attn.bias"), C, 3 * C);
            }
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < T; t++) {
                    double s[8], mx = -1e300, sum = 0;
                    for (int u = 0; u <= t; u++) {
                        double d = 0;
                        for (int i = 0; i < hd; i++) d += qkv[t][h * hd + i] * qkv[u][C + h * hd + i];
                        s[u] = d / sqrt((double)hd);
                        mx = fmax(mx, s[u]);
                    }
                    for (int u = 0; u <= t; u++) { s[u] = exp(s[u] - mx); sum += s[u]; }
                    for (int i = 0; i < hd; i++) {
                        double a = 0;
                        for (int u = 0; u <= t; u++) a += s[u] / sum * qkv[u][2 * C + h * hd + i];
                        y[t][h * hd + i] = a;
                    }
                }
            for (int t = 0; t < T; t++) {
                lin(tmp[t], y[t], W("attn.c_proj.weight"), W("attn.c_proj.bias"), C, C);
                for (int i = 0; i < C; i++) x[t][i] += tmp[t][i];
                double h2[64], f[256], o[64];
                ln(h2, x[t], W("ln_2.weight"), W("ln_2.bias"), C);
                lin(f, h2, W("mlp.c_fc.weight"), W("mlp.c_fc.bias"), C, 4 * C);
                for (int i = 0; i < 4 * C; i++)
                    f[i] = 0.5 * f[i] * (1 + tanh(sqrt(2 / M_PI) * (f[i] + 0.044715 * f[i] * f[i] * f[i])));
                lin(o, f, W("mlp.c_proj.weight"), W("mlp.c_proj.bias"), 4 * C, C);
                for (int i = 0; i < C; i++) x[t][i] += o[i];
            }
#undef W
        }
        for (int t = 0; t < T; t++) {
            double h[64], lg[64], mx = -1e300, sum = 0;
            ln(h, x[t], P(r, "ln_f.weight"), P(r, "ln_f.bias"), C);
            for (int v = 0; v < V; v++) {
                double s = 0;
                for (int i = 0; i < C; i++) s += h[i] * P(r, "wte.weight")[v * C + i];
                lg[v] = s;
                mx = fmax(mx, s);
                if (logits_out) logits_out[(b * T + t) * V + v] = s;
            }
            for (int v = 0; v < V; v++) sum += exp(lg[v] - mx);
            if (tg) total += log(sum) + mx - lg[tg[b * T + t]];
        }
    }
    return total / (B * T);
}

static ps_model *tiny_model(uint64_t seed, float spread)
{
    ps_model *m = NULL;
    assert_int_equal(ps_model_init(&m, &tiny, NULL), PS_OK);
    ps_model_init_random(m, seed);
    /* GPT-2's 0.02 makes every logit nearly equal; spread the values so that
     * the gradients test something (LayerNorm gains and biases too). */
    ps_rng rng;
    ps_rng_seed(&rng, seed + 1);
    for (size_t i = 0; i < m->n_floats; i++)
        m->w[i] = m->w[i] * spread + 0.1f * ps_rng_normal(&rng);
    return m;
}

static void test_forward_matches_reference(void **state)
{
    (void)state;
    ps_model *m = tiny_model(7, 20.0f);
    int B = 2, T = 8, V = tiny.vocab_size;
    int ids[16], tg[16];
    for (int i = 0; i < 16; i++) { ids[i] = (i * 7 + 3) % V; tg[i] = (i * 5 + 1) % V; }
    assert_int_equal(ps_model_forward(m, ids, B, T, NULL), PS_OK);
    float loss;
    assert_int_equal(ps_model_loss(m, tg, &loss, NULL), PS_OK);
    double *w = malloc(sizeof(double) * m->n_floats);
    for (size_t i = 0; i < m->n_floats; i++) w[i] = m->w[i];
    ref r = {m, w};
    double want_logits[16 * 11];
    double want = ref_loss(&r, ids, tg, B, T, want_logits);
    for (int i = 0; i < B * T * V; i++) {
        double e = fabs(m->acts.logits[i] - want_logits[i]);
        if (e > 1e-5 * fmax(1.0, fabs(want_logits[i])))
            fail_msg("logit %d: %.9g vs reference %.9g", i, (double)m->acts.logits[i], want_logits[i]);
    }
    assert_true(fabs(loss - want) < 1e-5 * fmax(1.0, want));
    /* probabilities of each position sum to one */
    for (int i = 0; i < B * T; i++) {
        double s = 0;
        for (int v = 0; v < V; v++) s += m->acts.probs[i * V + v];
        assert_true(fabs(s - 1.0) < 1e-5);
    }
    /* a shorter sequence gives the same logits for its positions (causality) */
    ps_model_forward(m, ids, 1, 5, NULL);
    for (int t = 0; t < 5; t++)
        for (int v = 0; v < V; v++)
            assert_true(fabs(ps_model_logits(m, 0, t)[v] - want_logits[t * V + v]) < 1e-5 * fmax(1.0, fabs(want_logits[t * V + v])));
    free(w);
    ps_model_free(m);
}

static void test_gradient_every_parameter(void **state)
{
    (void)state;
    ps_model *m = tiny_model(11, 10.0f);
    int B = 2, T = 8, V = tiny.vocab_size;
    int ids[16], tg[16];
    for (int i = 0; i < 16; i++) { ids[i] = (i * 3 + 2) % V; tg[i] = (i * 4 + 5) % V; }
    assert_int_equal(ps_model_forward(m, ids, B, T, NULL), PS_OK);
    assert_int_equal(ps_model_loss(m, tg, NULL, NULL), PS_OK);
    assert_int_equal(ps_model_backward(m, NULL), PS_OK);
    double *w = malloc(sizeof(double) * m->n_floats);
    for (size_t i = 0; i < m->n_floats; i++) w[i] = m->w[i];
    ref r = {m, w};
    const double h = 1e-6;
    for (int pi = 0; pi < m->n_params; pi++) {
        ps_param *p = &m->params[pi];
        const float *g = ps_model_param_grad(m, p);
        assert_non_null(g);
        double *fd = malloc(sizeof(double) * p->numel), scale = 1e-2, worst = 0;
        size_t at = 0;
        for (size_t j = 0; j < p->numel; j++) {
            double keep = w[p->offset + j];
            w[p->offset + j] = keep + h;
            double lp = ref_loss(&r, ids, tg, B, T, NULL);
            w[p->offset + j] = keep - h;
            double lm = ref_loss(&r, ids, tg, B, T, NULL);
            w[p->offset + j] = keep;
            fd[j] = (lp - lm) / (2 * h);
            scale = fmax(scale, fabs(fd[j]));
        }
        for (size_t j = 0; j < p->numel; j++) {
            double e = fabs(g[j] - fd[j]);
            if (e > worst) { worst = e; at = j; }
        }
        if (getenv("PS_VERBOSE")) print_message("%-26s rel err %.2e\n", p->name, worst / scale);
        if (worst > 2e-4 * scale)
            fail_msg("%s[%zu]: gradient %.9g, finite difference %.9g (error %.3g, scale %.3g)",
                     p->name, at, (double)g[at], fd[at], worst, scale);
        free(fd);
    }
    free(w);
    ps_model_free(m);
}

static void test_table_matches_gpt2(void **state)
{
    (void)state;
    ps_config c = {.n_layer = 12, .n_head = 12, .n_embd = 768, .n_ctx = 1024, .vocab_size = 50257};
    assert_int_equal(ps_config_param_count(&c), 124439808);  /* GPT-2 small, tied head */
    ps_model *m = NULL;
    assert_int_equal(ps_model_init(&m, &tiny, NULL), PS_OK);
    assert_int_equal(m->n_params, 2 + 12 * 2 + 2);
    assert_int_equal(m->n_floats, ps_config_param_count(&tiny));
    ps_param *p = ps_model_find(m, "h.1.attn.c_attn.weight");
    assert_non_null(p);
    assert_int_equal(p->shape[0], 8);
    assert_int_equal(p->shape[1], 24);
    assert_int_equal(p->layer, 1);
    assert_null(ps_model_find(m, "h.2.attn.c_attn.weight"));
    /* contiguous: each tensor starts where the previous ended */
    for (int i = 1; i < m->n_params; i++)
        assert_int_equal(m->params[i].offset, m->params[i - 1].offset + m->params[i - 1].numel);
    /* initialisation: LayerNorm weight 1, biases 0, projections narrower */
    ps_model_init_random(m, 3);
    assert_true(ps_model_find(m, "h.0.ln_2.weight")->data[5] == 1.0f);
    assert_true(ps_model_find(m, "h.0.mlp.c_fc.bias")->data[7] == 0.0f);
    double s1 = 0, s2 = 0;
    ps_param *fc = ps_model_find(m, "h.0.mlp.c_fc.weight"), *pr = ps_model_find(m, "h.0.mlp.c_proj.weight");
    for (size_t j = 0; j < fc->numel; j++) s1 += fc->data[j] * fc->data[j];
    for (size_t j = 0; j < pr->numel; j++) s2 += pr->data[j] * pr->data[j];
    double std1 = sqrt(s1 / fc->numel), std2 = sqrt(s2 / pr->numel);
    assert_true(fabs(std1 - 0.02) < 0.004);
    assert_true(fabs(std2 - 0.01) < 0.002);   /* 0.02 / sqrt(2 * 2 layers) */
    /* the same seed gives the same weights */
    float keep = m->w[100];
    ps_model_init_random(m, 3);
    assert_true(m->w[100] == keep);
    ps_model_init_random(m, 4);
    assert_true(m->w[100] != keep);
    ps_model_free(m);
}

static void test_bad_configs_and_inputs(void **state)
{
    (void)state;
    ps_error err;
    ps_model *m = NULL;
    ps_config bad = tiny;
    bad.n_head = 3;
    assert_int_equal(ps_model_init(&m, &bad, &err), PS_ERR_INVALID);
    assert_null(m);
    assert_non_null(strstr(err.msg, "not divisible by n_head 3"));
    bad = tiny; bad.n_layer = 0;
    assert_int_equal(ps_model_init(&m, &bad, &err), PS_ERR_INVALID);
    assert_non_null(strstr(err.msg, "n_layer 0"));
    bad = tiny; bad.vocab_size = -5;
    assert_int_equal(ps_model_init(&m, &bad, &err), PS_ERR_INVALID);
    bad = tiny; bad.n_ctx = 0;
    assert_int_equal(ps_model_init(&m, &bad, &err), PS_ERR_INVALID);

    assert_int_equal(ps_model_init(&m, &tiny, &err), PS_OK);
    int ids[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    assert_int_equal(ps_model_forward(m, ids, 1, 9, &err), PS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "longer than n_ctx 8"));
    ids[2] = 11;
    assert_int_equal(ps_model_forward(m, ids, 1, 4, &err), PS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "token id 11 at position 2"));
    ids[2] = -1;
    assert_int_equal(ps_model_forward(m, ids, 1, 4, &err), PS_ERR_RANGE);
    assert_int_equal(ps_model_loss(m, ids, NULL, &err), PS_ERR_STATE);
    assert_int_equal(ps_model_backward(m, &err), PS_ERR_STATE);
    ids[2] = 3;
    assert_int_equal(ps_model_forward(m, ids, 1, 4, &err), PS_OK);
    int tg[4] = {1, 2, 99, 0};
    assert_int_equal(ps_model_loss(m, tg, NULL, &err), PS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "target id 99"));
    assert_int_equal(ps_model_forward(m, ids, 0, 4, &err), PS_ERR_INVALID);
    ps_model_free(m);
    ps_model_free(NULL);
}

int main(void)
{
    ps_blas_init(0, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_matches_reference),
        cmocka_unit_test(test_gradient_every_parameter),
        cmocka_unit_test(test_table_matches_gpt2),
        cmocka_unit_test(test_bad_configs_and_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
