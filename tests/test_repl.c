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

#include "paramscope/blas.h"
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

    /* raw argument: the whole rest of the line is the prompt */
    assert_int_equal(run(&s, "predict   The sky   is", &text, &out), PS_OK);
    assert_non_null(strstr(text, "tokens: the sky is"));
    assert_string_equal(s.prompt, "The sky   is");
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_stream),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
