/* Commands that look at parameters without changing them: tensors, count,
 * show, stats, hist, grad, update, adam, export.
 *
 * Every window of numbers goes through one printer (print_pane) over a
 * "source": the parameters themselves, or an arena of the same layout (the
 * gradient, the last update, the optimizer's moments), so that `grad X` reads
 * exactly like `show X`.  Only the values shown are read; statistics read
 * the whole view once. */
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "paramscope/fileio.h"
#include "paramscope/stats.h"
#include "repl/addr.h"
#include "repl/command.h"

#define GROUP "Looking at parameters"
#define SHOW_ROWS 8           /* a long window shows its first and last 8 rows */
#define HIST_BINS 20
#define HIST_BINS_MAX 200

/* ---- small helpers ---- */

static int out_width(const ps_out *out)
{
    int w = out->width > 0 ? out->width : 80;
    return w < 24 ? 24 : w;
}

static const char *ellipsis(const ps_out *out)
{
    return out->utf8 ? "\u2026" : "...";
}

/* "[16, 48]", "[16]" */
static const char *fmt_shape(const ps_param *p, char *buf, size_t size)
{
    if (p->ndim == 1)
        snprintf(buf, size, "[%d]", p->shape[0]);
    else
        snprintf(buf, size, "[%d, %d]", p->shape[0], p->shape[1]);
    return buf;
}

static ps_region to_region(const addr_region *r)
{
    return ps_region_block(r->param, r->row0, r->rows, r->col0, r->cols);
}

static int parse_addr(ps_session *s, const char *text, addr_view *v, ps_out *out)
{
    return addr_parse(s->lm.model, s->lm.tok, text, v, &out->err);
}

/* ---- sources: parameters or an arena of their layout ---- */

typedef struct source {
    const char *what;         /* "gradient", "update", ... for headings */
    const float *arena;       /* [n_floats], or NULL: the parameters */
} source;

static const float *src_param(const source *src, const ps_param *p)
{
    return src && src->arena ? src->arena + p->offset : p->data;
}

/* Element (i, j) of region r read from src. */
static const float *src_at(const source *src, const addr_region *r, size_t i, size_t j)
{
    return src_param(src, r->param) + (r->row0 + i) * (size_t)r->param->shape[1] + r->col0 + j;
}

/* ---- statistics over several regions ---- */

typedef struct agg {
    ps_stats st;              /* combined */
    size_t zeros;
    double m2;                /* sum of squared deviations */
    double sum_sq, sum_abs;
} agg;

/* Chan's parallel combination of means and squared deviations. */
static void agg_add(agg *a, const ps_stats *r)
{
    size_t n = a->st.count, k = r->count;
    a->st.n_nonfinite += r->n_nonfinite;
    if (k == 0)
        return;
    double rm2 = r->std * r->std * (double)k;
    if (n == 0) {
        a->st.mean = r->mean;
        a->st.min = r->min;
        a->st.max = r->max;
        a->m2 = rm2;
    } else {
        double d = r->mean - a->st.mean, t = (double)(n + k);
        a->st.mean += d * (double)k / t;
        a->m2 += rm2 + d * d * (double)n * (double)k / t;
        a->st.min = r->min < a->st.min ? r->min : a->st.min;
        a->st.max = r->max > a->st.max ? r->max : a->st.max;
    }
    a->st.count = n + k;
    a->sum_sq += r->l2 * r->l2;
    a->sum_abs += r->mean_abs * (double)k;
    a->zeros += (size_t)llround(r->frac_zero * (double)k);
}

static void agg_finish(agg *a)
{
    size_t n = a->st.count;
    if (n == 0)
        return;
    double var = a->m2 / (double)n;
    a->st.std = var > 0 ? sqrt(var) : 0.0;
    a->st.l2 = sqrt(a->sum_sq);
    a->st.mean_abs = a->sum_abs / (double)n;
    a->st.frac_zero = (double)a->zeros / (double)n;
}

static void region_stats(ps_stats *st, const source *src, const addr_region *r)
{
    ps_stats_compute(st, src_at(src, r, 0, 0), r->rows, r->cols, (size_t)r->param->shape[1]);
}

static ps_stats view_stats(const source *src, const addr_view *v)
{
    agg a;
    memset(&a, 0, sizeof a);
    for (int i = 0; i < v->n_regions; i++) {
        ps_stats st;
        region_stats(&st, src, &v->regions[i]);
        agg_add(&a, &st);
    }
    agg_finish(&a);
    return a.st;
}

/* Two lines: "768 values  mean ..  std ..  L2 norm ..", "min ..  max ..  mean |x| .." */
static void print_stats_line(FILE *f, const ps_stats *st)
{
    char n[32];
    fprintf(f, "  %s values  mean %.4g  std %.4g  L2 norm %.4g\n  min %.4g  max %.4g  "
            "mean |x| %.4g\n", ps_fmt_count(st->count, n, sizeof n), st->mean, st->std, st->l2,
            st->min, st->max, st->mean_abs);
    if (st->n_nonfinite)
        fprintf(f, "  and %zu NaN or infinite value%s\n", st->n_nonfinite,
                st->n_nonfinite == 1 ? "" : "s");
}

/* ---- number formats for columns ---- */

