/* The prediction pane: a prompt field and the next-token bars, recomputed on
 * every keystroke (at most once a frame).  Each bar shows its change since
 * the baseline: the bars of the same prompt before the model changed (or the
 * ones `baseline` or ^B took), coloured and signed so that it also reads
 * without colour.  Settings change through the command language (`set`), so
 * the log shows what a key did and a script can repeat it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "paramscope/sample.h"
#include "ui/predictor.h"
#include "ui/ui.h"

#define TEXT_MAX 2048
#define STALE_AFTER 0.3       /* seconds before older bars are marked */

typedef struct ui_predict {
    char text[TEXT_MAX];
    int len, cur;             /* bytes */
    int scroll;

    ui_predictor *thread;
    char req_text[TEXT_MAX];  /* what was asked last */
    uint64_t req_version;
    int requested;
    ui_pred_result *res;      /* what is shown, or NULL */
    ps_settings set;          /* the session's settings, as last known */
    double behind_since;      /* when the shown bars fell behind, or 0 */

    float *baseline;          /* [V] */
    int V;
    char base_text[TEXT_MAX];
    int base_from_session;
} ui_predict;

static const float temps[] = {0, 0.1f, 0.2f, 0.3f, 0.5f, 0.7f, 0.8f, 0.9f, 1, 1.2f, 1.5f, 2, 3, 5};
static const int topks[] = {0, 1, 5, 10, 40};
static const float topps[] = {1, 0.95f, 0.9f, 0.5f};
static const int bar_counts[] = {5, 10, 15, 20};
#define COUNT(a) ((int)(sizeof(a) / sizeof(a)[0]))

/* ---- asking and adopting ---- */

static int blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t')
            return 0;
    return 1;
}

static int have(const ui_predict *P)
{
    return P->res && P->res->ok;
}

/* A prediction whose logits are all finite: only then do bars, the entropy
 * and the top token mean anything (a softmax of NaN picks one at random). */
static int have_finite(const ui_predict *P)
{
    return have(P) && !P->res->p.n_nonfinite;
}

static void adopt(ui *u, ui_pred_result *r)
{
    ui_predict *P = u->pred;
    ui_pred_result_free(P->res);
    P->res = r;
    P->set = r->set;
    if (!r->ok)
        return;
    if (P->V != r->V || !P->baseline) {
        free(P->baseline);
        P->baseline = calloc((size_t)r->V, sizeof(float));
        P->V = P->baseline ? r->V : 0;
        P->base_text[0] = '\0';
    }
    if (!P->baseline)
        return;
    /* the baseline: `baseline`'s for this prompt, else the prompt's first bars */
    if (r->session_baseline) {
        memcpy(P->baseline, r->session_baseline, sizeof(float) * (size_t)r->V);
        snprintf(P->base_text, sizeof P->base_text, "%s", r->text);
        P->base_from_session = 1;
    } else if (strcmp(P->base_text, r->text)) {
        memcpy(P->baseline, r->p.probs, sizeof(float) * (size_t)r->V);
        snprintf(P->base_text, sizeof P->base_text, "%s", r->text);
        P->base_from_session = 0;
    }
}

void ui_predict_poll(ui *u)
{
    ui_predict *P = u->pred;
    int blank_text = blank(P->text);
    if (!P->requested || strcmp(P->text, P->req_text) || P->req_version != u->params_version) {
        snprintf(P->req_text, sizeof P->req_text, "%s", P->text);
        P->req_version = u->params_version;
        P->requested = 1;
        if (!blank_text)
            ui_predictor_request(P->thread, P->text, u->params_version);
        ui_dirty(u, UI_PANE_PREDICT);
    }
    ui_pred_result *r = ui_predictor_take(P->thread);
    if (r) {
        adopt(u, r);
        ui_dirty(u, UI_PANE_PREDICT);
    }
    if (blank_text && P->res) {
        ui_pred_result_free(P->res);
        P->res = NULL;
        ui_dirty(u, UI_PANE_PREDICT);
    }
    int behind = !blank_text && (!P->res || strcmp(P->res->text, P->text) || P->res->version != u->params_version);
    if (!behind)
        P->behind_since = 0;
    else if (!P->behind_since)
        P->behind_since = ui_now();
    else if (ui_now() - P->behind_since > STALE_AFTER)
        ui_dirty(u, UI_PANE_PREDICT);
}

