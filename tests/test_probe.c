/* Probes inside the forward pass, against tools/probe_reference.py (an
 * independent numpy forward in float64): attention patterns, the logit
 * lens, direct logit attribution and neuron activations on a tiny model
 * whose weights both sides compute from one formula. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paramscope/probe.h"
#include "paramscope/kernels.h"
#include "probe_reference.h"

/* tools/probe_reference.py's weight(): the same formula, rounded to float */
static double name_phase(const char *name)
{
    long h = 0;
    for (int i = 0; name[i]; i++)
        h += (long)(i + 1) * (unsigned char)name[i];
    return (double)(h % 1000) / 100.0;
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && !strcmp(s + n - k, tail);
}

static ps_model *reference_model(void)
{
    const ps_config cfg = {.n_layer = REF_L, .n_head = REF_NH, .n_embd = REF_C, .n_ctx = REF_NCTX,
                           .vocab_size = REF_V};
    ps_model *m = NULL;
    assert_int_equal(ps_model_init(&m, &cfg, NULL), PS_OK);
    for (int i = 0; i < m->n_params; i++) {
        ps_param *p = &m->params[i];
        double ph = name_phase(p->name);
        for (size_t j = 0; j < p->numel; j++) {
            double s = sin((double)j * 0.731 + ph);
            double v = ends_with(p->name, "ln_1.weight") || ends_with(p->name, "ln_2.weight") ||
                               ends_with(p->name, "ln_f.weight")
                           ? 1.0 + 0.2 * s
                       : ends_with(p->name, "bias")          ? 0.1 * s
                       : ends_with(p->name, "c_attn.weight") ? 1.5 * s
                                                             : 0.5 * s;
            p->data[j] = (float)v;
        }
    }
    assert_int_equal(ps_model_forward(m, ref_ids, 1, REF_T, NULL), PS_OK);
    return m;
}

static void test_attention_patterns(void **state)
{
    (void)state;
    ps_model *m = reference_model();
    double worst = 0;
    for (int l = 0; l < REF_L; l++)
        for (int h = 0; h < REF_NH; h++) {
            const float *a = ps_model_attention(m, l, 0, h);
            for (int i = 0; i < REF_T * REF_T; i++) {
                double d = fabs(a[i] - ref_att[((size_t)l * REF_NH + h) * REF_T * REF_T + i]);
                worst = d > worst ? d : worst;
            }
            /* each row a distribution over positions up to its own */
            for (int q = 0; q < REF_T; q++) {
                double sum = 0;
                for (int k = 0; k < REF_T; k++) {
                    if (k > q)
                        assert_true(a[q * REF_T + k] == 0.0f);
                    sum += a[q * REF_T + k];
                }
                assert_true(fabs(sum - 1.0) < 1e-6);
            }
        }
    assert_true(worst < 1e-5);
    ps_model_free(m);
}

static void test_logit_lens(void **state)
{
    (void)state;
    ps_model *m = reference_model();
    float *lens = malloc((size_t)(REF_L + 1) * REF_V * sizeof *lens);
    float *probs = malloc(REF_V * sizeof *probs);
    assert_int_equal(ps_probe_lens(m, 0, REF_T - 1, lens, NULL), PS_OK);
    for (int s = 0; s <= REF_L; s++) {
        ps_softmax(probs, lens + (size_t)s * REF_V, REF_V, 1.0f);
        for (int v = 0; v < REF_V; v++)
            assert_true(fabs(probs[v] - ref_lens_probs[s * REF_V + v]) < 1e-5);
    }
    /* the last stage is the model's own prediction */
    const float *logits = ps_model_logits(m, 0, REF_T - 1);
    for (int v = 0; v < REF_V; v++) {
        assert_true(fabsf(lens[REF_L * REF_V + v] - logits[v]) < 1e-5f);
        assert_true(fabs(logits[v] - ref_logits_last[v]) < 1e-4);
    }
    ps_error err;
    assert_int_equal(ps_probe_lens(m, 0, REF_T, lens, &err), PS_ERR_RANGE);
    free(probs);
    free(lens);
    ps_model_free(m);
}

