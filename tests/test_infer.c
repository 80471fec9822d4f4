/* Inference with the key/value cache against the training forward.
 *
 * The reference is ps_model_forward's logits at the last position (itself
 * checked against a double-precision model in test_model.c).  Tolerance: every
 * logit within 1e-5 of max(1, |reference|) — both paths run the same kernels
 * in float; only the products differ (sgemv for a few rows, sgemm of other
 * shapes), so they agree to rounding: 2.7e-6 at worst here, with these
 * deliberately large weights, on BLIS's skx, haswell and zen3 kernels.  (On
 * GPT-2 124M's shapes with its initialisation both paths are within 2.8e-6
 * of a double-precision forward, and within 2.7e-6 of each other.)
 *
 * Models are built here from a seed with weights N(0, 0.3) (biases and
 * LayerNorm parameters random too), so that logits spread over several units
 * and a wrong position, mask or stale key shows. */
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
#include "paramscope/infer.h"
#include "paramscope/model.h"
#include "paramscope/perturb.h"
#include "paramscope/rng.h"

#define TOL 1e-5

static const ps_config tiny = {.n_layer = 2, .n_head = 2, .n_embd = 16, .n_ctx = 16, .vocab_size = 23};

static ps_model *make_model(const ps_config *cfg, uint64_t seed, float std)
{
    ps_model *m = NULL;
    assert_int_equal(ps_model_init(&m, cfg, NULL), PS_OK);
    ps_rng rng;
    ps_rng_seed(&rng, seed);
    for (int i = 0; i < m->n_params; i++) {
        ps_param *p = &m->params[i];
        int ln_weight = p->kind == PS_PARAM_KIND_NORM && strstr(p->name, ".weight");
        for (size_t j = 0; j < p->numel; j++) {
            float z = ps_rng_normal(&rng);
            p->data[j] = ln_weight ? 1.0f + 0.2f * z : (p->is_bias ? 0.1f * z : std * z);
        }
    }
    return m;
}

static void random_ids(int *ids, int n, int V, uint64_t seed)
{
    ps_rng rng;
    ps_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++)
        ids[i] = (int)ps_rng_below(&rng, (uint32_t)V);
}

/* Largest |a - ref| / max(1, |ref|) against the full forward over ids [n]. */
static double err_vs_forward(ps_model *m, const float *a, const int *ids, int n)
{
    assert_non_null(a);
    assert_int_equal(ps_model_forward(m, ids, 1, n, NULL), PS_OK);
    const float *ref = ps_model_logits(m, 0, n - 1);
    double worst = 0;
    for (int v = 0; v < m->cfg.vocab_size; v++) {
        double e = fabs((double)a[v] - ref[v]) / fmax(1.0, fabs(ref[v]));
        worst = e > worst ? e : worst;
    }
    return worst;
}

static void assert_matches(ps_model *m, const ps_infer *inf, const int *ids, int n)
{
    double e = err_vs_forward(m, ps_infer_logits(inf), ids, n);
    if (e > TOL)
        fail_msg("length %d: logits differ from the full forward by %g (tolerance %g)", n, e, TOL);
}

/* max |a - b|: to show that an edit or a position matters at all. */
static double max_diff(const float *a, const float *b, int n)
{
    double d = 0;
    for (int i = 0; i < n; i++)
        d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* ---- prefill, growth, prefix reuse ---- */

static void test_prefill_matches_forward(void **state)
{
    (void)state;
    ps_model *m = make_model(&tiny, 1, 0.3f);
    ps_infer *inf = NULL;
    assert_int_equal(ps_infer_init(&inf, m, NULL), PS_OK);
    assert_null(ps_infer_logits(inf));
    int ids[16];
    random_ids(ids, 16, tiny.vocab_size, 2);
    int lens[] = {1, 2, 7, 16};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        ps_infer_reset(inf);
        assert_int_equal(ps_infer_prompt(inf, ids, lens[i], NULL), PS_OK);
        assert_int_equal(ps_infer_len(inf), lens[i]);
        assert_int_equal(ps_infer_last_computed(inf), lens[i]);
        assert_matches(m, inf, ids, lens[i]);
    }
    /* The logits spread over several units: the tolerance is meaningful. */
    float lo = 1e30f, hi = -1e30f;
    for (int v = 0; v < tiny.vocab_size; v++) {
        lo = fminf(lo, ps_infer_logits(inf)[v]);
        hi = fmaxf(hi, ps_infer_logits(inf)[v]);
    }
    assert_true(hi - lo > 1.0f);
    ps_infer_free(inf);
    ps_model_free(m);
}