/* One format for a whole window, chosen from its largest magnitude, so that
 * the decimal points line up: four significant digits at that scale in fixed
 * notation, scientific for very small or very large numbers. */
typedef struct numfmt {
    int sci;
    int dec;
    int w;                    /* widest printed value */
} numfmt;

static int fmt_num(char *buf, size_t size, const numfmt *nf, double x)
{
    return snprintf(buf, size, nf->sci ? "%.*e" : "%.*f", nf->dec, x);
}

static numfmt numfmt_for(double amax)
{
    numfmt nf = {0, 4, 0};
    if (amax > 0 && isfinite(amax)) {
        int e = (int)floor(log10(amax));
        if (e < -2 || e >= 6) {
            nf.sci = 1;
            nf.dec = 2;
        } else {
            nf.dec = 3 - e > 0 ? 3 - e : 0;
        }
    }
    char buf[64];
    nf.w = fmt_num(buf, sizeof buf, &nf, -(isfinite(amax) ? amax : 0.0));
    if (nf.w < 4)
        nf.w = 4;             /* "-nan", "-inf" */
    return nf;
}

static int digits_of(size_t n)
{
    int d = 1;
    while (n >= 10) {
        n /= 10;
        d++;
    }
    return d;
}

/* ---- printing a window ---- */

/* One thing to print: a matrix, a vector or one number, with the index
 * labels of its first row and column. */
typedef struct pane {
    const char *label;        /* "q", "k bias", ... for multi-region views */
    const addr_region *r;
    int ndim;                 /* 2, 1 or 0 */
    int along_rows;           /* a vector: 1 when its index runs over rows */
    size_t lab_r0, lab_c0;
} pane;

static const char *const HEAD_LABELS[] = {
    "q", "k", "v", "q bias", "k bias", "v bias", "output (attn.c_proj rows)",
};
static const char *const NEURON_LABELS[] = {
    "input (mlp.c_fc column)", "bias", "output (mlp.c_proj row)",
};

static int view_panes(const addr_view *v, pane *out)
{
    if (v->n_regions == 1) {
        const addr_region *r = &v->regions[0];
        out[0] = (pane){NULL, r, v->ndim, v->live[0], r->row0 - v->base_row0,
                        r->col0 - v->base_col0};
        return 1;
    }
    for (int i = 0; i < v->n_regions; i++) {
        const addr_region *r = &v->regions[i];
        pane *p = &out[i];
        p->label = v->base == ADDR_BASE_HEAD && i < 7 ? HEAD_LABELS[i]
                 : v->base == ADDR_BASE_NEURON && i < 3 ? NEURON_LABELS[i] : NULL;
        p->r = r;
        p->ndim = r->rows == 1 && r->cols == 1 ? 0 : r->rows == 1 || r->cols == 1 ? 1 : 2;
        p->along_rows = r->cols == 1;
        p->lab_r0 = r->row0;
        p->lab_c0 = r->col0;
    }
    return v->n_regions;
}

/* Which indices of n to show when at most `fit` fit: all, or the first and
 * last halves with a gap (marked by SIZE_MAX) between. */
static int pick(size_t n, size_t fit, size_t *idx)
{
    int k = 0;
    if (fit < 2)
        fit = 2;
    if (n <= fit) {
        for (size_t i = 0; i < n; i++)
            idx[k++] = i;
        return k;
    }
    size_t left = (fit + 1) / 2, right = fit / 2;
    for (size_t i = 0; i < left; i++)
        idx[k++] = i;
    idx[k++] = SIZE_MAX;
    for (size_t i = n - right; i < n; i++)
        idx[k++] = i;
    return k;
}

/* Right-aligns text (text_cols columns on screen) in width columns. */
static void put_cell(FILE *f, int width, const char *text, int text_cols)
{
    for (int i = text_cols; i < width; i++)
        fputc(' ', f);
    fputs(text, f);
}

#define MAX_COLS 256

static void print_matrix(FILE *f, const source *src, const pane *p, const ps_out *out)
{
    const addr_region *r = p->r;
    const char *ell = ellipsis(out);
    int ell_cols = out->utf8 ? 1 : 3;
    size_t ri[2 * SHOW_ROWS + 1], ci[MAX_COLS + 1];
    int nr = pick(r->rows, 2 * SHOW_ROWS, ri);

    /* One format for the rows shown, all their columns: the columns that fit
     * depend on the format's width. */
    double amax = 0;
    for (int i = 0; i < nr; i++) {
        if (ri[i] == SIZE_MAX)
            continue;
        const float *row = src_at(src, r, ri[i], 0);
        for (size_t j = 0; j < r->cols; j++) {
            double x = fabs((double)row[j]);
            if (isfinite(x) && x > amax)
                amax = x;
        }
    }
    numfmt nf = numfmt_for(amax);
    int lab_w = digits_of(p->lab_r0 + r->rows - 1);
    if (lab_w < ell_cols)
        lab_w = ell_cols;
    int cell = nf.w, dw = digits_of(p->lab_c0 + r->cols - 1);
    if (dw > cell)
        cell = dw;
    int avail = out_width(out) - lab_w;
    size_t fit = (size_t)(avail / (cell + 1));
    if (r->cols > fit)
        fit = (size_t)((avail - ell_cols - 1) / (cell + 1));
    if (fit > MAX_COLS)
        fit = MAX_COLS;
    int nc = pick(r->cols, fit, ci);

    char buf[64];
    fprintf(f, "%*s", lab_w, "");
    for (int j = 0; j < nc; j++) {
        fputc(' ', f);
        if (ci[j] == SIZE_MAX) {
            fputs(ell, f);
        } else {
            int n = snprintf(buf, sizeof buf, "%zu", p->lab_c0 + ci[j]);
            put_cell(f, cell, buf, n);
        }
    }
    fputc('\n', f);
    for (int i = 0; i < nr; i++) {
        if (ri[i] == SIZE_MAX) {
            put_cell(f, lab_w, ell, ell_cols);
            fputc('\n', f);
            continue;
        }
        fprintf(f, "%*zu", lab_w, p->lab_r0 + ri[i]);
        for (int j = 0; j < nc; j++) {
            fputc(' ', f);
            if (ci[j] == SIZE_MAX) {
                fputs(ell, f);
            } else {
                int n = fmt_num(buf, sizeof buf, &nf, *src_at(src, r, ri[i], ci[j]));
                put_cell(f, cell, buf, n);
            }
        }
        fputc('\n', f);
    }
}

