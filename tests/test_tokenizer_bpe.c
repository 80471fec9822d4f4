/* Tests of GPT-2's byte-level BPE: ids of tricky inputs against an
 * independent reference (tools/gpt2_bpe_reference.py, which pre-tokenizes
 * with the Python regex module), round trips of arbitrary bytes, the merge
 * order on tiny hand-made vocabularies, every load error, threads, speed.
 *
 * GPT-2's files are read from $PS_SOURCE_ROOT/../shared/data/gpt2/; the tests
 * that need them skip with a message when they are absent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "paramscope/rng.h"
#include "paramscope/tokenizer.h"
#include "ps_config.h"

static ps_tokenizer *gpt2;              /* NULL when the files are absent */
static char gpt2_dir[1024];

static void need_gpt2(void)
{
    if (!gpt2) {
        print_message("skipped: GPT-2's vocabulary is not in %s\n", gpt2_dir);
        skip();
    }
}

static void gpt2_path(char *buf, size_t size, const char *file)
{
    snprintf(buf, size, "%s/%s", gpt2_dir, file);
}

static int load_gpt2(ps_tokenizer **tok)
{
    char vocab[1100], merges[1100];
    ps_error err = { 0 };
    gpt2_path(vocab, sizeof vocab, "encoder.json");
    gpt2_path(merges, sizeof merges, "vocab.bpe");
    int rc = ps_tokenizer_load_gpt2(tok, vocab, merges, &err);
    if (rc != 0)
        print_message("load: %s\n", err.msg);
    return rc;
}

static int setup_group(void **state)
{
    (void)state;
    const char *root = getenv("PS_SOURCE_ROOT");
    snprintf(gpt2_dir, sizeof gpt2_dir, "%s/../shared/data/gpt2",
             root ? root : PS_SOURCE_ROOT);
    char path[1100];
    gpt2_path(path, sizeof path, "encoder.json");
    if (access(path, R_OK) != 0)
        return 0;
    return load_gpt2(&gpt2) == 0 ? 0 : -1;
}

static int teardown_group(void **state)
{
    (void)state;
    ps_tokenizer_free(gpt2);
    return 0;
}

/* Encodes text with tok, checks the invariants every encoding has (pieces
 * are the tokens' bytes, nothing unknown, decode gives back len bytes of
 * text) and returns the tokens. */
static ps_tokens encode_checked(const ps_tokenizer *tok, const char *text)
{
    ps_tokens t;
    ps_error err = { 0 };
    int rc = ps_tokenizer_encode(tok, text, &t, &err);
    if (rc != 0)
        fail_msg("encode: %s", err.msg);
    assert_int_equal(t.n_unknown, 0);
    size_t len = 0;
    for (int i = 0; i < t.n; i++) {
        assert_int_equal(t.unknown[i], 0);
        assert_true(t.ids[i] >= 0 && t.ids[i] < ps_tokenizer_vocab_size(tok));
        assert_string_equal(t.pieces[i], ps_tokenizer_token(tok, t.ids[i]));
        assert_memory_equal(t.pieces[i], text + len, strlen(t.pieces[i]));
        len += strlen(t.pieces[i]);
    }
    assert_int_equal(len, strlen(text));
    char *back = ps_tokenizer_decode(tok, t.ids, t.n);
    assert_non_null(back);
    assert_string_equal(back, text);
    free(back);
    return t;
}

/* ---- GPT-2's vocabulary ---- */

static void test_facts(void **state)
{
    (void)state;
    need_gpt2();
    assert_int_equal(ps_tokenizer_kind_of(gpt2), PS_TOKENIZER_KIND_GPT2_BPE);
    assert_string_equal(ps_tokenizer_kind_name(gpt2), "gpt2-bpe");
    assert_int_equal(ps_tokenizer_vocab_size(gpt2), 50257);
    assert_int_equal(ps_tokenizer_find(gpt2, "<|endoftext|>"), 50256);
    assert_string_equal(ps_tokenizer_token(gpt2, 50256), "<|endoftext|>");
    /* " the" is 262: found by the file's spelling and by its bytes */
    assert_int_equal(ps_tokenizer_find(gpt2, "\xc4\xa0the"), 262);
    assert_int_equal(ps_tokenizer_find(gpt2, " the"), 262);
    assert_string_equal(ps_tokenizer_token(gpt2, 262), " the");
    assert_int_equal(ps_tokenizer_find(gpt2, "\n"), 198);          /* "Ċ" */
    assert_int_equal(ps_tokenizer_find(gpt2, "\xc4\x8a"), 198);
    assert_string_equal(ps_tokenizer_token(gpt2, 0), "!");
    assert_string_equal(ps_tokenizer_token(gpt2, 188), "");        /* byte 0 */
    assert_string_equal(ps_tokenizer_token(gpt2, 15496), "Hello");
    assert_null(ps_tokenizer_token(gpt2, -1));
    assert_null(ps_tokenizer_token(gpt2, 50257));
    assert_int_equal(ps_tokenizer_find(gpt2, "no such token, surely"), -1);
    assert_null(ps_tokenizer_to_json(gpt2));
}