static int stale(const ui_predict *P)
{
    return P->behind_since && ui_now() - P->behind_since > STALE_AFTER && P->res;
}

const char *ui_predict_top_token(ui *u)
{
    ui_predict *P = u->pred;
    return have_finite(P) ? P->res->names[0] : NULL;
}

const char *ui_predict_text(ui *u)
{
    return u->pred->text;
}

/* ---- the prompt field ---- */

static void insert(ui_predict *P, const char *bytes, int n)
{
    if (P->len + n >= TEXT_MAX)
        return;
    memmove(P->text + P->cur + n, P->text + P->cur, (size_t)(P->len - P->cur + 1));
    memcpy(P->text + P->cur, bytes, (size_t)n);
    P->len += n;
    P->cur += n;
}

static int prev_char(const ui_predict *P, int i)
{
    if (i <= 0)
        return 0;
    i--;
    while (i > 0 && (P->text[i] & 0xc0) == 0x80)
        i--;
    return i;
}

static int next_char(const ui_predict *P, int i)
{
    if (i >= P->len)
        return P->len;
    i++;
    while (i < P->len && (P->text[i] & 0xc0) == 0x80)
        i++;
    return i;
}

static void erase_text(ui_predict *P, int from, int to)
{
    if (to <= from)
        return;
    memmove(P->text + from, P->text + to, (size_t)(P->len - to + 1));
    P->len -= to - from;
    P->cur = from;
}

/* Appends a token as the tokenizer writes it after the text. */
static void append_piece(ui *u, const char *piece)
{
    ui_predict *P = u->pred;
    if (!have(P) || !piece)
        return;
    if (strcmp(P->res->text, P->text)) {
        ui_note(u, "the bars are still for an older prompt: a moment");
        return;
    }
    P->cur = P->len;
    if (P->res->words && P->len && P->text[P->len - 1] != ' ' && !strchr(",.!?;:')", piece[0]))
        insert(P, " ", 1);
    insert(P, piece, (int)strlen(piece));
}

/* ---- drawing ---- */

static void draw_field(ui *u, ui_pane *p, int y)
{
    ui_predict *P = u->pred;
    attr_t ap = ui_attr(&u->theme, UI_PROMPT);
    int x = 1 + ui_put(p->win, y, 1, u->utf8 ? "prompt \u203a " : "prompt> ", p->w, ap);
    int room = p->w - x - 2;
    char *before = strndup(P->text, (size_t)P->cur);
    int cw = before ? ui_strwidth(before) : 0;
    free(before);
    if (cw - P->scroll > room)
        P->scroll = cw - room;
    if (cw < P->scroll)
        P->scroll = cw;
    const char *s = P->text;
    int skip = P->scroll;
    while (skip > 0 && *s) {
        char one[8] = {0};
        int n = 1;
        while ((s[n] & 0xc0) == 0x80)
            n++;
        memcpy(one, s, (size_t)n);
        skip -= ui_strwidth(one);
        s += n;
    }
    ui_put(p->win, y, x, s, room + 1, ui_attr(&u->theme, UI_VALUE));
    if (!P->len)
        ui_put(p->win, y, x, "type here, e.g. The sky is", room, ui_attr(&u->theme, UI_LABEL));
    if (u->focus == UI_PANE_PREDICT) {
        u->cursor_on = 1;
        u->cursor_y = p->y + y;
        u->cursor_x = p->x + x + cw - P->scroll;
    }
}

