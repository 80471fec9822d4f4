/* Tests of the commands that change parameters, run through ps_repl_exec on
 * a tiny model written to a temporary folder: each edit's values against an
 * arena edited by hand here, the line each prints, failures that change
 * nothing, undo/redo/reset/diff/history, and a long random mix of edits
 * undone to the file's exact bits. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "paramscope/blas.h"
#include "paramscope/model_file.h"
#include "paramscope/rng.h"
#include "repl/repl.h"

/* ---- fixture ---- */

#define C 16            /* n_embd */
#define NH 4            /* n_head */
#define HD (C / NH)
#define L 2

static const char *const VOCAB[] = {
    "<unk>", "the", "sky", "is", "blue", ".", "sea", "green", "a", "cat", "sat",
};
#define N_VOCAB (int)(sizeof VOCAB / sizeof VOCAB[0])

static char dir[] = "/tmp/ps-test-edit-XXXXXX";
static char model_path[300];

typedef struct fixture {
    ps_session s;
    ps_model *m;              /* = s.lm.model */
    float *file;              /* [n_floats] the file's values */
    float *want;              /* [n_floats] what the test expects now */
    char *text;
    ps_error err;
} fixture;

static int group_setup(void **state)
{
    (void)state;
    ps_blas_init(1, NULL);
    if (!mkdtemp(dir))
        return -1;
    snprintf(model_path, sizeof model_path, "%s/m.safetensors", dir);
    ps_config cfg = {.n_layer = L, .n_head = NH, .n_embd = C, .n_ctx = 8,
                     .vocab_size = N_VOCAB};
    ps_model *m = NULL;
    ps_tokenizer *tok = NULL;
    ps_error err = {0};
    if (ps_model_init(&m, &cfg, &err) || ps_tokenizer_from_list(&tok, VOCAB, N_VOCAB, &err))
        return -1;
    ps_model_init_random(m, 3);
    /* biases are zero after init: give them values so that edits show */
    for (int i = 0; i < m->n_params; i++) {
        ps_param *p = &m->params[i];
        if (p->ndim == 1)
            for (size_t k = 0; k < p->numel; k++)
                p->data[k] += 0.01f * (float)((k * 7 + (size_t)i) % 11) - 0.05f;
    }
    int rc = ps_model_save(m, tok, NULL, model_path, &err);
    if (rc)
        fprintf(stderr, "setup: %s\n", err.msg);
    ps_model_free(m);
    ps_tokenizer_free(tok);
    return rc;
}

