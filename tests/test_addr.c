/* Tests of tensor addresses on a tiny model (2 layers, 4 heads, n_embd 16,
 * n_ctx 8, vocabulary of 11 words): the exact windows of every form, the
 * canonical names and their round trip, writes through a view, every kind of
 * malformed address with its message, and completion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "repl/addr.h"

/* ---- fixture ---- */

#define C 16            /* n_embd */
#define NH 4            /* n_head */
#define HD (C / NH)     /* head size */

static const char *const VOCAB[] = {
    "<unk>", "the", "sky", "is", "blue", ".", "\"", "sea", "don't", "\\", "green",
};
#define N_VOCAB (int)(sizeof VOCAB / sizeof VOCAB[0])

typedef struct fixture {
    ps_model *m;
    ps_tokenizer *tok;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    ps_config cfg = { .n_layer = 2, .n_head = NH, .n_embd = C, .n_ctx = 8,
                      .vocab_size = N_VOCAB };
    ps_error err = { 0 };
    if (!f || ps_model_init(&f->m, &cfg, &err) != 0 ||
        ps_tokenizer_from_list(&f->tok, VOCAB, N_VOCAB, &err) != 0) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    ps_model_init_random(f->m, 7);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ps_tokenizer_free(f->tok);
    ps_model_free(f->m);
    free(f);
    return 0;
}

static ps_param *P(fixture *f, const char *name)
{
    ps_param *p = ps_model_find(f->m, name);
    if (!p)
        fail_msg("no parameter %s in the fixture", name);
    return p;
}

/* Parses text, which must succeed. */
static addr_view parse_ok(fixture *f, const char *text)
{
    addr_view v;
    ps_error err = { 0 };
    int rc = addr_parse(f->m, f->tok, text, &v, &err);
    if (rc != 0)
        fail_msg("addr_parse(\"%s\") failed: %s", text, err.msg);
    return v;
}

/* Region i of v must be exactly param[row0 +: rows, col0 +: cols]. */
static void check_region(const addr_view *v, int i, const ps_param *param, size_t row0,
                         size_t rows, size_t col0, size_t cols)
{
    assert_true(i < v->n_regions);
    const addr_region *r = &v->regions[i];
    if (r->param != param || r->row0 != row0 || r->rows != rows || r->col0 != col0 ||
        r->cols != cols)
        fail_msg("%s region %d: got %s [%zu +%zu, %zu +%zu], expected %s [%zu +%zu, %zu +%zu]",
                 v->name, i, r->param ? r->param->name : "(null)", r->row0, r->rows, r->col0,
                 r->cols, param->name, row0, rows, col0, cols);
}

/* One region, with kind, name and dimensions. */
static void check_one(fixture *f, const char *text, const char *param, size_t row0,
                      size_t rows, size_t col0, size_t cols, addr_kind kind,
                      const char *name, int ndim)
{
    addr_view v = parse_ok(f, text);
    assert_int_equal(v.n_regions, 1);
    check_region(&v, 0, P(f, param), row0, rows, col0, cols);
    if (v.kind != kind)
        fail_msg("%s: kind %d, expected %d", text, v.kind, kind);
    assert_string_equal(v.name, name);
    assert_int_equal(v.ndim, ndim);
}

/* Parsing must fail with code and a message containing want. */
static void check_error(fixture *f, const ps_tokenizer *tok, const char *text, int code,
                        const char *want)
{
    addr_view v;
    ps_error err = { 0 };
    int rc = addr_parse(f->m, tok, text, &v, &err);
    if (rc == 0)
        fail_msg("addr_parse(\"%s\") succeeded as %s; expected an error with \"%s\"", text,
                 v.name, want);
    if (rc != code || err.code != code)
        fail_msg("addr_parse(\"%s\"): code %d (err %d), expected %d: %s", text, rc,
                 err.code, code, err.msg);
    if (!strstr(err.msg, want))
        fail_msg("addr_parse(\"%s\"): message \"%s\" lacks \"%s\"", text, err.msg, want);
    assert_null(strchr(err.msg, '\n'));
}

#define ERR(text, code, want) check_error(f, f->tok, text, code, want)

/* ---- parameters, indices and slices ---- */

static void test_whole_parameters(void **state)
{
    fixture *f = *state;
    check_one(f, "h.0.attn.c_attn.weight", "h.0.attn.c_attn.weight", 0, C, 0, 3 * C,
              ADDR_KIND_TENSOR, "h.0.attn.c_attn.weight", 2);
    check_one(f, "wte", "wte.weight", 0, N_VOCAB, 0, C, ADDR_KIND_TENSOR, "wte.weight", 2);
    check_one(f, "wpe", "wpe.weight", 0, 8, 0, C, ADDR_KIND_TENSOR, "wpe.weight", 2);
    check_one(f, "wte.weight", "wte.weight", 0, N_VOCAB, 0, C, ADDR_KIND_TENSOR,
              "wte.weight", 2);
    check_one(f, "  ln_f.bias\t", "ln_f.bias", 0, C, 0, 1, ADDR_KIND_TENSOR, "ln_f.bias", 1);
    check_one(f, "h.1.mlp.c_proj.weight", "h.1.mlp.c_proj.weight", 0, 4 * C, 0, C,
              ADDR_KIND_TENSOR, "h.1.mlp.c_proj.weight", 2);
    /* a whole-axis index changes nothing */
    check_one(f, "h.1.mlp.c_fc.weight[:, :]", "h.1.mlp.c_fc.weight", 0, C, 0, 4 * C,
              ADDR_KIND_TENSOR, "h.1.mlp.c_fc.weight", 2);
    addr_view v = parse_ok(f, "h.1.ln_2.bias");
    assert_int_equal(v.base, ADDR_BASE_TENSOR);
    assert_int_equal(v.layer, 1);
    assert_int_equal(addr_view_numel(&v), C);
}