/* A vector wrapped into lines, each starting with the index of its first
 * value in brackets; a long one shows its first and last lines. */
static void print_vector(FILE *f, const source *src, const pane *p, const ps_out *out)
{
    const addr_region *r = p->r;
    size_t n = p->along_rows ? r->rows : r->cols;
    size_t lab0 = p->along_rows ? p->lab_r0 : p->lab_c0;
    int lab_w = digits_of(lab0 + n - 1) + 2;
    double amax = 0;
    for (size_t i = 0; i < n; i++) {
        double x = fabs((double)*src_at(src, r, p->along_rows ? i : 0, p->along_rows ? 0 : i));
        if (isfinite(x) && x > amax)
            amax = x;
    }
    numfmt nf = numfmt_for(amax);
    int cell = nf.w + 1;
    size_t per = (size_t)(out_width(out) - lab_w) / (size_t)cell;
    if (per < 1)
        per = 1;
    size_t lines = (n + per - 1) / per;
    char buf[64];
    for (size_t l = 0; l < lines; l++) {
        if (lines > 2 * SHOW_ROWS + 1 && l == SHOW_ROWS) {
            fprintf(f, "%*s%s\n", lab_w - (out->utf8 ? 1 : 3), "", ellipsis(out));
            l = lines - SHOW_ROWS - 1;
            continue;
        }
        int k = snprintf(buf, sizeof buf, "[%zu]", lab0 + l * per);
        put_cell(f, lab_w, buf, k);
        for (size_t i = l * per; i < n && i < (l + 1) * per; i++) {
            const float *x = src_at(src, r, p->along_rows ? i : 0, p->along_rows ? 0 : i);
            k = fmt_num(buf, sizeof buf, &nf, *x);
            put_cell(f, cell, buf, k);
        }
        fputc('\n', f);
    }
}

static void print_pane(FILE *f, const source *src, const pane *p, const ps_out *out)
{
    if (p->ndim == 2)
        print_matrix(f, src, p, out);
    else if (p->ndim == 1)
        print_vector(f, src, p, out);
    else
        fprintf(f, "%.9g\n", (double)*src_at(src, p->r, 0, 0));
}

/* "[16, 4]", "[48]" or "" for one number */
static void view_dims(const addr_view *v, char *buf, size_t size)
{
    const addr_region *r = &v->regions[0];
    char n[32];
    if (v->n_regions > 1)
        snprintf(buf, size, "%d regions, %s values", v->n_regions,
                 ps_fmt_count(addr_view_numel(v), n, sizeof n));
    else if (v->ndim == 2)
        snprintf(buf, size, "[%zu, %zu]", r->rows, r->cols);
    else if (v->ndim == 1)
        snprintf(buf, size, "[%zu]", v->live[0] ? r->rows : r->cols);
    else
        buf[0] = '\0';
}

/* The heading of a view: its name, size and, for a named view, where its
 * values live: "h.0.attn.q[3]  [16, 4]  in h.0.attn.c_attn.weight[:, 12:16]". */
static void print_heading(FILE *f, const addr_view *v, const char *what)
{
    char dims[64];
    view_dims(v, dims, sizeof dims);
    fprintf(f, "%s%s%s", what ? what : "", what ? " of " : "", v->name);
    if (dims[0])
        fprintf(f, "  %s", dims);
    if (v->n_regions == 1 && v->base != ADDR_BASE_TENSOR) {
        char where[ADDR_NAME_MAX];
        ps_region reg = to_region(&v->regions[0]);
        ps_region_format(&reg, where, sizeof where);
        fprintf(f, "  in %s", where);
    }
    fputc('\n', f);
}

/* The view's values from src, region by region. */
static void print_view(FILE *f, const source *src, const addr_view *v, const ps_out *out)
{
    pane panes[ADDR_MAX_REGIONS];
    int n = view_panes(v, panes);
    for (int i = 0; i < n; i++) {
        if (n > 1) {
            char where[ADDR_NAME_MAX];
            ps_region reg = to_region(panes[i].r);
            ps_region_format(&reg, where, sizeof where);
            fprintf(f, "%s%s%s%s:%s", i ? "\n" : "", panes[i].label ? panes[i].label : "",
                    panes[i].label ? "  " : "", where, panes[i].ndim == 0 ? " " : "\n");
        }
        print_pane(f, src, &panes[i], out);
    }
}

