/* Commands that look inside the forward pass, part one: attention, lens,
 * attribute, and the table of all six (the others are in cmd_circuits.c).
 * probe.h does the maths over one forward pass; these read the arguments and
 * render the numbers as text or, after a leading --json, as one JSON object. */
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
#include "repl/addr.h"
#include "repl/inside.h"

/* ---- attention ---- */

static json_t *pattern_json(const float *a, int T)
{
    json_t *rows = json_array();
    for (int q = 0; q < T; q++) {
        json_t *r = json_array();
        for (int k = 0; k <= q; k++)
            json_array_append_new(r, ps_json_number(a[q * T + k]));
        json_array_append_new(rows, r);
    }
    return rows;
}

/* One head as numbers with token labels, when the columns fit; else as shades. */
static void print_head(const inside *in, const float *a, ps_out *out)
{
    int T = in->T, lw = 12;
    char b[LABEL_MAX];
    int numbers = lw + 1 + 7 * T <= out->width;
    int cw = numbers ? 7 : 2;
    if (!numbers && lw + 1 + 2 * T > out->width)
        lw = out->width - 1 - 2 * T > 4 ? out->width - 1 - 2 * T : 4;
    fprintf(out->f, "%*s", lw + 1, "");
    for (int k = 0; k < T; k++) {
        /* over numbers, labels stand right-aligned like the numbers */
        const char *lab = inside_fit(inside_piece(in, k), cw - 1, !numbers, out->utf8, b, sizeof b);
        fprintf(out->f, numbers ? " %*s%s" : "%*s%s", numbers ? cw - 1 - inside_cells(lab) : 0, "", lab);
    }
    fputc('\n', out->f);
    for (int q = 0; q < T; q++) {
        fprintf(out->f, "%s ", inside_fit(inside_piece(in, q), lw, 1, out->utf8, b, sizeof b));
        for (int k = 0; k < T; k++) {
            double p = a[q * T + k];
            if (numbers && k <= q)
                fprintf(out->f, " %6.3f", p);
            else if (numbers)
                fprintf(out->f, "      %s", out->utf8 ? "\u00b7" : ".");
            else
                fprintf(out->f, "%s%s", inside_shade(p, out->utf8), inside_shade(p, out->utf8));
        }
        fputc('\n', out->f);
    }
    /* where each query looks most */
    fputs("strongest:", out->f);
    int col = 10;
    for (int q = 0; q < T; q++) {
        int best = 0;
        for (int k = 1; k <= q; k++)
            best = a[q * T + k] > a[q * T + best] ? k : best;
        char qs[64], ks[64], item[160];
        snprintf(item, sizeof item, " %s %s %s %.2f%s", inside_fit(inside_piece(in, q), 12, 0, out->utf8, qs, sizeof qs),
                 out->utf8 ? "\u2192" : "->", inside_fit(inside_piece(in, best), 12, 0, out->utf8, ks, sizeof ks),
                 (double)a[q * T + best], q + 1 < T ? "," : "");
        int w = inside_cells(item);
        if (col + w > out->width) {
            fputs("\n          ", out->f);
            col = 10;
        }
        fputs(item, out->f);
        col += w;
    }
    fputc('\n', out->f);
}

/* Every head of a block side by side, as shades, as many per row as fit. */
static void print_layer(const inside *in, int layer, ps_out *out)
{
    int T = in->T, NH = in->pm->cfg.n_head, lw = 10;
    int gw = 2 * T + 2, per_row = (out->width - lw - 1) / gw;
    per_row = per_row < 1 ? 1 : per_row > NH ? NH : per_row;
    char b[LABEL_MAX];
    for (int h0 = 0; h0 < NH; h0 += per_row) {
        int h1 = h0 + per_row < NH ? h0 + per_row : NH;
        fprintf(out->f, "%*s", lw + 1, "");
        for (int h = h0; h < h1; h++) {
            char title[32];
            snprintf(title, sizeof title, "%d.%d", layer, h);
            fprintf(out->f, "%-*s", gw, title);
        }
        fputc('\n', out->f);
        for (int q = 0; q < T; q++) {
            fprintf(out->f, "%s ", inside_fit(inside_piece(in, q), lw, 1, out->utf8, b, sizeof b));
            for (int h = h0; h < h1; h++) {
                const float *a = ps_model_attention(in->pm, layer, 0, h);
                for (int k = 0; k < T; k++)
                    fprintf(out->f, "%s%s", inside_shade(a[q * T + k], out->utf8), inside_shade(a[q * T + k], out->utf8));
                fputs("  ", out->f);
            }
            fputc('\n', out->f);
        }
    }
    fprintf(out->f, "(rows are the tokens that look, columns the tokens they look at, left to right;\n"
                    " darker is more attention; `attention %d.H` shows one head as numbers)\n", layer);
}

