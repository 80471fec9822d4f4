/* The trainer: phases and what each leaves behind, learning, determinism,
 * and the guard against non-finite values. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "paramscope/blas.h"
#include "paramscope/trainer.h"

static const ps_config cfg = {.n_layer = 2, .n_head = 2, .n_embd = 32, .n_ctx = 16, .vocab_size = 13};

/* A repeating sequence of period 7 over 13 symbols: fully predictable after
 * the first token of a window. */
static int *repeating(size_t n)
{
    static const int pattern[7] = {3, 1, 4, 1, 5, 9, 2};
    int *t = malloc(n * sizeof *t);
    for (size_t i = 0; i < n; i++)
        t[i] = pattern[i % 7];
    return t;
}

static ps_model *model(void)
{
    ps_model *m = NULL;
    assert_int_equal(ps_model_init(&m, &cfg, NULL), PS_OK);
    ps_model_init_random(m, 42);
    return m;
}

static ps_train_config train_cfg(const ps_model *m)
{
    ps_train_config c = ps_train_defaults(m);
    c.batch = 4;
    c.seq = 16;
    c.sched.lr = 1e-2f;
    c.keep_update = 1;
    return c;
}

static void test_phases_and_observables(void **state)
{
    (void)state;
    ps_model *m = model();
    int *tok = repeating(700);
    ps_trainer *t = NULL;
    ps_train_config c = train_cfg(m);
    assert_int_equal(ps_trainer_init(&t, m, tok, 700, &c, NULL), PS_OK);
    assert_int_equal(t->n_train, 630);
    ps_phase ran;
    float *before = malloc(m->n_floats * sizeof(float));
    memcpy(before, m->w, m->n_floats * sizeof(float));

    assert_int_equal(ps_trainer_phase(t, &ran, NULL), PS_OK);
    assert_int_equal(ran, PS_PHASE_FORWARD);
    assert_int_equal(t->next, PS_PHASE_LOSS);
    /* the batch is windows of the stream: each target is the next input */
    for (int b = 0; b < 4; b++)
        for (int i = 0; i + 1 < 16; i++)
            assert_int_equal(t->targets[b * 16 + i], t->inputs[b * 16 + i + 1]);

    assert_int_equal(ps_trainer_phase(t, &ran, NULL), PS_OK);
    assert_int_equal(ran, PS_PHASE_LOSS);
    /* an untrained model is close to uniform: loss near log(13) */
    assert_true(fabsf(t->loss - logf(13.0f)) < 0.2f);
    double mean_nll = 0;
    for (int i = 0; i < 64; i++) {
        assert_true(t->target_probs[i] > 0.0f && t->target_probs[i] < 1.0f);
        mean_nll -= log(t->target_probs[i]) / 64;
    }
    assert_true(fabs(mean_nll - t->loss) < 1e-4);

    assert_int_equal(ps_trainer_phase(t, &ran, NULL), PS_OK);
    assert_int_equal(ran, PS_PHASE_BACKWARD);
    assert_true(t->grad_norm > 0.0);
    double sq = 0;
    for (int i = 0; i < m->n_params; i++)
        sq += t->param_grad_norm[i] * t->param_grad_norm[i];
    assert_true(fabs(sqrt(sq) - t->grad_norm) < 1e-9 * t->grad_norm);
    /* nothing has changed the parameters yet */
    assert_memory_equal(before, m->w, m->n_floats * sizeof(float));

    assert_int_equal(ps_trainer_phase(t, &ran, NULL), PS_OK);
    assert_int_equal(ran, PS_PHASE_UPDATE);
    assert_int_equal(t->step, 1);
    assert_int_equal(t->next, PS_PHASE_FORWARD);
    assert_true(t->lr == 1e-2f);
    /* delta is exactly new - old, and the ratio matches it */
    for (size_t i = 0; i < m->n_floats; i += 97)
        assert_true(t->delta[i] == m->w[i] - before[i]);
    ps_param *p = ps_model_find(m, "h.0.mlp.c_fc.weight");
    double du = 0, dw = 0;
    for (size_t i = 0; i < p->numel; i++) {
        du += (double)t->delta[p->offset + i] * t->delta[p->offset + i];
        dw += (double)before[p->offset + i] * before[p->offset + i];
    }
    int pi = ps_model_param_index(m, p);
    assert_true(fabs(t->param_update_ratio[pi] - sqrt(du / dw)) < 1e-3 * sqrt(du / dw));
    assert_int_equal(t->n_train_hist, 1);
    free(before);
    ps_trainer_free(t);
    free(tok);
    ps_model_free(m);
}