static void test_matrix_indices(void **state)
{
    fixture *f = *state;
    const char *W = "h.0.attn.c_attn.weight";
    check_one(f, "h.0.attn.c_attn.weight[0:8,:]", W, 0, 8, 0, 3 * C, ADDR_KIND_SLICE,
              "h.0.attn.c_attn.weight[0:8,:]", 2);
    check_one(f, "h.0.attn.c_attn.weight[3,17]", W, 3, 1, 17, 1, ADDR_KIND_ELEMENT,
              "h.0.attn.c_attn.weight[3,17]", 0);
    check_one(f, "h.0.attn.c_attn.weight[:, -1]", W, 0, C, 47, 1, ADDR_KIND_SLICE,
              "h.0.attn.c_attn.weight[:,47]", 1);
    check_one(f, "h.0.attn.c_attn.weight[5]", W, 5, 1, 0, 3 * C, ADDR_KIND_SLICE,
              "h.0.attn.c_attn.weight[5,:]", 1);
    check_one(f, "h.0.attn.c_attn.weight[-3:]", W, 13, 3, 0, 3 * C, ADDR_KIND_SLICE,
              "h.0.attn.c_attn.weight[13:16,:]", 2);
    check_one(f, "h.0.attn.c_attn.weight[:4, 40:]", W, 0, 4, 40, 8, ADDR_KIND_SLICE,
              "h.0.attn.c_attn.weight[0:4,40:48]", 2);
    check_one(f, "h.0.attn.c_attn.weight[-16]", W, 0, 1, 0, 3 * C, ADDR_KIND_SLICE,
              "h.0.attn.c_attn.weight[0,:]", 1);
    check_one(f, "h.0.attn.c_attn.weight[ -2 : -1 , -48 ]", W, 14, 1, 0, 1,
              ADDR_KIND_SLICE, "h.0.attn.c_attn.weight[14:15,0]", 1);
    /* a slice of one row keeps its dimension, unlike [7] */
    check_one(f, "h.0.attn.c_attn.weight[7:8]", W, 7, 1, 0, 3 * C, ADDR_KIND_SLICE,
              "h.0.attn.c_attn.weight[7:8,:]", 2);
    /* chained indices act on what is left */
    check_one(f, "h.0.attn.c_attn.weight[2:10][1][-2:]", W, 3, 1, 46, 2, ADDR_KIND_SLICE,
              "h.0.attn.c_attn.weight[3,46:48]", 1);
    check_one(f, "h.0.attn.c_attn.weight[:,10][4]", W, 4, 1, 10, 1, ADDR_KIND_ELEMENT,
              "h.0.attn.c_attn.weight[4,10]", 0);
    check_one(f, "h.0.attn.c_attn.weight[+2,+3]", W, 2, 1, 3, 1, ADDR_KIND_ELEMENT,
              "h.0.attn.c_attn.weight[2,3]", 0);
}

static void test_vector_indices(void **state)
{
    fixture *f = *state;
    const char *B = "h.1.mlp.c_fc.bias";
    check_one(f, "h.1.mlp.c_fc.bias[63]", B, 63, 1, 0, 1, ADDR_KIND_ELEMENT,
              "h.1.mlp.c_fc.bias[63]", 0);
    check_one(f, "h.1.mlp.c_fc.bias[-64]", B, 0, 1, 0, 1, ADDR_KIND_ELEMENT,
              "h.1.mlp.c_fc.bias[0]", 0);
    check_one(f, "h.1.mlp.c_fc.bias[2:5]", B, 2, 3, 0, 1, ADDR_KIND_SLICE,
              "h.1.mlp.c_fc.bias[2:5]", 1);
    check_one(f, "h.1.mlp.c_fc.bias[60:]", B, 60, 4, 0, 1, ADDR_KIND_SLICE,
              "h.1.mlp.c_fc.bias[60:64]", 1);
    check_one(f, "ln_f.weight[:-15]", "ln_f.weight", 0, 1, 0, 1, ADDR_KIND_SLICE,
              "ln_f.weight[0:1]", 1);
}

/* ---- named views ---- */

