/* Commands that look inside the forward pass, part two: neuron, patch and
 * saliency (their rows are in cmd_inside.c's table). */
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#include "paramscope/kernels.h"
#include "paramscope/probe.h"
#include "paramscope/sample.h"
#include "repl/inside.h"

/* ---- neurons ---- */

#define SCAN_K 8
#define SCAN_CONTEXT 6        /* tokens shown before the one that fires */

typedef struct scan_progress {
    ps_session *s;
    int tty;
} scan_progress;

static int scan_tick(void *ctx, size_t done, size_t total)
{
    scan_progress *p = ctx;
    if (p->tty)
        fprintf(stderr, "\rscanning the training text: %zu of %zu tokens", done, total);
    return atomic_load(&p->s->interrupt) != 0;
}

/* The strongest activations of every neuron over the training text, made
 * again when the weights or the text changed. */
static int ensure_scan(ps_session *s, ps_out *out)
{
    int rc = ps_session_corpus(s, &out->err);
    if (rc)
        return rc;
    ps_model *m = s->lm.model;
    if (s->neuron_scan && s->neuron_scan->model_version == m->version)
        return PS_OK;
    ps_neuron_scan_free(s->neuron_scan);
    s->neuron_scan = NULL;
    ps_model *pm = NULL;
    if ((rc = ps_model_init_shared(&pm, m, &out->err)))
        return rc;
    scan_progress p = {s, isatty(STDERR_FILENO)};
    int seq = m->cfg.n_ctx < 64 ? m->cfg.n_ctx : 64;
    rc = ps_neuron_scan_run(&s->neuron_scan, pm, s->corpus->ids, s->corpus->n, seq, 16, SCAN_K, scan_tick, &p,
                            &out->err);
    if (p.tty)
        fputs("\r\033[K", stderr);
    ps_model_free(pm);
    if (rc)
        return rc;
    s->neuron_scan->model_version = m->version;
    return PS_OK;
}

int ps_cmd_neuron(ps_session *s, int argc, char **argv, ps_out *out)
{
    char *text = argc ? argv[0] : "";
    int json = inside_take_json(&text);
    int l, n;
    int rc = inside_take_pair(s, &text, "neuron", "neuron BLOCK.NEURON [TEXT]", &l, &n, out);
    if (rc)
        return rc;
    if (n < 0)
        return ps_fail(out, PS_ERR_INVALID, "block %d: name one neuron, BLOCK.NEURON (e.g. %d.0)", l, l);
    inside in;
    int have_text = *text || s->prompt;
    if (have_text && (rc = inside_run(s, text, &in, out)))
        return rc;
    float *act = have_text ? malloc((size_t)in.T * sizeof *act) : NULL;
    if (have_text && (!act || (rc = ps_probe_neuron(in.pm, l, n, 0, act, &out->err)))) {
        rc = act ? rc : ps_fail(out, PS_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = ensure_scan(s, out)))
        goto done;
    const ps_neuron_hit *hits = ps_neuron_scan_hits(s->neuron_scan, l, n);
    const ps_corpus *c = s->corpus;
    char b[LABEL_MAX];
    if (json) {
        json_t *o = json_object(), *top = json_array();
        json_object_set_new(o, "layer", json_integer(l));
        json_object_set_new(o, "neuron", json_integer(n));
        if (have_text) {
            json_t *acts = json_array();
            for (int t = 0; t < in.T; t++)
                json_array_append_new(acts, ps_json_number(act[t]));
            json_object_set_new(o, "tokens", inside_tokens_json(&in));
            json_object_set_new(o, "activations", acts);
        }
        for (int i = 0; i < SCAN_K && hits[i].pos != SIZE_MAX; i++) {
            json_t *e = json_object(), *ctx = json_array();
            size_t from = hits[i].pos >= SCAN_CONTEXT ? hits[i].pos - SCAN_CONTEXT : 0;
            for (size_t j = from; j <= hits[i].pos + 2 && j < c->n; j++)
                json_array_append_new(ctx, ps_json_text(ps_tokenizer_token(s->lm.tok, c->ids[j])));
            json_object_set_new(e, "activation", ps_json_number(hits[i].act));
            json_object_set_new(e, "position", json_integer((json_int_t)hits[i].pos));
            json_object_set_new(e, "context", ctx);
            json_object_set_new(e, "firing", json_integer((json_int_t)(hits[i].pos - from)));
            json_array_append_new(top, e);
        }
        json_object_set_new(o, "top", top);
        rc = inside_print_json(o, out);
        goto done;
    }
    fprintf(out->f, "neuron %d.%d (column %d of h.%d.mlp.c_fc.weight, row %d of h.%d.mlp.c_proj.weight)\n", l, n, n,
            l, n, l);
    if (have_text) {
        float peak = 0;
        for (int t = 0; t < in.T; t++)
            peak = fabsf(act[t]) > peak ? fabsf(act[t]) : peak;
        for (int t = 0; t < in.T; t++) {
            char bar[256] = "";
            ps_render_bar(bar, sizeof bar, peak > 0 && act[t] > 0 ? act[t] / peak : 0, 30, out->utf8);
            fprintf(out->f, "  %s %+8.3f  %s\n", inside_fit(inside_piece(&in, t), 14, 1, out->utf8, b, sizeof b), act[t], bar);
        }
    }
    char cnt[32];
    fprintf(out->f, "strongest over the training text (%s, %s tokens), the firing token in [ ]:\n",
            s->data_path ? s->data_path : "the bundled corpus", ps_fmt_count(c->n, cnt, sizeof cnt));
    for (int i = 0; i < SCAN_K && hits[i].pos != SIZE_MAX; i++) {
        fprintf(out->f, "  %+8.3f  ", hits[i].act);
        size_t from = hits[i].pos >= SCAN_CONTEXT ? hits[i].pos - SCAN_CONTEXT : 0;
        for (size_t j = from; j <= hits[i].pos + 2 && j < c->n; j++) {
            const char *tk = ps_tokenizer_token(s->lm.tok, c->ids[j]);
            fputs(j == hits[i].pos ? "[" : j == from ? "" : " ", out->f);
            fputs(inside_fit(tk, 16, 0, out->utf8, b, sizeof b), out->f);
            if (j == hits[i].pos)
                fputs("]", out->f);
        }
        fputc('\n', out->f);
    }
done:
    free(act);
    return have_text ? inside_finish(s, &in, rc) : rc;
}