static void draw_tokens(ui *u, ui_pane *p, int y)
{
    ui_predict *P = u->pred;
    int x = 1 + ui_put(p->win, y, 1, "tokens ", p->w, ui_attr(&u->theme, UI_LABEL));
    const ps_tokens *t = &P->res->p.tokens;
    for (int i = 0; i < t->n && x < p->w - 2; i++) {
        char piece[300], esc[280];
        ps_escape(t->pieces[i], strlen(t->pieces[i]), 0, esc, sizeof esc);
        snprintf(piece, sizeof piece, t->unknown[i] ? "[%s]?" : "%s", esc);
        attr_t a = ui_attr(&u->theme, t->unknown[i] ? UI_TOKEN_UNKNOWN : UI_TOKEN);
        if (i < P->res->p.first)
            a = ui_attr(&u->theme, UI_BAR_CUT);     /* beyond the context */
        x += ui_put(p->win, y, x, piece, p->w - 2 - x, a);
        x += ui_put(p->win, y, x, " ", 1, 0);
    }
    if (t->n_unknown && x < p->w - 12)
        ui_putf(p->win, y, x, p->w - 1 - x, ui_attr(&u->theme, UI_LABEL), "(%d unknown: <unk>)", t->n_unknown);
}

/* The settings and the entropy: one row, or two when narrow.  Returns the
 * rows used. */
static int draw_settings(ui *u, ui_pane *p, int y)
{
    ui_predict *P = u->pred;
    char b[256];
    char tk[16], tp[16];
    snprintf(tk, sizeof tk, P->set.top_k ? "%d" : "off", P->set.top_k);
    snprintf(tp, sizeof tp, P->set.top_p < 1 ? "%g" : "off", (double)P->set.top_p);
    snprintf(b, sizeof b, "temp %.2g%s  top-k %s  top-p %s  %d bars", (double)P->set.temperature,
             P->set.temperature == 0 ? " (greedy)" : "", tk, tp, P->set.top);
    if (ui_strwidth(b) > p->w - 2)
        snprintf(b, sizeof b, "temp %.2g%s  k %s  p %s  %d bars", (double)P->set.temperature,
                 P->set.temperature == 0 ? " (greedy)" : "", tk, tp, P->set.top);
    int x = 1 + ui_put(p->win, y, 1, b, p->w - 2, ui_attr(&u->theme, UI_VALUE));
    if (!have_finite(P))
        return 1;
    int rows = x + 22 < p->w ? 1 : 2;
    if (rows == 2)
        x = -1;
    ui_putf(p->win, y + rows - 1, x + 2, p->w - x - 3, ui_attr(&u->theme, UI_LABEL), "entropy %.2f nats",
            P->res->p.entropy);
    return rows;
}

/* Whether rank i of the bars can be sampled under top-k and top-p. */
static int sampled(const ui_predict *P, int i, double kmass, double *cum)
{
    int in = !(P->set.top_k > 0 && i >= P->set.top_k);
    if (in && P->set.top_p < 1 && kmass > 0 && *cum / kmass >= P->set.top_p)
        in = 0;
    *cum += P->res->p.top_prob[i];
    return in;
}