static void test_append_one_at_a_time(void **state)
{
    (void)state;
    ps_model *m = make_model(&tiny, 3, 0.3f);
    ps_infer *inf = NULL;
    assert_int_equal(ps_infer_init(&inf, m, NULL), PS_OK);
    int ids[16];
    random_ids(ids, 16, tiny.vocab_size, 4);
    float prev[23];
    for (int n = 1; n <= tiny.n_ctx; n++) {
        assert_int_equal(ps_infer_append(inf, ids + n - 1, 1, NULL), PS_OK);
        assert_int_equal(ps_infer_len(inf), n);
        assert_int_equal(ps_infer_last_computed(inf), 1);
        assert_matches(m, inf, ids, n);
        if (n > 1)   /* each position gives a new distribution */
            assert_true(max_diff(prev, ps_infer_logits(inf), tiny.vocab_size) > 1e-3);
        memcpy(prev, ps_infer_logits(inf), sizeof prev);
    }
    /* uneven groups: 3, 1, 5, 7 */
    int groups[] = {3, 1, 5, 7}, at = 0;
    ps_infer_reset(inf);
    assert_null(ps_infer_logits(inf));
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        assert_int_equal(ps_infer_append(inf, ids + at, groups[g], NULL), PS_OK);
        at += groups[g];
        assert_matches(m, inf, ids, at);
    }
    assert_int_equal(at, tiny.n_ctx);
    ps_infer_free(inf);
    ps_model_free(m);
}

static void test_prefix_reuse(void **state)
{
    (void)state;
    ps_model *m = make_model(&tiny, 5, 0.3f);
    ps_infer *inf = NULL;
    assert_int_equal(ps_infer_init(&inf, m, NULL), PS_OK);
    int ids[16];
    random_ids(ids, 16, tiny.vocab_size, 6);

    assert_int_equal(ps_infer_prompt(inf, ids, 10, NULL), PS_OK);
    assert_int_equal(ps_infer_last_computed(inf), 10);
    /* typing on: only the new tokens run */
    assert_int_equal(ps_infer_prompt(inf, ids, 12, NULL), PS_OK);
    assert_int_equal(ps_infer_last_computed(inf), 2);
    assert_matches(m, inf, ids, 12);
    /* the same prompt again: nothing runs */
    assert_int_equal(ps_infer_prompt(inf, ids, 12, NULL), PS_OK);
    assert_int_equal(ps_infer_last_computed(inf), 0);
    assert_matches(m, inf, ids, 12);
    /* backspace to a prefix: its last token is recomputed for its logits */
    assert_int_equal(ps_infer_prompt(inf, ids, 6, NULL), PS_OK);
    assert_int_equal(ps_infer_last_computed(inf), 1);
    assert_int_equal(ps_infer_len(inf), 6);
    assert_matches(m, inf, ids, 6);
    /* a different word in the middle: from there on */
    assert_int_equal(ps_infer_prompt(inf, ids, 14, NULL), PS_OK);
    int other[16];
    memcpy(other, ids, sizeof other);
    other[3] = (other[3] + 1) % tiny.vocab_size;
    assert_int_equal(ps_infer_prompt(inf, other, 14, NULL), PS_OK);
    assert_int_equal(ps_infer_last_computed(inf), 11);
    assert_matches(m, inf, other, 14);
    assert_int_equal(memcmp(ps_infer_ids(inf), other, sizeof(int) * 14), 0);
    /* a different first token: everything */
    other[0] = (other[0] + 1) % tiny.vocab_size;
    assert_int_equal(ps_infer_prompt(inf, other, 5, NULL), PS_OK);
    assert_int_equal(ps_infer_last_computed(inf), 5);
    assert_matches(m, inf, other, 5);
    /* append after a prompt continues it */
    assert_int_equal(ps_infer_append(inf, other + 5, 4, NULL), PS_OK);
    assert_matches(m, inf, other, 9);
    ps_infer_free(inf);
    ps_model_free(m);
}

