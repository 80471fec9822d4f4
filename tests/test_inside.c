/* The views inside the forward pass on a Hugging Face GPT-2 folder: the
 * folder's model (loaded through the HF reader, with its byte-level BPE)
 * gives the same numbers as the engine's probes on the values it was written
 * from, and every view runs as a command of the language on it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "paramscope/kernels.h"
#include "paramscope/sample.h"
#include "paramscope/probe.h"
#include "repl/command.h"
#include "repl/repl.h"
#include "support/hf_folder.h"

static const ps_config cfg = {.n_layer = 2, .n_head = 2, .n_embd = 16, .n_ctx = 16,
                              .vocab_size = SUPPORT_BPE_VOCAB};
static char dir[] = "/tmp/ps-test-inside-XXXXXX";
static ps_model *native;
static ps_session s;

/* GPT-2's initialisation, then biases and gains moved off their defaults so
 * that every part of the network shows in the numbers. */
static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir) || ps_model_init(&native, &cfg, NULL))
        return -1;
    ps_model_init_random(native, 9);
    for (int i = 0; i < native->n_params; i++) {
        ps_param *p = &native->params[i];
        for (size_t j = 0; j < p->numel; j++)
            p->data[j] += (float)(0.05 * sin(0.37 * (double)(j + 11 * i)));
    }
    ps_error err;
    if (support_write_hf_folder(dir, native, 1) || ps_session_open(&s, dir, &err))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ps_session_close(&s);
    ps_model_free(native);
    const char *names[] = {"config.json", "model.safetensors", "vocab.json", "merges.txt"};
    char p[256];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    return rmdir(dir);
}

static json_t *run_json(const char *line)
{
    char *text = NULL;
    size_t len;
    ps_out out = {.width = 80};
    out.f = open_memstream(&text, &len);
    int rc = ps_repl_exec(&s, line, &out);
    fclose(out.f);
    if (rc)
        fprintf(stderr, "%s: %s\n", line, out.err.msg);
    assert_int_equal(rc, PS_OK);
    json_error_t je;
    json_t *o = json_loads(text, 0, &je);
    free(text);
    assert_non_null(o);
    return o;
}

/* The prompt's ids as the folder's tokenizer encodes it. */
static int encode(const char *text, int *ids)
{
    ps_tokens t;
    assert_int_equal(ps_tokenizer_encode(s.lm.tok, text, &t, NULL), PS_OK);
    int n = t.n;
    memcpy(ids, t.ids, (size_t)n * sizeof *ids);
    ps_tokens_free(&t);
    return n;
}

static void test_attention_and_lens_match(void **state)
{
    (void)state;
    const char *text = "the theat he";
    int ids[32], T = encode(text, ids);
    assert_true(T >= 4);
    assert_int_equal(ps_model_forward(native, ids, 1, T, NULL), PS_OK);

    json_t *o = run_json("attention --json 1.1 the theat he");
    json_t *pat = json_object_get(o, "pattern");
    assert_int_equal((int)json_array_size(pat), T);
    const float *want = ps_model_attention(native, 1, 0, 1);
    for (int q = 0; q < T; q++) {
        json_t *row = json_array_get(pat, (size_t)q);
        assert_int_equal((int)json_array_size(row), q + 1);
        for (int k = 0; k <= q; k++)
            assert_true(fabs(json_number_value(json_array_get(row, (size_t)k)) - want[q * T + k]) < 1e-6);
    }
    assert_int_equal((int)json_array_size(json_object_get(o, "tokens")), T);
    json_decref(o);

    float lens[3 * SUPPORT_BPE_VOCAB], probs[SUPPORT_BPE_VOCAB];
    assert_int_equal(ps_probe_lens(native, 0, T - 1, lens, NULL), PS_OK);
    o = run_json("lens --json the theat he");
    json_t *layers = json_object_get(o, "layers");
    assert_int_equal((int)json_array_size(layers), cfg.n_layer + 1);
    for (int st = 0; st <= cfg.n_layer; st++) {
        ps_softmax(probs, lens + st * SUPPORT_BPE_VOCAB, SUPPORT_BPE_VOCAB, 1.0f);
        json_t *top = json_array_get(json_object_get(json_array_get(layers, (size_t)st), "top"), 0);
        int id = (int)json_integer_value(json_object_get(top, "id"));
        assert_true(fabs(json_number_value(json_object_get(top, "prob")) - probs[id]) < 1e-6);
        for (int v = 0; v < SUPPORT_BPE_VOCAB; v++)
            assert_true(probs[v] <= probs[id]);
    }
    json_decref(o);
}

