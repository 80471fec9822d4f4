/* What the commands inside the forward pass share (inside.h): their
 * arguments, the prompt's forward on a model that shares the session's
 * weights, and text that fits a column.
 *
 * Why a model of its own for each view: the session's model may be half-way
 * through a training step (its activations are the step's); a model that
 * shares its weights (ps_model_init_shared) leaves them alone. */
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

/* ---- arguments ---- */

char *inside_skip_space(char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* A leading "--json" word: removed, and 1. */
int inside_take_json(char **text)
{
    char *p = inside_skip_space(*text);
    if (strncmp(p, "--json", 6) || (p[6] && p[6] != ' ' && p[6] != '\t'))
        return 0;
    *text = inside_skip_space(p + 6);
    return 1;
}

/* The first word of *text into buf (cut to size), *text moved past it. */
void inside_take_word(char **text, char *buf, size_t size)
{
    char *p = inside_skip_space(*text), *e = p;
    while (*e && *e != ' ' && *e != '\t')
        e++;
    size_t n = (size_t)(e - p) < size - 1 ? (size_t)(e - p) : size - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    *text = inside_skip_space(e);
}

/* "L" or "L.N" with both in range; *n = -1 when there is no ".N". */
int inside_parse_pair(const char *word, const char *what, int max_l, int max_n, int *l, int *n, ps_out *out)
{
    char *end;
    long a = strtol(word, &end, 10), b = -1;
    if (end == word || a < 0)
        return ps_fail(out, PS_ERR_INVALID, "'%s' is not a %s (write BLOCK.%s, e.g. 0.1)", word, what,
                       !strcmp(what, "head") ? "HEAD" : "NEURON");
    if (*end == '.') {
        char *e2;
        b = strtol(end + 1, &e2, 10);
        if (e2 == end + 1 || *e2 || b < 0)
            return ps_fail(out, PS_ERR_INVALID, "'%s' is not a %s (write BLOCK.N, e.g. 0.1)", word, what);
    } else if (*end) {
        return ps_fail(out, PS_ERR_INVALID, "'%s' is not a %s (write BLOCK.N, e.g. 0.1)", word, what);
    }
    if (a >= max_l)
        return ps_fail(out, PS_ERR_RANGE, "block %ld: the model has blocks 0..%d", a, max_l - 1);
    if (b >= max_n)
        return ps_fail(out, PS_ERR_RANGE, "%s %ld of block %ld: block %ld has %ss 0..%d", what, b, a, a, what,
                       max_n - 1);
    *l = (int)a;
    *n = (int)b;
    return PS_OK;
}

int inside_take_pair(ps_session *s, char **text, const char *what, const char *usage, int *l, int *n, ps_out *out)
{
    char word[64];
    inside_take_word(text, word, sizeof word);
    if (!*word)
        return ps_fail(out, PS_ERR_INVALID, "usage: %s", usage);
    const ps_config *cf = &s->lm.model->cfg;
    int max_n = !strcmp(what, "head") ? cf->n_head : 4 * cf->n_embd;
    return inside_parse_pair(word, what, cf->n_layer, max_n, l, n, out);
}

/* ---- the prompt's forward ---- */

void inside_clear(inside *in)
{
    free(in->text);
    ps_model_free(in->pm);
    ps_tokens_free(&in->tk);
    memset(in, 0, sizeof *in);
}

/* Encodes text (the last prompt when empty), keeps its last n_ctx tokens and
 * runs them; the prompt becomes the session's. */
int inside_run(ps_session *s, const char *text, inside *in, ps_out *out)
{
    memset(in, 0, sizeof *in);
    if (!*text) {
        if (!s->prompt)
            return ps_fail(out, PS_ERR_INVALID, "no prompt: give TEXT, or run `predict TEXT` first");
        text = s->prompt;
    }
    int rc = ps_tokenizer_encode(s->lm.tok, text, &in->tk, &out->err);
    if (rc)
        return rc;
    if (in->tk.n == 0) {
        inside_clear(in);
        return ps_fail(out, PS_ERR_INVALID, "the prompt has no tokens");
    }
    if (in->tk.n_unknown == in->tk.n) {
        inside_clear(in);
        return ps_fail(out, PS_ERR_INVALID, "every word of the prompt is unknown to the model");
    }
    int n_ctx = s->lm.model->cfg.n_ctx, V = s->lm.model->cfg.vocab_size;
    in->first = in->tk.n > n_ctx ? in->tk.n - n_ctx : 0;
    in->T = in->tk.n - in->first;
    if (!(in->text = strdup(text))) {
        inside_clear(in);
        return ps_fail(out, PS_ERR_NOMEM, "out of memory");
    }
    if ((rc = ps_model_init_shared(&in->pm, s->lm.model, &out->err)) ||
        (rc = ps_model_forward(in->pm, in->tk.ids + in->first, 1, in->T, &out->err))) {
        inside_clear(in);
        return rc;
    }
    /* no view of numbers that are not numbers: say where they start */
    const float *z = ps_model_logits(in->pm, 0, in->T - 1);
    int bad = 0;
    for (int v = 0; v < V; v++)
        bad += !isfinite(z[v]);
    if (bad) {
        char at[48];
        ps_model_find_nonfinite(in->pm, at, sizeof at);
        inside_clear(in);
        return ps_fail(out, PS_ERR_NUMERIC, "the forward pass is not finite: %d of %d logits are NaN or infinite%s%s",
                       bad, V, at[0] ? ", the first non-finite value appears in " : "", at);
    }
    return PS_OK;
}

int inside_finish(ps_session *s, inside *in, int rc)
{
    if (rc == PS_OK && in->text && (!s->prompt || strcmp(s->prompt, in->text))) {
        free(s->prompt);
        s->prompt = in->text;     /* the prompt of a view that worked is the session's */
        in->text = NULL;
    }
    inside_clear(in);
    return rc;
}

/* ---- text for people ---- */

/* Display cells of UTF-8 text (wide characters count two). */
int inside_cells(const char *s)
{
    mbstate_t st;
    memset(&st, 0, sizeof st);
    int w = 0;
    size_t n = strlen(s);
    while (n) {
        wchar_t wc;
        size_t k = mbrtowc(&wc, s, n, &st);
        if (k == (size_t)-1 || k == (size_t)-2) {
            w++;
            s++;
            n--;
            memset(&st, 0, sizeof st);
            continue;
        }
        if (k == 0)
            break;
        int cw = wcwidth(wc);
        w += cw > 0 ? cw : 0;
        s += k;
        n -= k;
    }
    return w;
}

/* A token escaped and cut to at most `width` cells (an ellipsis marks a cut),
 * then padded with spaces to exactly `width` when pad is set. */
const char *inside_fit(const char *t, int width, int pad, int utf8, char *buf, size_t size)
{
    char esc[LABEL_MAX];
    ps_escape(t ? t : "?", t ? strlen(t) : 1, 0, esc, sizeof esc);
    size_t o = 0;
    int used = 0;
    if (inside_cells(esc) <= width) {
        o = (size_t)snprintf(buf, size, "%s", esc);
        used = inside_cells(esc);
    } else {
        /* copy whole characters while one cell stays for the mark */
        mbstate_t st;
        memset(&st, 0, sizeof st);
        const char *p = esc;
        size_t n = strlen(esc);
        while (n && o + 8 < size) {
            wchar_t wc;
            size_t k = mbrtowc(&wc, p, n, &st);
            if (k == (size_t)-1 || k == (size_t)-2 || k == 0)
                k = 1, wc = '?';
            int cw = wcwidth(wc) > 0 ? wcwidth(wc) : 0;
            if (used + cw > width - 1)
                break;
            memcpy(buf + o, p, k);
            o += k;
            used += cw;
            p += k;
            n -= k;
        }
        o += (size_t)snprintf(buf + o, size - o, "%s", utf8 ? "\u2026" : "~");
        used++;
    }
    while (pad && used < width && o + 1 < size) {
        buf[o++] = ' ';
        used++;
    }
    buf[o < size ? o : size - 1] = '\0';
    return buf;
}

const char *inside_piece(const inside *in, int t)
{
    return in->tk.pieces[in->first + t];
}

/* One cell of a heatmap for p in [0, 1]: blocks, or ASCII by density. */
const char *inside_shade(double p, int utf8)
{
    static const char *const blocks[] = {" ", "\u2591", "\u2592", "\u2593", "\u2588"};
    static const char *const ascii[] = {" ", ".", ":", "+", "#"};
    int i = p <= 0.02 ? 0 : p < 0.2 ? 1 : p < 0.45 ? 2 : p < 0.7 ? 3 : 4;
    return utf8 ? blocks[i] : ascii[i];
}

json_t *inside_tokens_json(const inside *in)
{
    json_t *a = json_array();
    for (int t = 0; t < in->T; t++)
        json_array_append_new(a, ps_json_text(inside_piece(in, t)));
    return a;
}

int inside_print_json(json_t *o, ps_out *out)
{
    char *js = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(o);
    if (!js)
        return ps_fail(out, PS_ERR_NOMEM, "out of memory");
    fputs(js, out->f);
    fputc('\n', out->f);
    free(js);
    return PS_OK;
}


/* ---- attribution as a list ---- */

size_t inside_parts_max(const ps_config *cf)
{
    return (size_t)cf->n_layer * (cf->n_head + 2) + 3;
}

static int by_size(const void *a, const void *b)
{
    double x = fabs(((const inside_part *)a)->value), y = fabs(((const inside_part *)b)->value);
    return x < y ? 1 : x > y ? -1 : 0;
}

int inside_parts(const ps_attribution *a, inside_part *parts)
{
    int n = 0, L = a->n_layer, NH = a->n_head;
    parts[n++] = (inside_part){"token embedding", -1, -1, a->token_embed};
    parts[n++] = (inside_part){"position embedding", -1, -1, a->pos_embed};
    for (int l = 0; l < L; l++) {
        for (int h = 0; h < NH; h++) {
            parts[n] = (inside_part){"", l, h, a->head[l * NH + h]};
            snprintf(parts[n++].name, sizeof parts[0].name, "head %d.%d", l, h);
        }
        parts[n] = (inside_part){"", l, -1, a->attn_bias[l]};
        snprintf(parts[n++].name, sizeof parts[0].name, "attention bias %d", l);
        parts[n] = (inside_part){"", l, -1, a->mlp[l]};
        snprintf(parts[n++].name, sizeof parts[0].name, "MLP %d", l);
    }
    parts[n++] = (inside_part){"ln_f bias", -1, -1, a->lnf_bias};
    qsort(parts, (size_t)n, sizeof *parts, by_size);
    return n;
}