static int group_teardown(void **state)
{
    (void)state;
    unlink(model_path);
    rmdir(dir);
    return 0;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    ps_error err = {0};
    if (!f || ps_session_open(&f->s, model_path, &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        free(f);
        return -1;
    }
    f->m = f->s.lm.model;
    size_t bytes = sizeof(float) * f->m->n_floats;
    f->file = malloc(bytes);
    f->want = malloc(bytes);
    memcpy(f->file, f->m->w, bytes);
    memcpy(f->want, f->m->w, bytes);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ps_session_close(&f->s);
    free(f->file);
    free(f->want);
    free(f->text);
    free(f);
    return 0;
}

static int run(fixture *f, const char *line)
{
    free(f->text);
    f->text = NULL;
    size_t len;
    ps_out out = {0};
    out.f = open_memstream(&f->text, &len);
    out.width = 80;
    int rc = ps_repl_exec(&f->s, line, &out);
    fclose(out.f);
    f->err = out.err;
    return rc;
}

static void run_ok(fixture *f, const char *line)
{
    int rc = run(f, line);
    if (rc)
        fail_msg("'%s' failed (%d): %s", line, rc, f->err.msg);
}

static void run_err(fixture *f, const char *line, int code, const char *want)
{
    int rc = run(f, line);
    if (rc == 0)
        fail_msg("'%s' succeeded; expected an error with \"%s\"; printed:\n%s", line, want,
                 f->text);
    if (rc != code)
        fail_msg("'%s': code %d, expected %d: %s", line, rc, code, f->err.msg);
    if (!strstr(f->err.msg, want))
        fail_msg("'%s': message \"%s\" lacks \"%s\"", line, f->err.msg, want);
    assert_null(strchr(f->err.msg, '\n'));
}

static void expect_text(fixture *f, const char *want)
{
    if (!strstr(f->text, want))
        fail_msg("output lacks \"%s\":\n%s", want, f->text);
}

static ps_param *P(fixture *f, const char *name)
{
    ps_param *p = ps_model_find(f->m, name);
    if (!p)
        fail_msg("no parameter %s", name);
    return p;
}

/* The expected copy of parameter `name`. */
static float *W(fixture *f, const char *name)
{
    return f->want + P(f, name)->offset;
}

/* The model must hold exactly the expected bits. */
static void check_model(fixture *f, const char *after)
{
    for (int i = 0; i < f->m->n_params; i++) {
        const ps_param *p = &f->m->params[i];
        const float *w = f->want + p->offset;
        for (size_t k = 0; k < p->numel; k++)
            if (memcmp(&p->data[k], &w[k], sizeof(float)))
                fail_msg("after '%s': %s[%zu] is %.9g, expected %.9g", after, p->name, k,
                         (double)p->data[k], (double)w[k]);
    }
}

static void run_check(fixture *f, const char *line)
{
    run_ok(f, line);
    check_model(f, line);
}

/* ---- set, scale, add, zero ---- */

static void test_set(void **state)
{
    fixture *f = *state;
    float old = W(f, "h.0.attn.c_attn.weight")[3 * 3 * C + 17];
    W(f, "h.0.attn.c_attn.weight")[3 * 3 * C + 17] = 0.5f;
    run_check(f, "h.0.attn.c_attn.weight[3,17] = 0.5");
    char line[160];
    snprintf(line, sizeof line, "set h.0.attn.c_attn.weight[3,17] to 0.5 (was %.9g)\n",
             (double)old);
    assert_string_equal(f->text, line);

    /* a slice: rows 1..2, columns 0..3 of wte */
    for (int i = 1; i < 3; i++)
        for (int j = 0; j < 4; j++)
            W(f, "wte.weight")[i * C + j] = -2.0f;
    run_check(f, "wte[1:3, 0:4] = -2");
    assert_string_equal(f->text, "set wte.weight[1:3,0:4] (8 values) to -2\n");

    /* a view: the query block of head 1 in layer 1 */
    for (int i = 0; i < C; i++)
        for (int j = 0; j < HD; j++)
            W(f, "h.1.attn.c_attn.weight")[i * 3 * C + HD + j] = 0.25f;
    run_check(f, "h.1.attn.q[1] = 0.25");
    expect_text(f, "set h.1.attn.q[1] (64 values in h.1.attn.c_attn.weight) to 0.25");
    assert_int_equal(ps_perturb_count(f->s.journal), 3);
}

static void test_scale_add_zero(void **state)
{
    fixture *f = *state;
    ps_param *fc = P(f, "h.0.mlp.c_fc.weight");
    for (size_t k = 0; k < fc->numel; k++)
        W(f, "h.0.mlp.c_fc.weight")[k] *= -1.5f;
    run_check(f, "scale h.0.mlp.c_fc.weight -1.5");
    assert_string_equal(f->text, "scaled h.0.mlp.c_fc.weight (1,024 values) by -1.5\n");

    for (int j = 0; j < C; j++)
        W(f, "wte.weight")[4 * C + j] += 0.125f;
    run_check(f, "add wte[\"blue\"] 0.125");
    assert_string_equal(f->text, "added 0.125 to wte[\"blue\"] (16 values in wte.weight)\n");

    for (int j = 2; j < 6; j++)
        W(f, "ln_f.bias")[j] = 0.0f;
    run_check(f, "zero ln_f.bias[2:6]");
    assert_string_equal(f->text, "zeroed ln_f.bias[2:6] (4 values)\n");

    /* doing it again changes nothing, and says so */
    run_check(f, "zero ln_f.bias[2:6]");
    expect_text(f, "(no value changed)");
    run_check(f, "scale wte 1");
    expect_text(f, "(no value changed)");
}

/* ---- noise ---- */

/* x + sigma * n_i, n_i the i-th normal of a generator seeded with seed. */
static void noise_block(float *w, size_t ld, size_t rows, size_t col0, size_t cols, float sigma,
                        uint64_t seed)
{
    ps_rng r;
    ps_rng_seed(&r, seed);
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) {
            float d = sigma * ps_rng_normal(&r);
            w[i * ld + col0 + j] = w[i * ld + col0 + j] + d;
        }
}