/* Generation as the generate commands do it: the window of the last n_ctx
 * tokens through ps_infer_prompt, greedy, past n_ctx (the window slides and
 * the cache is rebuilt). */
static void test_generation_sliding_window(void **state)
{
    (void)state;
    ps_model *m = make_model(&tiny, 7, 0.3f);
    ps_infer *inf = NULL;
    assert_int_equal(ps_infer_init(&inf, m, NULL), PS_OK);
    int ctx[40];
    random_ids(ctx, 3, tiny.vocab_size, 8);
    int len = 3, n_ctx = tiny.n_ctx, slides = 0;
    while (len < 40) {
        int first = len > n_ctx ? len - n_ctx : 0;
        assert_int_equal(ps_infer_prompt(inf, ctx + first, len - first, NULL), PS_OK);
        if (first == 0)
            assert_int_equal(ps_infer_last_computed(inf), len == 3 ? 3 : 1);
        else
            slides += ps_infer_last_computed(inf) == n_ctx;
        const float *lg = ps_infer_logits(inf);
        assert_matches(m, inf, ctx + first, len - first);
        int best = 0;
        for (int v = 1; v < tiny.vocab_size; v++)
            best = lg[v] > lg[best] ? v : best;
        ctx[len++] = best;
    }
    assert_true(slides > 0);
    ps_infer_free(inf);
    ps_model_free(m);
}

/* Prompts longer than one chunk (PS_INFER_CHUNK rows) and a cache that grows
 * several times. */
static void test_long_prompt_in_chunks(void **state)
{
    (void)state;
    const ps_config cfg = {.n_layer = 2, .n_head = 4, .n_embd = 16, .n_ctx = 300, .vocab_size = 23};
    ps_model *m = make_model(&cfg, 9, 0.3f);
    ps_infer *inf = NULL;
    assert_int_equal(ps_infer_init(&inf, m, NULL), PS_OK);
    int ids[300];
    random_ids(ids, 300, cfg.vocab_size, 10);
    assert_int_equal(ps_infer_prompt(inf, ids, 2 * PS_INFER_CHUNK + 5, NULL), PS_OK);
    assert_matches(m, inf, ids, 2 * PS_INFER_CHUNK + 5);
    size_t bytes = ps_infer_bytes(inf);
    assert_int_equal(ps_infer_append(inf, ids + 2 * PS_INFER_CHUNK + 5, 300 - 2 * PS_INFER_CHUNK - 5, NULL), PS_OK);
    assert_matches(m, inf, ids, 300);
    assert_true(ps_infer_bytes(inf) > bytes);
    /* from one token, growing through 64, 128, 256, 300 positions */
    ps_infer_reset(inf);
    for (int n = 1; n <= 300; n++) {
        assert_int_equal(ps_infer_append(inf, ids + n - 1, 1, NULL), PS_OK);
        if (n % 37 == 0 || n == 64 || n == 65 || n == 300)
            assert_matches(m, inf, ids, n);
    }
    ps_infer_free(inf);
    ps_model_free(m);
}

/* GPT-2's own initialisation (std 0.02) on a wider model: the shapes where
 * float rounding of a real checkpoint shows. */
