/* The command language's plumbing: splitting lines into words, dispatch of
 * one- and two-word commands, raw arguments, usage errors, suggestions, and
 * streams with FILE:LINE errors and --bail. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "paramscope/blas.h"
#include "repl/addr.h"
#include "repl/repl.h"

static char dir[] = "/tmp/ps-test-repl-XXXXXX";
static char model_path[256];

static int setup(void **state)
{
    (void)state;
    ps_blas_init(0, NULL);
    if (!mkdtemp(dir))
        return -1;
    snprintf(model_path, sizeof model_path, "%s/m.safetensors", dir);
    ps_config cfg = {.n_layer = 1, .n_head = 2, .n_embd = 8, .n_ctx = 8, .vocab_size = 6};
    const char *words[6] = {"<unk>", "the", "sky", "is", "blue", "."};
    ps_model *m = NULL;
    ps_tokenizer *tok = NULL;
    if (ps_model_init(&m, &cfg, NULL) || ps_tokenizer_from_list(&tok, words, 6, NULL))
        return -1;
    ps_model_init_random(m, 5);
    int rc = ps_model_save(m, tok, NULL, model_path, NULL);
    ps_model_free(m);
    ps_tokenizer_free(tok);
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    unlink(model_path);
    rmdir(dir);
    return 0;
}

static void test_split(void **state)
{
    (void)state;
    char **w = NULL;
    ps_error err;
    int n = ps_split_line("  show  wte[\"ice cream\"] 'a b' \"c\\\"d\" x[0:2, :]  ", &w, &err);
    assert_int_equal(n, 5);
    assert_string_equal(w[0], "show");
    assert_string_equal(w[1], "wte[\"ice cream\"]");
    assert_string_equal(w[2], "a b");
    assert_string_equal(w[3], "c\"d");
    assert_string_equal(w[4], "x[0:2, :]");
    ps_words_free(w, n);
    assert_int_equal(ps_split_line("", &w, &err), 0);
    ps_words_free(w, 0);
    assert_int_equal(ps_split_line("show x[0:2", &w, &err), -1);
    assert_non_null(strstr(err.msg, "unbalanced bracket"));
    assert_int_equal(ps_split_line("say \"hello", &w, &err), -1);
    assert_non_null(strstr(err.msg, "unbalanced \" quote"));
}

/* Runs a line in a fresh memstream; returns status, output in *text. */
static int run(ps_session *s, const char *line, char **text, ps_out *out)
{
    size_t len;
    out->f = open_memstream(text, &len);
    out->utf8 = 0;
    out->width = 80;
    int rc = ps_repl_exec(s, line, out);
    fclose(out->f);
    return rc;
}