static uint64_t printed_seed(fixture *f)
{
    const char *p = strstr(f->text, "seed ");
    if (!p)
        fail_msg("no seed in: %s", f->text);
    return strtoull(p + 5, NULL, 10);
}

static void test_noise(void **state)
{
    fixture *f = *state;
    noise_block(W(f, "h.0.attn.c_attn.weight"), 3 * C, C, 2 * C + 3 * HD, HD, 0.5f, 99);
    run_check(f, "noise h.0.attn.v[3] 0.5 99");
    assert_string_equal(f->text, "added noise (sigma 0.5, seed 99) to h.0.attn.v[3] (64 values in "
                                 "h.0.attn.c_attn.weight)\n");

    /* without a seed: the session's generator picks one and prints it */
    run_ok(f, "set seed 7");
    run_ok(f, "noise wpe 0.1");
    uint64_t seed = printed_seed(f);
    noise_block(W(f, "wpe.weight"), C, 8, 0, C, 0.1f, seed);
    check_model(f, "noise wpe 0.1");
    /* a failed noise does not move the generator; a new one gets a new seed */
    run_ok(f, "undo");
    memcpy(W(f, "wpe.weight"), f->file + P(f, "wpe.weight")->offset, sizeof(float) * 8 * C);
    run_ok(f, "set seed 7");
    run_err(f, "noise wpe -1", PS_ERR_RANGE, "SIGMA -1 must be a finite number >= 0");
    run_err(f, "noise wpx 1", PS_ERR_NOT_FOUND, "no tensor 'wpx'");
    run_ok(f, "noise wpe 0.1");
    assert_true(printed_seed(f) == seed);
    run_ok(f, "noise wpe 0.1");
    assert_true(printed_seed(f) != seed);
}

/* ---- prune, quantize ---- */

static void test_prune(void **state)
{
    fixture *f = *state;
    ps_param *p = P(f, "h.1.mlp.c_proj.weight");
    size_t n = p->numel, k = n * 30 / 100;
    run_ok(f, "prune h.1.mlp.c_proj.weight 30%");
    char want[128];
    snprintf(want, sizeof want, "pruned h.1.mlp.c_proj.weight (1,024 values): zeroed the %zu "
             "smallest |x| (30%%)\n", k);
    assert_string_equal(f->text, want);
    /* the zeroed ones are exactly k, and none is larger than a survivor */
    const float *old = f->file + p->offset;
    size_t zeroed = 0;
    double max_gone = 0, min_kept = INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (p->data[i] == 0.0f && old[i] != 0.0f) {
            zeroed++;
            max_gone = fabs(old[i]) > max_gone ? fabs(old[i]) : max_gone;
        } else {
            assert_memory_equal(&p->data[i], &old[i], sizeof(float));
            min_kept = fabs(old[i]) < min_kept ? fabs(old[i]) : min_kept;
        }
    }
    assert_int_equal(zeroed, k);
    assert_true(max_gone <= min_kept);
    run_ok(f, "prune ln_f.weight 50");
    expect_text(f, "zeroed the 8 smallest |x| (50%)");
    run_err(f, "prune wte 101", PS_ERR_RANGE, "PERCENT 101 is not in [0, 100]");
    run_err(f, "prune wte -1%", PS_ERR_RANGE, "not in [0, 100]");
    run_err(f, "prune wte half", PS_ERR_INVALID, "'half' is not a number");
}