typedef struct known {
    const char *text;
    int ids[64];
    int n;
} known;

/* Printed by tools/gpt2_bpe_reference.py. */
static const known KNOWN[] = {
{ /* hello */ "Hello world",
    { 15496, 995 }, 2 },
{ /* sky */ " The sky is blue.",
    { 383, 6766, 318, 4171, 13 }, 5 },
{ /* contractions */ "I'm sure they'll say don't",
    { 40, 1101, 1654, 484, 1183, 910, 836, 470 }, 8 },
{ /* contractions_case */ "'S 's 'sup I'M we're you've he'd",
    { 6, 50, 705, 82, 705, 37330, 314, 6, 44, 356, 821, 345, 1053, 339, 1549 }, 15 },
{ /* numbers */ "2024 was 12.5%",
    { 1238, 1731, 373, 1105, 13, 20, 4 }, 7 },
{ /* spaces */ "a  b\012\012 c",
    { 64, 220, 275, 628, 269 }, 5 },
{ /* trailing */ "tail   \011\012",
    { 13199, 220, 220, 220, 197, 198 }, 6 },
{ /* punct */ "Wait... what?!? (yes) --- ok!! \"quoted\"",
    { 21321, 986, 644, 12248, 30, 357, 8505, 8, 11420, 12876, 3228, 366, 421, 5191, 1 }, 15 },
{ /* nonascii */ "caf\303\251 na\303\257ve \346\235\261\344\272\254 \320\237\321\200\320\270\320\262\320\265\321\202",
    { 66, 1878, 2634, 41492, 10545, 251, 109, 12859, 105, 12466, 253, 21169, 18849, 38857, 16843, 20375 }, 16 },
{ /* emoji */ "I \342\235\244\357\270\217 \360\237\246\200 and \360\237\221\215\360\237\217\275",
    { 40, 43074, 97, 37929, 12520, 99, 222, 290, 50169, 235, 8582, 237, 121 }, 13 },
{ /* unicode_space */ "x\302\240y\343\200\200z \302\275\302\262 \331\241\331\242",
    { 87, 1849, 88, 5099, 222, 89, 25208, 31185, 18923, 94, 149, 95 }, 12 },
{ /* invalid */ "ab\377\376 c\303(\346\235 x\355\240\200 \200z",
    { 397, 187, 186, 269, 127, 7, 30266, 2124, 169, 254, 222, 220, 222, 89 }, 14 },
{ /* control */ "a\034b\001 \177",
    { 64, 216, 65, 189, 220, 221 }, 6 },
{ /* special */ "Hi<|endoftext|> there<|endoftext|>",
    { 17250, 50256, 612, 50256 }, 4 },
{ /* repeat */ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    { 24794, 24794, 24794, 24794, 24794, 24794, 24794, 24794, 24794, 24794, 24794, 24794, 24794, 24794, 24794, 24794 }, 16 },
{ /* long_word */ "SupercalifragilisticexpialidociousSupercalifragilisticexpialidociousSupercalifragilisticexpialidocious ======================================================================!?!?!?!?!?!?!?!?!?!?!?!?!?!?!?!?!?!?!?!?",
    { 12442, 9948, 361, 22562, 346, 396, 501, 42372, 498, 312, 32346, 12442, 9948, 361, 22562, 346, 396, 501, 42372, 498, 312, 32346, 12442, 9948, 361, 22562, 346, 396, 501, 42372, 498, 312, 32346, 38093, 1421, 28, 0, 12248, 12248, 12248, 12248, 12248, 12248, 12248, 12248, 12248, 12248, 12248, 12248, 12248, 12248, 12248, 12248, 12248, 12248, 12248, 30 }, 57 },
{ /* empty */ "",
    { 0 }, 0 },
};