static void test_dispatch(void **state)
{
    (void)state;
    ps_session s;
    ps_error err;
    assert_int_equal(ps_session_open(&s, model_path, &err), PS_OK);
    ps_out out;
    char *text = NULL;

    assert_int_equal(run(&s, "   # a comment", &text, &out), PS_OK);
    assert_string_equal(text, "");
    free(text);

    /* raw argument: the rest of the line after one blank is the prompt,
     * exactly as typed (a prompt's spaces are tokens for GPT-2) */
    assert_int_equal(run(&s, "predict   The sky   is", &text, &out), PS_OK);
    assert_non_null(strstr(text, "tokens: the sky is"));
    assert_string_equal(s.prompt, "  The sky   is");
    free(text);
    assert_int_equal(run(&s, "predict the sky ", &text, &out), PS_OK);
    assert_string_equal(s.prompt, "the sky ");
    free(text);
    assert_int_equal(run(&s, "predict\tthe sky\t", &text, &out), PS_OK);
    assert_string_equal(s.prompt, "the sky\t");
    free(text);
    /* a prompt need not parse as words: brackets and '=' are its text */
    assert_int_equal(run(&s, "predict the [sky = is", &text, &out), PS_OK);
    assert_string_equal(s.prompt, "the [sky = is");
    free(text);
    assert_int_equal(run(&s, "predict The sky   is", &text, &out), PS_OK);
    free(text);

    /* two-word commands and their arguments */
    assert_int_equal(run(&s, "set top 3", &text, &out), PS_OK);
    assert_int_equal(s.set.top, 3);
    free(text);
    assert_int_equal(run(&s, "train set batch 2", &text, &out), PS_OK);
    assert_int_equal(s.tcfg.batch, 2);
    free(text);

    /* usage and range errors change nothing */
    assert_int_equal(run(&s, "set top", &text, &out), PS_ERR_INVALID);
    assert_non_null(strstr(out.err.msg, "usage: set"));
    free(text);
    assert_int_equal(run(&s, "set top 0", &text, &out), PS_ERR_RANGE);
    assert_int_equal(s.set.top, 3);
    free(text);
    assert_int_equal(run(&s, "set temperature -1", &text, &out), PS_ERR_RANGE);
    assert_true(s.set.temperature == 1.0f);
    free(text);
    assert_int_equal(run(&s, "set temperature warm", &text, &out), PS_ERR_INVALID);
    assert_non_null(strstr(out.err.msg, "'warm' is not a number"));
    free(text);
    assert_int_equal(run(&s, "train set seq 9", &text, &out), PS_ERR_RANGE);
    assert_non_null(strstr(out.err.msg, "n_ctx 8"));
    free(text);

    /* unknown names get suggestions; a bare first word of two-word commands lists them */
    assert_int_equal(run(&s, "predcit the sky", &text, &out), PS_ERR_NOT_FOUND);
    assert_non_null(strstr(out.err.msg, "did you mean 'predict'?"));
    free(text);
    assert_int_equal(run(&s, "train", &text, &out), PS_ERR_INVALID);
    assert_non_null(strstr(out.err.msg, "data, set, phase, step, run"));
    free(text);
    assert_int_equal(run(&s, "help predict", &text, &out), PS_OK);
    assert_non_null(strstr(text, "predict TEXT"));
    free(text);
    assert_int_equal(run(&s, "help nothing", &text, &out), PS_ERR_NOT_FOUND);
    free(text);

    assert_int_equal(run(&s, "quit", &text, &out), PS_OK);
    assert_true(s.quit);
    free(text);
    ps_session_close(&s);
}

static void test_stream(void **state)
{
    (void)state;
    ps_session s;
    ps_error err;
    assert_int_equal(ps_session_open(&s, model_path, &err), PS_OK);
    const char *script = "set top 2\nbogus\nset top 4\nalso bogus\nset top 5\n";
    FILE *in = fmemopen((void *)script, strlen(script), "r");
    char *text = NULL;
    size_t len;
    ps_out out = {.f = open_memstream(&text, &len)};
    ps_repl_opts o = {.bail = 0};
    /* errors go to stderr as NAME:LINE: message; the count comes back */
    assert_int_equal(ps_repl_run_stream(&s, in, "lesson.cmd", &o, &out), 2);
    assert_int_equal(s.set.top, 5);
    rewind(in);
    o.bail = 1;
    assert_int_equal(ps_repl_run_stream(&s, in, "lesson.cmd", &o, &out), -1);
    assert_int_equal(s.set.top, 2);   /* stopped at line 2 */
    fclose(in);
    fclose(out.f);
    free(text);
    ps_session_close(&s);
}

/* ---- messages are one line ---- */

/* Control bytes that reach a message from a file or a token are escaped
 * where every message is made (ps_error_set, ps_error_prefix, ps_fail). */