static void test_attribution_matches(void **state)
{
    (void)state;
    int ids[32], T = encode("the theat he", ids);
    assert_int_equal(ps_model_forward(native, ids, 1, T, NULL), PS_OK);
    int top = ps_argmax(ps_model_logits(native, 0, T - 1), SUPPORT_BPE_VOCAB);
    ps_attribution a;
    assert_int_equal(ps_probe_attribute(native, 0, T - 1, top, &a, NULL), PS_OK);
    json_t *o = run_json("attribute --json the theat he");
    assert_int_equal((int)json_integer_value(json_object_get(o, "id")), top);
    assert_true(fabs(json_number_value(json_object_get(o, "sum")) - a.total) < 1e-5);
    assert_true(fabs(json_number_value(json_object_get(o, "logit")) - a.logit) < 1e-5);
    json_t *parts = json_object_get(o, "parts");
    assert_int_equal((int)json_array_size(parts), cfg.n_layer * (cfg.n_head + 2) + 3);
    size_t i;
    json_t *e;
    json_array_foreach(parts, i, e) {
        if (strcmp(json_string_value(json_object_get(e, "part")), "head 1.0"))
            continue;
        assert_true(fabs(json_number_value(json_object_get(e, "value")) - a.head[1 * cfg.n_head + 0]) < 1e-5);
    }
    ps_attribution_clear(&a);
    json_decref(o);
}

static void test_every_view_runs(void **state)
{
    (void)state;
    json_t *o = run_json("saliency --json the theat he");
    assert_int_equal((int)json_array_size(json_object_get(o, "gradient_norm")),
                     (int)json_array_size(json_object_get(o, "tokens")));
    json_decref(o);
    o = run_json("patch --json xbc a | xbd a");
    assert_int_equal((int)json_array_size(json_object_get(o, "resid")), cfg.n_layer + 1);
    assert_int_equal((int)json_array_size(json_object_get(o, "heads")), cfg.n_layer);
    json_decref(o);
    /* longer than one batch of patched sequences: positions in every batch
     * are right (nothing before the difference, all of it at the end) */
    o = run_json("patch --json abcdefghijkm | abcdefghijkn");
    json_t *res = json_object_get(o, "resid");
    for (int l = 0; l <= cfg.n_layer; l++) {
        json_t *row = json_array_get(res, (size_t)l);
        assert_int_equal((int)json_array_size(row), 12);
        for (int t = 0; t < 11; t++)
            assert_true(fabs(json_number_value(json_array_get(row, (size_t)t))) < 1e-9);
        if (l == 0 || l == cfg.n_layer)
            assert_true(fabs(json_number_value(json_array_get(row, 11)) - 1.0) < 1e-5);
    }
    json_decref(o);
    /* the neuron scan needs training text: the bundled corpus, read with
     * this tokenizer */
    o = run_json("neuron --json 0.3 the theat he");
    assert_int_equal((int)json_integer_value(json_object_get(o, "neuron")), 3);
    assert_true(json_array_size(json_object_get(o, "top")) > 0);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention_and_lens_match),
        cmocka_unit_test(test_attribution_matches),
        cmocka_unit_test(test_every_view_runs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
