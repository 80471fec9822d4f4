/* Tests of the words tokenizer: the splitting rule on tricky inputs, encoding
 * with unknown words, decoding's spacing rule, round trips, vocabulary
 * building order, list and JSON validation, and lookups at scale. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "paramscope/tokenizer.h"

/* ---- helpers ---- */

typedef struct joined {
    char buf[8192];
    size_t len;
    int count;
} joined;

static void join_piece(const char *piece, void *ctx)
{
    joined *j = ctx;
    size_t n = strlen(piece);
    assert_true(n > 0);
    assert_true(j->len + n + 2 < sizeof j->buf);
    if (j->count++ > 0)
        j->buf[j->len++] = '|';
    memcpy(j->buf + j->len, piece, n + 1);
    j->len += n;
}

/* The pieces of text (len bytes) joined by '|'; *count gets how many. */
static const char *split_n(joined *j, const char *text, size_t len)
{
    memset(j, 0, sizeof *j);
    ps_words_split(text, len, join_piece, j);
    return j->buf;
}

static const char *split(joined *j, const char *text)
{
    return split_n(j, text, strlen(text));
}

static ps_tokenizer *make_list(const char *const *tokens, int n)
{
    ps_tokenizer *tok = NULL;
    ps_error err = { 0 };
    int rc = ps_tokenizer_from_list(&tok, tokens, n, &err);
    if (rc != 0)
        fail_msg("from_list: %s", err.msg);
    assert_non_null(tok);
    return tok;
}

static const char *const SMALL[] = {
    "<unk>", "the", "sky", "is", "blue", ".", "don't", "!", "(", ")", ",",
    "café", "?", ";", ":", "'", "3", "cats",
};
#define N_SMALL ((int)(sizeof SMALL / sizeof SMALL[0]))

/* ---- splitting ---- */

static void test_split_tricky(void **state)
{
    (void)state;
    joined j;
    assert_string_equal(split(&j, "Don't stop!"), "don't|stop|!");
    assert_int_equal(j.count, 3);
    assert_string_equal(split(&j, "3 cats, 12 dogs."), "3|cats|,|12|dogs|.");
    assert_string_equal(split(&j, "  multiple   spaces\t\n"), "multiple|spaces");
    assert_int_equal(j.count, 2);
    assert_string_equal(split(&j, "(hello)"), "(|hello|)");
    assert_string_equal(split(&j, ""), "");
    assert_int_equal(j.count, 0);
    assert_string_equal(split(&j, " \t\r\n "), "");
    assert_int_equal(j.count, 0);
    assert_string_equal(split(&j, "?!...--"), "?|!|.|.|.|-|-");
    assert_int_equal(j.count, 7);
    assert_string_equal(split(&j, "THE Sky iS"), "the|sky|is");
}

static void test_split_apostrophes_digits(void **state)
{
    (void)state;
    joined j;
    /* An apostrophe stays inside only when letters are on both sides. */
    assert_string_equal(split(&j, "'quoted' rock'n'roll"),
                        "'|quoted|'|rock'n'roll");
    assert_string_equal(split(&j, "don''t cats' 'tis"), "don|'|'|t|cats|'|'|tis");
    assert_string_equal(split(&j, "90's"), "90|'|s");
    assert_string_equal(split(&j, "x'"), "x|'");
    /* Letters and digits are separate runs; other punctuation splits. */
    assert_string_equal(split(&j, "abc123def 007"), "abc|123|def|007");
    assert_string_equal(split(&j, "ice-cream@home_now"),
                        "ice|-|cream|@|home|_|now");
    assert_string_equal(split(&j, "3.14"), "3|.|14");
}