static void test_messages_one_line(void **state)
{
    (void)state;
    ps_error err = {0};
    ps_error_set(&err, PS_ERR_FORMAT, "config.json: '%s' at line %d", "a\nb\rc\x1b[2J\td\x7f", 3);
    assert_string_equal(err.msg, "config.json: 'a\\nb\\rc\\x1b[2J\\td\\x7f' at line 3");
    ps_error_prefix(&err, "%s", "dir\n/x");
    assert_string_equal(err.msg, "dir\\n/x: config.json: 'a\\nb\\rc\\x1b[2J\\td\\x7f' at line 3");
    ps_out out = {0};
    assert_int_equal(ps_fail(&out, PS_ERR_INVALID, "token '%s'", "\x01\x1f"), PS_ERR_INVALID);
    assert_string_equal(out.err.msg, "token '\\x01\\x1f'");
    char buf[12];
    assert_string_equal(ps_printable("ab\x1b\x1b\x1b", buf, sizeof buf), "ab\\x1b...");
    /* long messages are cut between escapes, never inside one */
    char big[600];
    memset(big, '\x1b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ps_error_set(&err, PS_ERR_FORMAT, "%s", big);
    size_t n = strlen(err.msg);
    assert_true(n > 400 && n % 4 == 0);
    for (const char *c = err.msg; *c; c++)
        assert_true((unsigned char)*c >= 0x20);
}

/* ---- predictions: the baseline, non-finite values, escapes, JSON ---- */

/* A model file in dir with tokenizer tok and a vocabulary of V. */
static void save_model(const char *path, ps_tokenizer *tok, int V, uint64_t seed)
{
    ps_config cfg = {.n_layer = 1, .n_head = 2, .n_embd = 8, .n_ctx = 32, .vocab_size = V};
    ps_model *m = NULL;
    assert_int_equal(ps_model_init(&m, &cfg, NULL), 0);
    ps_model_init_random(m, seed);
    assert_int_equal(ps_model_save(m, tok, NULL, path, NULL), 0);
    ps_model_free(m);
}

/* The regression of the use-after-free: a bare `predict` compared the freed
 * prompt with the baseline's, losing the +/- marks and adding a false note. */
static void test_bare_predict_after_baseline(void **state)
{
    (void)state;
    ps_session s;
    ps_error err;
    ps_out out;
    char *text = NULL;
    assert_int_equal(ps_session_open(&s, model_path, &err), PS_OK);
    assert_int_equal(run(&s, "baseline the sky is", &text, &out), PS_OK);
    free(text);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(run(&s, "predict", &text, &out), PS_OK);
        assert_null(strstr(text, "the baseline is for"));
        assert_non_null(strstr(text, "%   =\n"));
        free(text);
    }
    assert_int_equal(run(&s, "scale h.0.mlp.c_fc.weight 3", &text, &out), PS_OK);
    free(text);
    assert_int_equal(run(&s, "predict", &text, &out), PS_OK);
    assert_null(strstr(text, "the baseline is for"));
    assert_true(strstr(text, "%  +") || strstr(text, "%  -"));
    free(text);
    ps_session_close(&s);
}

/* Whether text holds a control byte other than the line feeds. */
static int has_raw_control(const char *text)
{
    for (const unsigned char *c = (const unsigned char *)text; *c; c++)
        if ((*c < 0x20 && *c != '\n') || *c == 0x7f)
            return 1;
    return 0;
}

/* Non-finite logits are said plainly, with where they first appear, and no
 * bar, entropy or sampled token is shown; tokens with control bytes print
 * escaped; journal names of any length print whole and parse back. */