/* ---- activation patching ---- */

int ps_cmd_patch(ps_session *s, int argc, char **argv, ps_out *out)
{
    char *text = argc ? argv[0] : "";
    int json = inside_take_json(&text);
    char *bar = strchr(text, '|');
    if (!bar)
        return ps_fail(out, PS_ERR_INVALID, "usage: patch CLEAN | CORRUPT (two prompts of the same length)");
    *bar = '\0';
    char *clean = inside_skip_space(text), *corrupt = inside_skip_space(bar + 1);
    for (char *e = clean + strlen(clean); e > clean && (e[-1] == ' ' || e[-1] == '\t');)
        *--e = '\0';
    if (!*clean || !*corrupt)
        return ps_fail(out, PS_ERR_INVALID, "usage: patch CLEAN | CORRUPT (both prompts are needed)");
    ps_tokens tc = {0}, tx = {0};
    int rc;
    if ((rc = ps_tokenizer_encode(s->lm.tok, clean, &tc, &out->err)) ||
        (rc = ps_tokenizer_encode(s->lm.tok, corrupt, &tx, &out->err)))
        goto done;
    int n_ctx = s->lm.model->cfg.n_ctx;
    if (tc.n != tx.n) {
        rc = ps_fail(out, PS_ERR_INVALID, "the prompts have %d and %d tokens; patching needs the same number", tc.n,
                     tx.n);
        goto done;
    }
    if (tc.n == 0 || tc.n > n_ctx) {
        rc = ps_fail(out, PS_ERR_RANGE, "the prompts have %d tokens; patching takes 1 to %d", tc.n, n_ctx);
        goto done;
    }
    inside in;
    if ((rc = inside_run(s, clean, &in, out)))
        goto done;
    int V = in.pm->cfg.vocab_size, T = tc.n;
    const float *z = ps_model_logits(in.pm, 0, T - 1);
    int answer = ps_argmax(z, V), wrong;
    if ((rc = ps_model_forward(in.pm, tx.ids, 1, T, &out->err))) {
        inside_clear(&in);
        goto done;
    }
    z = ps_model_logits(in.pm, 0, T - 1);
    wrong = answer == 0 ? 1 : 0;
    for (int v = 0; v < V; v++)
        if (v != answer && z[v] > z[wrong])
            wrong = v;
    ps_patching p;
    rc = ps_probe_patch(in.pm, tc.ids, tx.ids, T, answer, wrong, &p, &out->err);
    if (rc) {
        inside_clear(&in);
        goto done;
    }
    const char *an = ps_tokenizer_token(s->lm.tok, answer), *wn = ps_tokenizer_token(s->lm.tok, wrong);
    int L = p.n_layer, NH = p.n_head;
    char b[LABEL_MAX], b2[LABEL_MAX], b3[LABEL_MAX], b4[LABEL_MAX];
    if (json) {
        json_t *o = json_object(), *res = json_array(), *heads = json_array();
        json_object_set_new(o, "clean", inside_tokens_json(&in));
        json_t *ct = json_array();
        for (int t = 0; t < T; t++)
            json_array_append_new(ct, ps_json_text(tx.pieces[t]));
        json_object_set_new(o, "corrupt", ct);
        json_object_set_new(o, "answer", ps_json_text(an));
        json_object_set_new(o, "wrong", ps_json_text(wn));
        json_object_set_new(o, "ld_clean", ps_json_number(p.ld_clean));
        json_object_set_new(o, "ld_corrupt", ps_json_number(p.ld_corrupt));
        for (int l = 0; l <= L; l++) {
            json_t *r = json_array();
            for (int t = 0; t < T; t++)
                json_array_append_new(r, ps_json_number(p.resid[l * T + t]));
            json_array_append_new(res, r);
        }
        for (int l = 0; l < L; l++) {
            json_t *r = json_array();
            for (int h = 0; h < NH; h++)
                json_array_append_new(r, ps_json_number(p.head[l * NH + h]));
            json_array_append_new(heads, r);
        }
        json_object_set_new(o, "resid", res);
        json_object_set_new(o, "heads", heads);
        rc = inside_print_json(o, out);
    } else {
        fprintf(out->f, "patching \"%s\" into \"%s\": logit(%s) - logit(%s) is %.3f clean, %.3f corrupt;\n"
                        "each cell: the share of that difference restored by the clean run's piece (100%% = all)\n",
                inside_fit(clean, 24, 0, out->utf8, b, sizeof b), inside_fit(corrupt, 24, 0, out->utf8, b2, sizeof b2),
                inside_fit(an, 12, 0, out->utf8, b3, sizeof b3), inside_fit(wn, 12, 0, out->utf8, b4, sizeof b4), p.ld_clean,
                p.ld_corrupt);
        int cw = 8;
        fprintf(out->f, "%-14s", "residual into");
        for (int t = 0; t < T; t++) {
            const char *lab = inside_fit(tx.pieces[t], cw - 1, 0, out->utf8, b, sizeof b);
            fprintf(out->f, " %*s%s", cw - 1 - inside_cells(lab), "", lab);
        }
        fputc('\n', out->f);
        for (int l = 0; l <= L; l++) {
            char lab[32];
            if (l < L)
                snprintf(lab, sizeof lab, "block %d", l);
            else
                snprintf(lab, sizeof lab, "ln_f");
            fprintf(out->f, "%-14s", lab);
            for (int t = 0; t < T; t++)
                fprintf(out->f, " %6.0f%%", 100.0 * p.resid[l * T + t]);
            fputc('\n', out->f);
        }
        fputs("heads (every position):\n", out->f);
        for (int l = 0; l < L; l++) {
            fprintf(out->f, "  block %-5d", l);
            for (int h = 0; h < NH; h++)
                fprintf(out->f, " %s%5.0f%%", h && h % 8 == 0 ? "\n             " : "", 100.0 * p.head[l * NH + h]);
            fputc('\n', out->f);
        }
    }
    ps_patching_clear(&p);
    rc = inside_finish(s, &in, rc);
done:
    ps_tokens_free(&tc);
    ps_tokens_free(&tx);
    return rc;
}