static void test_qkv_heads(void **state)
{
    fixture *f = *state;
    const char *W0 = "h.0.attn.c_attn.weight", *W1 = "h.1.attn.c_attn.weight";
    check_one(f, "h.0.attn.q[0]", W0, 0, C, 0, HD, ADDR_KIND_VIEW, "h.0.attn.q[0]", 2);
    check_one(f, "h.1.attn.q[3]", W1, 0, C, 3 * HD, HD, ADDR_KIND_VIEW, "h.1.attn.q[3]", 2);
    check_one(f, "h.0.attn.k[0]", W0, 0, C, C, HD, ADDR_KIND_VIEW, "h.0.attn.k[0]", 2);
    check_one(f, "h.0.attn.k[3]", W0, 0, C, C + 3 * HD, HD, ADDR_KIND_VIEW,
              "h.0.attn.k[3]", 2);
    check_one(f, "h.0.attn.v[0]", W0, 0, C, 2 * C, HD, ADDR_KIND_VIEW, "h.0.attn.v[0]", 2);
    check_one(f, "h.1.attn.v[3]", W1, 0, C, 2 * C + 3 * HD, HD, ADDR_KIND_VIEW,
              "h.1.attn.v[3]", 2);
    check_one(f, "h.0.attn.v[-1]", W0, 0, C, 2 * C + 3 * HD, HD, ADDR_KIND_VIEW,
              "h.0.attn.v[3]", 2);
    /* all heads, and ranges of heads */
    check_one(f, "h.0.attn.q", W0, 0, C, 0, C, ADDR_KIND_VIEW, "h.0.attn.q", 2);
    check_one(f, "h.0.attn.k", W0, 0, C, C, C, ADDR_KIND_VIEW, "h.0.attn.k", 2);
    check_one(f, "h.0.attn.q[:]", W0, 0, C, 0, C, ADDR_KIND_VIEW, "h.0.attn.q", 2);
    check_one(f, "h.1.attn.k[1:3]", W1, 0, C, C + HD, 2 * HD, ADDR_KIND_VIEW,
              "h.1.attn.k[1:3]", 2);
    addr_view v = parse_ok(f, "h.1.attn.v[2]");
    assert_int_equal(v.base, ADDR_BASE_V);
    assert_int_equal(v.layer, 1);
    assert_int_equal(v.first, 2);
    assert_int_equal(v.count, 1);
}

static void test_view_then_index(void **state)
{
    fixture *f = *state;
    const char *W0 = "h.0.attn.c_attn.weight";
    check_one(f, "h.0.attn.q[3][0:4,:]", W0, 0, 4, 3 * HD, HD, ADDR_KIND_SLICE,
              "h.0.attn.q[3][0:4,:]", 2);
    check_one(f, "h.0.attn.k[2][1,-1]", W0, 1, 1, C + 2 * HD + HD - 1, 1, ADDR_KIND_ELEMENT,
              "h.0.attn.k[2][1,3]", 0);
    check_one(f, "h.0.attn.q[3][5]", W0, 5, 1, 3 * HD, HD, ADDR_KIND_SLICE,
              "h.0.attn.q[3][5,:]", 1);
    check_one(f, "h.0.attn.v[:][0:8,:]", W0, 0, 8, 2 * C, C, ADDR_KIND_SLICE,
              "h.0.attn.v[:][0:8,:]", 2);
    check_one(f, "h.0.attn.q[1:3][:,-1]", W0, 0, C, 3 * HD - 1, 1, ADDR_KIND_SLICE,
              "h.0.attn.q[1:3][:,7]", 1);
}

static void test_head_view(void **state)
{
    fixture *f = *state;
    addr_view v = parse_ok(f, "h.1.attn.head[2]");
    ps_param *w = P(f, "h.1.attn.c_attn.weight"), *b = P(f, "h.1.attn.c_attn.bias");
    assert_int_equal(v.n_regions, 7);
    check_region(&v, 0, w, 0, C, 2 * HD, HD);
    check_region(&v, 1, w, 0, C, C + 2 * HD, HD);
    check_region(&v, 2, w, 0, C, 2 * C + 2 * HD, HD);
    check_region(&v, 3, b, 2 * HD, HD, 0, 1);
    check_region(&v, 4, b, C + 2 * HD, HD, 0, 1);
    check_region(&v, 5, b, 2 * C + 2 * HD, HD, 0, 1);
    check_region(&v, 6, P(f, "h.1.attn.c_proj.weight"), 2 * HD, HD, 0, C);
    assert_int_equal(v.kind, ADDR_KIND_VIEW);
    assert_int_equal(v.ndim, -1);
    assert_string_equal(v.name, "h.1.attn.head[2]");
    assert_int_equal(addr_view_numel(&v), 3 * C * HD + 3 * HD + HD * C);

    v = parse_ok(f, "h.0.attn.head[0]");
    check_region(&v, 0, P(f, "h.0.attn.c_attn.weight"), 0, C, 0, HD);
    check_region(&v, 6, P(f, "h.0.attn.c_proj.weight"), 0, HD, 0, C);
    v = parse_ok(f, "h.0.attn.head[-1]");
    assert_string_equal(v.name, "h.0.attn.head[3]");
    check_region(&v, 5, P(f, "h.0.attn.c_attn.bias"), 2 * C + 3 * HD, HD, 0, 1);
    v = parse_ok(f, "h.0.attn.head[:]");
    assert_string_equal(v.name, "h.0.attn.head[0:4]");
    check_region(&v, 6, P(f, "h.0.attn.c_proj.weight"), 0, C, 0, C);
}