static void draw_bars(ui *u, ui_pane *p, int y0)
{
    ui_predict *P = u->pred;
    const ps_prediction *pr = &P->res->p;
    int rows = p->h - y0;
    int bar_h = 1, pitch = 1;
    int n = pr->k;
    if (u->projector) {
        /* tall bars with a gap between them, as many as fit (at most 6) */
        pitch = rows / (n < 6 ? n : 6);
        pitch = pitch > 4 ? 4 : pitch < 1 ? 1 : pitch;
        bar_h = pitch > 1 ? pitch - 1 : 1;
        if (n > rows / pitch)
            n = rows / pitch;
    } else if (n > rows) {
        n = rows;
    }
    int wtok = 4;
    double kmass = 0;
    if (P->set.top_k > 0) {
        int *idx = malloc(sizeof(int) * (size_t)P->set.top_k);
        int m = idx ? ps_topk(pr->probs, P->V, P->set.top_k, idx, NULL) : 0;
        for (int i = 0; i < m; i++)
            kmass += pr->probs[idx[i]];
        free(idx);
    } else {
        kmass = 1;
    }
    double cum = 0;
    /* bars are absolute: full width is probability 1, so that a bar that
     * shrinks from 95% to 60% is seen to */
    const float *base = P->baseline && P->V == P->res->V ? P->baseline : pr->probs;
    char **tokens = P->res->names;
    for (int i = 0; i < n; i++) {
        char esc[256];
        ps_escape(tokens[i], strlen(tokens[i]), 0, esc, sizeof esc);
        int w = ui_strwidth(esc);
        wtok = w > wtok ? w : wtok;
    }
    int wmax = u->projector ? 24 : 16;
    wtok = wtok > wmax ? wmax : wtok;
    int barw = p->w - 1 - wtok - 1 - 8 - 7 - 1;
    if (barw < 4)
        barw = 4;
    for (int i = 0; i < n; i++) {
        int y = y0 + i * pitch;
        double pb = 100.0 * pr->top_prob[i];
        double d = 100.0 * (pr->top_prob[i] - base[pr->top[i]]);
        int in = sampled(P, i, kmass, &cum);
        ui_elem e = d >= 0.005 ? UI_BAR_UP : d <= -0.005 ? UI_BAR_DOWN : UI_BAR;
        if (!in)
            e = UI_BAR_CUT;
        attr_t at = ui_attr(&u->theme, in ? UI_TOKEN : UI_BAR_CUT);
        char tok[256];          /* control bytes escaped: they would move the cursor */
        ps_escape(tokens[i], strlen(tokens[i]), 0, tok, sizeof tok);
        int tw = ui_strwidth(tok);
        ui_put(p->win, y + (bar_h - 1) / 2, 1 + (wtok > tw ? wtok - tw : 0), tok, wtok, at);
        char bar[1024] = "";
        ps_render_bar(bar, sizeof bar, pr->top_prob[i], barw, u->utf8);
        for (int r = 0; r < bar_h; r++)
            ui_put(p->win, y + r, 2 + wtok, bar, barw, ui_attr(&u->theme, e));
        /* the baseline's length, as a tick, when it moved */
        double bf = base[pr->top[i]];
        int tick = (int)(bf * barw + 0.5);
        if ((d >= 0.005 || d <= -0.005) && tick >= 0 && tick < barw)
            ui_put(p->win, y + (bar_h - 1) / 2, 2 + wtok + tick, u->utf8 ? "\u2502" : "|", 1,
                   ui_attr(&u->theme, UI_LABEL));
        char pct[32], dl[32];
        snprintf(pct, sizeof pct, "%6.2f%%", pb);
        if (d >= 0.005 || d <= -0.005)
            snprintf(dl, sizeof dl, "%+6.2f", d);
        else
            snprintf(dl, sizeof dl, "%6s", "=");
        int xp = 2 + wtok + barw + 1;
        ui_put(p->win, y + (bar_h - 1) / 2, xp, pct, 8, ui_attr(&u->theme, UI_VALUE));
        ui_put(p->win, y + (bar_h - 1) / 2, xp + 8, dl, 7, ui_attr(&u->theme, e == UI_BAR_CUT ? UI_LABEL : e));
    }
}