static int cmd_attention(ps_session *s, int argc, char **argv, ps_out *out)
{
    char *text = argc ? argv[0] : "";
    int json = inside_take_json(&text);
    const ps_config *cf = &s->lm.model->cfg;
    int l, h;
    int rc = inside_take_pair(s, &text, "head", "attention BLOCK[.HEAD] [TEXT]", &l, &h, out);
    if (rc)
        return rc;
    inside in;
    if ((rc = inside_run(s, text, &in, out)))
        return rc;
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "tokens", inside_tokens_json(&in));
        json_object_set_new(o, "layer", json_integer(l));
        if (h >= 0) {
            json_object_set_new(o, "head", json_integer(h));
            json_object_set_new(o, "pattern", pattern_json(ps_model_attention(in.pm, l, 0, h), in.T));
        } else {
            json_t *heads = json_array();
            for (int k = 0; k < cf->n_head; k++) {
                json_t *e = json_object();
                json_object_set_new(e, "head", json_integer(k));
                json_object_set_new(e, "pattern", pattern_json(ps_model_attention(in.pm, l, 0, k), in.T));
                json_array_append_new(heads, e);
            }
            json_object_set_new(o, "heads", heads);
        }
        rc = inside_print_json(o, out);
    } else if (h >= 0) {
        fprintf(out->f, "attention of head %d.%d over %d token%s (each row: where that token looks)\n", l, h,
                in.T, in.T == 1 ? "" : "s");
        print_head(&in, ps_model_attention(in.pm, l, 0, h), out);
    } else {
        fprintf(out->f, "attention of the %d heads of block %d over %d token%s\n", cf->n_head, l, in.T,
                in.T == 1 ? "" : "s");
        print_layer(&in, l, out);
    }
    return inside_finish(s, &in, rc);
}

/* ---- the logit lens ---- */

#define LENS_TOP 3

static void stage_label(int stage, char *buf, size_t size)
{
    if (stage == 0)
        snprintf(buf, size, "embeddings");
    else
        snprintf(buf, size, "block %d", stage - 1);
}

static int cmd_lens(ps_session *s, int argc, char **argv, ps_out *out)
{
    char *text = argc ? argv[0] : "";
    int json = inside_take_json(&text);
    inside in;
    int rc = inside_run(s, text, &in, out);
    if (rc)
        return rc;
    int S = in.pm->cfg.n_layer + 1, V = in.pm->cfg.vocab_size;
    float *logits = malloc((size_t)S * V * sizeof *logits), *probs = malloc((size_t)V * sizeof *probs);
    if (!logits || !probs) {
        rc = ps_fail(out, PS_ERR_NOMEM, "logit lens: out of memory");
        goto done;
    }
    if ((rc = ps_probe_lens(in.pm, 0, in.T - 1, logits, &out->err)))
        goto done;
    /* the answer at the end, followed through the stages */
    int answer = ps_argmax(logits + (size_t)(S - 1) * V, V);
    const char *ans = ps_tokenizer_token(s->lm.tok, answer);
    json_t *o = NULL, *layers = NULL;
    char b[LABEL_MAX], lab[32];
    if (json) {
        o = json_object();
        layers = json_array();
        json_object_set_new(o, "tokens", inside_tokens_json(&in));
    } else {
        fprintf(out->f, "logit lens at \"%s\" (the last of %d tokens): what the model would predict if it\n"
                        "stopped after each stage (ln_f and the LM head applied to the residual stream)\n",
                inside_fit(inside_piece(&in, in.T - 1), 20, 0, out->utf8, b, sizeof b), in.T);
        fprintf(out->f, "%-11s %-27s %-27s %s\n", "after", "top 1", "top 2", "final answer");
    }
    for (int st = 0; st < S; st++) {
        ps_softmax(probs, logits + (size_t)st * V, V, 1.0f);
        int top[LENS_TOP] = {0};
        int k = ps_topk(probs, V, LENS_TOP, top, NULL);
        int rank = 1;
        for (int v = 0; v < V; v++)
            rank += probs[v] > probs[answer];
        stage_label(st, lab, sizeof lab);
        if (json) {
            json_t *e = json_object(), *t = json_array();
            json_object_set_new(e, "after", st == 0 ? json_string("embeddings") : json_integer(st - 1));
            for (int i = 0; i < k; i++) {
                json_t *x = json_object();
                json_object_set_new(x, "token", ps_json_text(ps_tokenizer_token(s->lm.tok, top[i])));
                json_object_set_new(x, "id", json_integer(top[i]));
                json_object_set_new(x, "prob", ps_json_number(probs[top[i]]));
                json_array_append_new(t, x);
            }
            json_object_set_new(e, "top", t);
            json_object_set_new(e, "answer_prob", ps_json_number(probs[answer]));
            json_object_set_new(e, "answer_rank", json_integer(rank));
            json_array_append_new(layers, e);
            continue;
        }
        fprintf(out->f, "%-11s", lab);
        for (int i = 0; i < 2; i++) {
            if (i < k)
                fprintf(out->f, " %s %6.2f%%", inside_fit(ps_tokenizer_token(s->lm.tok, top[i]), 19, 1, out->utf8, b,
                                                   sizeof b), 100.0 * probs[top[i]]);
            else
                fprintf(out->f, " %27s", "");
        }
        fprintf(out->f, " %s %.1f%% (#%d)\n", inside_fit(ans, 12, 0, out->utf8, b, sizeof b), 100.0 * probs[answer], rank);
    }
    if (json) {
        json_object_set_new(o, "answer", ps_json_text(ans));
        json_object_set_new(o, "answer_id", json_integer(answer));
        json_object_set_new(o, "layers", layers);
        rc = inside_print_json(o, out);
    }
done:
    free(logits);
    free(probs);
    return inside_finish(s, &in, rc);
}

