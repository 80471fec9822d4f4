/* Tests of corpus loading: ids of a small file, lines as white space, the
 * error messages of each bad file, reading text for vocabulary building, and
 * a corpus larger than one encoding chunk. */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <ftw.h>

#include "paramscope/corpus.h"
#include "paramscope/tokenizer.h"

/* ---- fixtures ---- */

typedef struct fixture {
    char dir[64];
    ps_tokenizer *tok;
} fixture;

static const char *const VOCAB[] = {
    "<unk>", "the", "sky", "is", "blue", ".", "grass", "green",
};

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/ps_test_corpus_XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    if (ps_tokenizer_from_list(&f->tok, VOCAB, 8, NULL) != 0)
        return -1;
    *state = f;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    fixture *f = *state;
    int rc = nftw(f->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    ps_tokenizer_free(f->tok);
    free(f);
    return rc;
}

/* Writes len bytes to DIR/name; the full path goes into path. */
static void write_file(const fixture *f, const char *name, const char *data,
                       size_t len, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", f->dir, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static void expect_load_error(const fixture *f, const char *path, int code,
                              const char *reason)
{
    ps_corpus *c = (ps_corpus *)&c;    /* must come back NULL */
    ps_error err = { 0 };
    char want[512];
    snprintf(want, sizeof want, "%s: %s", path, reason);
    assert_int_equal(ps_corpus_load(&c, path, f->tok, &err), code);
    assert_null(c);
    assert_int_equal(err.code, code);
    assert_string_equal(err.msg, want);
}

/* ---- loading ---- */

static void test_load_ids(void **state)
{
    fixture *f = *state;
    char path[256];
    const char *text = "The sky is blue.\nGrass is green.\n\n  The sky is GREY .\n";
    write_file(f, "a.txt", text, strlen(text), path, sizeof path);

    ps_corpus *c = NULL;
    ps_error err = { 0 };
    assert_int_equal(ps_corpus_load(&c, path, f->tok, &err), 0);
    const int want[] = { 1, 2, 3, 4, 5, 6, 3, 7, 5, 1, 2, 3, 0, 5 };
    assert_int_equal(c->n, 14);
    for (size_t i = 0; i < c->n; i++)
        assert_int_equal(c->ids[i], want[i]);
    assert_int_equal(c->n_unknown, 1);
    assert_string_equal(c->path, path);
    ps_corpus_free(c);
    ps_corpus_free(NULL);
}

static void test_lines_are_white_space(void **state)
{
    fixture *f = *state;
    char p1[256], p2[256];
    const char *one = "the sky is blue . grass is green .";
    const char *many = "the sky\nis\r\nblue .\n\n\ngrass is green\n.";
    write_file(f, "one.txt", one, strlen(one), p1, sizeof p1);
    write_file(f, "many.txt", many, strlen(many), p2, sizeof p2);
    ps_corpus *a = NULL, *b = NULL;
    assert_int_equal(ps_corpus_load(&a, p1, f->tok, NULL), 0);
    assert_int_equal(ps_corpus_load(&b, p2, f->tok, NULL), 0);
    assert_int_equal(a->n, 9);
    assert_int_equal(b->n, 9);
    assert_memory_equal(a->ids, b->ids, 9 * sizeof *a->ids);
    assert_int_equal(b->n_unknown, 0);
    ps_corpus_free(a);
    ps_corpus_free(b);
}