static void test_quantize(void **state)
{
    fixture *f = *state;
    ps_param *p = P(f, "h.0.attn.c_proj.weight");
    float *w = W(f, "h.0.attn.c_proj.weight");
    double amax = 0;
    for (size_t i = 0; i < p->numel; i++)
        amax = fabs(w[i]) > amax ? fabs(w[i]) : amax;
    double step = amax / 7.0, err_sum = 0, err_max = 0;   /* 4 bits: qmax 7 */
    for (size_t i = 0; i < p->numel; i++) {
        double q = round(w[i] / step);
        float y = (float)(q * step);
        double e = fabs((double)y - (double)w[i]);
        err_sum += e;
        err_max = e > err_max ? e : err_max;
        w[i] = y;
    }
    run_check(f, "quantize h.0.attn.c_proj.weight 4");
    char want[256];
    snprintf(want, sizeof want, "quantized h.0.attn.c_proj.weight (256 values) to 4 bits\n"
             "  mean error %.3g, max %.3g; 132 bytes instead of 1.0 kB as float32 (12.9%%)\n",
             err_sum / 256, err_max);
    assert_string_equal(f->text, want);
    run_err(f, "quantize wte 1", PS_ERR_RANGE, "BITS: 1 is not in [2, 16]");
    run_err(f, "quantize wte 17", PS_ERR_RANGE, "BITS: 17 is not in [2, 16]");
    run_err(f, "quantize wte 4.5", PS_ERR_INVALID, "'4.5' is not a whole number");
}

/* ---- ablate ---- */

static void test_ablate(void **state)
{
    fixture *f = *state;
    int h = 2;
    float *w = W(f, "h.1.attn.c_attn.weight"), *b = W(f, "h.1.attn.c_attn.bias"),
          *o = W(f, "h.1.attn.c_proj.weight");
    for (int part = 0; part < 3; part++) {
        for (int i = 0; i < C; i++)
            for (int j = 0; j < HD; j++)
                w[i * 3 * C + part * C + h * HD + j] = 0.0f;
        for (int j = 0; j < HD; j++)
            b[part * C + h * HD + j] = 0.0f;
    }
    for (int i = h * HD; i < (h + 1) * HD; i++)
        for (int j = 0; j < C; j++)
            o[i * C + j] = 0.0f;
    run_check(f, "ablate head 1.2");
    assert_string_equal(f->text, "ablated head 1.2: zeroed its q, k, v and c_proj rows (268 "
                                 "values)\n");

    float *fc = W(f, "h.0.mlp.c_fc.weight"), *fb = W(f, "h.0.mlp.c_fc.bias"),
          *pr = W(f, "h.0.mlp.c_proj.weight");
    for (int i = 0; i < C; i++)
        fc[i * 4 * C + 37] = 0.0f;
    fb[37] = 0.0f;
    for (int j = 0; j < C; j++)
        pr[37 * C + j] = 0.0f;
    run_check(f, "ablate neuron 0.37");
    assert_string_equal(f->text, "ablated neuron 0.37: zeroed its c_fc column, bias and c_proj "
                                 "row (33 values)\n");

    run_err(f, "ablate head 1.4", PS_ERR_RANGE, "head 4 is out of range");
    run_err(f, "ablate head 2.0", PS_ERR_RANGE, "layer 2");
    run_err(f, "ablate neuron 0.64", PS_ERR_RANGE, "neuron 64 is out of range");
    run_err(f, "ablate head 1", PS_ERR_INVALID, "'1' is not LAYER.HEAD, as in 0.3");
    run_err(f, "ablate head x.1", PS_ERR_INVALID, "is not LAYER.HEAD");
    run_err(f, "ablate head -1.2", PS_ERR_INVALID, "is not LAYER.HEAD");
    run_err(f, "ablate neuron 1.2.3", PS_ERR_INVALID, "is not LAYER.NEURON");
    run_err(f, "ablate", PS_ERR_INVALID, "needs one of: head, neuron");
    check_model(f, "failed ablations");
    assert_int_equal(ps_perturb_count(f->s.journal), 2);
}

/* ---- failures change nothing ---- */