static void draw(ui *u, ui_pane *p)
{
    ui_predict *P = u->pred;
    werase(p->win);
    char extra[96] = "";
    int old = stale(P);
    if (old)
        snprintf(extra, sizeof extra, "%s", u->utf8 ? "\u231b older bars: busy" : "older bars: busy");
    else if (have(P) && P->base_text[0] && !strcmp(P->base_text, P->text))
        snprintf(extra, sizeof extra, "+/- since %s", P->base_from_session ? "baseline" : "typed");
    ui_title_row(u, p, extra);
    if (old)
        ui_put(p->win, 0, p->w - ui_strwidth(extra) - 2, extra, p->w, ui_attr(&u->theme, UI_STALE));
    draw_field(u, p, 1);
    if (p->h < 5)
        return;
    if (have(P))
        draw_tokens(u, p, 2);
    int rows = draw_settings(u, p, 3);
    if (P->res && !P->res->ok && !blank(P->text)) {
        ui_put(p->win, 5, 1, P->res->err.msg, p->w - 2, ui_attr(&u->theme, UI_WARN));
    } else if (!have(P)) {
        static const char *const intro[] = {"Type a prompt. The bars show which", "token the model expects next, and",
                                            "they change as you type.", "F1 lists every key."};
        for (int i = 0; i < 4; i++)
            ui_put(p->win, 5 + i, 1, intro[i], p->w - 2, ui_attr(&u->theme, UI_LABEL));
    } else if (P->res->p.n_nonfinite) {
        /* said in full, wrapped at spaces: where it happened is the point */
        char msg[320] = "no prediction: ";
        size_t at = strlen(msg);
        ps_prediction_nonfinite_msg(&P->res->p, msg + at, sizeof msg - at);
        int w = p->w - 2 > 8 ? p->w - 2 : 8, y = 5;
        for (const char *c = msg; *c && y < p->h - 1; y++) {
            int n = (int)strlen(c);
            if (n > w) {
                n = w;
                while (n > 1 && c[n] != ' ')
                    n--;
                if (n <= 1)
                    n = w;
            }
            char row[320];
            snprintf(row, sizeof row, "%.*s", n, c);
            ui_put(p->win, y, 1, row, w, ui_attr(&u->theme, UI_WARN));
            c += n;
            while (*c == ' ')
                c++;
        }
    } else {
        draw_bars(u, p, 3 + rows);
    }
}

/* ---- keys ---- */

static void run_set(ui *u, const char *name, const char *value)
{
    ui_run(u, "set %s %s", name, value);
}