static void test_split_utf8(void **state)
{
    (void)state;
    joined j;
    /* Bytes >= 0x80 are letters; only ASCII is lowercased. */
    assert_string_equal(split(&j, "Café CRÈME"), "café|crÈme");
    assert_int_equal(j.count, 2);
    assert_string_equal(split(&j, "naïve, über."), "naïve|,|über|.");
    assert_string_equal(split(&j, "l'été"), "l'été");
    assert_string_equal(split(&j, "日本語 text"), "日本語|text");
    /* Invalid sequences become U+FFFD, one per bad byte. */
    assert_string_equal(split(&j, "a\xff" "b"), "a\xef\xbf\xbd" "b");
    assert_string_equal(split(&j, "caf\xc3"), "caf\xef\xbf\xbd");
    assert_string_equal(split(&j, "\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(split(&j, "\xed\xa0\x80"),            /* a surrogate */
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(split(&j, "\xf4\x90\x80\x80"),        /* > U+10FFFF */
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(split(&j, "\xf0\x9f\x98\x80!"), "\xf0\x9f\x98\x80|!");
    assert_int_equal(j.count, 2);
}

static void test_split_bounds_and_controls(void **state)
{
    (void)state;
    joined j;
    /* Only len bytes are read; a NUL inside is white space. */
    assert_string_equal(split_n(&j, "hello world", 5), "hello");
    assert_string_equal(split_n(&j, "ab\0cd", 5), "ab|cd");
    assert_string_equal(split_n(&j, "don't", 4), "don|'");
    assert_string_equal(split(&j, "a\x01" "b\x7f" "c"), "a|b|c");

    /* A piece longer than any stack buffer. */
    char big[1001];
    memset(big, 'A', 1000);
    big[1000] = '\0';
    split(&j, big);
    assert_int_equal(j.count, 1);
    assert_int_equal(j.len, 1000);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(j.buf[i], 'a');
}

/* ---- encoding and decoding ---- */

static void test_encode_unknown(void **state)
{
    (void)state;
    ps_tokenizer *tok = make_list(SMALL, N_SMALL);
    ps_tokens t;
    ps_error err = { 0 };
    assert_int_equal(ps_tokenizer_encode(tok, "The SKY is GREEN. Don't!", &t, &err), 0);
    const int want_ids[] = { 1, 2, 3, 0, 5, 6, 7 };
    const char *want_pieces[] = { "the", "sky", "is", "green", ".", "don't", "!" };
    assert_int_equal(t.n, 7);
    for (int i = 0; i < t.n; i++) {
        assert_int_equal(t.ids[i], want_ids[i]);
        assert_string_equal(t.pieces[i], want_pieces[i]);
        assert_int_equal(t.unknown[i], i == 3);
    }
    assert_int_equal(t.n_unknown, 1);
    ps_tokens_free(&t);
    assert_int_equal(t.n, 0);
    assert_null(t.ids);

    /* Several unknowns, including a word that differs only by an accent. */
    assert_int_equal(ps_tokenizer_encode(tok, "cafe café cafés", &t, &err), 0);
    assert_int_equal(t.n, 3);
    assert_int_equal(t.ids[0], 0);
    assert_int_equal(t.ids[1], 11);
    assert_int_equal(t.ids[2], 0);
    assert_int_equal(t.n_unknown, 2);
    assert_string_equal(t.pieces[2], "cafés");
    ps_tokens_free(&t);

    /* "<unk>" typed as text is three pieces, not id 0. */
    assert_int_equal(ps_tokenizer_encode(tok, "<unk>", &t, &err), 0);
    assert_int_equal(t.n, 3);
    assert_int_equal(t.n_unknown, 3);
    assert_string_equal(t.pieces[1], "unk");
    ps_tokens_free(&t);

    assert_int_equal(ps_tokenizer_encode(tok, "", &t, &err), 0);
    assert_int_equal(t.n, 0);
    assert_int_equal(t.n_unknown, 0);
    ps_tokens_free(&t);

    assert_int_equal(ps_tokenizer_encode(tok, NULL, &t, &err), PS_ERR_INVALID);
    assert_int_equal(t.n, 0);
    ps_tokenizer_free(tok);
}

static void test_decode_spacing(void **state)
{
    (void)state;
    ps_tokenizer *tok = make_list(SMALL, N_SMALL);
    /* ( the sky ) , is blue ! don't ? ' ; : . */
    const int ids[] = { 8, 1, 2, 9, 10, 3, 4, 7, 6, 12, 15, 13, 14, 5 };
    char *s = ps_tokenizer_decode(tok, ids, 14);
    assert_string_equal(s, "(the sky), is blue! don't?';:.");
    free(s);

    /* "(" then "(" then ")" : no space after either "(", none before ")". */
    const int parens[] = { 8, 8, 1, 9, 9, 2 };
    s = ps_tokenizer_decode(tok, parens, 6);
    assert_string_equal(s, "((the)) sky");
    free(s);

    /* Unknown and out-of-range ids. */
    const int odd[] = { 0, 1, 99, -1, N_SMALL, N_SMALL - 1 };
    s = ps_tokenizer_decode(tok, odd, 6);
    assert_string_equal(s, "<unk> the <?> <?> <?> cats");
    free(s);

    s = ps_tokenizer_decode(tok, NULL, 0);
    assert_string_equal(s, "");
    free(s);
    const int one_punct[] = { 5 };
    s = ps_tokenizer_decode(tok, one_punct, 1);
    assert_string_equal(s, ".");
    free(s);
    ps_tokenizer_free(tok);
}

static void round_trip(const ps_tokenizer *tok, const char *text)
{
    ps_tokens t;
    assert_int_equal(ps_tokenizer_encode(tok, text, &t, NULL), 0);
    assert_int_equal(t.n_unknown, 0);
    char *back = ps_tokenizer_decode(tok, t.ids, t.n);
    assert_string_equal(back, text);
    free(back);
    ps_tokens_free(&t);
}

static void test_round_trip(void **state)
{
    (void)state;
    static const char *texts[] = {
        "don't stop! the sky is blue, (really) isn't it? 3 cats; 12 dogs: fine.",
        "café au lait, naïve and über cool ideas.",
        "rock'n'roll is 100 % fun!",
        "a",
        "(x)",
    };
    char all[1024] = "";
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        strcat(all, texts[i]);
        strcat(all, "\n");
    }
    ps_tokenizer *tok = NULL;
    assert_int_equal(ps_tokenizer_build_words(&tok, all, strlen(all), 1, NULL), 0);
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        round_trip(tok, texts[i]);

    /* Text that is not normalised decodes to its normal form, which is then
     * stable under another round. */
    ps_tokens t;
    assert_int_equal(ps_tokenizer_encode(tok, "  The SKY is BLUE ,really  ( x ) ", &t, NULL), 0);
    char *norm = ps_tokenizer_decode(tok, t.ids, t.n);
    assert_string_equal(norm, "the sky is blue, really (x)");
    round_trip(tok, norm);
    free(norm);
    ps_tokens_free(&t);
    ps_tokenizer_free(tok);
}

/* ---- building ---- */

static void expect_vocab(const ps_tokenizer *tok, const char *const *want, int n)
{
    assert_int_equal(ps_tokenizer_vocab_size(tok), n);
    for (int i = 0; i < n; i++) {
        assert_string_equal(ps_tokenizer_token(tok, i), want[i]);
        assert_int_equal(ps_tokenizer_find(tok, want[i]), i);
    }
}

static void test_build_order(void **state)
{
    (void)state;
    /* a:3  ,:3  b:2  zoo:2  é:2  d:1  c:1
     * Ties go in byte order: "," (0x2c) before "a"; "zoo" before "é" (0xc3). */
    const char *text = "é b a zoo , C a , é d B zoo , A";
    ps_tokenizer *tok = NULL;
    ps_error err = { 0 };

    assert_int_equal(ps_tokenizer_build_words(&tok, text, strlen(text), 2, &err), 0);
    const char *const want2[] = { "<unk>", ",", "a", "b", "zoo", "é" };
    expect_vocab(tok, want2, 6);
    assert_int_equal(ps_tokenizer_find(tok, "c"), -1);
    assert_int_equal(ps_tokenizer_kind_of(tok), PS_TOKENIZER_KIND_WORDS);
    assert_string_equal(ps_tokenizer_kind_name(tok), "words");
    ps_tokenizer_free(tok);

    const char *const want1[] = { "<unk>", ",", "a", "b", "zoo", "é", "c", "d" };
    assert_int_equal(ps_tokenizer_build_words(&tok, text, strlen(text), 1, &err), 0);
    expect_vocab(tok, want1, 8);
    ps_tokenizer_free(tok);
    assert_int_equal(ps_tokenizer_build_words(&tok, text, strlen(text), 0, &err), 0);
    expect_vocab(tok, want1, 8);
    ps_tokenizer_free(tok);

    /* Only "<unk>" when nothing is frequent enough, or there is no text. */
    assert_int_equal(ps_tokenizer_build_words(&tok, text, strlen(text), 4, &err), 0);
    expect_vocab(tok, want1, 1);
    ps_tokenizer_free(tok);
    assert_int_equal(ps_tokenizer_build_words(&tok, "", 0, 1, &err), 0);
    expect_vocab(tok, want1, 1);
    ps_tokenizer_free(tok);

    /* len bounds the text. */
    assert_int_equal(ps_tokenizer_build_words(&tok, "b b a zzz", 5, 1, &err), 0);
    const char *const want_len[] = { "<unk>", "b", "a" };
    expect_vocab(tok, want_len, 3);
    ps_tokenizer_free(tok);
}

static void test_build_many(void **state)
{
    (void)state;
    /* 3000 distinct words; word k occurs (k % 5) + 1 times.  The vocabulary
     * must hold them all, grouped by count from 5 down to 1. */
    enum { N = 3000 };
    size_t cap = (size_t)N * 5 * 8 + 1, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (int k = 0; k < N; k++)
        for (int r = 0; r <= k % 5; r++)
            len += (size_t)snprintf(text + len, cap - len, "w%c%c%c ",
                                    'a' + k % 26, 'a' + (k / 26) % 26,
                                    'a' + k / 676);
    ps_tokenizer *tok = NULL;
    assert_int_equal(ps_tokenizer_build_words(&tok, text, len, 1, NULL), 0);
    assert_int_equal(ps_tokenizer_vocab_size(tok), N + 1);
    ps_tokens t;
    assert_int_equal(ps_tokenizer_encode(tok, text, &t, NULL), 0);
    assert_int_equal(t.n_unknown, 0);
    for (int i = 0; i < t.n; i++) {
        /* A word with count c sits among the ids of that count group. */
        const char *w = t.pieces[i];
        int k = (w[1] - 'a') + 26 * (w[2] - 'a') + 676 * (w[3] - 'a');
        int c = k % 5 + 1;
        int first = 1 + (N / 5) * (5 - c);
        assert_in_range(t.ids[i], first, first + N / 5 - 1);
        assert_string_equal(ps_tokenizer_token(tok, t.ids[i]), w);
    }
    /* Within a group, byte order. */
    for (int id = 2; id <= N; id++)
        if ((id - 1) % (N / 5) != 0)
            assert_true(strcmp(ps_tokenizer_token(tok, id - 1),
                               ps_tokenizer_token(tok, id)) < 0);
    ps_tokens_free(&t);
    ps_tokenizer_free(tok);
    free(text);
}

/* ---- lists and JSON ---- */

static void expect_list_error(const char *const *tokens, int n, int code,
                              const char *msg)
{
    ps_tokenizer *tok = (ps_tokenizer *)&tok;    /* must be reset to NULL */
    ps_error err = { 0 };
    assert_int_equal(ps_tokenizer_from_list(&tok, tokens, n, &err), code);
    assert_null(tok);
    assert_int_equal(err.code, code);
    assert_string_equal(err.msg, msg);
}

static void test_from_list_rejects(void **state)
{
    (void)state;
    const char *const dup[] = { "<unk>", "the", "sky", "the" };
    expect_list_error(dup, 4, PS_ERR_FORMAT,
                      "vocabulary: token 'the' appears twice (entries 1 and 3)");
    const char *const dup_unk[] = { "<unk>", "a", "<unk>" };
    expect_list_error(dup_unk, 3, PS_ERR_FORMAT,
                      "vocabulary: token '<unk>' appears twice (entries 0 and 2)");
    const char *const first[] = { "the", "<unk>" };
    expect_list_error(first, 2, PS_ERR_FORMAT,
                      "vocabulary: entry 0 is 'the', expected '<unk>'");
    const char *const upper[] = { "<UNK>" };
    expect_list_error(upper, 1, PS_ERR_FORMAT,
                      "vocabulary: entry 0 is '<UNK>', expected '<unk>'");
    const char *const empty[] = { "<unk>", "a", "" };
    expect_list_error(empty, 3, PS_ERR_FORMAT, "vocabulary: entry 2 is empty");
    const char *const null[] = { "<unk>", NULL };
    expect_list_error(null, 2, PS_ERR_FORMAT, "vocabulary: entry 1 is missing");
    const char *const bad_utf8[] = { "<unk>", "caf\xe9" };
    expect_list_error(bad_utf8, 2, PS_ERR_FORMAT,
                      "vocabulary: entry 1 'caf\\xe9' is not valid UTF-8");
    expect_list_error(dup, 0, PS_ERR_INVALID,
                      "vocabulary: empty (entry 0 must be '<unk>')");

    /* Only "<unk>" is a valid vocabulary. */
    ps_tokenizer *tok = make_list(dup, 1);
    assert_int_equal(ps_tokenizer_vocab_size(tok), 1);
    ps_tokenizer_free(tok);
    ps_tokenizer_free(NULL);
}

static void test_json_round_trip(void **state)
{
    (void)state;
    const char *const tokens[] = {
        "<unk>", "a\"b", "back\\slash", "\"", "\\", "café", "'", "tab\there",
        "日本", "\xf0\x9f\x98\x80",
    };
    int n = (int)(sizeof tokens / sizeof tokens[0]);
    ps_tokenizer *tok = make_list(tokens, n);
    char *json = ps_tokenizer_to_json(tok);
    assert_non_null(json);
    ps_tokenizer *back = NULL;
    ps_error err = { 0 };
    assert_int_equal(ps_tokenizer_from_json(&back, json, &err), 0);
    expect_vocab(back, tokens, n);
    char *json2 = ps_tokenizer_to_json(back);
    assert_string_equal(json2, json);
    free(json);
    free(json2);
    ps_tokenizer_free(back);
    ps_tokenizer_free(tok);

    /* The exact text, so other programs can read it. */
    const char *const small[] = { "<unk>", "a\"b", "c\\d", "é" };
    tok = make_list(small, 4);
    json = ps_tokenizer_to_json(tok);
    assert_string_equal(json, "[\"<unk>\",\"a\\\"b\",\"c\\\\d\",\"é\"]");
    free(json);
    ps_tokenizer_free(tok);
}

static void expect_json_error(const char *json, int code, const char *msg)
{
    ps_tokenizer *tok = (ps_tokenizer *)&tok;
    ps_error err = { 0 };
    assert_int_equal(ps_tokenizer_from_json(&tok, json, &err), code);
    assert_null(tok);
    if (strncmp(err.msg, msg, strlen(msg)) != 0)
        fail_msg("message '%s' does not start with '%s'", err.msg, msg);
}

static void test_json_rejects(void **state)
{
    (void)state;
    expect_json_error("[\"<unk>\", \"a\"", PS_ERR_FORMAT,
                      "vocabulary: invalid JSON at line 1");
    expect_json_error("{\"a\": 1}", PS_ERR_FORMAT,
                      "vocabulary: JSON is not an array of strings");
    expect_json_error("[\"<unk>\", 3]", PS_ERR_FORMAT,
                      "vocabulary: entry 1 is not a string");
    expect_json_error("[\"a\", \"<unk>\"]", PS_ERR_FORMAT,
                      "vocabulary: entry 0 is 'a', expected '<unk>'");
    expect_json_error("[\"<unk>\", \"x\", \"x\"]", PS_ERR_FORMAT,
                      "vocabulary: token 'x' appears twice (entries 1 and 2)");
    expect_json_error("[\"<unk>\", \"a\\u0000b\"]", PS_ERR_FORMAT,
                      "vocabulary: invalid JSON at line 1");
    expect_json_error("[]", PS_ERR_INVALID, "vocabulary: empty");
}

/* ---- lookups ---- */

static void test_find_and_token_ranges(void **state)
{
    (void)state;
    ps_tokenizer *tok = make_list(SMALL, N_SMALL);
    assert_int_equal(ps_tokenizer_vocab_size(tok), N_SMALL);
    assert_string_equal(ps_tokenizer_token(tok, 0), "<unk>");
    assert_string_equal(ps_tokenizer_token(tok, N_SMALL - 1), "cats");
    assert_null(ps_tokenizer_token(tok, N_SMALL));
    assert_null(ps_tokenizer_token(tok, -1));
    assert_null(ps_tokenizer_token(NULL, 0));
    assert_int_equal(ps_tokenizer_find(tok, "<unk>"), 0);
    assert_int_equal(ps_tokenizer_find(tok, "café"), 11);
    assert_int_equal(ps_tokenizer_find(tok, "The"), -1);   /* exact: no lowercasing */
    assert_int_equal(ps_tokenizer_find(tok, "th"), -1);
    assert_int_equal(ps_tokenizer_find(tok, "thee"), -1);
    assert_int_equal(ps_tokenizer_find(tok, ""), -1);
    assert_int_equal(ps_tokenizer_find(tok, NULL), -1);
    ps_tokenizer_free(tok);
}

/* "w" and k written in base 26 with the letters a..z: a word of the rule. */
static void word_name(char *buf, int k)
{
    char digits[8];
    int n = 0;
    do {
        digits[n++] = (char)('a' + k % 26);
        k /= 26;
    } while (k > 0);
    buf[0] = 'w';
    for (int i = 0; i < n; i++)
        buf[1 + i] = digits[n - 1 - i];
    buf[1 + n] = '\0';
}

static void test_large_vocab(void **state)
{
    (void)state;
    enum { N = 50257 };
    char **names = malloc(N * sizeof *names);
    assert_non_null(names);
    names[0] = strdup("<unk>");
    for (int i = 1; i < N; i++) {
        names[i] = malloc(16);
        word_name(names[i], i);
    }
    ps_tokenizer *tok = make_list((const char *const *)names, N);
    assert_int_equal(ps_tokenizer_vocab_size(tok), N);
    for (int i = 0; i < N; i++)
        assert_int_equal(ps_tokenizer_find(tok, names[i]), i);
    char name[16];
    word_name(name, 0);
    assert_int_equal(ps_tokenizer_find(tok, name), -1);
    word_name(name, N);
    assert_int_equal(ps_tokenizer_find(tok, name), -1);

    /* names[1] = "wb", names[50256] = typed in capitals, then an unknown. */
    char text[64];
    word_name(name, N);
    snprintf(text, sizeof text, "%s %s %s", names[1], "WCWIY", name);
    assert_string_equal(names[50256], "wcwiy");
    ps_tokens t;
    assert_int_equal(ps_tokenizer_encode(tok, text, &t, NULL), 0);
    assert_int_equal(t.n, 3);
    assert_int_equal(t.ids[0], 1);
    assert_int_equal(t.ids[1], 50256);
    assert_int_equal(t.ids[2], 0);
    assert_int_equal(t.n_unknown, 1);
    ps_tokens_free(&t);
    ps_tokenizer_free(tok);
    for (int i = 0; i < N; i++)
        free(names[i]);
    free(names);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_tricky),
        cmocka_unit_test(test_split_apostrophes_digits),
        cmocka_unit_test(test_split_utf8),
        cmocka_unit_test(test_split_bounds_and_controls),
        cmocka_unit_test(test_encode_unknown),
        cmocka_unit_test(test_decode_spacing),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_build_order),
        cmocka_unit_test(test_build_many),
        cmocka_unit_test(test_from_list_rejects),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_rejects),
        cmocka_unit_test(test_find_and_token_ranges),
        cmocka_unit_test(test_large_vocab),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