static void test_load_errors(void **state)
{
    fixture *f = *state;
    char path[256];

    snprintf(path, sizeof path, "%s/missing.txt", f->dir);
    expect_load_error(f, path, PS_ERR_IO, "cannot open: No such file or directory");

    expect_load_error(f, f->dir, PS_ERR_IO, "is a directory, not a file");

    write_file(f, "empty.txt", "", 0, path, sizeof path);
    expect_load_error(f, path, PS_ERR_FORMAT, "corpus is empty");

    write_file(f, "blank.txt", " \n\t\r\n \n", 7, path, sizeof path);
    expect_load_error(f, path, PS_ERR_FORMAT, "corpus is empty");

    /* Only control characters: text, but no token. */
    write_file(f, "controls.txt", "\x01\x02\n", 3, path, sizeof path);
    expect_load_error(f, path, PS_ERR_FORMAT, "corpus is empty");

    const char *unknown = "Le ciel est bleu\nl'herbe verte";
    write_file(f, "french.txt", unknown, strlen(unknown), path, sizeof path);
    expect_load_error(f, path, PS_ERR_INVALID,
                      "no token of the corpus is in the model's vocabulary");

    write_file(f, "binary.txt", "the sky\0is", 10, path, sizeof path);
    expect_load_error(f, path, PS_ERR_FORMAT, "NUL byte at offset 7: not a text file");

    /* One known word among unknown ones is enough. */
    const char *one_known = "ciel bleu sky";
    write_file(f, "one_known.txt", one_known, strlen(one_known), path, sizeof path);
    ps_corpus *c = NULL;
    assert_int_equal(ps_corpus_load(&c, path, f->tok, NULL), 0);
    assert_int_equal(c->n, 3);
    assert_int_equal(c->n_unknown, 2);
    assert_int_equal(c->ids[2], 2);
    ps_corpus_free(c);
}

static void test_unreadable(void **state)
{
    fixture *f = *state;
    if (geteuid() == 0)
        skip();    /* root reads files whatever their mode */
    char path[256];
    write_file(f, "secret.txt", "the sky", 7, path, sizeof path);
    assert_int_equal(chmod(path, 0), 0);
    expect_load_error(f, path, PS_ERR_IO, "cannot open: Permission denied");
}

/* ---- text for vocabularies ---- */

static void test_read_text(void **state)
{
    fixture *f = *state;
    char path[256];
    const char *text = "Café, the sky!\n\tline two\n";
    write_file(f, "t.txt", text, strlen(text), path, sizeof path);
    char *got = NULL;
    size_t len = 0;
    assert_int_equal(ps_corpus_read_text(&got, &len, path, NULL), 0);
    assert_int_equal(len, strlen(text));
    assert_string_equal(got, text);
    free(got);

    /* Outputs stay untouched on failure. */
    char *sentinel = (char *)"untouched";
    got = sentinel;
    len = 77;
    ps_error err = { 0 };
    write_file(f, "e.txt", "\n\n", 2, path, sizeof path);
    assert_int_equal(ps_corpus_read_text(&got, &len, path, &err), PS_ERR_FORMAT);
    assert_ptr_equal(got, sentinel);
    assert_int_equal(len, 77);
    char want[320];
    snprintf(want, sizeof want, "%s: corpus is empty", path);
    assert_string_equal(err.msg, want);

    /* A file whose size says 0 but that has text (Linux's /proc). */
    if (access("/proc/self/status", R_OK) == 0) {
        char *proc = NULL;
        size_t proc_len = 0;
        assert_int_equal(ps_corpus_read_text(&proc, &proc_len, "/proc/self/status", &err), 0);
        assert_true(proc_len > 100);
        assert_int_equal(strlen(proc), proc_len);
        assert_memory_equal(proc, "Name:", 5);
        free(proc);
    }

    assert_int_equal(ps_corpus_read_text(&got, &len, f->dir, &err), PS_ERR_IO);
    snprintf(want, sizeof want, "%s: is a directory, not a file", f->dir);
    assert_string_equal(err.msg, want);
    assert_ptr_equal(got, sentinel);
}

static void test_from_text(void **state)
{
    fixture *f = *state;
    ps_corpus *c = NULL;
    ps_error err = { 0 };
    /* len cuts the text: "grass" is not read. */
    assert_int_equal(ps_corpus_from_text(&c, "typed", "sky is blue grass", 11,
                                         f->tok, &err), 0);
    assert_string_equal(c->path, "typed");
    assert_int_equal(c->n, 3);
    assert_int_equal(c->ids[0], 2);
    assert_int_equal(c->ids[1], 3);
    assert_int_equal(c->ids[2], 4);
    ps_corpus_free(c);

    assert_int_equal(ps_corpus_from_text(&c, "typed", "   ", 3, f->tok, &err),
                     PS_ERR_FORMAT);
    assert_null(c);
    assert_string_equal(err.msg, "typed: corpus is empty");
}

/* ---- larger than one chunk ---- */