/* ---- tensors ---- */

/* A pattern without wildcards names a tensor or a group: "h.0" matches
 * h.0.ln_1.weight but not h.10.ln_1.weight. */
static int name_matches(const char *pattern, const char *name)
{
    if (strpbrk(pattern, "*?["))
        return fnmatch(pattern, name, 0) == 0;
    size_t n = strlen(pattern);
    return strncmp(pattern, name, n) == 0 && (name[n] == '\0' || name[n] == '.');
}

static int cmd_tensors(ps_session *s, int argc, char **argv, ps_out *out)
{
    ps_model *m = s->lm.model;
    const char *pattern = argc ? argv[0] : "*";
    int name_w = 4, shown = 0;
    size_t total = 0;
    for (int i = 0; i < m->n_params; i++)
        if (name_matches(pattern, m->params[i].name)) {
            int w = (int)strlen(m->params[i].name);
            name_w = w > name_w ? w : name_w;
            shown++;
        }
    if (shown == 0)
        return ps_fail(out, PS_ERR_NOT_FOUND,
                       "no tensor matches '%s' (a glob such as 'h.0.*' or '*bias', or a "
                       "prefix such as h.0)", pattern);
    FILE *f = out->f;
    fprintf(f, "%-*s  %-12s %11s %11s %11s\n", name_w, "name", "shape", "count", "mean", "std");
    for (int i = 0; i < m->n_params; i++) {
        ps_param *p = &m->params[i];
        if (!name_matches(pattern, p->name))
            continue;
        ps_stats st;
        ps_stats_compute(&st, p->data, (size_t)p->shape[0], (size_t)p->shape[1],
                         (size_t)p->shape[1]);
        char shape[32], n[32];
        fprintf(f, "%-*s  %-12s %11s %11.4g %11.4g%s\n", name_w, p->name,
                fmt_shape(p, shape, sizeof shape), ps_fmt_count(p->numel, n, sizeof n), st.mean,
                st.std, st.n_nonfinite ? "  (NaN/Inf)" : "");
        total += p->numel;
    }
    char n[32];
    fprintf(f, "%d tensor%s, %s values\n", shown, shown == 1 ? "" : "s",
            ps_fmt_count(total, n, sizeof n));
    return PS_OK;
}

/* ---- count ---- */

enum { C_WEIGHT, C_BIAS };

static int is_bias_name(const char *name)
{
    size_t n = strlen(name);
    return n >= 5 && strcmp(name + n - 5, ".bias") == 0;
}

static void count_row(FILE *f, const char *label, const size_t c[2], size_t total, int share)
{
    char a[32], b[32], t[32];
    fprintf(f, "  %-16s %13s %11s %13s", label, ps_fmt_count(c[C_WEIGHT], a, sizeof a),
            ps_fmt_count(c[C_BIAS], b, sizeof b), ps_fmt_count(c[0] + c[1], t, sizeof t));
    if (share)
        fprintf(f, "  %5.1f%%", total ? 100.0 * (double)(c[0] + c[1]) / (double)total : 0.0);
    fputc('\n', f);
}

static int cmd_count(ps_session *s, int argc, char **argv, ps_out *out)
{
    ps_model *m = s->lm.model;
    FILE *f = out->f;
    int L = m->cfg.n_layer;
    size_t (*layer)[2] = calloc((size_t)L, sizeof *layer);
    if (!layer)
        return ps_fail(out, PS_ERR_NOMEM, "count: out of memory");
    size_t embed[2] = {0, 0}, final_ln[2] = {0, 0}, kind[4][2], total = 0;
    memset(kind, 0, sizeof kind);
    for (int i = 0; i < m->n_params; i++) {
        const ps_param *p = &m->params[i];
        int b = is_bias_name(p->name) ? C_BIAS : C_WEIGHT;
        if (p->layer >= 0 && p->layer < L)
            layer[p->layer][b] += p->numel;
        else if (p->kind == PS_PARAM_KIND_EMBED)
            embed[b] += p->numel;
        else
            final_ln[b] += p->numel;
        if ((int)p->kind >= 0 && (int)p->kind < 4)
            kind[p->kind][b] += p->numel;
        total += p->numel;
    }
    fprintf(f, "%-18s %13s %11s %13s\n", "by layer", "weights", "biases", "total");
    count_row(f, "embeddings", embed, total, 0);
    for (int l = 0; l < L; l++) {
        char label[32];
        snprintf(label, sizeof label, "h.%d", l);
        count_row(f, label, layer[l], total, 0);
    }
    count_row(f, "ln_f", final_ln, total, 0);
    free(layer);

    static const char *const kind_name[4] = {"embeddings", "attention", "MLP", "LayerNorm"};
    fprintf(f, "%-18s %13s %11s %13s  %6s\n", "by kind", "weights", "biases", "total", "share");
    for (int k = 0; k < 4; k++)
        count_row(f, kind_name[k], kind[k], total, 1);
    char n[32], h[16], nb[32], b[32];
    fprintf(f, "total: %s parameters (%s), %s bytes (%s) as float32\n", ps_fmt_count(total, n, sizeof n),
            ps_fmt_human((double)total, h, sizeof h), ps_fmt_count(4 * total, nb, sizeof nb),
            ps_fmt_bytes(4.0 * (double)total, b, sizeof b));
    fputs("(LayerNorm gains count as weights; the output layer reuses wte.weight, so it\n"
          "adds nothing)\n", f);

    static const struct { const char *name; double n; const char *note; } known[] = {
        {"BERT base", 110e6, "110M"},
        {"GPT-2", 124e6, "124M"},
        {"GPT-3", 175e9, "175B"},
        {"GPT-4", 1e12, "~1T, an estimate"},
    };
    fputs("compared with\n", f);
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        double r = total ? known[i].n / (double)total : 0;
        char ratio[64];
        if (r >= 1000)
            snprintf(ratio, sizeof ratio, "%s times this model",
                     ps_fmt_count((size_t)llround(r), n, sizeof n));
        else if (r >= 1.005)
            snprintf(ratio, sizeof ratio, "%.3g times this model", r);
        else if (r > 0.995)
            snprintf(ratio, sizeof ratio, "about this model's size");
        else
            snprintf(ratio, sizeof ratio, "this model is %.3g times larger", r > 0 ? 1 / r : 0.0);
        fprintf(f, "  %-10s %-17s %s\n", known[i].name, known[i].note, ratio);
    }
    return PS_OK;
}