static void check_known(const ps_tokenizer *tok)
{
    for (size_t k = 0; k < sizeof KNOWN / sizeof KNOWN[0]; k++) {
        const known *c = &KNOWN[k];
        ps_tokens t = encode_checked(tok, c->text);
        if (t.n != c->n || (c->n > 0 && memcmp(t.ids, c->ids, (size_t)c->n * sizeof *c->ids) != 0)) {
            print_message("case %zu: got", k);
            for (int i = 0; i < t.n; i++)
                print_message(" %d", t.ids[i]);
            print_message("\n");
            fail_msg("case %zu (%s): ids differ from the reference", k, c->text);
        }
        ps_tokens_free(&t);
    }
}

static void test_known_ids(void **state)
{
    (void)state;
    need_gpt2();
    check_known(gpt2);        /* first with the cache cold for these... */
    check_known(gpt2);        /* ...then answered from the cache */
}

static void test_pieces_and_decode(void **state)
{
    (void)state;
    need_gpt2();
    ps_tokens t = encode_checked(gpt2, " The sky is blue.");
    assert_string_equal(t.pieces[0], " The");
    assert_string_equal(t.pieces[1], " sky");
    assert_string_equal(t.pieces[4], ".");
    ps_tokens_free(&t);

    int ids[] = { 15496, -1, 995, 50257 };
    char *s = ps_tokenizer_decode(gpt2, ids, 4);
    assert_string_equal(s, "Hello<?> world<?>");
    free(s);
    s = ps_tokenizer_decode(gpt2, NULL, 0);
    assert_string_equal(s, "");
    free(s);
    assert_null(ps_tokenizer_decode(gpt2, NULL, 3));
    /* A cut "<|endoftext" is ordinary text. */
    t = encode_checked(gpt2, "<|endoftext");
    assert_true(t.n > 1);
    for (int i = 0; i < t.n; i++)
        assert_int_not_equal(t.ids[i], 50256);
    ps_tokens_free(&t);
}

/* A random NUL-free byte string of length len, drawn from a mix that hits
 * every branch of the pattern: words, numbers, runs of spaces and newlines,
 * apostrophes, punctuation, valid multi-byte UTF-8, stray high bytes and
 * pieces of "<|endoftext|>". */
static void random_text(ps_rng *r, char *buf, size_t len)
{
    static const char *const bits[] = {
        " ", "  ", "\n", "\n\n", "\t", " \n ", "'s", "'ll", "'", "the", " The",
        "a", "Z", "7", "2024", ".", "!?", "--", "\xc3\xa9", "\xe6\x9d\xb1",
        "\xf0\x9f\xa6\x80", "\xe3\x80\x80", "\xc2\xa0", "\xd9\xa1",
        "<|endoftext|>", "<|", "|>", "\xff", "\xc3", "\x80", "\xed\xa0\x80",
    };
    size_t o = 0;
    while (o < len) {
        uint32_t pick = ps_rng_below(r, 3);
        if (pick == 0) {
            buf[o++] = (char)(1 + ps_rng_below(r, 255));
        } else {
            const char *b = bits[ps_rng_below(r, sizeof bits / sizeof bits[0])];
            size_t n = strlen(b);
            if (o + n > len)
                n = len - o;
            memcpy(buf + o, b, n);
            o += n;
        }
    }
    buf[len] = '\0';
}

static void test_round_trip_random(void **state)
{
    (void)state;
    need_gpt2();
    const uint64_t seed = 20240917;
    ps_rng r;
    ps_rng_seed(&r, seed);
    char buf[301];
    for (int k = 0; k < 1000; k++) {
        random_text(&r, buf, ps_rng_below(&r, 300));
        ps_tokens t = encode_checked(gpt2, buf);    /* fails on a mismatch */
        ps_tokens_free(&t);
    }
    /* One long string, with long runs that are single pre-tokens. */
    size_t len = 200000;
    char *big = malloc(len + 1);
    assert_non_null(big);
    random_text(&r, big, len);
    memset(big + 1000, '%', 50000);                 /* one 50 kB piece */
    memset(big + 60000, ' ', 30000);                /* one 30 kB space run */
    ps_tokens t = encode_checked(gpt2, big);
    ps_tokens_free(&t);
    free(big);
}

/* ---- threads ---- */

typedef struct job {
    const ps_tokenizer *tok;
    const char *text;
    ps_tokens out;
    int rc;
} job;