static void test_large_corpus(void **state)
{
    fixture *f = *state;
    /* 3 MiB and more: lines of "the sky is blue ." with every seventh line
     * "grass is red ." (one unknown word); the middle third has no line
     * break at all, so a chunk must run on to the next one. */
    const char *a = "the sky is blue .\n", *b = "grass is red .\n";
    const char *mid = "the sky is blue . ";
    size_t cap = 4u << 20, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t lines = 0, want_n = 0, want_unknown = 0;
    while (len < (1u << 20)) {
        const char *s = (lines++ % 7 == 6) ? b : a;
        memcpy(text + len, s, strlen(s));
        len += strlen(s);
        want_n += (s == a) ? 5 : 4;
        want_unknown += (s == b);
    }
    for (int i = 0; i < 70000; i++) {
        memcpy(text + len, mid, strlen(mid));
        len += strlen(mid);
        want_n += 5;
    }
    while (len < (3u << 20)) {
        const char *s = (lines++ % 7 == 6) ? b : a;
        memcpy(text + len, s, strlen(s));
        len += strlen(s);
        want_n += (s == a) ? 5 : 4;
        want_unknown += (s == b);
    }
    char path[256];
    write_file(f, "large.txt", text, len, path, sizeof path);

    ps_corpus *c = NULL;
    ps_error err = { 0 };
    assert_int_equal(ps_corpus_load(&c, path, f->tok, &err), 0);
    assert_int_equal(c->n, want_n);
    assert_int_equal(c->n_unknown, want_unknown);

    /* The same ids as encoding the whole text at once. */
    text[len] = '\0';
    ps_tokens t;
    assert_int_equal(ps_tokenizer_encode(f->tok, text, &t, NULL), 0);
    assert_int_equal((size_t)t.n, c->n);
    assert_memory_equal(t.ids, c->ids, c->n * sizeof *c->ids);
    ps_tokens_free(&t);
    ps_corpus_free(c);
    free(text);
}

/* ---- files that are not text, or too big ---- */

static void on_alarm(int sig)
{
    (void)sig;
    static const char m[] = "timed out: the corpus FIFO blocked\n";
    if (write(2, m, sizeof m - 1) < 0)
        _exit(3);
    _exit(2);
}

/* Bytes this process has read with read(2) so far (Linux's /proc). */
static long long bytes_read(void)
{
    FILE *fp = fopen("/proc/self/io", "r");
    long long v = -1;
    char line[128];
    while (fp && fgets(line, sizeof line, fp))
        if (sscanf(line, "rchar: %lld", &v) == 1)
            break;
    if (fp)
        fclose(fp);
    return v;
}

/* A FIFO and a device are refused at once (a FIFO blocked forever, and
 * /dev/zero was read until memory ran out); a sparse file's NUL at offset 0
 * is found after its first megabyte; a file over the limit is refused
 * before it is read. */
static void test_not_text_refused_early(void **state)
{
    fixture *f = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/pipe.txt", f->dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    signal(SIGALRM, on_alarm);
    alarm(10);
    expect_load_error(f, path, PS_ERR_IO, "is a FIFO, not a regular file");
    expect_load_error(f, "/dev/zero", PS_ERR_IO, "is a character device, not a regular file");
    alarm(0);

    snprintf(path, sizeof path, "%s/sparse.txt", f->dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)200 << 20), 0);     /* 200 MB of zeros */
    close(fd);
    long long before = bytes_read();
    expect_load_error(f, path, PS_ERR_FORMAT, "NUL byte at offset 0: not a text file");
    long long got = bytes_read() - before;
    if (before >= 0 && got > (8 << 20))
        fail_msg("finding the NUL at offset 0 read %lld bytes", got);

    snprintf(path, sizeof path, "%s/huge.txt", f->dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)PS_CORPUS_MAX + 1), 0);
    close(fd);
    char want[128];
    snprintf(want, sizeof want, "%zu bytes, over the limit of %zu bytes for a corpus",
             PS_CORPUS_MAX + 1, PS_CORPUS_MAX);
    expect_load_error(f, path, PS_ERR_RANGE, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lines_are_white_space, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_from_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_corpus, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_text_refused_early, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