static void test_neuron_view(void **state)
{
    fixture *f = *state;
    addr_view v = parse_ok(f, "h.0.mlp.neuron[5]");
    assert_int_equal(v.n_regions, 3);
    check_region(&v, 0, P(f, "h.0.mlp.c_fc.weight"), 0, C, 5, 1);
    check_region(&v, 1, P(f, "h.0.mlp.c_fc.bias"), 5, 1, 0, 1);
    check_region(&v, 2, P(f, "h.0.mlp.c_proj.weight"), 5, 1, 0, C);
    assert_int_equal(v.kind, ADDR_KIND_VIEW);
    assert_string_equal(v.name, "h.0.mlp.neuron[5]");
    assert_int_equal(addr_view_numel(&v), C + 1 + C);

    v = parse_ok(f, "h.1.mlp.neuron[-1]");
    check_region(&v, 0, P(f, "h.1.mlp.c_fc.weight"), 0, C, 4 * C - 1, 1);
    check_region(&v, 2, P(f, "h.1.mlp.c_proj.weight"), 4 * C - 1, 1, 0, C);
    assert_string_equal(v.name, "h.1.mlp.neuron[63]");

    v = parse_ok(f, "h.1.mlp.neuron[10:12]");
    check_region(&v, 0, P(f, "h.1.mlp.c_fc.weight"), 0, C, 10, 2);
    check_region(&v, 1, P(f, "h.1.mlp.c_fc.bias"), 10, 2, 0, 1);
    check_region(&v, 2, P(f, "h.1.mlp.c_proj.weight"), 10, 2, 0, C);
    assert_string_equal(v.name, "h.1.mlp.neuron[10:12]");
}

static void test_embedding_rows(void **state)
{
    fixture *f = *state;
    check_one(f, "wte[\"sky\"]", "wte.weight", 2, 1, 0, C, ADDR_KIND_VIEW, "wte[\"sky\"]", 1);
    /* every spelling of a whole row names it by its token */
    check_one(f, "wte[2]", "wte.weight", 2, 1, 0, C, ADDR_KIND_VIEW, "wte[\"sky\"]", 1);
    check_one(f, "wte.weight[2, :]", "wte.weight", 2, 1, 0, C, ADDR_KIND_VIEW,
              "wte[\"sky\"]", 1);
    check_one(f, "wte[-1]", "wte.weight", 10, 1, 0, C, ADDR_KIND_VIEW, "wte[\"green\"]", 1);
    check_one(f, "wte[\"<unk>\"]", "wte.weight", 0, 1, 0, C, ADDR_KIND_VIEW,
              "wte[\"<unk>\"]", 1);
    check_one(f, "wte[\"don't\"]", "wte.weight", 8, 1, 0, C, ADDR_KIND_VIEW,
              "wte[\"don't\"]", 1);
    /* escapes, read and written back */
    check_one(f, "wte[\"\\\"\"]", "wte.weight", 6, 1, 0, C, ADDR_KIND_VIEW,
              "wte[\"\\\"\"]", 1);
    check_one(f, "wte[\"\\\\\"]", "wte.weight", 9, 1, 0, C, ADDR_KIND_VIEW,
              "wte[\"\\\\\"]", 1);
    /* a row of the token, then an index into it */
    check_one(f, "wte[\"sky\"][3]", "wte.weight", 2, 1, 3, 1, ADDR_KIND_ELEMENT,
              "wte[\"sky\"][3]", 0);
    check_one(f, "wte[\"sky\"][-4:]", "wte.weight", 2, 1, 12, 4, ADDR_KIND_SLICE,
              "wte[\"sky\"][12:16]", 1);
    /* not a whole row: a plain slice */
    check_one(f, "wte[0:3]", "wte.weight", 0, 3, 0, C, ADDR_KIND_SLICE, "wte.weight[0:3,:]", 2);
    check_one(f, "wte.weight[2,0:3]", "wte.weight", 2, 1, 0, 3, ADDR_KIND_SLICE,
              "wte.weight[2,0:3]", 1);
    check_one(f, "wte[2][3]", "wte.weight", 2, 1, 3, 1, ADDR_KIND_ELEMENT, "wte[\"sky\"][3]", 0);
    check_one(f, "wte.weight[2,3]", "wte.weight", 2, 1, 3, 1, ADDR_KIND_ELEMENT,
              "wte.weight[2,3]", 0);
    check_one(f, "wpe[3]", "wpe.weight", 3, 1, 0, C, ADDR_KIND_VIEW, "wpe[3]", 1);
    check_one(f, "wpe[-1][0]", "wpe.weight", 7, 1, 0, 1, ADDR_KIND_ELEMENT, "wpe[7][0]", 0);

    addr_view v = parse_ok(f, "wte[\"sea\"]");
    assert_int_equal(v.base, ADDR_BASE_TOKEN);
    assert_int_equal(v.first, 7);
    v = parse_ok(f, "wpe[5]");
    assert_int_equal(v.base, ADDR_BASE_POSITION);
    assert_int_equal(v.first, 5);

    /* without a tokenizer rows are named by id */
    ps_error err = { 0 };
    assert_int_equal(addr_parse(f->m, NULL, "wte[2]", &v, &err), 0);
    assert_string_equal(v.name, "wte[2]");
    check_region(&v, 0, P(f, "wte.weight"), 2, 1, 0, C);
}

/* ---- names ---- */