static void test_attribution(void **state)
{
    (void)state;
    ps_model *m = reference_model();
    ps_attribution a;
    assert_int_equal(ps_probe_attribute(m, 0, REF_T - 1, REF_TOP, &a, NULL), PS_OK);
    for (int i = 0; i < REF_L * REF_NH; i++)
        assert_true(fabs(a.head[i] - ref_attr_heads[i]) < 1e-5);
    for (int l = 0; l < REF_L; l++) {
        assert_true(fabs(a.attn_bias[l] - ref_attr_bias[l]) < 1e-5);
        assert_true(fabs(a.mlp[l] - ref_attr_mlp[l]) < 1e-5);
    }
    assert_true(fabs(a.token_embed - ref_attr_token) < 1e-5);
    assert_true(fabs(a.pos_embed - ref_attr_pos) < 1e-5);
    assert_true(fabs(a.lnf_bias - ref_attr_lnf_bias) < 1e-5);
    /* the identity: the parts add up to the logit */
    assert_true(fabs(a.total - a.logit) < 1e-4);
    assert_true(fabs(a.logit - ref_logits_last[REF_TOP]) < 1e-4);
    ps_attribution_clear(&a);

    ps_error err;
    assert_int_equal(ps_probe_attribute(m, 0, 0, REF_V, &a, &err), PS_ERR_RANGE);
    ps_model_free(m);
}

static void test_neuron(void **state)
{
    (void)state;
    ps_model *m = reference_model();
    float act[REF_T];
    assert_int_equal(ps_probe_neuron(m, REF_NEURON_LAYER, REF_NEURON, 0, act, NULL), PS_OK);
    for (int t = 0; t < REF_T; t++)
        assert_true(fabs(act[t] - ref_neuron[t]) < 1e-5);
    ps_error err;
    assert_int_equal(ps_probe_neuron(m, REF_L, 0, 0, act, &err), PS_ERR_RANGE);
    assert_int_equal(ps_probe_neuron(m, 0, 4 * REF_C, 0, act, &err), PS_ERR_RANGE);
    ps_model_free(m);
}

/* The scan's hits are the largest activations a plain forward over each
 * window gives, at the right stream positions. */
static void test_neuron_scan(void **state)
{
    (void)state;
    ps_model *m = reference_model();
    size_t n = 53;                       /* 6 windows of 8 and one of 5 */
    int tok[53];
    for (size_t i = 0; i < n; i++)
        tok[i] = (int)((i * 7 + 3) % REF_V);
    ps_neuron_scan *s = NULL;
    assert_int_equal(ps_neuron_scan_run(&s, m, tok, n, REF_NCTX, 4, 3, NULL, NULL, NULL), PS_OK);
    /* brute force for one neuron */
    float all[53];
    for (size_t w = 0; w < n; w += REF_NCTX) {
        int T = n - w < REF_NCTX ? (int)(n - w) : REF_NCTX;
        assert_int_equal(ps_model_forward(m, tok + w, 1, T, NULL), PS_OK);
        assert_int_equal(ps_probe_neuron(m, REF_NEURON_LAYER, REF_NEURON, 0, all + w, NULL), PS_OK);
    }
    const ps_neuron_hit *h = ps_neuron_scan_hits(s, REF_NEURON_LAYER, REF_NEURON);
    for (int i = 0; i < 3; i++) {
        assert_true(h[i].pos < n);
        assert_true(fabsf(h[i].act - all[h[i].pos]) < 1e-6f);
        if (i)
            assert_true(h[i].act <= h[i - 1].act);
        int above = 0;
        for (size_t j = 0; j < n; j++)
            above += all[j] > h[i].act;
        assert_int_equal(above, i);
    }
    ps_neuron_scan_free(s);
    ps_model_free(m);
}

/* ---- activation patching ---- */

static double ld_at_end(ps_model *m, int answer, int wrong)
{
    const float *z = ps_model_logits(m, 0, m->T - 1);
    return (double)z[answer] - z[wrong];
}