/* ---- show ---- */

static int cmd_show(ps_session *s, int argc, char **argv, ps_out *out)
{
    addr_view v;
    int rc = parse_addr(s, argv[0], &v, out);
    if (rc)
        return rc;
    if (v.ndim == 0) {
        fprintf(out->f, "%s = %.9g\n", v.name, (double)*addr_region_at(&v.regions[0], 0, 0));
        return PS_OK;
    }
    print_heading(out->f, &v, NULL);
    print_view(out->f, NULL, &v, out);
    return PS_OK;
}

/* ---- stats ---- */

static int cmd_stats(ps_session *s, int argc, char **argv, ps_out *out)
{
    addr_view v;
    int rc = parse_addr(s, argv[0], &v, out);
    if (rc)
        return rc;
    ps_stats st = view_stats(NULL, &v);
    FILE *f = out->f;
    char n[32], z[32];
    print_heading(f, &v, NULL);
    fprintf(f, "  count     %s\n", ps_fmt_count(st.count, n, sizeof n));
    fprintf(f, "  mean      %.6g\n", st.mean);
    fprintf(f, "  std       %.6g\n", st.std);
    fprintf(f, "  min       %.6g\n", st.min);
    fprintf(f, "  max       %.6g\n", st.max);
    fprintf(f, "  L2 norm   %.6g\n", st.l2);
    fprintf(f, "  mean |x|  %.6g\n", st.mean_abs);
    fprintf(f, "  zeros     %s (%.4g%%)\n",
            ps_fmt_count((size_t)llround(st.frac_zero * (double)st.count), z, sizeof z),
            100.0 * st.frac_zero);
    if (st.n_nonfinite)
        fprintf(f, "  NaN/Inf   %zu (not counted above)\n", st.n_nonfinite);
    if (v.n_regions > 1) {
        fprintf(f, "  %-34s %9s %11s %11s\n", "by region", "count", "mean", "std");
        for (int i = 0; i < v.n_regions; i++) {
            ps_stats rs;
            region_stats(&rs, NULL, &v.regions[i]);
            char where[ADDR_NAME_MAX];
            ps_region reg = to_region(&v.regions[i]);
            ps_region_format(&reg, where, sizeof where);
            fprintf(f, "  %-34s %9s %11.4g %11.4g\n", where, ps_fmt_count(rs.count, n, sizeof n),
                    rs.mean, rs.std);
        }
    }
    return PS_OK;
}

/* ---- hist ---- */