/* ---- direct logit attribution ---- */

/* A quoted first word ("blue", " blue") names the token, with the escapes
 * of addresses (\" \\ \n \r \t \xNN), so every token shown can be typed back. */
static int take_token(ps_session *s, char **text, int *id, ps_out *out)
{
    char *p = inside_skip_space(*text);
    *id = -1;
    if (*p != '"')
        return PS_OK;
    char raw[LABEL_MAX];
    const char *stop;
    ps_error why;
    if (addr_unquote(p, p + strlen(p), raw, sizeof raw, &stop, &why))
        return ps_fail(out, PS_ERR_INVALID, "the token: %s (write \"TOKEN\" then the text)", why.msg);
    *text = inside_skip_space((char *)stop + 1);
    if ((*id = ps_tokenizer_find(s->lm.tok, raw)) < 0) {
        char b[LABEL_MAX];
        ps_escape(raw, strlen(raw), PS_ESCAPE_QUOTED | PS_ESCAPE_UTF8, b, sizeof b);
        return ps_fail(out, PS_ERR_NOT_FOUND, "no token \"%s\" in the vocabulary", b);
    }
    return PS_OK;
}

static int cmd_attribute(ps_session *s, int argc, char **argv, ps_out *out)
{
    char *text = argc ? argv[0] : "";
    int json = inside_take_json(&text), token;
    int rc = take_token(s, &text, &token, out);
    if (rc)
        return rc;
    inside in;
    if ((rc = inside_run(s, text, &in, out)))
        return rc;
    const ps_config *cf = &in.pm->cfg;
    int t = in.T - 1;
    if (token < 0)
        token = ps_argmax(ps_model_logits(in.pm, 0, t), cf->vocab_size);
    ps_attribution a;
    inside_part *parts = malloc(inside_parts_max(cf) * sizeof *parts);
    if (!parts) {
        inside_clear(&in);
        return ps_fail(out, PS_ERR_NOMEM, "out of memory");
    }
    if ((rc = ps_probe_attribute(in.pm, 0, t, token, &a, &out->err)))
        goto done;
    int n = inside_parts(&a, parts);
    const char *name = ps_tokenizer_token(s->lm.tok, token);
    char b[LABEL_MAX], b2[LABEL_MAX];
    if (json) {
        json_t *o = json_object(), *ps = json_array();
        json_object_set_new(o, "tokens", inside_tokens_json(&in));
        json_object_set_new(o, "token", ps_json_text(name));
        json_object_set_new(o, "id", json_integer(token));
        json_object_set_new(o, "logit", ps_json_number(a.logit));
        json_object_set_new(o, "sum", ps_json_number(a.total));
        for (int i = 0; i < n; i++) {
            json_t *e = json_object();
            json_object_set_new(e, "part", json_string(parts[i].name));
            json_object_set_new(e, "layer", parts[i].layer >= 0 ? json_integer(parts[i].layer) : json_null());
            json_object_set_new(e, "head", parts[i].head >= 0 ? json_integer(parts[i].head) : json_null());
            json_object_set_new(e, "value", ps_json_number(parts[i].value));
            json_array_append_new(ps, e);
        }
        json_object_set_new(o, "parts", ps);
        rc = inside_print_json(o, out);
        goto done;
    }
    fprintf(out->f, "what adds to the logit of \"%s\" (%.3f) at \"%s\", largest first:\n",
            inside_fit(name, 20, 0, out->utf8, b, sizeof b), a.logit, inside_fit(inside_piece(&in, t), 20, 0, out->utf8, b2, sizeof b2));
    double biggest = fabs(parts[0].value) > 0 ? fabs(parts[0].value) : 1;
    int shown = n < 16 ? n : 16, barw = out->width - 36 > 10 ? (out->width - 36 < 30 ? out->width - 36 : 30) : 10;
    for (int i = 0; i < shown; i++) {
        char bar[256] = "";
        ps_render_bar(bar, sizeof bar, fabs(parts[i].value) / biggest, barw, out->utf8);
        fprintf(out->f, "  %-20s %+9.3f  %s\n", parts[i].name, parts[i].value, bar);
    }
    if (shown < n) {
        double rest = 0;
        for (int i = shown; i < n; i++)
            rest += parts[i].value;
        fprintf(out->f, "  %-20s %+9.3f\n", "the other parts", rest);
    }
    fprintf(out->f, "  the parts add up to %.4f; the logit is %.4f\n", a.total, a.logit);
done:
    ps_attribution_clear(&a);
    free(parts);
    return inside_finish(s, &in, rc);
}