static void test_round_trip(void **state)
{
    fixture *f = *state;
    static const char *const forms[] = {
        "wte", "ln_f.bias", "h.0.attn.c_attn.weight[:, -1]", "h.1.mlp.c_fc.bias[-3:]",
        "h.0.attn.q", "h.0.attn.q[3][0:4,:]", "h.0.attn.v[:][2]", "h.1.attn.k[1:3][4,5]",
        "h.1.attn.head[1]", "h.1.attn.head[1:3]", "h.0.mlp.neuron[7]", "wte[\"\\\"\"]",
        "wte[4][2:]", "wpe[-2]", "wte.weight[1:2, 3]", "h.0.attn.c_attn.weight[7:8]",
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        addr_view a = parse_ok(f, forms[i]);
        addr_view b = parse_ok(f, a.name);
        assert_string_equal(b.name, a.name);
        assert_int_equal(b.kind, a.kind);
        assert_int_equal(b.ndim, a.ndim);
        assert_int_equal(b.n_regions, a.n_regions);
        for (int r = 0; r < a.n_regions; r++)
            check_region(&b, r, a.regions[r].param, a.regions[r].row0, a.regions[r].rows,
                         a.regions[r].col0, a.regions[r].cols);
    }
}

/* Every token can be typed back: control bytes, bytes that are not UTF-8,
 * quotes and backslashes are escaped in canonical names and the escapes
 * parse; a name is never cut (a token too long to quote is spelt by id). */
static void test_token_escapes_round_trip(void **state)
{
    (void)state;
    char longa[251], longb[301];
    memset(longa, 'a', 250);
    longa[250] = '\0';
    memset(longb, 'b', 300);
    longb[300] = '\0';
    const char *vocab[] = {"<unk>", "a\rb", "\x1b[31m", "nl\nx", "\x7f", "caf\xc3\xa9",
                           "q\"\\", "t\tt", longa, longb};
    int nv = (int)(sizeof vocab / sizeof vocab[0]);
    ps_config cfg = {.n_layer = 1, .n_head = 1, .n_embd = 4, .n_ctx = 4, .vocab_size = nv};
    ps_model *m = NULL;
    ps_tokenizer *tok = NULL;
    ps_error err = {0};
    assert_int_equal(ps_model_init(&m, &cfg, &err), 0);
    assert_int_equal(ps_tokenizer_from_list(&tok, vocab, nv, &err), 0);
    for (int id = 0; id < nv; id++) {
        char text[32];
        snprintf(text, sizeof text, "wte[%d][1:3]", id);
        addr_view a, b;
        assert_int_equal(addr_parse(m, tok, text, &a, &err), 0);
        for (const char *c = a.name; *c; c++)
            if ((unsigned char)*c < 0x20 || (unsigned char)*c == 0x7f)
                fail_msg("name of token %d has the raw byte 0x%02x: %s", id, (unsigned char)*c, a.name);
        if (id != 9)
            assert_memory_equal(a.name, "wte[\"", 5);      /* quoted, not by id */
        if (addr_parse(m, tok, a.name, &b, &err))
            fail_msg("token %d: '%s' does not parse back: %s", id, a.name, err.msg);
        assert_int_equal(b.first, id);
        assert_string_equal(b.name, a.name);
    }
    addr_view v;
    assert_int_equal(addr_parse(m, tok, "wte[\"\\x1B[31m\"]", &v, &err), 0);
    assert_int_equal(v.first, 2);
    assert_int_equal(addr_parse(m, tok, "wte[\"a\\rb\"]", &v, &err), 0);
    assert_int_equal(v.first, 1);
    assert_int_equal(addr_parse(m, tok, "wte[\"\\x00\"]", &v, &err), PS_ERR_INVALID);
    assert_int_equal(addr_parse(m, tok, "wte[\"\\xg1\"]", &v, &err), PS_ERR_INVALID);
    assert_non_null(strstr(err.msg, "needs two hex digits"));
    /* a raw control byte in what was typed stays escaped in the message */
    assert_int_equal(addr_parse(m, tok, "wte[\"\x1b]\"]", &v, &err), PS_ERR_NOT_FOUND);
    assert_null(strchr(err.msg, 0x1b));
    assert_non_null(strstr(err.msg, "\\x1b"));
    ps_tokenizer_free(tok);
    ps_model_free(m);
}

static void test_render_truncates(void **state)
{
    fixture *f = *state;
    addr_view v = parse_ok(f, "h.0.attn.q[3][0:4,:]");
    char buf[6];
    memset(buf, 'x', sizeof buf);
    int n = addr_view_render(&v, f->tok, buf, sizeof buf);
    assert_int_equal(n, (int)strlen("h.0.attn.q[3][0:4,:]"));
    assert_string_equal(buf, "h.0.a");
    assert_int_equal(addr_view_render(&v, f->tok, NULL, 0), n);
}

/* ---- views point into the model ---- */