static int on_key(ui *u, ui_pane *p, ui_key k)
{
    ui_predict *P = u->pred;
    ui_action act = ui_key_action(UI_SCOPE_PREDICT, k);
    char v[32];
    switch (act) {
    case UI_ACT_APPEND_TOP:
        if (have_finite(P))
            append_piece(u, P->res->top_piece);
        return UI_HANDLED | UI_REDRAW;
    case UI_ACT_APPEND_SAMPLE:
        if (have_finite(P))
            append_piece(u, P->res->sample_piece);
        return UI_HANDLED | UI_REDRAW;
    case UI_ACT_TEMP_UP:
    case UI_ACT_TEMP_DOWN: {
        float t = P->set.temperature;
        int i = act == UI_ACT_TEMP_UP ? 0 : COUNT(temps) - 1;
        if (act == UI_ACT_TEMP_UP) {
            while (i < COUNT(temps) - 1 && temps[i] <= t + 1e-6f)
                i++;
        } else {
            while (i > 0 && temps[i] >= t - 1e-6f)
                i--;
        }
        P->set.temperature = temps[i];
        snprintf(v, sizeof v, "%g", (double)temps[i]);
        run_set(u, "temperature", v);
        return UI_HANDLED | UI_REDRAW;
    }
    case UI_ACT_TOPK: {
        int i = 0;
        while (i < COUNT(topks) && topks[i] != P->set.top_k)
            i++;
        P->set.top_k = topks[(i + 1) % COUNT(topks)];
        snprintf(v, sizeof v, "%d", P->set.top_k);
        run_set(u, "top-k", v);
        return UI_HANDLED | UI_REDRAW;
    }
    case UI_ACT_TOPP: {
        int i = 0;
        while (i < COUNT(topps) && fabsf(topps[i] - P->set.top_p) > 1e-6f)
            i++;
        P->set.top_p = topps[(i + 1) % COUNT(topps)];
        snprintf(v, sizeof v, "%g", (double)P->set.top_p);
        run_set(u, "top-p", v);
        return UI_HANDLED | UI_REDRAW;
    }
    case UI_ACT_BARS: {
        int i = 0;
        while (i < COUNT(bar_counts) && bar_counts[i] != P->set.top)
            i++;
        P->set.top = bar_counts[(i + 1) % COUNT(bar_counts)];
        snprintf(v, sizeof v, "%d", P->set.top);
        run_set(u, "top", v);
        return UI_HANDLED | UI_REDRAW;
    }
    case UI_ACT_BASELINE:
        if (have(P) && P->baseline && P->V == P->res->V) {
            memcpy(P->baseline, P->res->p.probs, sizeof(float) * (size_t)P->V);
            snprintf(P->base_text, sizeof P->base_text, "%s", P->text);
            P->base_from_session = 0;
            ui_note(u, "baseline: the bars as they are now");
        }
        return UI_HANDLED | UI_REDRAW;
    case UI_ACT_COMMAND:
        ui_focus(u, UI_PANE_CMD);
        return UI_HANDLED | UI_REDRAW;
    case UI_ACT_CLEAR:
        P->text[0] = '\0';
        P->len = P->cur = 0;
        return UI_HANDLED | UI_REDRAW;
    default:
        break;
    }
    if (k.fkey) {
        switch (k.code) {
        case KEY_LEFT: P->cur = prev_char(P, P->cur); break;
        case KEY_RIGHT: P->cur = next_char(P, P->cur); break;
        case KEY_HOME: P->cur = 0; break;
        case KEY_END: P->cur = P->len; break;
        case KEY_BACKSPACE: erase_text(P, prev_char(P, P->cur), P->cur); break;
        case KEY_DC: erase_text(P, P->cur, next_char(P, P->cur)); break;
        default: return 0;
        }
        return UI_HANDLED | UI_REDRAW;
    }
    int c = k.code;
    if (c == 127 || c == 8) {
        erase_text(P, prev_char(P, P->cur), P->cur);
    } else if (c == 1) {                 /* ^A */
        P->cur = 0;
    } else if (c == 5) {                 /* ^E */
        P->cur = P->len;
    } else if (c == 23) {                /* ^W: the word before the cursor */
        int i = P->cur;
        while (i > 0 && P->text[i - 1] == ' ')
            i--;
        while (i > 0 && P->text[i - 1] != ' ')
            i--;
        erase_text(P, i, P->cur);
    } else if (c >= 32 && c != 127) {
        char b[4];
        int n;
        if (c < 0x80) {
            b[0] = (char)c;
            n = 1;
        } else if (c < 0x800) {
            b[0] = (char)(0xc0 | (c >> 6));
            b[1] = (char)(0x80 | (c & 0x3f));
            n = 2;
        } else if (c < 0x10000) {
            b[0] = (char)(0xe0 | (c >> 12));
            b[1] = (char)(0x80 | ((c >> 6) & 0x3f));
            b[2] = (char)(0x80 | (c & 0x3f));
            n = 3;
        } else {
            b[0] = (char)(0xf0 | (c >> 18));
            b[1] = (char)(0x80 | ((c >> 12) & 0x3f));
            b[2] = (char)(0x80 | ((c >> 6) & 0x3f));
            b[3] = (char)(0x80 | (c & 0x3f));
            n = 4;
        }
        insert(P, b, n);
    } else {
        return 0;
    }
    return UI_HANDLED | UI_REDRAW;
}

int ui_predict_init(ui *u, ui_pane *p)
{
    ui_predict *P = calloc(1, sizeof *P);
    if (!P)
        return -1;
    u->pred = P;
    p->title = "Predict";
    p->draw = draw;
    p->on_key = on_key;
    p->text_entry = 1;
    P->set = u->s->set;
    if (u->s->prompt) {
        snprintf(P->text, sizeof P->text, "%s", u->s->prompt);
        P->len = P->cur = (int)strlen(P->text);
    }
    ps_error err = {0};
    if (ui_predictor_start(&P->thread, u->w, u->s, &err))
        return -1;
    return 0;
}

void ui_predict_free(ui *u)
{
    ui_predict *P = u->pred;
    if (!P)
        return;
    ui_predictor_stop(P->thread);
    ui_pred_result_free(P->res);
    free(P->baseline);
    free(P);
    u->pred = NULL;
}