static void *encode_job(void *arg)
{
    job *j = arg;
    j->rc = ps_tokenizer_encode(j->tok, j->text, &j->out, NULL);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    need_gpt2();
    ps_tokenizer *fresh = NULL;         /* a cold cache, so threads race on it */
    assert_int_equal(load_gpt2(&fresh), 0);
    ps_rng r;
    ps_rng_seed(&r, 7);
    size_t len = 60000;
    char *text = malloc(len + 1);
    assert_non_null(text);
    random_text(&r, text, len);

    job jobs[4];
    pthread_t th[4];
    for (int k = 0; k < 4; k++) {
        jobs[k] = (job){ fresh, text, { 0 }, -1 };
        assert_int_equal(pthread_create(&th[k], NULL, encode_job, &jobs[k]), 0);
    }
    for (int k = 0; k < 4; k++)
        pthread_join(th[k], NULL);
    ps_tokens want = encode_checked(gpt2, text);
    for (int k = 0; k < 4; k++) {
        assert_int_equal(jobs[k].rc, 0);
        assert_int_equal(jobs[k].out.n, want.n);
        assert_memory_equal(jobs[k].out.ids, want.ids, (size_t)want.n * sizeof *want.ids);
        ps_tokens_free(&jobs[k].out);
    }
    ps_tokens_free(&want);
    free(text);
    ps_tokenizer_free(fresh);
}

/* ---- speed ---- */

static void test_speed(void **state)
{
    (void)state;
    need_gpt2();
    char path[1100];
    snprintf(path, sizeof path, "%s/models/corpus.txt",
             getenv("PS_SOURCE_ROOT") ? getenv("PS_SOURCE_ROOT") : PS_SOURCE_ROOT);
    FILE *f = fopen(path, "rb");
    if (!f) {
        print_message("skipped: no %s\n", path);
        skip();
    }
    size_t want = 1u << 20, n = 0;
    char *text = malloc(want + 1);
    assert_non_null(text);
    while (n < want) {               /* the corpus again and again up to 1 MB */
        size_t got = fread(text + n, 1, want - n, f);
        if (got == 0) {
            assert_true(n > 0);
            rewind(f);
        }
        n += got;
    }
    fclose(f);
    text[n] = '\0';

    ps_tokenizer *fresh = NULL;      /* the cache starts cold */
    assert_int_equal(load_gpt2(&fresh), 0);
    struct timespec t0, t1;
    ps_tokens t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(ps_tokenizer_encode(fresh, text, &t, NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    print_message("encoded 1 MB into %d tokens in %.3f s\n", t.n, s);
    assert_true(t.n > 150000 && t.n < 400000);
    char *back = ps_tokenizer_decode(fresh, t.ids, t.n);
    assert_string_equal(back, text);
    free(back);
    ps_tokens_free(&t);
    ps_tokenizer_free(fresh);
    free(text);
    /* speed is a benchmark's business (shared machines are noisy): the time
     * is printed, not asserted */
}

/* ---- tiny vocabularies: the merge order and every load error ---- */

/* GPT-2's spelling of byte b, as UTF-8 into out (3 bytes). */
static void byte_form(unsigned b, char *out)
{
    unsigned cp = b;
    if (b <= 32)
        cp = 256 + b;
    else if (b >= 127 && b <= 160)
        cp = 256 + 33 + (b - 127);
    else if (b == 173)
        cp = 256 + 67;
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = '\0';
    } else {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        out[2] = '\0';
    }
}

/* A vocabulary JSON: the 256 bytes (id = byte; without byte `skip` if it is
 * not -1, the later ids then one lower) followed by the raw JSON `extra`. */
static char *tiny_vocab(int skip, const char *extra)
{
    size_t size = 256 * 16 + strlen(extra) + 8, o = 0;
    char *json = malloc(size);
    assert_non_null(json);
    json[o++] = '{';
    int id = 0;
    for (unsigned b = 0; b < 256; b++) {
        if ((int)b == skip)
            continue;
        char form[4];
        byte_form(b, form);
        const char *esc = form[0] == '"' ? "\\\"" : form[0] == '\\' ? "\\\\" : form;
        o += (size_t)snprintf(json + o, size - o, "%s\"%s\": %d", id ? ", " : "", esc, id);
        id++;
    }
    o += (size_t)snprintf(json + o, size - o, "%s}", extra);
    return json;
}

static ps_tokenizer *tiny(const char *extra, const char *merges)
{
    char *json = tiny_vocab(-1, extra);
    ps_tokenizer *tok = NULL;
    ps_error err = { 0 };
    int rc = ps_tokenizer_from_gpt2(&tok, json, strlen(json), merges, strlen(merges), &err);
    free(json);
    if (rc != 0)
        fail_msg("tiny: %s", err.msg);
    return tok;
}

static void assert_ids(const ps_tokenizer *tok, const char *text, const int *ids, int n)
{
    ps_tokens t = encode_checked(tok, text);
    assert_int_equal(t.n, n);
    assert_memory_equal(t.ids, ids, (size_t)n * sizeof *ids);
    ps_tokens_free(&t);
}

static void test_merge_order(void **state)
{
    (void)state;
    /* 256 "ab", 257 "aba", 258 "aa".  "ab a" outranks "a b", which makes
     * "ab": GPT-2 merges every "a b" of a word before it looks again, so
     * "abab" is ab|ab; merging the best pair as soon as it appears would
     * give aba|b. */
    ps_tokenizer *tok = tiny(", \"ab\": 256, \"aba\": 257, \"aa\": 258",
                             "#version: 0.2\nab a\na b\na a\n");
    assert_int_equal(ps_tokenizer_vocab_size(tok), 259);
    assert_ids(tok, "abab", (const int[]){ 256, 256 }, 2);
    assert_ids(tok, "aaa", (const int[]){ 258, 'a' }, 2);      /* left first */
    assert_ids(tok, "aaaa", (const int[]){ 258, 258 }, 2);
    assert_ids(tok, "aab", (const int[]){ 'a', 256 }, 2);      /* by rank */
    assert_ids(tok, "ab a", (const int[]){ 256, ' ', 'a' }, 3);
    assert_ids(tok, "xaba", (const int[]){ 'x', 257 }, 2);
    ps_tokenizer_free(tok);

    /* No merges at all: bytes. A special token of a tiny vocabulary. */
    tok = tiny(", \"<|endoftext|>\": 256", "");
    assert_ids(tok, "h<|endoftext|>i", (const int[]){ 'h', 256, 'i' }, 3);
    ps_tokenizer_free(tok);
}

static void expect_vocab_error(int skip, const char *extra, const char *merges,
                               const char *msg)
{
    char *json = tiny_vocab(skip, extra);
    ps_tokenizer *tok = (ps_tokenizer *)&tok;     /* must become NULL */
    ps_error err = { 0 };
    int rc = ps_tokenizer_from_gpt2(&tok, json, strlen(json), merges, strlen(merges), &err);
    free(json);
    assert_int_equal(rc, PS_ERR_FORMAT);
    assert_int_equal(err.code, PS_ERR_FORMAT);
    assert_null(tok);
    if (!strstr(err.msg, msg))
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, msg);
}