static void test_views_alias_the_model(void **state)
{
    fixture *f = *state;
    ps_model *m = f->m;
    addr_view v = parse_ok(f, "h.0.attn.c_attn.weight[3,17]");
    assert_ptr_equal(addr_region_at(&v.regions[0], 0, 0), m->blocks[0].qkv_w + 3 * 3 * C + 17);

    v = parse_ok(f, "h.1.attn.k[2]");
    *addr_region_at(&v.regions[0], 5, 1) = 42.0f;
    assert_true(m->blocks[1].qkv_w[5 * 3 * C + C + 2 * HD + 1] == 42.0f);

    v = parse_ok(f, "h.0.mlp.neuron[9]");
    *addr_region_at(&v.regions[0], 4, 0) = 1.5f;
    *addr_region_at(&v.regions[1], 0, 0) = 2.5f;
    *addr_region_at(&v.regions[2], 0, 3) = 3.5f;
    assert_true(m->blocks[0].fc_w[4 * 4 * C + 9] == 1.5f);
    assert_true(m->blocks[0].fc_b[9] == 2.5f);
    assert_true(m->blocks[0].fcproj_w[9 * C + 3] == 3.5f);

    v = parse_ok(f, "wte[\"blue\"][-1]");
    assert_ptr_equal(addr_region_at(&v.regions[0], 0, 0), m->wte + 4 * C + C - 1);
}

/* ---- malformed addresses ---- */

static void test_unknown_names(void **state)
{
    fixture *f = *state;
    ERR("h.0.attn.c_atn.weight", PS_ERR_NOT_FOUND,
        "no tensor 'h.0.attn.c_atn.weight'; did you mean 'h.0.attn.c_attn.weight'?");
    ERR("h.0.attn.c_attn.weigth", PS_ERR_NOT_FOUND, "did you mean 'h.0.attn.c_attn.weight'?");
    ERR("h.0.attn.x[1]", PS_ERR_NOT_FOUND,
        "no view 'h.0.attn.x'; did you mean 'h.0.attn.q', 'h.0.attn.k' or 'h.0.attn.v'?");
    ERR("h.1.mlp.neurons[3]", PS_ERR_NOT_FOUND,
        "no view 'h.1.mlp.neurons'; did you mean 'h.1.mlp.neuron'?");
    ERR("wtee", PS_ERR_NOT_FOUND, "no tensor 'wtee'; did you mean 'wte'?");
    ERR("h.0.attn", PS_ERR_NOT_FOUND,
        "no tensor 'h.0.attn'; names below it: 'h.0.attn.c_attn.weight', "
        "'h.0.attn.c_attn.bias', 'h.0.attn.c_proj.weight' and 5 more");
    ERR("h.0.attn.c_attn", PS_ERR_NOT_FOUND,
        "no tensor 'h.0.attn.c_attn'; names below it: 'h.0.attn.c_attn.weight', "
        "'h.0.attn.c_attn.bias'");
    ERR("h.00.ln_1.bias", PS_ERR_NOT_FOUND, "did you mean 'h.0.ln_1.bias'?");
    /* nothing close: no suggestion at all */
    addr_view v;
    ps_error err = { 0 };
    assert_int_equal(addr_parse(f->m, f->tok, "banana", &v, &err), PS_ERR_NOT_FOUND);
    assert_string_equal(err.msg, "no tensor 'banana'");
}

static void test_layers_heads_neurons_out_of_range(void **state)
{
    fixture *f = *state;
    ERR("h.12.attn.q[0]", PS_ERR_RANGE, "layer 12: the model has layers 0..1");
    ERR("h.2.ln_1.weight", PS_ERR_RANGE, "layer 2: the model has layers 0..1");
    ERR("h.99999999999999999999.mlp.neuron[0]", PS_ERR_RANGE,
        "layer 99999999999999999999: the model has layers 0..1");
    ERR("h.0.attn.q[4]", PS_ERR_RANGE, "head 4 is out of range: h.0.attn has heads 0..3");
    ERR("h.1.attn.v[-5]", PS_ERR_RANGE, "head -5 is out of range: h.1.attn has heads 0..3");
    ERR("h.0.attn.head[2:9]", PS_ERR_RANGE,
        "heads 2:9 are out of range: h.0.attn has heads 0..3");
    ERR("h.0.mlp.neuron[64]", PS_ERR_RANGE,
        "neuron 64 is out of range: h.0.mlp has neurons 0..63");
    ERR("h.0.attn.k[3:1]", PS_ERR_INVALID, "range 3:1 is reversed");
}

static void test_indices_out_of_range(void **state)
{
    fixture *f = *state;
    ERR("h.0.attn.c_attn.weight[80]", PS_ERR_RANGE,
        "row 80 is out of range: h.0.attn.c_attn.weight has rows 0..15");
    ERR("h.0.attn.c_attn.weight[16,0]", PS_ERR_RANGE, "row 16 is out of range");
    ERR("h.0.attn.c_attn.weight[0, 48]", PS_ERR_RANGE,
        "column 48 is out of range: h.0.attn.c_attn.weight has columns 0..47");
    ERR("h.0.attn.c_attn.weight[-17]", PS_ERR_RANGE,
        "row -17 is out of range: h.0.attn.c_attn.weight has rows 0..15");
    ERR("h.0.attn.c_attn.weight[99999999999999999999999]", PS_ERR_RANGE,
        "row 99999999999999999999999 is out of range");
    ERR("h.0.attn.c_attn.weight[-99999999999999999999999]", PS_ERR_RANGE,
        "row -99999999999999999999999 is out of range");
    ERR("h.0.attn.c_attn.weight[0:17]", PS_ERR_RANGE,
        "rows 0:17 are out of range: h.0.attn.c_attn.weight has rows 0..15");
    ERR("h.0.attn.c_attn.weight[:, -49:]", PS_ERR_RANGE, "columns -49: are out of range");
    ERR("h.0.ln_1.bias[16]", PS_ERR_RANGE,
        "index 16 is out of range: h.0.ln_1.bias has indices 0..15");
    ERR("wte[11]", PS_ERR_RANGE, "row 11 is out of range: wte.weight has rows 0..10");
    ERR("wpe[8]", PS_ERR_RANGE, "row 8 is out of range: wpe.weight has rows 0..7");
    /* relative to the view, named by it */
    ERR("h.0.attn.q[3][0, 4]", PS_ERR_RANGE,
        "column 4 is out of range: h.0.attn.q[3] has columns 0..3");
    ERR("wte[\"sky\"][16]", PS_ERR_RANGE,
        "index 16 is out of range: wte[\"sky\"] has indices 0..15");
}