static void test_patching(void **state)
{
    (void)state;
    ps_model *m = reference_model();
    const int *clean = ref_ids;
    int corrupt[REF_T];
    memcpy(corrupt, ref_ids, sizeof corrupt);
    corrupt[2] = 7;                       /* the prompts differ at position 2 only */
    int answer = REF_TOP, wrong = 2;
    ps_patching p;
    assert_int_equal(ps_probe_patch(m, clean, corrupt, REF_T, answer, wrong, &p, NULL), PS_OK);
    assert_true(fabs(p.ld_clean - p.ld_corrupt) > 1e-2);
    for (int l = 0; l <= REF_L; l++)
        for (int t = 0; t < 2; t++)       /* before the difference: nothing to restore */
            assert_true(fabs(p.resid[l * REF_T + t]) < 1e-9);
    /* the only differing embedding, or the whole last residual: all of it */
    assert_true(fabs(p.resid[0 * REF_T + 2] - 1.0) < 1e-5);
    assert_true(fabs(p.resid[REF_L * REF_T + REF_T - 1] - 1.0) < 1e-5);

    /* one experiment of each kind against a plain run of the same edit */
    int C = REF_C, hd = REF_C / REF_NH, l = 1, pos = 3, h = 1;
    float clean_res[REF_C], clean_y[REF_T * REF_C];
    assert_int_equal(ps_model_forward(m, clean, 1, REF_T, NULL), PS_OK);
    memcpy(clean_res, m->acts.resid3 + (size_t)(l - 1) * REF_T * C + pos * C, sizeof clean_res);
    memcpy(clean_y, m->acts.atty + (size_t)l * REF_T * C, sizeof clean_y);
    assert_int_equal(ps_model_forward(m, corrupt, 1, REF_T, NULL), PS_OK);
    memcpy(m->acts.resid3 + (size_t)(l - 1) * REF_T * C + pos * C, clean_res, sizeof clean_res);
    assert_int_equal(ps_model_forward_from(m, l, 0, NULL), PS_OK);
    double want = (ld_at_end(m, answer, wrong) - p.ld_corrupt) / (p.ld_clean - p.ld_corrupt);
    assert_true(fabs(p.resid[l * REF_T + pos] - want) < 1e-5);

    assert_int_equal(ps_model_forward(m, corrupt, 1, REF_T, NULL), PS_OK);
    for (int t = 0; t < REF_T; t++)
        memcpy(m->acts.atty + (size_t)l * REF_T * C + t * C + h * hd, clean_y + t * C + h * hd,
               (size_t)hd * sizeof(float));
    assert_int_equal(ps_model_forward_from(m, l, 1, NULL), PS_OK);
    want = (ld_at_end(m, answer, wrong) - p.ld_corrupt) / (p.ld_clean - p.ld_corrupt);
    assert_true(fabs(p.head[l * REF_NH + h] - want) < 1e-5);
    /* and the heads differ: a swapped order would be seen */
    assert_true(fabs(p.head[l * REF_NH + 0] - p.head[l * REF_NH + 1]) > 1e-3);
    ps_patching_clear(&p);
    ps_model_free(m);
}

/* ---- saliency ---- */

static double logp_at_end(ps_model *m, int token)
{
    const float *z = ps_model_logits(m, 0, m->T - 1);
    double mx = z[0], sum = 0;
    for (int v = 1; v < REF_V; v++)
        mx = z[v] > mx ? z[v] : mx;
    for (int v = 0; v < REF_V; v++)
        sum += exp((double)z[v] - mx);
    return (double)z[token] - mx - log(sum);
}

static void test_saliency(void **state)
{
    (void)state;
    ps_model *m = reference_model();
    float norm[REF_T], gxi[REF_T], g[REF_T * REF_C], x[REF_T * REF_C];
    assert_int_equal(ps_probe_saliency(m, REF_TOP, norm, gxi, NULL), PS_OK);
    memcpy(g, ps_model_input_grad(m, 0), sizeof g);
    memcpy(x, m->acts.encoded, sizeof x);
    double gmax = 0;
    for (int i = 0; i < REF_T * REF_C; i++)
        gmax = fabs(g[i]) > gmax ? fabs(g[i]) : gmax;
    /* central differences on every component of every position's input */
    const float eps = 2e-3f;
    double worst = 0;
    for (int t = 0; t < REF_T; t++) {
        double n2 = 0, dot = 0;
        for (int i = 0; i < REF_C; i++) {
            assert_int_equal(ps_model_forward(m, ref_ids, 1, REF_T, NULL), PS_OK);
            float *xi = m->acts.encoded + (size_t)t * REF_C + i, x0 = *xi;
            *xi = x0 + eps;
            assert_int_equal(ps_model_forward_from(m, 0, 0, NULL), PS_OK);
            double up = logp_at_end(m, REF_TOP);
            *xi = x0 - eps;
            assert_int_equal(ps_model_forward_from(m, 0, 0, NULL), PS_OK);
            double down = logp_at_end(m, REF_TOP);
            double fd = (up - down) / (2 * eps), d = fabs(fd - g[t * REF_C + i]);
            worst = d > worst ? d : worst;
            n2 += (double)g[t * REF_C + i] * g[t * REF_C + i];
            dot += (double)g[t * REF_C + i] * x[t * REF_C + i];
        }
        assert_true(fabs(norm[t] - sqrt(n2)) < 1e-5 * (1 + sqrt(n2)));
        assert_true(fabs(gxi[t] - dot) < 1e-6);
    }
    assert_true(worst < 2e-3 * gmax);
    /* the last position matters most here; not every position equally */
    assert_true(norm[REF_T - 1] > norm[0]);
    ps_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention_patterns),
        cmocka_unit_test(test_logit_lens),
        cmocka_unit_test(test_attribution),
        cmocka_unit_test(test_neuron),
        cmocka_unit_test(test_neuron_scan),
        cmocka_unit_test(test_patching),
        cmocka_unit_test(test_saliency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