static void test_gpt2_init_wider(void **state)
{
    (void)state;
    const ps_config cfg = {.n_layer = 4, .n_head = 4, .n_embd = 64, .n_ctx = 64, .vocab_size = 101};
    ps_model *m = NULL;
    assert_int_equal(ps_model_init(&m, &cfg, NULL), PS_OK);
    ps_model_init_random(m, 11);
    ps_infer *inf = NULL;
    assert_int_equal(ps_infer_init(&inf, m, NULL), PS_OK);
    int ids[64];
    random_ids(ids, 64, cfg.vocab_size, 12);
    assert_int_equal(ps_infer_prompt(inf, ids, 40, NULL), PS_OK);
    assert_matches(m, inf, ids, 40);
    for (int n = 41; n <= 64; n++) {
        assert_int_equal(ps_infer_append(inf, ids + n - 1, 1, NULL), PS_OK);
        assert_matches(m, inf, ids, n);
    }
    ps_infer_free(inf);
    ps_model_free(m);
}

/* Rows of n_embd > 256: the single-row products sum over the input in blocks
 * (infer.c's GEMV_KB), here 272 = 256 + 16 and 4 x 272 = 4 x 256 + 64. */
static void test_wide_rows_in_blocks(void **state)
{
    (void)state;
    const ps_config cfg = {.n_layer = 1, .n_head = 2, .n_embd = 272, .n_ctx = 8, .vocab_size = 23};
    ps_model *m = make_model(&cfg, 21, 0.06f);   /* 0.06 sqrt(272): gain ~1 */
    ps_infer *inf = NULL;
    assert_int_equal(ps_infer_init(&inf, m, NULL), PS_OK);
    int ids[8];
    random_ids(ids, 8, cfg.vocab_size, 22);
    for (int n = 1; n <= 8; n++) {
        assert_int_equal(ps_infer_append(inf, ids + n - 1, 1, NULL), PS_OK);
        assert_matches(m, inf, ids, n);
    }
    ps_infer_free(inf);
    ps_model_free(m);
}

/* ---- staleness ---- */

static void test_invalidation_after_edits(void **state)
{
    (void)state;
    ps_model *m = make_model(&tiny, 13, 0.3f);
    ps_infer *inf = NULL;
    ps_perturb *j = NULL;
    assert_int_equal(ps_infer_init(&inf, m, NULL), PS_OK);
    assert_int_equal(ps_perturb_init(&j, m, NULL), PS_OK);
    int ids[16];
    random_ids(ids, 16, tiny.vocab_size, 14);
    float before[23];
    assert_int_equal(ps_infer_prompt(inf, ids, 10, NULL), PS_OK);
    memcpy(before, ps_infer_logits(inf), sizeof before);

    /* an edit through the journal: a key weight of layer 0 (it reaches the
     * last position only through the cached keys) */
    ps_region r = ps_region_element(ps_model_find(m, "h.0.attn.c_attn.weight"), 3, tiny.n_embd + 1);
    assert_int_equal(ps_perturb_set(j, &r, 1, 4.0f, NULL, NULL), PS_OK);
    assert_int_equal(ps_infer_prompt(inf, ids, 10, NULL), PS_OK);
    assert_int_equal(ps_infer_last_computed(inf), 10);
    assert_matches(m, inf, ids, 10);
    assert_true(max_diff(before, ps_infer_logits(inf), tiny.vocab_size) > 1e-3);

    /* undo brings the old values back, and the old logits */
    assert_int_equal(ps_perturb_undo(j, NULL), PS_OK);
    assert_int_equal(ps_infer_prompt(inf, ids, 10, NULL), PS_OK);
    assert_int_equal(ps_infer_last_computed(inf), 10);
    assert_matches(m, inf, ids, 10);
    assert_true(max_diff(before, ps_infer_logits(inf), tiny.vocab_size) < 1e-5);
    /* redo, then append: the cached tokens are recomputed first */
    assert_int_equal(ps_perturb_redo(j, NULL), PS_OK);
    assert_int_equal(ps_infer_append(inf, ids + 10, 2, NULL), PS_OK);
    assert_int_equal(ps_infer_last_computed(inf), 12);
    assert_matches(m, inf, ids, 12);

    /* a value of wpe at a cached position, written by hand with version++ */
    assert_int_equal(ps_infer_prompt(inf, ids, 12, NULL), PS_OK);
    memcpy(before, ps_infer_logits(inf), sizeof before);
    ps_model_find(m, "wpe.weight")->data[2 * tiny.n_embd + 5] += 3.0f;
    m->version++;
    assert_int_equal(ps_infer_prompt(inf, ids, 12, NULL), PS_OK);
    assert_int_equal(ps_infer_last_computed(inf), 12);
    assert_matches(m, inf, ids, 12);
    assert_true(max_diff(before, ps_infer_logits(inf), tiny.vocab_size) > 1e-3);

    /* by hand without version++: the contract is broken and the cache is
     * reused (this is why writers must bump); ps_infer_invalidate repairs it */
    ps_model_find(m, "h.1.mlp.c_fc.weight")->data[7] += 3.0f;
    assert_int_equal(ps_infer_prompt(inf, ids, 12, NULL), PS_OK);
    assert_int_equal(ps_infer_last_computed(inf), 0);
    assert_true(err_vs_forward(m, ps_infer_logits(inf), ids, 12) > 1e-4);
    ps_infer_invalidate(inf);
    assert_int_equal(ps_infer_prompt(inf, ids, 12, NULL), PS_OK);
    assert_int_equal(ps_infer_last_computed(inf), 12);
    assert_matches(m, inf, ids, 12);

    ps_perturb_free(j);
    ps_infer_free(inf);
    ps_model_free(m);
}