static void test_bad_ranges(void **state)
{
    fixture *f = *state;
    ERR("h.0.attn.c_attn.weight[8:2]", PS_ERR_INVALID,
        "range 8:2 is reversed: write 2:8 for rows 2..7 of h.0.attn.c_attn.weight");
    ERR("h.0.attn.c_attn.weight[:, -1:-5]", PS_ERR_INVALID,
        "range -1:-5 is reversed: write 43:47 for columns 43..46");
    ERR("h.0.attn.c_attn.weight[3:3]", PS_ERR_INVALID,
        "range 3:3 of the rows of h.0.attn.c_attn.weight is empty");
}

static void test_syntax_errors(void **state)
{
    fixture *f = *state;
    ERR("h.0.attn.c_attn.weight[0:8", PS_ERR_INVALID,
        "unbalanced brackets in 'h.0.attn.c_attn.weight[0:8': the '[' at column 23 is "
        "never closed");
    ERR("h.0.ln_1.weight]", PS_ERR_INVALID,
        "unbalanced brackets in 'h.0.ln_1.weight]': the ']' at column 16 has no matching '['");
    ERR("h.0.ln_1.weight[1]]", PS_ERR_INVALID, "the ']' at column 19 has no matching '['");
    ERR("h.0.ln_1.weight[[1]]", PS_ERR_INVALID, "unexpected '[' at column 17");
    ERR("h.0.ln_1.weight[a]", PS_ERR_INVALID, "'a' is not an index (column 17 of");
    ERR("h.0.ln_1.weight[1.5]", PS_ERR_INVALID, "'1.5' is not an index");
    ERR("h.0.ln_1.weight[0x10]", PS_ERR_INVALID, "'0x10' is not an index");
    ERR("h.0.ln_1.weight[-]", PS_ERR_INVALID, "'-' is not an index");
    ERR("h.0.ln_1.weight[0:8:2]", PS_ERR_INVALID, "'0:8:2' is not an index");
    ERR("h.0.ln_1.weight[]", PS_ERR_INVALID, "empty index at column 17");
    ERR("h.0.attn.c_attn.weight[1,]", PS_ERR_INVALID, "empty index at column 26");
    ERR("h.0.attn.c_attn.weight[1,2,3]", PS_ERR_INVALID, "too many indices in the brackets");
    ERR("h.0.ln_1.bias[1,2]", PS_ERR_INVALID,
        "too many indices: h.0.ln_1.bias has 1 dimension, got 2");
    ERR("h.0.attn.c_attn.weight[3,17][0]", PS_ERR_INVALID,
        "h.0.attn.c_attn.weight[3,17] is a single number");
    ERR("h.0.mlp.neuron[3][0]", PS_ERR_INVALID,
        "h.0.mlp.neuron[3] spans 3 tensors and cannot be indexed further");
    ERR("h.0.mlp.neuron", PS_ERR_INVALID, "'h.0.mlp.neuron' needs an index: which neuron, 0..63");
    ERR("h.0.attn.head", PS_ERR_INVALID, "which head, 0..3");
    ERR("h.0.attn.q[0:8,:]", PS_ERR_INVALID, "the first index of h.0.attn.q picks heads");
    ERR("h.0.ln_1.weight[3]x", PS_ERR_INVALID, "unexpected 'x' after 'h.0.ln_1.weight[3]'");
    ERR("wte foo", PS_ERR_INVALID, "unexpected 'foo' after 'wte'");
    ERR("wte [2]", PS_ERR_INVALID, "unexpected '[2]' after 'wte'");
    ERR("[3]", PS_ERR_INVALID, "'[3]' does not start with a tensor name");
    ERR("", PS_ERR_INVALID, "empty address");
    ERR("   ", PS_ERR_INVALID, "empty address");
}