static void test_vocab_errors(void **state)
{
    (void)state;
    const char *m = "#version: 0.2\n";
    expect_vocab_error(-1, ", \"ab\": \"256\"", m, "vocabulary: entry 'ab': id is not an integer");
    expect_vocab_error(-1, ", \"ab\": 256.0", m, "vocabulary: entry 'ab': id is not an integer");
    expect_vocab_error(-1, ", \"ab\": 300", m, "vocabulary: entry 'ab': id 300 is outside 0..256");
    expect_vocab_error(-1, ", \"ab\": -1", m, "id -1 is outside 0..256");
    expect_vocab_error(-1, ", \"ab\": 5, \"cd\": 256", m, "both have id 5");
    expect_vocab_error(-1, ", \"a\": 256", m, "vocabulary: invalid JSON");   /* duplicate key */
    expect_vocab_error(-1, ", \"a b\": 256", m,
                       "vocabulary: entry 'a b': character U+0020 is not one of the 256 byte characters");
    expect_vocab_error('z', "", m, "vocabulary: no token for byte 0x7a");

    ps_tokenizer *tok = NULL;
    ps_error err = { 0 };
    assert_int_equal(ps_tokenizer_from_gpt2(&tok, "{\"a\": ", 6, "", 0, &err), PS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "vocabulary: invalid JSON at line 1"));
    assert_int_equal(ps_tokenizer_from_gpt2(&tok, "[1, 2]", 6, "", 0, &err), PS_ERR_FORMAT);
    assert_string_equal(err.msg, "vocabulary: not a JSON object of token to id");
    assert_int_equal(ps_tokenizer_from_gpt2(&tok, "{}", 2, "", 0, &err), PS_ERR_FORMAT);
    assert_string_equal(err.msg, "vocabulary: no tokens");
    assert_int_equal(ps_tokenizer_from_gpt2(NULL, "{}", 2, "", 0, &err), PS_ERR_INVALID);
    assert_int_equal(ps_tokenizer_from_gpt2(&tok, NULL, 0, "", 0, &err), PS_ERR_INVALID);
    assert_null(tok);
}