static int cmd_hist(ps_session *s, int argc, char **argv, ps_out *out)
{
    long bins = HIST_BINS;
    addr_view v;
    int rc = parse_addr(s, argv[0], &v, out);
    if (rc)
        return rc;
    if (argc > 1 && ps_parse_long(argv[1], "hist: BINS", 1, HIST_BINS_MAX, &bins, out))
        return out->err.code;
    ps_stats st = view_stats(NULL, &v);
    if (st.count == 0)
        return ps_fail(out, PS_ERR_NUMERIC, "%s has no finite value to count", v.name);
    FILE *f = out->f;
    char n[32];
    double lo = st.min, hi = st.max, step = (hi - lo) / (double)bins;
    fprintf(f, "%s: %s values in [%.4g, %.4g]", v.name, ps_fmt_count(st.count, n, sizeof n), lo,
            hi);
    if (hi > lo)
        fprintf(f, ", %ld bins of %.4g", bins, step);
    fputc('\n', f);
    if (st.n_nonfinite)
        fprintf(f, "(%zu NaN or infinite value%s left out)\n", st.n_nonfinite,
                st.n_nonfinite == 1 ? "" : "s");
    if (!(hi > lo)) {
        fprintf(f, "  every value is %.9g\n", lo);
        return PS_OK;
    }

    size_t *counts = calloc((size_t)bins, sizeof *counts);
    size_t *part = calloc((size_t)bins, sizeof *part);
    if (!counts || !part) {
        free(counts);
        free(part);
        return ps_fail(out, PS_ERR_NOMEM, "hist: out of memory");
    }
    for (int i = 0; i < v.n_regions; i++) {
        const addr_region *r = &v.regions[i];
        ps_histogram(addr_region_at(r, 0, 0), r->rows, r->cols, (size_t)r->param->shape[1],
                     (int)bins, lo, hi, part, NULL, NULL);
        for (long b = 0; b < bins; b++)
            counts[b] += part[b];
    }
    free(part);
    size_t cmax = 1;
    for (long b = 0; b < bins; b++)
        cmax = counts[b] > cmax ? counts[b] : cmax;

    /* Edges in fixed notation with enough decimals to tell bins apart. */
    double amax = fabs(lo) > fabs(hi) ? fabs(lo) : fabs(hi);
    numfmt nf = {0, 0, 0};
    int e = (int)floor(log10(step));
    if (amax >= 1e6 || e < -7) {
        nf.sci = 1;
        nf.dec = 3;
    } else {
        nf.dec = 2 - e > 0 ? 2 - e : 0;
    }
    char buf[64];
    nf.w = fmt_num(buf, sizeof buf, &nf, -amax);
    int cw = (int)strlen(ps_fmt_count(cmax, n, sizeof n));
    int bar_w = out_width(out) - (2 + 2 * nf.w + 1 + 2 + cw + 1) - 1;
    if (bar_w < 10)
        bar_w = 10;
    for (long b = 0; b < bins; b++) {
        double a = lo + step * (double)b, z = b + 1 == bins ? hi : lo + step * (double)(b + 1);
        char ea[64], ez[64], bar[1024] = "";
        int la = fmt_num(ea, sizeof ea, &nf, a), lz = fmt_num(ez, sizeof ez, &nf, z);
        /* A bin with any value at all gets at least the thinnest bar. */
        double frac = (double)counts[b] / (double)cmax;
        if (counts[b] && frac * bar_w * 8 < 1)
            frac = 1.0 / (8.0 * bar_w);
        if (counts[b] && !out->utf8 && frac * bar_w < 0.5)
            frac = 0.5 / bar_w;
        ps_render_bar(bar, sizeof bar, frac, bar_w, out->utf8);
        fputs("  ", f);
        put_cell(f, nf.w, ea, la);
        fputc(' ', f);
        put_cell(f, nf.w, ez, lz);
        fprintf(f, "  %*s %s\n", cw, ps_fmt_count(counts[b], n, sizeof n), bar);
    }
    free(counts);
    return PS_OK;
}

/* ---- grad, update, adam ---- */

static void print_source(FILE *f, const source *src, const addr_view *v, const ps_out *out)
{
    ps_stats st = view_stats(src, v);
    print_heading(f, v, src->what);
    print_stats_line(f, &st);
    if (v->ndim == 0)
        fprintf(f, "  %.9g\n", (double)*src_at(src, &v->regions[0], 0, 0));
    else
        print_view(f, src, v, out);
}

static int cmd_grad(ps_session *s, int argc, char **argv, ps_out *out)
{
    addr_view v;
    int rc = parse_addr(s, argv[0], &v, out);
    if (rc)
        return rc;
    ps_model *m = s->lm.model;
    if (!ps_model_param_grad(m, v.regions[0].param))
        return ps_fail(out, PS_ERR_STATE,
                       "no gradients yet: run `train phase` until backward, or `train step`");
    source src = {"gradient", m->grad};
    ps_trainer *t = s->trainer;
    if (t) {
        int updated = t->next == PS_PHASE_FORWARD;
        fprintf(out->f, "loss %.6g on the batch of step %ld", (double)t->loss,
                t->step + (updated ? 0 : 1));
        /* The update phase clips the gradient in place. */
        if (updated && t->cfg.clip > 0 && t->grad_norm > t->cfg.clip)
            fprintf(out->f, "; clipped by the update from norm %.4g to %g", t->grad_norm,
                    (double)t->cfg.clip);
        fputc('\n', out->f);
    }
    print_source(out->f, &src, &v, out);
    return PS_OK;
}

static int cmd_update(ps_session *s, int argc, char **argv, ps_out *out)
{
    addr_view v;
    int rc = parse_addr(s, argv[0], &v, out);
    if (rc)
        return rc;
    ps_trainer *t = s->trainer;
    if (!t || t->n_train_hist == 0)
        return ps_fail(out, PS_ERR_STATE,
                       "no update yet: run `train step`, or `train phase` through update");
    if (!t->delta)
        return ps_fail(out, PS_ERR_STATE,
                       "the trainer does not keep its updates (keep_update is off)");
    source src = {"update", t->delta};
    fprintf(out->f, "the change made by step %ld (learning rate %.4g)\n", t->step, (double)t->lr);
    print_source(out->f, &src, &v, out);
    if (v.n_regions == 1 && v.kind == ADDR_KIND_TENSOR) {
        int i = ps_model_param_index(s->lm.model, v.regions[0].param);
        if (i >= 0)
            fprintf(out->f, "|update| / |weights| = %.3g\n", t->param_update_ratio[i]);
    }
    return PS_OK;
}