static void test_token_errors(void **state)
{
    fixture *f = *state;
    addr_view v;
    ps_error err = { 0 };
    assert_int_equal(addr_parse(f->m, f->tok, "wte[\"xyzzy\"]", &v, &err), PS_ERR_NOT_FOUND);
    assert_string_equal(err.msg, "'xyzzy' is not in the vocabulary");
    /* one character is close to every other: no suggestion */
    assert_int_equal(addr_parse(f->m, f->tok, "wte[\"x\"]", &v, &err), PS_ERR_NOT_FOUND);
    assert_string_equal(err.msg, "'x' is not in the vocabulary");
    ERR("wte[\"se\"]", PS_ERR_NOT_FOUND, "'se' is not in the vocabulary; did you mean 'sea'?");
    ERR("wte[\"Sky\"]", PS_ERR_NOT_FOUND, "'Sky' is not in the vocabulary; did you mean 'sky'?");
    /* a control character stays escaped: the message is one line */
    ERR("wte[\"a\\nb\"]", PS_ERR_NOT_FOUND, "'a\\nb' is not in the vocabulary");
    ERR("wte[\"sky]", PS_ERR_INVALID, "unterminated string in 'wte[\"sky]': the '\"' at column 5");
    ERR("wte[\"sky\\\"]", PS_ERR_INVALID, "unterminated string");
    ERR("wte[\"s\\qy\"]", PS_ERR_INVALID, "unknown escape '\\q' at column 7");
    ERR("wte[\"sky\", 1]", PS_ERR_INVALID, "a quoted token stands alone in its brackets");
    ERR("wte[\"sky\"]x", PS_ERR_INVALID, "unexpected 'x' after 'wte[\"sky\"]'");
    ERR("wpe[\"sky\"]", PS_ERR_INVALID, "a quoted token can only index wte");
    ERR("wte[0][\"sky\"]", PS_ERR_INVALID, "a quoted token can only index wte");
    ERR("h.0.attn.q[\"sky\"]", PS_ERR_INVALID, "the first index of h.0.attn.q picks heads");
    check_error(f, NULL, "wte[\"sky\"]", PS_ERR_STATE, "no tokenizer");
}

/* ---- completion ---- */

typedef struct collected {
    char all[4096];
    int n;
} collected;

static void collect(const char *candidate, void *ctx)
{
    collected *c = ctx;
    size_t len = strlen(c->all);
    snprintf(c->all + len, sizeof c->all - len, "%s%s", c->n++ ? " " : "", candidate);
}

static const char *complete(fixture *f, const ps_tokenizer *tok, const char *prefix,
                            collected *c)
{
    memset(c, 0, sizeof *c);
    int n = addr_complete(f->m, tok, prefix, collect, c);
    assert_int_equal(n, c->n);
    return c->all;
}

static void test_completion(void **state)
{
    fixture *f = *state;
    collected c;
    assert_string_equal(complete(f, f->tok, "h.1.attn.c", &c),
                        "h.1.attn.c_attn.weight h.1.attn.c_attn.bias "
                        "h.1.attn.c_proj.weight h.1.attn.c_proj.bias");
    assert_string_equal(complete(f, f->tok, "h.0.attn.q", &c), "h.0.attn.q[");
    assert_string_equal(complete(f, f->tok, "h.0.m", &c),
                        "h.0.mlp.c_fc.weight h.0.mlp.c_fc.bias h.0.mlp.c_proj.weight "
                        "h.0.mlp.c_proj.bias h.0.mlp.neuron[");
    assert_string_equal(complete(f, f->tok, "h.1.attn.h", &c), "h.1.attn.head[");
    assert_string_equal(complete(f, f->tok, "wt", &c), "wte.weight wte wte[\"");
    assert_string_equal(complete(f, f->tok, "wp", &c), "wpe.weight wpe");
    assert_string_equal(complete(f, f->tok, "wte[\"s", &c), "wte[\"sky\"] wte[\"sea\"]");
    assert_string_equal(complete(f, f->tok, "wte[\"\\", &c), "wte[\"\\\"\"] wte[\"\\\\\"]");
    assert_string_equal(complete(f, NULL, "wte[\"s", &c), "");
    assert_string_equal(complete(f, f->tok, "zzz", &c), "");
    /* everything: 28 parameters, 2 aliases, wte[", 5 views per layer */
    complete(f, NULL, "", &c);
    assert_int_equal(c.n, 28 + 2 + 1 + 10);
    complete(f, f->tok, "wte[\"", &c);
    assert_int_equal(c.n, 1 + N_VOCAB);
    /* every candidate that is a whole address parses */
    complete(f, f->tok, "h.1.", &c);
    assert_int_equal(c.n, 17);
    assert_non_null(strstr(c.all, "h.1.ln_2.bias h.1.mlp.c_fc.weight"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_parameters),
        cmocka_unit_test(test_matrix_indices),
        cmocka_unit_test(test_vector_indices),
        cmocka_unit_test(test_qkv_heads),
        cmocka_unit_test(test_view_then_index),
        cmocka_unit_test(test_head_view),
        cmocka_unit_test(test_neuron_view),
        cmocka_unit_test(test_embedding_rows),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_render_truncates),
        cmocka_unit_test(test_token_escapes_round_trip),
        cmocka_unit_test(test_views_alias_the_model),
        cmocka_unit_test(test_unknown_names),
        cmocka_unit_test(test_layers_heads_neurons_out_of_range),
        cmocka_unit_test(test_indices_out_of_range),
        cmocka_unit_test(test_bad_ranges),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_token_errors),
        cmocka_unit_test(test_completion),
    };
    return cmocka_run_group_tests_name("addr", tests, setup, teardown);
}