/* ---- saliency ---- */

int ps_cmd_saliency(ps_session *s, int argc, char **argv, ps_out *out)
{
    char *text = argc ? argv[0] : "";
    int json = inside_take_json(&text);
    inside in;
    int rc = inside_run(s, text, &in, out);
    if (rc)
        return rc;
    int T = in.T, top = ps_argmax(ps_model_logits(in.pm, 0, T - 1), in.pm->cfg.vocab_size);
    float *g = malloc((size_t)2 * T * sizeof *g);
    if (!g) {
        inside_clear(&in);
        return ps_fail(out, PS_ERR_NOMEM, "out of memory");
    }
    if ((rc = ps_probe_saliency(in.pm, top, g, g + T, &out->err)))
        goto done;
    const char *name = ps_tokenizer_token(s->lm.tok, top);
    char b[LABEL_MAX], b2[LABEL_MAX];
    if (json) {
        json_t *o = json_object(), *gn = json_array(), *gx = json_array();
        for (int t = 0; t < T; t++) {
            json_array_append_new(gn, ps_json_number(g[t]));
            json_array_append_new(gx, ps_json_number(g[T + t]));
        }
        json_object_set_new(o, "tokens", inside_tokens_json(&in));
        json_object_set_new(o, "token", ps_json_text(name));
        json_object_set_new(o, "id", json_integer(top));
        json_object_set_new(o, "gradient_norm", gn);
        json_object_set_new(o, "gradient_x_input", gx);
        rc = inside_print_json(o, out);
        goto done;
    }
    float peak = 0;
    for (int t = 0; t < T; t++)
        peak = g[t] > peak ? g[t] : peak;
    fprintf(out->f, "saliency of \"%s\": how strongly each token's embedding moves log p(%s)\n",
            inside_fit(name, 20, 0, out->utf8, b, sizeof b), inside_fit(name, 20, 0, out->utf8, b2, sizeof b2));
    for (int t = 0; t < T; t++) {
        char bar[256] = "";
        ps_render_bar(bar, sizeof bar, peak > 0 ? g[t] / peak : 0, 30, out->utf8);
        fprintf(out->f, "  %s |grad| %8.4f  grad.x %+8.4f  %s\n", inside_fit(inside_piece(&in, t), 14, 1, out->utf8, b, sizeof b),
                g[t], g[T + t], bar);
    }
done:
    free(g);
    return inside_finish(s, &in, rc);
}