/* A model freed and another made at the same address starts at version 0:
 * simulated by resetting the version of a model whose values change. */
static void test_new_model_at_same_address(void **state)
{
    (void)state;
    ps_model *m = make_model(&tiny, 15, 0.3f);
    ps_infer *inf = NULL;
    assert_int_equal(ps_infer_attach(&inf, m, NULL), PS_OK);
    ps_infer *first = inf;
    int ids[8];
    random_ids(ids, 8, tiny.vocab_size, 16);
    assert_int_equal(ps_infer_prompt(inf, ids, 8, NULL), PS_OK);
    assert_true(m->version >> 32 != 0);    /* given an epoch */

    ps_model *other = make_model(&tiny, 17, 0.3f);
    memcpy(m->w, other->w, m->n_floats * sizeof(float));
    ps_model_free(other);
    m->version = 0;
    assert_int_equal(ps_infer_attach(&inf, m, NULL), PS_OK);
    assert_ptr_equal(inf, first);          /* same pointer, same config: kept */
    assert_int_equal(ps_infer_prompt(inf, ids, 8, NULL), PS_OK);
    assert_int_equal(ps_infer_last_computed(inf), 8);
    assert_matches(m, inf, ids, 8);

    /* another configuration: a new state */
    ps_config cfg = tiny;
    cfg.n_layer = 1;
    ps_model *small = make_model(&cfg, 18, 0.3f);
    assert_int_equal(ps_infer_attach(&inf, small, NULL), PS_OK);
    assert_int_equal(ps_infer_len(inf), 0);
    assert_int_equal(ps_infer_prompt(inf, ids, 8, NULL), PS_OK);
    assert_matches(small, inf, ids, 8);
    ps_infer_free(inf);
    ps_model_free(small);
    ps_model_free(m);
}

/* ---- errors ---- */

static void test_errors_leave_cache(void **state)
{
    (void)state;
    ps_model *m = make_model(&tiny, 19, 0.3f);
    ps_infer *inf = NULL;
    ps_error err = {0};
    assert_int_equal(ps_infer_init(&inf, m, NULL), PS_OK);
    int ids[17];
    random_ids(ids, 17, tiny.vocab_size, 20);
    assert_int_equal(ps_infer_prompt(inf, ids, 17, &err), PS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "longer than n_ctx 16"));
    assert_int_equal(ps_infer_prompt(inf, ids, 0, &err), PS_ERR_INVALID);
    assert_int_equal(ps_infer_append(inf, ids, 0, &err), PS_ERR_INVALID);

    assert_int_equal(ps_infer_prompt(inf, ids, 12, &err), PS_OK);
    float keep[23];
    memcpy(keep, ps_infer_logits(inf), sizeof keep);
    assert_int_equal(ps_infer_append(inf, ids + 12, 5, &err), PS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "12 cached tokens and 5 new ones are more than n_ctx 16"));
    int bad[2] = {1, 23};
    assert_int_equal(ps_infer_append(inf, bad, 2, &err), PS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "token id 23 at position 1"));
    bad[1] = -1;
    assert_int_equal(ps_infer_prompt(inf, bad, 2, &err), PS_ERR_RANGE);
    /* nothing changed */
    assert_int_equal(ps_infer_len(inf), 12);
    assert_true(max_diff(keep, ps_infer_logits(inf), tiny.vocab_size) == 0.0);
    assert_int_equal(ps_infer_append(inf, ids + 12, 4, &err), PS_OK);
    assert_matches(m, inf, ids, 16);
    assert_int_equal(ps_infer_append(inf, ids, 1, &err), PS_ERR_RANGE);
    ps_infer_free(inf);
    ps_infer_free(NULL);
    ps_model_free(m);
}