static int cmd_adam(ps_session *s, int argc, char **argv, ps_out *out)
{
    addr_view v;
    int rc = parse_addr(s, argv[0], &v, out);
    if (rc)
        return rc;
    ps_trainer *t = s->trainer;
    if (!t || !t->opt)
        return ps_fail(out, PS_ERR_STATE,
                       "no optimizer yet: training has not started (run `train step`)");
    ps_optim *o = t->opt;
    if (!o->m)
        return ps_fail(out, PS_ERR_STATE, "the %s optimizer keeps no moments",
                       ps_optim_kind_name(o->cfg.kind));
    if (o->step == 0)
        return ps_fail(out, PS_ERR_STATE,
                       "no optimizer step yet: the moments are zero until the first update");
    FILE *f = out->f;
    if (!o->v) {
        source src = {"momentum buffer", o->m};
        fprintf(f, "%s after %ld step%s (beta %.3g)\n", ps_optim_kind_name(o->cfg.kind),
                o->step, o->step == 1 ? "" : "s", (double)o->cfg.beta1);
        print_source(f, &src, &v, out);
        return PS_OK;
    }
    double c1 = 1.0 - pow((double)o->cfg.beta1, (double)o->step);
    double c2 = 1.0 - pow((double)o->cfg.beta2, (double)o->step);
    fprintf(f, "%s after %ld step%s: each step uses mhat = m / %.4g and vhat = v / %.4g\n",
            ps_optim_kind_name(o->cfg.kind), o->step, o->step == 1 ? "" : "s", c1, c2);
    source sm = {"first moment m", o->m}, sv = {"second moment v", o->v};
    print_source(f, &sm, &v, out);
    fputc('\n', f);
    print_source(f, &sv, &v, out);
    return PS_OK;
}

/* ---- export ---- */

/* Bytes of x as little-endian float32 whatever the host. */
static void put_le32(unsigned char *b, float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    b[0] = (unsigned char)u;
    b[1] = (unsigned char)(u >> 8);
    b[2] = (unsigned char)(u >> 16);
    b[3] = (unsigned char)(u >> 24);
}

/* NumPy format 1.0: magic, version, a little-endian u16 header length, then
 * a Python dict literal padded with spaces and ended by '\n' so that the data
 * starts at a multiple of 64 bytes. */