static void test_failures_change_nothing(void **state)
{
    fixture *f = *state;
    for (size_t k = 0; k < (size_t)N_VOCAB * C; k++)
        W(f, "wte.weight")[k] *= 2;
    run_check(f, "scale wte 2");
    ps_rng rng = f->s.rng;
    static const struct { const char *line; int code; const char *msg; } bad[] = {
        {"h.0.attn.c_atn.weight[0,0] = 1", PS_ERR_NOT_FOUND,
         "did you mean 'h.0.attn.c_attn.weight'?"},
        {"wte[11] = 1", PS_ERR_RANGE, "row 11 is out of range"},
        {"wte[0] = one", PS_ERR_INVALID, "VALUE: 'one' is not a number"},
        {"wte[0] = 1e39", PS_ERR_RANGE, "beyond float32's range"},
        {"wte[0] = nan", PS_ERR_INVALID, "'nan' is NaN, not a number"},
        {"wte[0] = inf", PS_ERR_RANGE, "VALUE: 'inf' is infinite; parameters are kept finite"},
        {"wte[0] = -inf", PS_ERR_RANGE, "'-inf' is infinite"},
        {"scale wte -infinity", PS_ERR_RANGE, "scale: FACTOR: '-infinity' is infinite"},
        {"add wte inf", PS_ERR_RANGE, "add: VALUE: 'inf' is infinite"},
        {"wte[0] = 1e999", PS_ERR_INVALID, "'1e999' is above the range of numbers"},
        {"wte[0] = 1e-400", PS_ERR_INVALID, "'1e-400' is below the range of numbers"},
        {"scale wte", PS_ERR_INVALID, "usage: scale ADDR FACTOR"},
        {"scale wte x", PS_ERR_INVALID, "FACTOR: 'x' is not a number"},
        {"scale wte 2 3", PS_ERR_INVALID, "usage: scale ADDR FACTOR"},
        {"add h.9.ln_1.bias 1", PS_ERR_RANGE, "layer 9"},
        {"add wte[0:0] 1", PS_ERR_INVALID, "empty"},
        {"zero", PS_ERR_INVALID, "usage: zero ADDR"},
        {"noise wte inf", PS_ERR_RANGE, "noise: SIGMA: 'inf' is infinite"},
        {"noise wte 1 -5", PS_ERR_RANGE, "SEED: -5 is not in"},
        {"zero wte[\"moon\"]", PS_ERR_NOT_FOUND, "'moon' is not in the vocabulary"},
        {"reset wte[99]", PS_ERR_RANGE, "row 99 is out of range"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        run_err(f, bad[i].line, bad[i].code, bad[i].msg);
        check_model(f, bad[i].line);
        assert_int_equal(ps_perturb_count(f->s.journal), 1);
    }
    assert_memory_equal(&f->s.rng, &rng, sizeof rng);
}

/* Parameters stay finite: an edit whose result overflows float32 (scale,
 * add) is refused like typing inf, naming the first value, and changes
 * nothing; a huge finite value is allowed. */
static void test_nonfinite_results_refused(void **state)
{
    fixture *f = *state;
    run_ok(f, "h.0.ln_1.bias[2] = 3e38");
    assert_true(P(f, "h.0.ln_1.bias")->data[2] > 2.9e38f);
    float before[C];
    memcpy(before, P(f, "h.0.ln_1.bias")->data, sizeof before);
    run_err(f, "scale h.0.ln_1.bias 10", PS_ERR_NUMERIC,
            "scale would make 1 finite value infinite (the first: h.0.ln_1.bias[2] would be inf)");
    run_err(f, "add h.0.ln_1.bias[2] 3e38", PS_ERR_NUMERIC, "h.0.ln_1.bias[2] would be inf");
    run_err(f, "scale h.0.ln_1.bias[2:3] -2", PS_ERR_NUMERIC, "would be -inf");
    assert_memory_equal(P(f, "h.0.ln_1.bias")->data, before, sizeof before);
    assert_int_equal(ps_perturb_count(f->s.journal), 1);
    run_ok(f, "scale h.0.ln_1.bias 1.1");          /* 3.3e38 still fits */
    assert_true(isfinite(P(f, "h.0.ln_1.bias")->data[2]));
}

/* ---- undo, redo, reset, history, diff ---- */

static void test_undo_redo_history(void **state)
{
    fixture *f = *state;
    run_err(f, "undo", PS_ERR_STATE, "nothing to undo: no edits yet");
    run_err(f, "redo", PS_ERR_STATE, "nothing to redo");
    run_ok(f, "history");
    assert_string_equal(f->text, "no edits yet\n");
    run_ok(f, "scale h.0.mlp.c_fc.weight 0");
    run_ok(f, "add ln_f.bias 1");
    run_ok(f, "ablate head 0.1");
    run_ok(f, "undo");
    assert_string_equal(f->text, "undid: ablate head 0.1 (2 more to undo)\n");
    run_ok(f, "history");
    const char *a = strstr(f->text, "1  scale h.0.mlp.c_fc.weight 0");
    const char *b = strstr(f->text, "2  add ln_f.bias 1");
    const char *now = strstr(f->text, "-- now (redo re-applies what follows) --");
    const char *c = strstr(f->text, "3  ablate head 0.1");
    assert_true(a && b && now && c && a < b && b < now && now < c);
    assert_non_null(strstr(c, "(undone)"));
    const char *undone = strstr(a, "(undone)");
    assert_true(undone > c);              /* only the third entry is undone */
    expect_text(f, "3 entries, 2 applied");
    run_ok(f, "redo");
    assert_string_equal(f->text, "redid: ablate head 0.1\n");
    run_ok(f, "undo");
    run_ok(f, "undo");
    assert_string_equal(f->text, "undid: add ln_f.bias 1 (1 more to undo)\n");
    run_ok(f, "undo");
    assert_string_equal(f->text, "undid: scale h.0.mlp.c_fc.weight 0\n");
    check_model(f, "three undos");
    run_err(f, "undo", PS_ERR_STATE, "nothing to undo (`redo` goes forward)");
    /* a new edit drops what was undone */
    run_ok(f, "zero wte[0]");
    run_err(f, "redo", PS_ERR_STATE, "nothing to redo");
}

static void test_reset(void **state)
{
    fixture *f = *state;
    run_ok(f, "reset");
    assert_string_equal(f->text, "nothing to reset: every parameter has the file's values\n");
    run_ok(f, "scale wte 3");
    run_ok(f, "zero h.1.mlp.c_fc.bias");
    run_ok(f, "add ln_f.weight 1");
    for (size_t k = 0; k < (size_t)N_VOCAB * C; k++)
        W(f, "wte.weight")[k] *= 3;
    memset(W(f, "h.1.mlp.c_fc.bias"), 0, sizeof(float) * 4 * C);
    for (int j = 0; j < C; j++)
        W(f, "ln_f.weight")[j] += 1;
    check_model(f, "three edits");

    /* one row back: the rest stays scaled */
    memcpy(W(f, "wte.weight") + 5 * C, f->file + P(f, "wte.weight")->offset + 5 * C,
           sizeof(float) * C);
    run_check(f, "reset wte[5]");
    expect_text(f, "reset wte[\".\"] (16 values in wte.weight) to the file's values");
    run_ok(f, "reset wte[5]");
    expect_text(f, "already has the file's values");
    /* one tensor */
    memcpy(W(f, "h.1.mlp.c_fc.bias"), f->file + P(f, "h.1.mlp.c_fc.bias")->offset,
           sizeof(float) * 4 * C);
    run_check(f, "reset h.1.mlp.c_fc.bias");
    assert_string_equal(f->text, "reset h.1.mlp.c_fc.bias (64 values) to the file's values\n");
    /* everything, as one entry that undo takes back */
    run_ok(f, "reset");
    expect_text(f, "reset 2 tensors (192 values) to the file's values");
    assert_memory_equal(f->m->w, f->file, sizeof(float) * f->m->n_floats);
    run_ok(f, "undo");
    check_model(f, "undo of reset");
    run_ok(f, "history");
    expect_text(f, "reset all");
}

static void test_diff(void **state)
{
    fixture *f = *state;
    run_ok(f, "diff");
    assert_string_equal(f->text, "every parameter has the file's values\n");
    run_ok(f, "scale h.0.mlp.c_fc.weight 2");
    run_ok(f, "h.1.ln_2.bias[3] = 7");
    run_ok(f, "diff");
    /* L2 and max of the change, computed here */
    ps_param *p = P(f, "h.0.mlp.c_fc.weight");
    const float *old = f->file + p->offset;
    double sq = 0, mx = 0;
    for (size_t k = 0; k < p->numel; k++) {
        double d = (double)p->data[k] - (double)old[k];
        sq += d * d;
        mx = fabs(d) > mx ? fabs(d) : mx;
    }
    const char *row = strstr(f->text, "h.0.mlp.c_fc.weight ");
    assert_non_null(row);
    char changed[32], total[32];
    double l2, max;
    assert_int_equal(sscanf(row, "h.0.mlp.c_fc.weight %31s / %31s %lf %lf", changed, total, &l2,
                            &max), 4);
    assert_string_equal(total, "1,024");
    assert_true(fabs(l2 - sqrt(sq)) <= 1e-3 * sqrt(sq));
    assert_true(fabs(max - mx) <= 1e-3 * mx);
    row = strstr(f->text, "h.1.ln_2.bias ");
    assert_non_null(row);
    assert_int_equal(sscanf(row, "h.1.ln_2.bias %31s / %31s %lf %lf", changed, total, &l2, &max),
                     4);
    assert_string_equal(changed, "1");
    double d = 7.0 - (double)f->file[P(f, "h.1.ln_2.bias")->offset + 3];
    assert_true(fabs(l2 - fabs(d)) <= 1e-3 * fabs(d));
    expect_text(f, "2 tensors differ from the file");
    expect_text(f, "(run `predict TEXT` to see here how its predictions moved)");
}

/* With a prompt, diff shows each top token's probability now and under the
 * file's values, which it swaps in for a moment and back, bit for bit. */
static void test_diff_predictions(void **state)
{
    fixture *f = *state;
    run_ok(f, "predict the sky is");
    run_ok(f, "scale h.1.mlp.c_proj.weight 40");
    run_ok(f, "add wte[\"sky\"] 0.5");
    size_t bytes = sizeof(float) * f->m->n_floats;
    float *before = malloc(bytes);
    memcpy(before, f->m->w, bytes);
    run_ok(f, "diff");
    assert_memory_equal(f->m->w, before, bytes);
    expect_text(f, "next token after \"the sky is\":");

    /* the reference: the file itself, and the model now */
    ps_model *fm = NULL;
    ps_tokenizer *tok = NULL;
    ps_error err = {0};
    assert_int_equal(ps_model_load(&fm, &tok, NULL, model_path, &err), PS_OK);
    ps_prediction pf, pn;
    assert_int_equal(ps_predict(&pf, fm, tok, "the sky is", 1.0f, 5, &err), PS_OK);
    assert_int_equal(ps_predict(&pn, f->m, tok, "the sky is", 1.0f, 5, &err), PS_OK);
    double tv = 0;
    for (int i = 0; i < N_VOCAB; i++)
        tv += fabs((double)pn.probs[i] - (double)pf.probs[i]);
    char want[128];
    snprintf(want, sizeof want, "%.1f%% of the probability moved", 50 * tv);
    expect_text(f, want);
    /* every token on top now is listed with both probabilities */
    for (int i = 0; i < pn.k; i++) {
        const char *t = VOCAB[pn.top[i]];
        char key[64];
        snprintf(key, sizeof key, "\n  %s ", t);
        const char *row = strstr(f->text, key);
        if (!row)
            fail_msg("no row for '%s' in:\n%s", t, f->text);
        double now, file;
        char name[32];
        assert_int_equal(sscanf(row + 1, "%31s %lf%% %lf%%", name, &now, &file), 3);
        assert_true(fabs(now - 100.0 * pn.probs[pn.top[i]]) < 0.006);
        assert_true(fabs(file - 100.0 * pf.probs[pn.top[i]]) < 0.006);
    }
    ps_prediction_free(&pf);
    ps_prediction_free(&pn);
    ps_model_free(fm);
    ps_tokenizer_free(tok);
    free(before);
}

/* ---- the bit-exact undo ---- */

static const char *const TENSORS[] = {
    "wte", "wpe", "h.0.ln_1.weight", "h.0.attn.c_attn.weight", "h.0.attn.c_attn.bias",
    "h.0.attn.c_proj.weight", "h.1.mlp.c_fc.weight", "h.1.mlp.c_proj.bias", "ln_f.bias",
    "h.1.attn.q[0]", "h.0.attn.k[1:3]", "h.1.attn.v", "h.0.attn.head[2]", "h.1.mlp.neuron[9]",
    "wte[\"cat\"]", "wpe[3][2:9]", "h.0.mlp.c_fc.weight[3:9, 10:50]", "h.1.attn.c_attn.weight[:, 5]",
    "h.0.ln_2.bias[7]", "h.1.mlp.c_proj.weight[-1, -1]",
};
#define N_TENSORS (int)(sizeof TENSORS / sizeof TENSORS[0])

static const char *const NUMBERS[] = {"0", "-0", "1", "-1", "2.5", "1e-3", "-7.25", "inf", "-inf",
                                      "3e38", "1e-40"};
#define N_NUMBERS (int)(sizeof NUMBERS / sizeof NUMBERS[0])

/* Many random edits of every kind, with undo, redo and resets among them
 * (also attempts at infinities and overflows, which are refused, negative
 * zeros and subnormals); then
 * undo to the start must give the file's bits back, checked against the file
 * read again; and redo to the end the same bits as before. */
static void test_undo_bit_exact(void **state)
{
    fixture *f = *state;
    ps_rng r;
    ps_rng_seed(&r, 20240611);
    char line[256];
    int n_ok = 0;
    for (int step = 0; step < 400; step++) {
        const char *t = TENSORS[ps_rng_below(&r, N_TENSORS)];
        const char *x = NUMBERS[ps_rng_below(&r, N_NUMBERS)];
        switch (ps_rng_below(&r, 14)) {
        case 0: snprintf(line, sizeof line, "%s = %s", t, x); break;
        case 1: snprintf(line, sizeof line, "scale %s %s", t, x); break;
        case 2: snprintf(line, sizeof line, "add %s %s", t, x); break;
        case 3: snprintf(line, sizeof line, "noise %s 0.%u", t, ps_rng_below(&r, 100)); break;
        case 4: snprintf(line, sizeof line, "zero %s", t); break;
        case 5: snprintf(line, sizeof line, "prune %s %u", t, ps_rng_below(&r, 101)); break;
        case 6: snprintf(line, sizeof line, "quantize %s %u", t, 2 + ps_rng_below(&r, 15)); break;
        case 7: snprintf(line, sizeof line, "ablate head %u.%u", ps_rng_below(&r, L),
                         ps_rng_below(&r, NH)); break;
        case 8: snprintf(line, sizeof line, "ablate neuron %u.%u", ps_rng_below(&r, L),
                         ps_rng_below(&r, 4 * C)); break;
        case 9: snprintf(line, sizeof line, "undo"); break;
        case 10: snprintf(line, sizeof line, "redo"); break;
        case 11: snprintf(line, sizeof line, "reset %s", t); break;
        case 12: snprintf(line, sizeof line, ps_rng_below(&r, 8) ? "undo" : "reset"); break;
        default: snprintf(line, sizeof line, "%s = %s", t, x); break;
        }
        int rc = run(f, line);
        /* undo/redo at the ends fail, and so do edits that overflow float,
         * give inf or would make a value non-finite (scale 3e38 twice) */
        if (rc && rc != PS_ERR_STATE && rc != PS_ERR_RANGE && rc != PS_ERR_NUMERIC)
            fail_msg("'%s': %s", line, f->err.msg);
        n_ok += rc == 0;
    }
    assert_true(n_ok > 300);
    assert_true(ps_perturb_count(f->s.journal) > 20);
    size_t bytes = sizeof(float) * f->m->n_floats;
    float *end = malloc(bytes);
    memcpy(end, f->m->w, bytes);
    assert_true(memcmp(end, f->file, bytes) != 0);

    int applied = ps_perturb_cursor(f->s.journal), undone = 0;
    while (run(f, "undo") == PS_OK)
        undone++;
    assert_int_equal(f->err.code, PS_ERR_STATE);
    assert_int_equal(undone, applied);
    assert_int_equal(ps_perturb_cursor(f->s.journal), 0);

    ps_model *fm = NULL;
    ps_error err = {0};
    assert_int_equal(ps_model_load(&fm, NULL, NULL, model_path, &err), PS_OK);
    assert_int_equal(fm->n_floats, f->m->n_floats);
    for (int i = 0; i < fm->n_params; i++)
        if (memcmp(fm->params[i].data, f->m->params[i].data, sizeof(float) * fm->params[i].numel))
            fail_msg("after undoing everything, %s differs from the file", fm->params[i].name);
    ps_model_free(fm);

    for (int i = 0; i < applied; i++)
        run_ok(f, "redo");
    assert_memory_equal(f->m->w, end, bytes);
    free(end);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scale_add_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noise, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quantize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ablate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_change_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nonfinite_results_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_undo_redo_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diff_predictions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_undo_bit_exact, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