static void test_nonfinite_and_escapes(void **state)
{
    (void)state;
    char path[300], longtok[251], line[600];
    memset(longtok, 'a', 250);
    longtok[250] = '\0';
    const char *words[] = {"<unk>", "the", "sky", "is", "\x1b[31m", "cr\r", longtok};
    ps_tokenizer *tok = NULL;
    assert_int_equal(ps_tokenizer_from_list(&tok, words, 7, NULL), 0);
    snprintf(path, sizeof path, "%s/esc.safetensors", dir);
    save_model(path, tok, 7, 11);
    ps_tokenizer_free(tok);
    ps_session s;
    ps_error err;
    ps_out out;
    char *text = NULL;
    assert_int_equal(ps_session_open(&s, path, &err), PS_OK);
    assert_int_equal(run(&s, "set top 7", &text, &out), PS_OK);
    free(text);
    /* every token is a bar (top 7): the control bytes come out escaped */
    assert_int_equal(run(&s, "predict the sky is [31m", &text, &out), PS_OK);
    assert_false(has_raw_control(text));
    assert_non_null(strstr(text, "  \\x1b[31m "));
    assert_non_null(strstr(text, "  cr\\r "));
    free(text);

    /* a name longer than the old 191-byte cut, printed whole, typed back */
    snprintf(line, sizeof line, "wte[\"%s\"][1] = 0.5", longtok);
    assert_int_equal(run(&s, line, &text, &out), PS_OK);
    free(text);
    assert_int_equal(run(&s, "history", &text, &out), PS_OK);
    assert_non_null(strstr(text, line));
    free(text);
    assert_int_equal(run(&s, "undo", &text, &out), PS_OK);
    assert_non_null(strstr(text, line));
    free(text);
    assert_int_equal(run(&s, "wte[4] = 0.25", &text, &out), PS_OK);
    assert_non_null(strstr(text, "wte[\"\\x1b[31m\"]"));
    assert_false(has_raw_control(text));
    free(text);
    assert_int_equal(run(&s, "wte[\"\\x1b[31m\"] = 0.5", &text, &out), PS_OK);
    free(text);
    assert_int_equal(run(&s, "wte[\"cr\\r\"][0] = 0.5", &text, &out), PS_OK);
    free(text);

    /* a finite edit whose forward overflows: no bar, the place named */
    assert_int_equal(run(&s, "h.0.ln_1.bias = 3e38", &text, &out), PS_OK);
    free(text);
    assert_int_equal(run(&s, "predict the sky is", &text, &out), PS_OK);
    assert_non_null(strstr(text, "no prediction: the logits are not finite"));
    assert_non_null(strstr(text, "the first non-finite value appears in block 0 (attention)"));
    assert_null(strstr(text, "%"));
    assert_null(strstr(text, "entropy"));
    free(text);
    assert_int_equal(run(&s, "generate 3 the sky", &text, &out), PS_ERR_NUMERIC);
    assert_non_null(strstr(out.err.msg, "generate: after 0 tokens, the logits are not finite"));
    assert_string_equal(text, "");
    free(text);
    assert_int_equal(run(&s, "baseline", &text, &out), PS_ERR_NUMERIC);
    free(text);
    assert_int_equal(run(&s, "eval", &text, &out), PS_ERR_NUMERIC);
    assert_non_null(strstr(out.err.msg, "eval: the validation loss is not finite"));
    free(text);

    ps_prediction p;
    assert_int_equal(ps_predict(&p, s.lm.model, s.lm.tok, "the sky", 1.0f, 3, &err), 0);
    assert_true(p.n_nonfinite > 0);
    assert_string_equal(p.nonfinite_at, "block 0 (attention)");
    char *js = ps_prediction_json(&p, s.lm.tok, "the sky");
    json_t *o = json_loads(js, 0, NULL);
    assert_non_null(o);
    assert_true(json_is_false(json_object_get(o, "finite")));
    assert_string_equal(json_string_value(json_object_get(o, "nonfinite_at")), "block 0 (attention)");
    assert_true(json_is_null(json_object_get(o, "entropy")));
    json_t *top = json_object_get(o, "top");
    assert_int_equal(json_array_size(top), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(top, i);
        assert_non_null(json_object_get(e, "token"));
        assert_true(json_is_null(json_object_get(e, "prob")));
        assert_non_null(json_object_get(e, "logit"));
        assert_true(json_is_false(json_object_get(e, "finite")));
    }
    json_decref(o);
    free(js);
    ps_prediction_free(&p);

    assert_int_equal(run(&s, "undo", &text, &out), PS_OK);
    free(text);
    assert_int_equal(run(&s, "predict the sky is", &text, &out), PS_OK);
    assert_non_null(strstr(text, "%"));
    free(text);
    ps_session_close(&s);
    unlink(path);
}

/* GPT-2's spelling of byte b (the printable stand-in of its byte alphabet). */
static void byte_spelling(unsigned b, char out[3])
{
    unsigned cp = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174 ? b
                : b <= 32 ? 256 + b : b <= 160 ? 256 + 33 + (b - 127) : 256 + 33 + 34;
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = '\0';
    } else {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        out[2] = '\0';
    }
}

/* The bytes of a JSON text entry: a string, or {"bytes": [...]}. */
static size_t entry_bytes(json_t *e, char *buf, size_t size)
{
    if (json_is_string(e)) {
        size_t n = json_string_length(e);
        assert_true(n < size);
        memcpy(buf, json_string_value(e), n);
        return n;
    }
    json_t *b = json_object_get(e, "bytes");
    assert_true(json_is_array(b));
    size_t n = json_array_size(b);
    assert_true(n > 0 && n < size);
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)json_integer_value(json_array_get(b, i));
    /* an entry that is valid UTF-8 must be a string */
    assert_false(ps_utf8_valid(buf, n));
    return n;
}

/* With a byte-level vocabulary a character is split over tokens that are not
 * UTF-8 alone: "tokens" still has one entry per id, their bytes make the
 * prompt, every "top" entry has every key, and an invalid prompt keeps its
 * "prompt" key. */