static int write_npy(FILE *fp, const addr_view *v)
{
    const addr_region *r = &v->regions[0];
    char shape[64];
    if (v->ndim == 2)
        snprintf(shape, sizeof shape, "(%zu, %zu)", r->rows, r->cols);
    else if (v->ndim == 1)
        snprintf(shape, sizeof shape, "(%zu,)", v->live[0] ? r->rows : r->cols);
    else
        snprintf(shape, sizeof shape, "()");
    char dict[256];
    int n = snprintf(dict, sizeof dict,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
    size_t header = 10 + (size_t)n + 1;
    size_t pad = (64 - header % 64) % 64;
    size_t hlen = (size_t)n + pad + 1;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                             (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};
    if (fwrite(pre, 1, sizeof pre, fp) != sizeof pre || fputs(dict, fp) < 0)
        return -1;
    for (size_t i = 0; i < pad; i++)
        if (fputc(' ', fp) == EOF)
            return -1;
    if (fputc('\n', fp) == EOF)
        return -1;
    for (size_t i = 0; i < r->rows; i++)
        for (size_t j = 0; j < r->cols; j++) {
            unsigned char b[4];
            put_le32(b, *addr_region_at(r, i, j));
            if (fwrite(b, 1, 4, fp) != 4)
                return -1;
        }
    return 0;
}

/* One line per row of the window, values as %.9g (which reads back exactly). */
static int write_csv(FILE *fp, const addr_view *v)
{
    const addr_region *r = &v->regions[0];
    for (size_t i = 0; i < r->rows; i++) {
        for (size_t j = 0; j < r->cols; j++)
            if (fprintf(fp, j ? ",%.9g" : "%.9g", (double)*addr_region_at(r, i, j)) < 0)
                return -1;
        if (fputc('\n', fp) == EOF)
            return -1;
    }
    return 0;
}

static const char *file_ext(const char *path)
{
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    return dot && (!slash || dot > slash) ? dot : "";
}

/* Writes through a temporary file in the same folder, renamed over path only
 * when complete. */
static int cmd_export(ps_session *s, int argc, char **argv, ps_out *out)
{
    const char *path = argv[1];
    const char *ext = file_ext(path);
    int npy = !strcasecmp(ext, ".npy");
    if (!npy && strcasecmp(ext, ".csv"))
        return ps_fail(out, PS_ERR_INVALID,
                       "export %s: unknown file type '%s'; the name must end in .npy or .csv",
                       path, ext);
    addr_view v;
    int rc = parse_addr(s, argv[0], &v, out);
    if (rc)
        return rc;
    if (v.n_regions != 1) {
        char where[ADDR_NAME_MAX];
        ps_region reg = to_region(&v.regions[0]);
        ps_region_format(&reg, where, sizeof where);
        return ps_fail(out, PS_ERR_INVALID,
                       "export: %s spans %d tensors; export one of them at a time, e.g. %s",
                       v.name, v.n_regions, where);
    }
    /* written whole under a temporary name, then renamed over path; only a
     * regular file or a new name is replaced (see fileio.h) */
    ps_atomic_file af;
    if ((rc = ps_atomic_open(&af, path, &out->err)) < 0)
        return rc;
    int dfd = dup(af.fd);
    FILE *fp = dfd >= 0 ? fdopen(dfd, "wb") : NULL;
    if (!fp) {
        if (dfd >= 0)
            close(dfd);
        rc = ps_fail(out, PS_ERR_IO, "%s: %s", path, strerror(errno));
        goto fail;
    }
    int werr = npy ? write_npy(fp, &v) : write_csv(fp, &v);
    werr |= fflush(fp) != 0;
    int saved = errno;
    werr |= fclose(fp) != 0;
    if (werr) {
        rc = ps_fail(out, PS_ERR_IO, "%s: write failed: %s", path, strerror(saved ? saved : EIO));
        goto fail;
    }
    if ((rc = ps_atomic_commit(&af, 0, &out->err)) < 0)
        goto fail;
    ps_atomic_abort(&af);
    char dims[64], n[32];
    view_dims(&v, dims, sizeof dims);
    fprintf(out->f, "wrote %s%s%s (%s value%s) to %s\n", v.name, dims[0] ? " " : "", dims,
            ps_fmt_count(addr_view_numel(&v), n, sizeof n), addr_view_numel(&v) == 1 ? "" : "s",
            path);
    return PS_OK;
fail:
    ps_atomic_abort(&af);
    return rc;
}

/* ---- the table ---- */

const ps_command ps_cmds_inspect[] = {
    {"tensors", "[GLOB]", "name, shape, count, mean and std of each tensor",
     "Lists every parameter tensor with its shape, number of values, mean and\n"
     "standard deviation.  GLOB picks some by name ('h.0.*', '*bias'); a name\n"
     "without wildcards picks that tensor or the group below it (h.0, h.1.mlp).\n",
     GROUP, PS_COMPLETE_ADDR, 0, 1, 0, cmd_tensors},
    {"count", "", "parameters by layer and kind, vs famous models",
     "Counts the parameters of each layer and of each kind (embeddings,\n"
     "attention, MLP, LayerNorm), weights apart from biases, and compares the\n"
     "total with BERT base (110M), GPT-2 (124M), GPT-3 (175B) and GPT-4 (about\n"
     "1T, an outside estimate).\n",
     GROUP, PS_COMPLETE_NONE, 0, 0, 0, cmd_count},
    {"show", "ADDR", "the values at ADDR, with row and column indices",
     "Prints a tensor, slice, view or single number.  A large window shows its\n"
     "first and last rows and columns, with an ellipsis for the rest; indices\n"
     "count from the start of what ADDR names.  Views that span several tensors\n"
     "(h.0.attn.head[2], h.0.mlp.neuron[5]) show each part under its name.\n"
     "A line that is just an ADDR does the same.  Examples:\n"
     "  show h.0.attn.q[1]      show wte[\"sky\"]      show ln_f.weight[0:8]\n",
     GROUP, PS_COMPLETE_ADDR, 1, 1, 0, cmd_show},
    {"stats", "ADDR", "count, mean, std, min, max, L2, mean |x|, zeros",
     "Statistics of the values at ADDR, in double precision.  NaN and infinite\n"
     "values are counted apart and left out of the figures.  A view over several\n"
     "tensors is combined exactly, then listed part by part.\n",
     GROUP, PS_COMPLETE_ADDR, 1, 1, 0, cmd_stats},
    {"hist", "ADDR [BINS]", "histogram of the values at ADDR (20 bins)",
     "Splits the range from the smallest to the largest value into BINS equal\n"
     "bins (1 to 200) and draws how many values fall in each; each line gives\n"
     "the bin's edges, its count and a bar.\n",
     GROUP, PS_COMPLETE_ADDR, 1, 2, 0, cmd_hist},
    {"grad", "ADDR", "the loss gradient at ADDR after backward",
     "Shows d loss / d x for the parameters at ADDR, as computed by the last\n"
     "backward pass of training (`train phase` up to backward, or `train step`),\n"
     "with its statistics.  A forward pass (a prediction) discards it.\n",
     GROUP, PS_COMPLETE_ADDR, 1, 1, 0, cmd_grad},
    {"update", "ADDR", "the change the last update made at ADDR",
     "Shows new - old for the parameters at ADDR from the last update, with its\n"
     "statistics and the learning rate used; for a whole tensor also the ratio\n"
     "|update| / |weights| (about 1e-3 is a healthy rate of change).\n",
     GROUP, PS_COMPLETE_ADDR, 1, 1, 0, cmd_update},
    {"adam", "ADDR", "the optimizer's moments m and v at ADDR",
     "Shows Adam's running averages of the gradient (m) and of its square (v)\n"
     "for the parameters at ADDR; the step each value takes is about\n"
     "lr * mhat / sqrt(vhat).  For momentum, shows its buffer; SGD keeps none.\n",
     GROUP, PS_COMPLETE_ADDR, 1, 1, 0, cmd_adam},
    {"export", "ADDR FILE", "write ADDR's values to a .npy or .csv file",
     "Writes one tensor, slice or single-tensor view.  .npy is NumPy's format\n"
     "(float32, numpy.load reads it with the view's shape); .csv has one line\n"
     "per row and values that read back exactly.  The file is written to a\n"
     "temporary name and renamed, so a failure leaves an old FILE intact.\n",
     GROUP, PS_COMPLETE_ADDR, 2, 2, 0, cmd_export},
    {0},
};