static void test_merge_errors(void **state)
{
    (void)state;
    const char *v = ", \"ab\": 256";
    expect_vocab_error(-1, v, "#version: 0.2\na b c\n",
                       "merges: line 2: expected two tokens separated by a space, got 'a b c'");
    expect_vocab_error(-1, v, "#version: 0.2\na b\nab\n",
                       "merges: line 3: expected two tokens separated by a space, got 'ab'");
    expect_vocab_error(-1, v, "a b\nab xyz\n", "merges: line 2: 'xyz' is not in vocabulary");
    expect_vocab_error(-1, v, "a b\na c\n",
                       "merges: line 2: merge 'a c' makes 'ac', which is not in vocabulary");
    expect_vocab_error(-1, v, "a b\r\n\r\na b\r\n",
                       "merges: line 3: merge 'a b' appears twice (ranks 0 and 1)");
    /* What loads: CRLF, a header, blank lines, tabs, no final newline. */
    ps_tokenizer *tok = tiny(v, "#version: 0.2\r\n\r\na\tb");
    assert_ids(tok, "ab", (const int[]){ 256 }, 1);
    ps_tokenizer_free(tok);
}

static void test_file_errors(void **state)
{
    (void)state;
    ps_tokenizer *tok = (ps_tokenizer *)&tok;
    ps_error err = { 0 };
    assert_int_equal(ps_tokenizer_load_gpt2(&tok, "/nonexistent/encoder.json",
                                            "/nonexistent/vocab.bpe", &err), PS_ERR_IO);
    assert_null(tok);
    assert_string_equal(err.msg, "/nonexistent/encoder.json: cannot open: No such file or directory");

    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char vocab[512], merges[512];
    snprintf(vocab, sizeof vocab, "%s/ps_bpe_test_%d.json", base, (int)getpid());
    snprintf(merges, sizeof merges, "%s/ps_bpe_test_%d.bpe", base, (int)getpid());
    FILE *f = fopen(vocab, "wb");
    assert_non_null(f);
    fputs("{\"a\": 0,\n \"b\": }", f);
    fclose(f);
    f = fopen(merges, "wb");
    assert_non_null(f);
    fputs("#version: 0.2\n", f);
    fclose(f);
    assert_int_equal(ps_tokenizer_load_gpt2(&tok, vocab, merges, &err), PS_ERR_FORMAT);
    char want[600];
    snprintf(want, sizeof want, "%s: invalid JSON at line 2", vocab);
    if (strncmp(err.msg, want, strlen(want)) != 0)
        fail_msg("message \"%s\" does not start \"%s\"", err.msg, want);
    assert_int_equal(ps_tokenizer_load_gpt2(&tok, merges, "/nonexistent/vocab.bpe", &err),
                     PS_ERR_IO);
    assert_string_equal(err.msg, "/nonexistent/vocab.bpe: cannot open: No such file or directory");

    /* A good vocabulary with a bad merges file names the merges file. */
    char *json = tiny_vocab(-1, "");
    f = fopen(vocab, "wb");
    assert_non_null(f);
    fputs(json, f);
    fclose(f);
    free(json);
    f = fopen(merges, "wb");
    assert_non_null(f);
    fputs("#version: 0.2\nb c\nq\n", f);
    fclose(f);
    assert_int_equal(ps_tokenizer_load_gpt2(&tok, vocab, merges, &err), PS_ERR_FORMAT);
    snprintf(want, sizeof want, "%s: line 2: merge 'b c' makes 'bc', which is not in %s",
             merges, vocab);
    assert_string_equal(err.msg, want);
    assert_null(tok);
    remove(vocab);
    remove(merges);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_facts),
        cmocka_unit_test(test_known_ids),
        cmocka_unit_test(test_pieces_and_decode),
        cmocka_unit_test(test_round_trip_random),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_speed),
        cmocka_unit_test(test_merge_order),
        cmocka_unit_test(test_vocab_errors),
        cmocka_unit_test(test_merge_errors),
        cmocka_unit_test(test_file_errors),
    };
    return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