static void test_learns_repeating_sequence(void **state)
{
    (void)state;
    ps_model *m = model();
    int *tok = repeating(2000);
    ps_trainer *t = NULL;
    ps_train_config c = train_cfg(m);
    assert_int_equal(ps_trainer_init(&t, m, tok, 2000, &c, NULL), PS_OK);
    /* Stated target: from log(13) = 2.56 to below 0.15 within 150 steps (the
     * first token of each window is unpredictable, which costs about
     * log(7) / 16 = 0.12 of mean loss at best, so 0.15 means it learned). */
    for (int i = 0; i < 150; i++)
        assert_int_equal(ps_trainer_step(t, NULL), PS_OK);
    float val;
    assert_int_equal(ps_trainer_eval(t, 0, &val, NULL), PS_OK);
    assert_true(t->loss < 0.15f);
    assert_true(val < 0.15f);
    assert_int_equal(t->n_val_hist, 1);
    ps_trainer_free(t);
    free(tok);
    ps_model_free(m);
}

static void run_losses(float *out, int n)
{
    ps_model *m = model();
    int *tok = repeating(500);
    ps_trainer *t = NULL;
    ps_train_config c = train_cfg(m);
    assert_int_equal(ps_trainer_init(&t, m, tok, 500, &c, NULL), PS_OK);
    for (int i = 0; i < n; i++) {
        assert_int_equal(ps_trainer_step(t, NULL), PS_OK);
        out[i] = t->loss;
    }
    ps_trainer_free(t);
    free(tok);
    ps_model_free(m);
}

static void test_deterministic(void **state)
{
    (void)state;
    float a[10], b[10];
    run_losses(a, 10);
    run_losses(b, 10);
    assert_memory_equal(a, b, sizeof a);   /* bit-identical */
    assert_true(a[9] < a[0]);
}

static void test_nan_leaves_parameters(void **state)
{
    (void)state;
    ps_model *m = model();
    int *tok = repeating(500);
    ps_trainer *t = NULL;
    ps_train_config c = train_cfg(m);
    assert_int_equal(ps_trainer_init(&t, m, tok, 500, &c, NULL), PS_OK);
    assert_int_equal(ps_trainer_step(t, NULL), PS_OK);
    float *before = malloc(m->n_floats * sizeof(float));
    memcpy(before, m->w, m->n_floats * sizeof(float));
    float *mom = malloc(m->n_floats * sizeof(float));
    memcpy(mom, t->opt->m, m->n_floats * sizeof(float));
    ps_phase ran;
    for (int i = 0; i < 3; i++)
        assert_int_equal(ps_trainer_phase(t, &ran, NULL), PS_OK);
    assert_int_equal(ran, PS_PHASE_BACKWARD);
    m->grad[12345 % m->n_floats] = NAN;
    ps_error err;
    assert_int_equal(ps_trainer_phase(t, &ran, &err), PS_ERR_NUMERIC);
    assert_non_null(strstr(err.msg, "step 2"));
    assert_memory_equal(before, m->w, m->n_floats * sizeof(float));
    assert_memory_equal(mom, t->opt->m, m->n_floats * sizeof(float));
    assert_int_equal(t->step, 1);
    assert_true(t->last_skipped);
    assert_int_equal(t->next, PS_PHASE_FORWARD);
    /* and training goes on afterwards */
    assert_int_equal(ps_trainer_step(t, NULL), PS_OK);
    assert_int_equal(t->step, 2);
    assert_false(t->last_skipped);
    free(before);
    free(mom);
    ps_trainer_free(t);
    free(tok);
    ps_model_free(m);
}

static void test_bad_settings(void **state)
{
    (void)state;
    ps_model *m = model();
    int *tok = repeating(100);
    ps_trainer *t = NULL;
    ps_error err;
    ps_train_config c = train_cfg(m);
    c.seq = 17;
    assert_int_equal(ps_trainer_init(&t, m, tok, 100, &c, &err), PS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "n_ctx 16"));
    c.seq = 16;
    assert_int_equal(ps_trainer_init(&t, m, tok, 12, &c, &err), PS_ERR_RANGE);
    c.val_fraction = 0.9f;
    assert_int_equal(ps_trainer_init(&t, m, tok, 100, &c, &err), PS_ERR_RANGE);
    c.val_fraction = 0.0f;
    assert_int_equal(ps_trainer_init(&t, m, tok, 100, &c, &err), PS_OK);
    float v;
    assert_int_equal(ps_trainer_eval(t, 0, &v, &err), PS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "validation split"));
    assert_int_equal(ps_trainer_set_shape(t, 0, 8, &err), PS_ERR_RANGE);
    assert_int_equal(ps_trainer_set_shape(t, 2, 8, &err), PS_OK);
    assert_int_equal(ps_trainer_step(t, &err), PS_OK);
    ps_trainer_free(t);
    free(tok);
    ps_model_free(m);
}

int main(void)
{
    ps_blas_init(0, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phases_and_observables),
        cmocka_unit_test(test_learns_repeating_sequence),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_nan_leaves_parameters),
        cmocka_unit_test(test_bad_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