static void test_json_lines_up(void **state)
{
    (void)state;
    json_t *v = json_object();
    char form[3];
    for (unsigned b = 0; b < 256; b++) {
        byte_spelling(b, form);
        json_object_set_new(v, form, json_integer(b));
    }
    json_object_set_new(v, "\xc4\xa0o", json_integer(256));
    char *vj = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    const char *merges = "#version: 0.2\n\xc4\xa0 o\n";
    ps_tokenizer *tok = NULL;
    ps_error err = {0};
    if (ps_tokenizer_from_gpt2(&tok, vj, strlen(vj), merges, strlen(merges), &err))
        fail_msg("tokenizer: %s", err.msg);
    free(vj);
    char path[300];
    snprintf(path, sizeof path, "%s/bpe.safetensors", dir);
    save_model(path, tok, 257, 3);
    ps_tokenizer_free(tok);
    ps_session s;
    assert_int_equal(ps_session_open(&s, path, &err), PS_OK);

    const char *prompts[] = {" \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x99\x82 ok", "\xff ok\x1b"};
    for (int k = 0; k < 2; k++) {
        ps_prediction p;
        assert_int_equal(ps_predict(&p, s.lm.model, s.lm.tok, prompts[k], 1.0f, 257, &err), 0);
        char *js = ps_prediction_json(&p, s.lm.tok, prompts[k]);
        json_t *o = json_loads(js, 0, NULL);
        assert_non_null(o);
        json_t *toks = json_object_get(o, "tokens"), *ids = json_object_get(o, "ids");
        assert_int_equal(json_array_size(toks), (size_t)p.tokens.n);
        assert_int_equal(json_array_size(ids), (size_t)p.tokens.n);
        char joined[256], buf[64];
        size_t n = 0;
        for (size_t i = 0; i < json_array_size(toks); i++) {
            size_t m = entry_bytes(json_array_get(toks, i), buf, sizeof buf);
            memcpy(joined + n, buf, m);
            n += m;
        }
        assert_int_equal(n, strlen(prompts[k]));
        assert_memory_equal(joined, prompts[k], n);
        n = entry_bytes(json_object_get(o, "prompt"), joined, sizeof joined);
        assert_int_equal(n, strlen(prompts[k]));
        assert_memory_equal(joined, prompts[k], n);
        json_t *top = json_object_get(o, "top");
        assert_int_equal(json_array_size(top), 257);
        for (size_t i = 0; i < 257; i++) {
            json_t *e = json_array_get(top, i);
            assert_non_null(json_object_get(e, "id"));
            assert_true(json_is_number(json_object_get(e, "prob")));
            assert_true(json_is_number(json_object_get(e, "logit")));
            assert_true(json_is_true(json_object_get(e, "finite")));
            int id = (int)json_integer_value(json_object_get(e, "id"));
            const char *t = ps_tokenizer_token(s.lm.tok, id);
            if (id == 0)
                continue;               /* byte 0 reads as "" */
            size_t m = entry_bytes(json_object_get(e, "token"), buf, sizeof buf);
            assert_int_equal(m, strlen(t));
            assert_memory_equal(buf, t, m);
        }
        assert_true(json_is_true(json_object_get(o, "finite")));
        json_decref(o);
        free(js);
        ps_prediction_free(&p);
    }
    /* the text output escapes what is not printable: no raw ESC, no raw
     * invalid byte among the bars */
    ps_out out;
    char *text = NULL;
    assert_int_equal(run(&s, "set top 257", &text, &out), PS_OK);
    free(text);
    assert_int_equal(run(&s, "predict \xff ok\x1b", &text, &out), PS_OK);
    assert_false(has_raw_control(text));
    assert_non_null(strstr(text, "\\x1b"));
    free(text);
    /* every token's address reads back as that token */
    for (int id = 0; id < 257; id++) {
        char a[32];
        snprintf(a, sizeof a, "wte[%d]", id);
        addr_view x, y;
        assert_int_equal(addr_parse(s.lm.model, s.lm.tok, a, &x, &err), 0);
        assert_false(has_raw_control(x.name));
        assert_true(ps_utf8_valid(x.name, strlen(x.name)));
        if (addr_parse(s.lm.model, s.lm.tok, x.name, &y, &err))
            fail_msg("token %d: '%s' does not parse back: %s", id, x.name, err.msg);
        assert_int_equal(y.first, id);
    }
    ps_session_close(&s);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_messages_one_line),
        cmocka_unit_test(test_bare_predict_after_baseline),
        cmocka_unit_test(test_nonfinite_and_escapes),
        cmocka_unit_test(test_json_lines_up),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