/* Where the first non-finite value appears, through the cache (rerun) and
 * through the training forward's activations: the same stage, named the
 * same way, and the cached logits unchanged by the search. */
static void test_find_nonfinite(void **state)
{
    (void)state;
    static const struct { const char *param; size_t at; float v; const char *want; } cases[] = {
        {"wpe.weight", 3, NAN, "embeddings"},
        {"h.0.attn.c_attn.bias", 5, INFINITY, "block 0 (attention)"},
        {"h.1.mlp.c_fc.weight", 17, NAN, "block 1 (MLP)"},
        {"h.1.attn.c_proj.bias", 2, 3e38f, NULL},           /* finite, may overflow later */
        {"ln_f.weight", 4, NAN, "ln_f"},
    };
    int ids[6] = {1, 5, 7, 2, 9, 4};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ps_model *m = make_model(&tiny, 77, 0.05f);
        ps_infer *inf = NULL;
        char where[48], where2[48];
        assert_int_equal(ps_infer_init(&inf, m, NULL), PS_OK);
        assert_int_equal(ps_infer_prompt(inf, ids, 6, NULL), PS_OK);
        assert_int_equal(ps_infer_find_nonfinite(inf, where, sizeof where), 0);
        assert_string_equal(where, "");
        ps_param *p = ps_model_find(m, cases[k].param);
        p->data[cases[k].at] = cases[k].v;
        m->version++;
        assert_int_equal(ps_infer_prompt(inf, ids, 6, NULL), PS_OK);
        float before[23];
        memcpy(before, ps_infer_logits(inf), sizeof before);
        int found = ps_infer_find_nonfinite(inf, where, sizeof where);
        assert_int_equal(ps_model_forward(m, ids, 1, 6, NULL), PS_OK);
        int found2 = ps_model_find_nonfinite(m, where2, sizeof where2);
        assert_int_equal(found, found2);
        if (cases[k].want) {
            assert_true(found);
            assert_string_equal(where, cases[k].want);
        }
        assert_string_equal(where, where2);
        assert_memory_equal(ps_infer_logits(inf), before, sizeof before);
        ps_infer_free(inf);
        ps_model_free(m);
    }
    char name[48];
    ps_forward_stage_name(12, 26, name, sizeof name);
    assert_string_equal(name, "the LM head");
    ps_forward_stage_name(12, 24, name, sizeof name);
    assert_string_equal(name, "block 11 (MLP)");
}

int main(void)
{
    ps_blas_init(0, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefill_matches_forward),
        cmocka_unit_test(test_append_one_at_a_time),
        cmocka_unit_test(test_prefix_reuse),
        cmocka_unit_test(test_generation_sliding_window),
        cmocka_unit_test(test_long_prompt_in_chunks),
        cmocka_unit_test(test_gpt2_init_wider),
        cmocka_unit_test(test_wide_rows_in_blocks),
        cmocka_unit_test(test_invalidation_after_edits),
        cmocka_unit_test(test_new_model_at_same_address),
        cmocka_unit_test(test_errors_leave_cache),
        cmocka_unit_test(test_find_nonfinite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