/* ---- the table ---- */

const ps_command ps_cmds_inside[] = {
    {"attention", "[--json] BLOCK[.HEAD] [TEXT]", "where each token looks: a head's attention pattern",
     "attention 0.1 the sky is   shows head 1 of block 0 over the prompt's tokens: row i is\n"
     "token i's attention over the tokens up to itself (each row sums to 1).\n"
     "attention 0 TEXT shows every head of block 0 side by side as shades.\n"
     "Without TEXT the last prompt is used.  --json prints {\"tokens\", \"layer\", \"head\",\n"
     "\"pattern\"} (row q holds q + 1 numbers), or \"heads\" for a whole block.\n",
     "Inside the forward pass", PS_COMPLETE_NONE, 1, 1, PS_CMD_RAW, cmd_attention},
    {"lens", "[--json] [TEXT]", "the logit lens: what each layer would predict",
     "Applies the final LayerNorm and the LM head to the residual stream after the\n"
     "embeddings and after every block, at the last token: the top tokens each stage\n"
     "would predict, and where the final answer rises.  The last row is `predict`'s.\n",
     "Inside the forward pass", PS_COMPLETE_NONE, 0, 1, PS_CMD_RAW, cmd_lens},
    {"attribute", "[--json] [\"TOKEN\"] [TEXT]", "which heads and MLPs push a token's logit",
     "Direct logit attribution: the residual stream at the last token is a sum of what\n"
     "the embeddings, every head, every attention bias and every MLP wrote; with the\n"
     "final LayerNorm's scale taken from this forward pass, the logit of TOKEN (default:\n"
     "the top prediction) splits exactly into one term per part, plus ln_f's bias.\n"
     "Write the token in quotes: attribute \"blue\" the sky is.\n",
     "Inside the forward pass", PS_COMPLETE_NONE, 0, 1, PS_CMD_RAW, cmd_attribute},
    {"neuron", "[--json] BLOCK.NEURON [TEXT]", "one MLP neuron: its activations and strongest contexts",
     "The neuron's activation (after GELU) at each token of TEXT, and the 8 places in the\n"
     "training text (`train data`, else the bundled corpus) where it fires hardest.\n"
     "The scan runs once per version of the weights; Ctrl-C stops it.\n",
     "Inside the forward pass", PS_COMPLETE_NONE, 1, 1, PS_CMD_RAW, ps_cmd_neuron},
    {"patch", "[--json] CLEAN | CORRUPT", "activation patching between two prompts",
     "Runs CORRUPT with one piece of CLEAN's forward pass put in its place and shows how\n"
     "much of the difference logit(answer) - logit(wrong) comes back (answer: CLEAN's\n"
     "top token, wrong: CORRUPT's), for the residual stream into every block at every\n"
     "position, and for every head's output.  The prompts need the same number of\n"
     "tokens: patch the sky is | the grass is\n",
     "Inside the forward pass", PS_COMPLETE_NONE, 1, 1, PS_CMD_RAW, ps_cmd_patch},
    {"saliency", "[--json] [TEXT]", "which prompt tokens the prediction depends on",
     "The gradient of the top token's log-probability with respect to each token's\n"
     "embedding: its size (|grad|) and its dot product with the embedding (grad.x).\n",
     "Inside the forward pass", PS_COMPLETE_NONE, 0, 1, PS_CMD_RAW, ps_cmd_saliency},
    {NULL, NULL, NULL, NULL, NULL, 0, 0, 0, 0, NULL},
};
