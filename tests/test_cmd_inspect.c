/* Tests of the commands that look at parameters (tensors, count, show, stats,
 * hist, grad, update, adam, export), run through ps_repl_exec on a tiny model
 * written to a temporary folder: the printed numbers against figures
 * computed here from the model's data, the layout of windows, the errors,
 * and that none of them changes a parameter. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include <cmocka.h>

#include "paramscope/blas.h"
#include "paramscope/model_file.h"
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

static char dir[] = "/tmp/ps-test-inspect-XXXXXX";
static char model_path[300];

typedef struct fixture {
    ps_session s;
    char *text;               /* output of the last run */
    ps_error err;             /* its error */
    int width, utf8;
} fixture;

/* The model file: random weights, with a row of exact zeros in wte and one
 * NaN in h.1.ln_2.bias, which statistics must count apart. */
static int write_model(void)
{
    ps_config cfg = {.n_layer = L, .n_head = NH, .n_embd = C, .n_ctx = 8,
                     .vocab_size = N_VOCAB};
    ps_model *m = NULL;
    ps_tokenizer *tok = NULL;
    ps_error err = {0};
    if (ps_model_init(&m, &cfg, &err) || ps_tokenizer_from_list(&tok, VOCAB, N_VOCAB, &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    ps_model_init_random(m, 11);
    float *wte = ps_model_find(m, "wte.weight")->data;
    for (int j = 0; j < C; j++)
        wte[2 * C + j] = 0.0f;
    ps_model_find(m, "h.1.ln_2.bias")->data[3] = NAN;
    /* LayerNorm gains near 1 with a small spread, as trained ones are. */
    float *g = ps_model_find(m, "ln_f.weight")->data;
    for (int j = 0; j < C; j++)
        g[j] = 1.0f + 0.01f * (float)(j % 5);
    int rc = ps_model_save(m, tok, NULL, model_path, &err);
    if (rc)
        fprintf(stderr, "setup: %s\n", err.msg);
    ps_model_free(m);
    ps_tokenizer_free(tok);
    return rc;
}

static int group_setup(void **state)
{
    (void)state;
    ps_blas_init(1, NULL);
    if (!mkdtemp(dir))
        return -1;
    snprintf(model_path, sizeof model_path, "%s/m.safetensors", dir);
    return write_model();
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
    f->width = 80;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ps_session_close(&f->s);
    free(f->text);
    free(f);
    return 0;
}

/* Runs one line; the output is in f->text, the message in f->err. */
static int run(fixture *f, const char *line)
{
    free(f->text);
    f->text = NULL;
    size_t len;
    ps_out out = {0};
    out.f = open_memstream(&f->text, &len);
    out.utf8 = f->utf8;
    out.width = f->width;
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

static ps_param *P(fixture *f, const char *name)
{
    ps_param *p = ps_model_find(f->s.lm.model, name);
    if (!p)
        fail_msg("no parameter %s", name);
    return p;
}

/* The number after `label` on the line that starts with it (after blanks). */
static double value_after(const char *text, const char *label)
{
    const char *p = text;
    while (p && *p) {
        const char *q = p;
        while (*q == ' ')
            q++;
        if (strncmp(q, label, strlen(label)) == 0) {
            q += strlen(label);
            char buf[64];
            size_t n = 0;
            while (*q == ' ')
                q++;
            while (*q && *q != ' ' && *q != '\n' && n + 1 < sizeof buf)
                if (*q++ != ',')
                    buf[n++] = q[-1];
            buf[n] = '\0';
            return strtod(buf, NULL);
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    fail_msg("no line with '%s' in:\n%s", label, text);
    return 0;
}

static int count_lines(const char *text)
{
    int n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    return n;
}

/* The i-th line (0-based), copied into buf. */
static const char *line_at(const char *text, int i, char *buf, size_t size)
{
    const char *p = text;
    for (int k = 0; k < i && p; k++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (!p || !*p)
        fail_msg("no line %d in:\n%s", i, text);
    size_t n = strcspn(p, "\n");
    if (n >= size)
        n = size - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

static void assert_close(double got, double want, double rel, const char *what)
{
    double tol = rel * fabs(want) + 1e-12;
    if (!(fabs(got - want) <= tol))
        fail_msg("%s: printed %.9g, expected %.9g (tolerance %.3g)", what, got, want, tol);
}

/* ---- reference statistics ---- */

typedef struct win {
    ps_param *p;
    size_t row0, rows, col0, cols;
} win;

typedef struct ref {
    size_t count, zeros, nonfinite;
    double mean, std, min, max, l2, mean_abs;
} ref;

static ref ref_stats(const float *const *bases, const win *w, int n)
{
    ref r = {0};
    double sum = 0, sq = 0, ab = 0;
    r.min = INFINITY;
    r.max = -INFINITY;
    for (int k = 0; k < n; k++) {
        size_t ld = (size_t)w[k].p->shape[1];
        for (size_t i = 0; i < w[k].rows; i++)
            for (size_t j = 0; j < w[k].cols; j++) {
                double x = bases[k][(w[k].row0 + i) * ld + w[k].col0 + j];
                if (!isfinite(x)) {
                    r.nonfinite++;
                    continue;
                }
                r.count++;
                r.zeros += x == 0;
                sum += x;
                sq += x * x;
                ab += fabs(x);
                r.min = x < r.min ? x : r.min;
                r.max = x > r.max ? x : r.max;
            }
    }
    r.mean = sum / (double)r.count;
    double dev = 0;
    for (int k = 0; k < n; k++) {
        size_t ld = (size_t)w[k].p->shape[1];
        for (size_t i = 0; i < w[k].rows; i++)
            for (size_t j = 0; j < w[k].cols; j++) {
                double x = bases[k][(w[k].row0 + i) * ld + w[k].col0 + j];
                if (isfinite(x))
                    dev += (x - r.mean) * (x - r.mean);
            }
    }
    r.std = sqrt(dev / (double)r.count);
    r.l2 = sqrt(sq);
    r.mean_abs = ab / (double)r.count;
    return r;
}

static ref ref_params(const win *w, int n)
{
    const float *bases[8];
    for (int k = 0; k < n; k++)
        bases[k] = w[k].p->data;
    return ref_stats(bases, w, n);
}

static void check_stats_output(const char *text, const ref *r)
{
    assert_int_equal((size_t)value_after(text, "count"), r->count);
    assert_close(value_after(text, "mean "), r->mean, 1e-5, "mean");
    assert_close(value_after(text, "std"), r->std, 1e-5, "std");
    assert_close(value_after(text, "min"), r->min, 1e-5, "min");
    assert_close(value_after(text, "max"), r->max, 1e-5, "max");
    assert_close(value_after(text, "L2 norm"), r->l2, 1e-5, "L2");
    assert_close(value_after(text, "mean |x|"), r->mean_abs, 1e-5, "mean |x|");
    assert_int_equal((size_t)value_after(text, "zeros"), r->zeros);
}

/* ---- stats ---- */

static void test_stats_tensor(void **state)
{
    fixture *f = *state;
    run_ok(f, "stats wte.weight");
    win w = {P(f, "wte.weight"), 0, N_VOCAB, 0, C};
    ref r = ref_params(&w, 1);
    assert_int_equal(r.zeros, C);
    check_stats_output(f->text, &r);
    assert_non_null(strstr(f->text, "wte.weight  [11, 16]"));

    /* A 1-D slice, and the gains near 1 where a one-pass formula loses the std. */
    run_ok(f, "stats ln_f.weight");
    win g = {P(f, "ln_f.weight"), 0, C, 0, 1};
    r = ref_params(&g, 1);
    check_stats_output(f->text, &r);
    run_ok(f, "stats h.0.attn.c_attn.weight[2:5, 7]");
    win s = {P(f, "h.0.attn.c_attn.weight"), 2, 3, 7, 1};
    r = ref_params(&s, 1);
    assert_int_equal(r.count, 3);
    check_stats_output(f->text, &r);
}

static void test_stats_nonfinite(void **state)
{
    fixture *f = *state;
    run_ok(f, "stats h.1.ln_2.bias");
    win w = {P(f, "h.1.ln_2.bias"), 0, C, 0, 1};
    ref r = ref_params(&w, 1);
    assert_int_equal(r.count, C - 1);
    assert_int_equal(r.nonfinite, 1);
    check_stats_output(f->text, &r);
    assert_int_equal((int)value_after(f->text, "NaN/Inf"), 1);
}

/* A head spans seven regions of three tensors: the combined figures must be
 * those of all its values together, not an average of averages. */
static void test_stats_head(void **state)
{
    fixture *f = *state;
    run_ok(f, "stats h.1.attn.head[2]");
    ps_param *w = P(f, "h.1.attn.c_attn.weight"), *b = P(f, "h.1.attn.c_attn.bias"),
             *o = P(f, "h.1.attn.c_proj.weight");
    size_t h0 = 2 * HD;
    win ws[7] = {
        {w, 0, C, h0, HD}, {w, 0, C, C + h0, HD}, {w, 0, C, 2 * C + h0, HD},
        {b, h0, HD, 0, 1}, {b, C + h0, HD, 0, 1}, {b, 2 * C + h0, HD, 0, 1},
        {o, h0, HD, 0, C},
    };
    ref r = ref_params(ws, 7);
    assert_int_equal(r.count, 3 * C * HD + 3 * HD + HD * C);
    check_stats_output(f->text, &r);
    /* and region by region: the bias of q */
    ref rb = ref_params(&ws[3], 1);
    assert_close(value_after(f->text, "h.1.attn.c_attn.bias[8:12]") , (double)rb.count, 0,
                 "region count");
}

/* ---- show ---- */

static void test_show_element(void **state)
{
    fixture *f = *state;
    run_ok(f, "show h.0.attn.c_attn.weight[3,17]");
    float want = P(f, "h.0.attn.c_attn.weight")->data[3 * 3 * C + 17];
    const char *eq = strstr(f->text, " = ");
    assert_non_null(eq);
    assert_true(strncmp(f->text, "h.0.attn.c_attn.weight[3,17] = ", 31) == 0);
    float got = strtof(eq + 3, NULL);
    assert_memory_equal(&got, &want, sizeof got);   /* %.9g reads back exactly */

    /* the dispatcher shows a bare address the same way */
    char *before = strdup(f->text);
    run_ok(f, "h.0.attn.c_attn.weight[3,17]");
    assert_string_equal(f->text, before);
    free(before);
}

/* h.1.attn.q[1] is [16, 4]: every row and column fits; indices count from
 * the view's start, and the heading says where the values live. */
static void test_show_matrix(void **state)
{
    fixture *f = *state;
    run_ok(f, "show h.1.attn.q[1]");
    char line[256];
    assert_string_equal(line_at(f->text, 0, line, sizeof line),
                        "h.1.attn.q[1]  [16, 4]  in h.1.attn.c_attn.weight[:, 4:8]");
    assert_int_equal(count_lines(f->text), 2 + C);
    int c[4];
    assert_int_equal(sscanf(line_at(f->text, 1, line, sizeof line), "%d %d %d %d", &c[0], &c[1],
                            &c[2], &c[3]), 4);
    for (int j = 0; j < 4; j++)
        assert_int_equal(c[j], j);
    const float *w = P(f, "h.1.attn.c_attn.weight")->data;
    for (int i = 0; i < C; i++) {
        line_at(f->text, 2 + i, line, sizeof line);
        char *p = line;
        long lab = strtol(p, &p, 10);
        assert_int_equal(lab, i);
        for (int j = 0; j < HD; j++) {
            double x = strtod(p, &p);
            if (fabs(x - w[i * 3 * C + HD + j]) > 0.51e-4)
                fail_msg("row %d column %d: printed %g, value %g", i, j, x,
                         w[i * 3 * C + HD + j]);
        }
    }
}

/* Values printed with 4 significant digits at the window's scale. */
static void check_row_values(const char *line, const float *row, const int *cols, int n,
                             double tol)
{
    const char *p = line;
    char *end;
    strtol(p, &end, 10);
    p = end;
    for (int k = 0; k < n; k++) {
        while (*p == ' ')
            p++;
        if (cols[k] < 0) {
            assert_true(strncmp(p, "...", 3) == 0);
            p += 3;
            continue;
        }
        double x = strtod(p, &end);
        assert_true(end != p);
        if (fabs(x - row[cols[k]]) > tol)
            fail_msg("column %d: printed %g, value %g in '%s'", cols[k], x, row[cols[k]], line);
        p = end;
    }
}

/* A wide matrix in 40 columns: first and last columns around "...", and a
 * tall one: first and last 8 rows around a "..." line. */
static void test_show_window(void **state)
{
    fixture *f = *state;
    f->width = 40;
    run_ok(f, "show h.0.mlp.c_proj.weight");
    char line[256];
    /* heading, column labels, 8 rows, "...", 8 rows */
    assert_int_equal(count_lines(f->text), 2 + 8 + 1 + 8);
    assert_string_equal(line_at(f->text, 10, line, sizeof line), "...");
    const float *w = P(f, "h.0.mlp.c_proj.weight")->data;
    line_at(f->text, 1, line, sizeof line);
    /* labels: which columns are shown */
    int cols[32] = {0}, n = 0;
    char *p = line;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        if (strncmp(p, "...", 3) == 0) {
            cols[n++] = -1;
            p += 3;
        } else {
            cols[n++] = (int)strtol(p, &p, 10);
        }
    }
    assert_true(n >= 3 && n < C);
    assert_int_equal(cols[0], 0);
    assert_int_equal(cols[n - 1], C - 1);
    int gaps = 0;
    for (int k = 0; k < n; k++)
        gaps += cols[k] < 0;
    assert_int_equal(gaps, 1);
    for (int i = 0; i < 8; i++) {
        line_at(f->text, 2 + i, line, sizeof line);
        assert_int_equal(atoi(line), i);
        check_row_values(line, w + i * C, cols, n, 0.51e-4);
        assert_true(strlen(line) <= 40);
        line_at(f->text, 11 + i, line, sizeof line);
        assert_int_equal(atoi(line), 56 + i);
        check_row_values(line, w + (56 + i) * C, cols, n, 0.51e-4);
    }
    /* wide enough: no gap */
    f->width = 200;
    run_ok(f, "show h.0.mlp.c_proj.weight");
    assert_null(strstr(line_at(f->text, 1, line, sizeof line), "..."));
    /* the UTF-8 ellipsis when allowed */
    f->width = 40;
    f->utf8 = 1;
    run_ok(f, "show h.0.mlp.c_proj.weight");
    assert_non_null(strstr(f->text, "\u2026"));
    assert_null(strstr(f->text, "..."));
}

static void test_show_vector_and_views(void **state)
{
    fixture *f = *state;
    run_ok(f, "show wte[\"sky\"]");
    char line[256];
    assert_string_equal(line_at(f->text, 0, line, sizeof line), "wte[\"sky\"]  [16]  in wte.weight[2]");
    /* every value of the row is there, after its index in brackets */
    const float *row = P(f, "wte.weight")->data + 2 * C;
    int seen = 0;
    for (int l = 1; l < count_lines(f->text); l++) {
        line_at(f->text, l, line, sizeof line);
        char *p = strchr(line, '[');
        assert_non_null(p);
        int at = (int)strtol(p + 1, &p, 10);
        assert_int_equal(at, seen);
        p++;
        for (;;) {
            char *end;
            double x = strtod(p, &end);
            if (end == p)
                break;
            assert_true(x == row[seen]);   /* the zero row */
            seen++;
            p = end;
        }
    }
    assert_int_equal(seen, C);

    /* a long vector in 30 columns: a few values a line, the first and last 8
     * lines around an ellipsis, and the last value last */
    f->width = 30;
    run_ok(f, "show h.0.mlp.c_proj.weight[:, 3]");
    assert_int_equal(count_lines(f->text), 1 + 8 + 1 + 8);
    assert_true(strncmp(line_at(f->text, 1, line, sizeof line), " [0] ", 5) == 0);
    int per = atoi(strchr(line_at(f->text, 2, line, sizeof line), '[') + 1);
    assert_true(per >= 2 && per <= 4);
    assert_string_equal(line_at(f->text, 9, line, sizeof line), " ...");
    int last = (63 / per) * per;
    line_at(f->text, 17, line, sizeof line);
    assert_int_equal(atoi(strchr(line, '[') + 1), last);
    assert_true(strlen(line) <= 30);
    const char *v = strrchr(line, ' ');
    assert_true(fabs(strtod(v, NULL) - P(f, "h.0.mlp.c_proj.weight")->data[63 * C + 3]) < 0.51e-4);
    f->width = 80;

    /* a neuron: three parts, each named */
    run_ok(f, "show h.0.mlp.neuron[5]");
    assert_non_null(strstr(f->text, "h.0.mlp.neuron[5]  3 regions, 33 values"));
    assert_non_null(strstr(f->text, "h.0.mlp.c_fc.weight[:, 5]:"));
    assert_non_null(strstr(f->text, "h.0.mlp.c_proj.weight[5]:"));
    float b = P(f, "h.0.mlp.c_fc.bias")->data[5];
    const char *bl = strstr(f->text, "h.0.mlp.c_fc.bias[5]: ");
    assert_non_null(bl);
    float got = strtof(bl + strlen("h.0.mlp.c_fc.bias[5]: "), NULL);
    assert_memory_equal(&got, &b, sizeof b);
}

/* ---- tensors, count ---- */

static void test_tensors(void **state)
{
    fixture *f = *state;
    ps_model *m = f->s.lm.model;
    run_ok(f, "tensors");
    assert_int_equal(count_lines(f->text), 1 + m->n_params + 1);
    char want[64];
    snprintf(want, sizeof want, "%d tensors, ", m->n_params);
    assert_non_null(strstr(f->text, want));
    /* one row's figures */
    const char *row = strstr(f->text, "\nh.0.mlp.c_fc.weight ");
    assert_non_null(row);
    char count[32];
    double mean, sd;
    char name[64];
    assert_int_equal(sscanf(row + 1, "%63s [16, 64] %31s %lf %lf", name, count, &mean, &sd), 4);
    assert_string_equal(count, "1,024");
    win w = {P(f, "h.0.mlp.c_fc.weight"), 0, C, 0, 4 * C};
    ref r = ref_params(&w, 1);
    assert_close(mean, r.mean, 1e-3, "mean");
    assert_close(sd, r.std, 1e-3, "std");

    run_ok(f, "tensors h.1.*");
    assert_int_equal(count_lines(f->text), 1 + 12 + 1);
    run_ok(f, "tensors *bias");
    assert_non_null(strstr(f->text, "\nln_f.bias "));
    assert_null(strstr(f->text, "\nln_f.weight "));
    run_ok(f, "tensors h.0");              /* a group by prefix */
    assert_int_equal(count_lines(f->text), 1 + 12 + 1);
    run_ok(f, "tensors h.0.attn");
    assert_int_equal(count_lines(f->text), 1 + 4 + 1);
    run_err(f, "tensors h.7", PS_ERR_NOT_FOUND, "no tensor matches 'h.7'");
}

/* The line of text starting with start, without the commas of its numbers. */
static const char *ungrouped(const char *text, const char *start, char *buf, size_t size)
{
    const char *p = strstr(text, start);
    if (!p)
        fail_msg("no '%s' in:\n%s", start, text);
    size_t n = 0;
    for (; *p && *p != '\n' && n + 1 < size; p++)
        if (*p != ',')
            buf[n++] = *p;
    buf[n] = '\0';
    return buf;
}

static void test_count(void **state)
{
    fixture *f = *state;
    ps_model *m = f->s.lm.model;
    run_ok(f, "count");
    assert_int_equal((size_t)value_after(f->text, "total:"), m->n_floats);
    assert_int_equal(m->n_floats, ps_config_param_count(&m->cfg));
    /* a block: 12C^2 weights plus 2 LayerNorms' gains; biases 9C + 2C */
    size_t w = 12 * C * C + 2 * C, b = 3 * C + C + 4 * C + C + 2 * C;
    char row[256];
    size_t gw, gb, gt;
    assert_int_equal(sscanf(ungrouped(f->text, "  h.1 ", row, sizeof row), " h.1 %zu %zu %zu",
                            &gw, &gb, &gt), 3);
    assert_int_equal(gw, w);
    assert_int_equal(gb, b);
    assert_int_equal(gt, w + b);
    /* embeddings: wte + wpe, no biases */
    assert_int_equal(sscanf(ungrouped(f->text, "  embeddings ", row, sizeof row),
                            " embeddings %zu %zu", &gw, &gb), 2);
    assert_int_equal(gw, (size_t)(N_VOCAB + 8) * C);
    assert_int_equal(gb, 0);
    assert_non_null(strstr(f->text, "GPT-2      124M"));
    assert_non_null(strstr(f->text, "times this model"));
}

/* ---- hist ---- */

static void test_hist(void **state)
{
    fixture *f = *state;
    run_ok(f, "hist h.0.attn.c_attn.weight 7");
    const float *x = P(f, "h.0.attn.c_attn.weight")->data;
    size_t n = (size_t)C * 3 * C;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    size_t want[7] = {0};
    for (size_t i = 0; i < n; i++) {
        size_t b = x[i] == hi ? 6 : (size_t)((x[i] - lo) * 7 / (hi - lo));
        want[b > 6 ? 6 : b]++;
    }
    assert_int_equal(count_lines(f->text), 1 + 7);
    char line[256];
    size_t total = 0;
    for (int b = 0; b < 7; b++) {
        double a, z;
        char cnt[32];
        assert_int_equal(sscanf(line_at(f->text, 1 + b, line, sizeof line), "%lf %lf %31s", &a,
                                &z, cnt), 3);
        if (fabs(a - (lo + (hi - lo) * b / 7)) > 0.51e-4)
            fail_msg("bin %d starts at %g, expected %g", b, a, lo + (hi - lo) * b / 7);
        char digits[32];
        size_t k = 0;
        for (char *p = cnt; *p; p++)
            if (*p != ',')
                digits[k++] = *p;
        digits[k] = '\0';
        if ((size_t)atol(digits) != want[b])
            fail_msg("bin %d: printed %s, expected %zu", b, cnt, want[b]);
        total += want[b];
        /* the fullest bin has the longest bar */
        assert_true(strlen(line) <= 80);
    }
    assert_int_equal(total, n);

    /* the histogram of NaN-holding values leaves the NaN out */
    run_ok(f, "hist h.1.ln_2.bias");
    assert_non_null(strstr(f->text, "15 values"));
    assert_non_null(strstr(f->text, "1 NaN or infinite value left out"));
    /* constant data: one line, not a division by zero */
    run_ok(f, "hist wte[\"sky\"]");
    assert_non_null(strstr(f->text, "every value is 0"));

    run_err(f, "hist wte 0", PS_ERR_RANGE, "BINS");
    run_err(f, "hist wte 201", PS_ERR_RANGE, "BINS");
    run_err(f, "hist wte many", PS_ERR_INVALID, "'many' is not a whole number");
}

/* ---- grad, update, adam ---- */

static const char CORPUS[] =
    "the sky is blue . the sea is green . a cat sat . the cat is blue . "
    "the sky is green . a sea is blue . the cat sat . a sky is green . ";

/* Makes the trainer; the fixture's NaN goes first, or every loss is NaN. */
static void start_training(fixture *f)
{
    ps_error err = {0};
    P(f, "h.1.ln_2.bias")->data[3] = 0.0f;
    f->s.lm.model->version++;   /* written by hand: see infer.h */
    char text[4096] = "";
    for (int i = 0; i < 8; i++)
        strcat(text, CORPUS);
    if (ps_corpus_from_text(&f->s.corpus, "test corpus", text, strlen(text), f->s.lm.tok, &err) ||
        ps_session_trainer(&f->s, &err))
        fail_msg("training: %s", err.msg);
}

static void test_grad(void **state)
{
    fixture *f = *state;
    run_err(f, "grad wte", PS_ERR_STATE,
            "no gradients yet: run `train phase` until backward, or `train step`");
    start_training(f);
    run_err(f, "grad wte", PS_ERR_STATE, "no gradients yet");
    ps_error err = {0};
    ps_trainer *t = f->s.trainer;
    for (int i = 0; i < 3; i++)
        assert_int_equal(ps_trainer_phase(t, NULL, &err), PS_OK);   /* through backward */
    run_ok(f, "grad h.0.mlp.c_fc.weight");
    ps_param *p = P(f, "h.0.mlp.c_fc.weight");
    win w = {p, 0, C, 0, 4 * C};
    const float *g = f->s.lm.model->grad + p->offset;
    ref r = ref_stats(&g, &w, 1);
    assert_non_null(strstr(f->text, "gradient of h.0.mlp.c_fc.weight  [16, 64]"));
    assert_close(value_after(f->text, "1,024 values  mean"), r.mean, 1e-3, "grad mean");
    assert_non_null(strstr(f->text, "on the batch of step 1"));
    /* the gradient's values, not the parameters' */
    run_ok(f, "grad h.0.mlp.c_fc.weight[3,7]");
    const char *last = strrchr(f->text, '\n');
    while (last > f->text && last[-1] != '\n')
        last--;
    float got = strtof(last, NULL);
    assert_memory_equal(&got, &g[3 * 4 * C + 7], sizeof got);
}

static void test_update_adam(void **state)
{
    fixture *f = *state;
    run_err(f, "update wte", PS_ERR_STATE, "no update yet");
    run_err(f, "adam wte", PS_ERR_STATE, "no optimizer yet");
    start_training(f);
    run_err(f, "update wte", PS_ERR_STATE, "no update yet");
    run_err(f, "adam wte", PS_ERR_STATE, "no optimizer step yet");
    ps_error err = {0};
    ps_trainer *t = f->s.trainer;
    ps_param *p = P(f, "h.1.ln_1.weight");
    float *before = malloc(sizeof(float) * p->numel);
    memcpy(before, p->data, sizeof(float) * p->numel);
    assert_int_equal(ps_trainer_step(t, &err), PS_OK);

    run_ok(f, "update h.1.ln_1.weight[5]");
    /* the update is new - old */
    const char *last = strrchr(f->text, '\n');
    while (last > f->text && last[-1] != '\n')
        last--;
    float got = strtof(last, NULL), want = p->data[5] - before[5];
    assert_memory_equal(&got, &want, sizeof got);
    assert_non_null(strstr(f->text, "the change made by step 1"));
    run_ok(f, "update h.1.ln_1.weight");
    assert_non_null(strstr(f->text, "|update| / |weights|"));

    run_ok(f, "adam h.1.ln_1.weight");
    assert_non_null(strstr(f->text, "first moment m of h.1.ln_1.weight"));
    assert_non_null(strstr(f->text, "second moment v of h.1.ln_1.weight"));
    win w = {p, 0, C, 0, 1};
    const float *m = t->opt->m + p->offset, *v = t->opt->v + p->offset;
    ref rm = ref_stats(&m, &w, 1), rv = ref_stats(&v, &w, 1);
    const char *second = strstr(f->text, "second moment");
    assert_close(value_after(f->text, "16 values  mean"), rm.mean, 1e-3, "m mean");
    assert_close(value_after(second, "16 values  mean"), rv.mean, 1e-3, "v mean");
    free(before);
}

/* ---- export ---- */

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, fp);
    buf[*len] = '\0';
    fclose(fp);
    return buf;
}

/* Checks a .npy file: magic, version 1.0, header length, alignment of the
 * data at 64 bytes, the header's shape, and the data bit for bit. */
static void check_npy(const char *path, const char *shape, const float *want, size_t n)
{
    size_t len;
    unsigned char *b = slurp(path, &len);
    assert_non_null(b);
    assert_memory_equal(b, "\x93NUMPY\x01\x00", 8);
    size_t hlen = (size_t)b[8] | (size_t)b[9] << 8;
    assert_int_equal((10 + hlen) % 64, 0);
    assert_int_equal(b[10 + hlen - 1], '\n');
    char *hdr = strndup((char *)b + 10, hlen);
    assert_non_null(strstr(hdr, "'descr': '<f4'"));
    assert_non_null(strstr(hdr, "'fortran_order': False"));
    char sh[64];
    snprintf(sh, sizeof sh, "'shape': %s", shape);
    if (!strstr(hdr, sh))
        fail_msg("header %s lacks %s", hdr, sh);
    free(hdr);
    assert_int_equal(len, 10 + hlen + 4 * n);
    for (size_t i = 0; i < n; i++) {
        const unsigned char *q = b + 10 + hlen + 4 * i;
        uint32_t u = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
                     (uint32_t)q[3] << 24;
        float x;
        memcpy(&x, &u, 4);
        if (memcmp(&x, &want[i], 4))
            fail_msg("%s: value %zu is %g, expected %g", path, i, x, want[i]);
    }
    free(b);
}

/* Only the expected files in the folder: no temporary left behind. */
static int files_in_dir(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_export(void **state)
{
    fixture *f = *state;
    char cmd[512], path[400];
    ps_param *w = P(f, "h.0.attn.c_attn.weight");
    float want[C * HD];

    /* a 2-D view */
    snprintf(path, sizeof path, "%s/q.npy", dir);
    snprintf(cmd, sizeof cmd, "export h.0.attn.q[3] %s", path);
    run_ok(f, cmd);
    for (int i = 0; i < C; i++)
        for (int j = 0; j < HD; j++)
            want[i * HD + j] = w->data[i * 3 * C + 3 * HD + j];
    check_npy(path, "(16, 4)", want, C * HD);
    assert_non_null(strstr(f->text, "wrote h.0.attn.q[3] [16, 4] (64 values)"));
    unlink(path);

    /* 1-D: a column of a matrix and a bias */
    snprintf(path, sizeof path, "%s/col.NPY", dir);
    snprintf(cmd, sizeof cmd, "export h.0.attn.c_attn.weight[:, 40] %s", path);
    run_ok(f, cmd);
    for (int i = 0; i < C; i++)
        want[i] = w->data[i * 3 * C + 40];
    check_npy(path, "(16,)", want, C);
    unlink(path);
    snprintf(path, sizeof path, "%s/nan.npy", dir);
    snprintf(cmd, sizeof cmd, "export h.1.ln_2.bias %s", path);
    run_ok(f, cmd);
    check_npy(path, "(16,)", P(f, "h.1.ln_2.bias")->data, C);   /* the NaN too */
    unlink(path);

    /* CSV: one line per row, values that read back exactly */
    snprintf(path, sizeof path, "%s/x.csv", dir);
    snprintf(cmd, sizeof cmd, "export h.0.attn.c_attn.weight[2:5, 10:16] %s", path);
    run_ok(f, cmd);
    size_t len;
    char *text = (char *)slurp(path, &len);
    assert_non_null(text);
    char *p = text;
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 6; j++) {
            char *end;
            float x = strtof(p, &end);
            assert_true(end != p);
            assert_memory_equal(&x, &w->data[(2 + i) * 3 * C + 10 + j], 4);
            assert_int_equal(*end, j < 5 ? ',' : '\n');
            p = end + 1;
        }
    }
    assert_int_equal(*p, '\0');
    free(text);
    /* overwriting an existing file replaces it whole */
    snprintf(cmd, sizeof cmd, "export ln_f.bias[0:2] %s", path);
    run_ok(f, cmd);
    text = (char *)slurp(path, &len);
    assert_int_equal(count_lines(text), 2);
    free(text);
    unlink(path);

    assert_int_equal(files_in_dir(), 1);   /* the model only */
    run_err(f, "export h.0.attn.head[1] /tmp/x.npy", PS_ERR_INVALID, "spans 7 tensors");
    run_err(f, "export wte /tmp/x.txt", PS_ERR_INVALID, "must end in .npy or .csv");
    run_err(f, "export wte /tmp/npy", PS_ERR_INVALID, "must end in .npy or .csv");
    snprintf(cmd, sizeof cmd, "export wte %s/no/such/dir/x.npy", dir);
    run_err(f, cmd, PS_ERR_IO, "no/such/dir/x.npy");
    run_err(f, "export wte", PS_ERR_INVALID, "usage: export ADDR FILE");
    assert_int_equal(files_in_dir(), 1);
}

/* ---- errors, and that nothing changes ---- */

static void test_errors(void **state)
{
    fixture *f = *state;
    run_err(f, "show h.0.attn.c_atn.weight", PS_ERR_NOT_FOUND,
            "no tensor 'h.0.attn.c_atn.weight'; did you mean 'h.0.attn.c_attn.weight'?");
    run_err(f, "stats wte.weight[11]", PS_ERR_RANGE, "row 11 is out of range");
    run_err(f, "hist h.2.attn.q", PS_ERR_RANGE, "layer 2");
    run_err(f, "stats", PS_ERR_INVALID, "usage: stats ADDR");
    run_err(f, "show", PS_ERR_INVALID, "usage: show ADDR");
    run_err(f, "show wte wpe", PS_ERR_INVALID, "usage: show ADDR");
    run_err(f, "show wte[\"moon\"]", PS_ERR_NOT_FOUND, "'moon' is not in the vocabulary");
    run_err(f, "count wte", PS_ERR_INVALID, "usage: count");
}

static void test_nothing_changes(void **state)
{
    fixture *f = *state;
    ps_model *m = f->s.lm.model;
    size_t bytes = sizeof(float) * m->n_floats;
    float *copy = malloc(bytes);
    memcpy(copy, m->w, bytes);
    static const char *const lines[] = {
        "tensors", "count", "show wte", "show h.0.attn.head[0]", "stats h.1.mlp.neuron[3]",
        "hist wte 50", "grad wte", "update wte", "adam wte", "show h.0.attn.c_atn.weight",
        "export wte /tmp/x.txt",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        run(f, lines[i]);
    assert_memory_equal(m->w, copy, bytes);
    assert_int_equal(ps_perturb_count(f->s.journal), 0);
    free(copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stats_tensor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_nonfinite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show_element, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show_matrix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show_vector_and_views, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tensors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_adam, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_changes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
