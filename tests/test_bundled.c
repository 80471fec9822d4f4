/* The bundled model knows what its corpus teaches: "the sky is" -> "blue"
 * with probability >= 0.5, and every fact of tools/facts.txt (one
 * "PROMPT<TAB>EXPECTED" a line, written by tools/make_corpus.py from the same
 * table as the corpus) has its expected word first.  At least 20 facts
 * besides the sky must be listed and pass. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paramscope/blas.h"
#include "repl/common.h"

static ps_loaded bundled;

static int setup(void **state)
{
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/models/%s", getenv("PS_SOURCE_ROOT"), PS_BUNDLED_MODEL);
    ps_error err = {0};
    ps_blas_init(0, NULL);
    if (ps_loaded_open(&bundled, path, &err)) {
        print_error("%s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ps_loaded_close(&bundled);
    return 0;
}

static void test_sky_is_blue(void **state)
{
    (void)state;
    ps_prediction p;
    assert_int_equal(ps_predict(&p, bundled.model, bundled.tok, "The sky is", 1.0f, 5, NULL), PS_OK);
    const char *top = ps_tokenizer_token(bundled.tok, p.top[0]);
    print_message("the sky is -> %s %.3f, %s %.3f\n", top, (double)p.top_prob[0],
                  ps_tokenizer_token(bundled.tok, p.top[1]), (double)p.top_prob[1]);
    assert_string_equal(top, "blue");
    assert_true(p.top_prob[0] >= 0.5f);
    ps_prediction_free(&p);
}

static void test_facts(void **state)
{
    (void)state;
    char path[4096], line[512];
    snprintf(path, sizeof path, "%s/tools/facts.txt", getenv("PS_SOURCE_ROOT"));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n = 0, wrong = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        *tab = '\0';
        const char *want = tab + 1;
        ps_prediction p;
        assert_int_equal(ps_predict(&p, bundled.model, bundled.tok, line, 1.0f, 1, NULL), PS_OK);
        const char *got = ps_tokenizer_token(bundled.tok, p.top[0]);
        if (strcmp(got, want)) {
            print_error("'%s' -> '%s' (%.3f), expected '%s'\n", line, got, (double)p.top_prob[0], want);
            wrong++;
        }
        n++;
        ps_prediction_free(&p);
    }
    fclose(f);
    print_message("%d facts checked, %d wrong\n", n, wrong);
    assert_true(n >= 21);
    assert_int_equal(wrong, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sky_is_blue),
        cmocka_unit_test(test_facts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
