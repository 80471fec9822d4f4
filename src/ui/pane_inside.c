/* The Inside pane: what the parameters do on the prompt being typed.  The
 * attention pattern of one head with the tokens on both axes, the logit lens
 * (what each stage would predict, and where the final answer rises) and the
 * largest parts of the answer's direct logit attribution.  Left and right
 * move between heads, up and down between blocks, `a` ablates the head shown
 * (through the journal: u undoes it).
 *
 * A prediction thread of its own computes it (predictor.h, inside mode), so
 * that a GPT-2-sized forward never holds up typing; the pane asks again
 * whenever the prompt, the weights or the head change. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "paramscope/error.h"
#include "repl/inside.h"
#include "ui/predictor.h"
#include "ui/ui.h"

#define TEXT_MAX 2048

typedef struct ui_inside {
    ui_predictor *thread;
    int layer, head;          /* the head shown */
    char req_text[TEXT_MAX];  /* what was asked last */
    uint64_t req_version;
    int req_layer, req_head, requested;
    ui_pred_result *res;      /* what is shown, or NULL */
} ui_inside;

static int blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t')
            return 0;
    return 1;
}

void ui_inside_poll(ui *u)
{
    ui_inside *I = u->inside;
    if (!u->panes[UI_PANE_INSIDE].win)
        return;               /* nothing is computed while it is hidden */
    const char *text = ui_predict_text(u);
    if (!I->requested || strcmp(text, I->req_text) || I->req_version != u->params_version ||
        I->req_layer != I->layer || I->req_head != I->head) {
        snprintf(I->req_text, sizeof I->req_text, "%s", text);
        I->req_version = u->params_version;
        I->req_layer = I->layer;
        I->req_head = I->head;
        I->requested = 1;
        if (!blank(text))
            ui_predictor_request_inside(I->thread, text, u->params_version, I->layer, I->head);
        ui_dirty(u, UI_PANE_INSIDE);
    }
    ui_pred_result *r = ui_predictor_take(I->thread);
    if (r) {
        ui_pred_result_free(I->res);
        I->res = r;
        ui_dirty(u, UI_PANE_INSIDE);
    }
    if (blank(text) && I->res) {
        ui_pred_result_free(I->res);
        I->res = NULL;
        ui_dirty(u, UI_PANE_INSIDE);
    }
}

/* ---- drawing ---- */

static const char *label(const char *t, char *buf, size_t size)
{
    ps_escape(t, strlen(t), 0, buf, size);
    return buf;
}

/* Up to `cells` display cells of s, padded: the column labels. */
static void put_cut(WINDOW *w, int y, int x, const char *s, int cells, attr_t a)
{
    ui_put(w, y, x, s, cells, a);
}

static int draw_attention(ui *u, ui_pane *p, const ui_inside_result *in, int y, int max_rows)
{
    attr_t al = ui_attr(&u->theme, UI_LABEL), av = ui_attr(&u->theme, UI_VALUE);
    attr_t ah = ui_attr(&u->theme, UI_HEAT_POS), at = ui_attr(&u->theme, UI_TOKEN);
    int T = in->T, lw = 0;
    char b[256];
    for (int t = 0; t < T; t++) {
        int w = ui_strwidth(label(in->tokens[t], b, sizeof b));
        lw = w > lw ? w : lw;
    }
    lw = lw < 4 ? 4 : lw > 12 ? 12 : lw;
    int room = p->w - 3 - lw;
    int cw = room >= 5 * T ? 5 : room >= 3 * T ? 3 : 2;
    int shown = room / cw < T ? room / cw : T;   /* the last columns when it does not fit */
    int k0 = T - shown, q0 = T > max_rows - 2 ? T - (max_rows - 2) : 0;
    ui_putf(p->win, y++, 1, p->w - 2, al, "head %d.%d: row = the token that looks, column = where%s", in->layer,
            in->head, k0 || q0 ? " (the last tokens)" : "");
    for (int k = k0; k < T; k++)
        put_cut(p->win, y, 2 + lw + (k - k0) * cw, label(in->tokens[k], b, sizeof b), cw - 1, at);
    y++;
    for (int q = q0; q < T; q++) {
        ui_put(p->win, y, 1, label(in->tokens[q], b, sizeof b), lw, at);
        for (int k = k0; k < T; k++) {
            int x = 2 + lw + (k - k0) * cw;
            float a = in->att[q * T + k];
            if (k > q) {
                ui_put(p->win, y, x, u->utf8 ? "\u00b7" : ".", 1, al);
            } else if (cw >= 5) {
                ui_putf(p->win, y, x, cw, a >= 0.5f ? av | A_BOLD : a >= 0.1f ? av : al, "%4.2f", (double)a);
            } else {
                for (int c = 0; c < cw - 1; c++)
                    ui_put(p->win, y, x + c, inside_shade(a, u->utf8), 1, ah);
            }
        }
        y++;
    }
    return y;
}

static int draw_lens(ui *u, ui_pane *p, const ui_inside_result *in, int y, int max_rows)
{
    attr_t al = ui_attr(&u->theme, UI_LABEL), av = ui_attr(&u->theme, UI_VALUE), at = ui_attr(&u->theme, UI_TOKEN);
    char b[256], ans[64];
    ps_escape(in->answer, strlen(in->answer), 0, ans, sizeof ans);
    ui_putf(p->win, y++, 1, p->w - 2, al, "logit lens: what each stage would predict (%s at the end)", ans);
    int s0 = in->S > max_rows - 1 ? in->S - (max_rows - 1) : 0;
    for (int st = s0; st < in->S; st++) {
        char stage[32];
        if (st == 0)
            snprintf(stage, sizeof stage, "embeddings");
        else
            snprintf(stage, sizeof stage, "block %d", st - 1);
        ui_put(p->win, y, 1, stage, 11, al);
        int x = 13;
        x += ui_put(p->win, y, x, label(in->lens_top[st], b, sizeof b), 14, at);
        ui_putf(p->win, y, 28, 8, av, "%5.1f%%", 100.0 * in->lens_prob[st]);
        if (p->w > 50)
            ui_putf(p->win, y, 36, p->w - 37, al, "%s %5.1f%%", ans, 100.0 * in->lens_answer[st]);
        y++;
    }
    return y;
}

static int draw_parts(ui *u, ui_pane *p, const ui_inside_result *in, int y, int max_rows)
{
    attr_t al = ui_attr(&u->theme, UI_LABEL), av = ui_attr(&u->theme, UI_VALUE);
    attr_t up = ui_attr(&u->theme, UI_BAR_UP), down = ui_attr(&u->theme, UI_BAR_DOWN);
    ui_putf(p->win, y++, 1, p->w - 2, al, "what adds to the logit %.2f, largest first:", in->logit);
    double top = in->n_parts && in->part_value[0] != 0 ? fabs(in->part_value[0]) : 1;
    int barw = p->w - 33 > 4 ? (p->w - 33 < 30 ? p->w - 33 : 30) : 0;
    for (int i = 0; i < in->n_parts && i < max_rows - 1; i++) {
        double v = in->part_value[i];
        ui_put(p->win, y, 1, in->part_name[i], 18, al);
        ui_putf(p->win, y, 20, 10, av, "%+8.2f", v);
        char bar[256] = "";
        if (barw)
            ps_render_bar(bar, sizeof bar, fabs(v) / top, barw, u->utf8);
        ui_put(p->win, y, 30, bar, barw, v >= 0 ? up : down);
        y++;
    }
    return y;
}

static void draw(ui *u, ui_pane *p)
{
    ui_inside *I = u->inside;
    werase(p->win);
    char extra[96];
    snprintf(extra, sizeof extra, "head %d.%d  %s head  %s block  a ablate", I->layer, I->head,
             u->utf8 ? "\u2190\u2192" : "<>", u->utf8 ? "\u2191\u2193" : "^v");
    ui_title_row(u, p, extra);
    const ui_pred_result *r = I->res;
    attr_t al = ui_attr(&u->theme, UI_LABEL);
    if (!r) {
        ui_put(p->win, 2, 2, blank(ui_predict_text(u)) ? "Type a prompt (F4) to look inside." : "computing...",
               p->w - 4, al);
        return;
    }
    if (!r->ok) {
        ui_put(p->win, 2, 2, r->err.msg, p->w - 4, ui_attr(&u->theme, UI_WARN));
        return;
    }
    const ui_inside_result *in = r->inside;
    int stale = strcmp(r->text, ui_predict_text(u)) || r->version != u->params_version || in->layer != I->layer ||
                in->head != I->head;
    if (stale)
        ui_put(p->win, 0, p->w - 10, " stale ", 8, ui_attr(&u->theme, UI_STALE));
    /* share the rows: the pattern first, then the lens and the parts */
    int rows = p->h - 1, y = 1;
    int att_rows = in->T + 2, lens_rows = in->S + 1, part_rows = in->n_parts + 1;
    if (att_rows + lens_rows + part_rows + 2 > rows) {
        int left = rows - 2;
        att_rows = att_rows < left / 2 ? att_rows : left / 2;
        lens_rows = lens_rows < (left - att_rows) / 2 ? lens_rows : (left - att_rows) / 2;
        part_rows = left - att_rows - lens_rows;
    }
    y = draw_attention(u, p, in, y, att_rows) + 1;
    y = draw_lens(u, p, in, y, lens_rows) + 1;
    if (y < p->h)
        draw_parts(u, p, in, y, p->h - y);
}

/* ---- keys ---- */

static int on_key(ui *u, ui_pane *p, ui_key k)
{
    ui_inside *I = u->inside;
    int L = u->cfg.n_layer, NH = u->cfg.n_head;
    switch (ui_key_action(UI_SCOPE_INSIDE, k)) {
    case UI_ACT_LEFT: I->head = (I->head + NH - 1) % NH; break;
    case UI_ACT_RIGHT: I->head = (I->head + 1) % NH; break;
    case UI_ACT_UP: I->layer = (I->layer + L - 1) % L; break;
    case UI_ACT_DOWN: I->layer = (I->layer + 1) % L; break;
    case UI_ACT_ABLATE: ui_run(u, "ablate head %d.%d", I->layer, I->head); break;
    default: return 0;
    }
    ui_dirty(u, UI_PANE_INSIDE);
    return UI_HANDLED | UI_REDRAW;
}

/* ---- life ---- */

void ui_inside_model_changed(ui *u)
{
    ui_inside *I = u->inside;
    if (I->layer >= u->cfg.n_layer || I->head >= u->cfg.n_head)
        I->layer = I->head = 0;
    I->requested = 0;
}

int ui_inside_init(ui *u, ui_pane *p)
{
    ui_inside *I = calloc(1, sizeof *I);
    if (!I)
        return -1;
    u->inside = I;
    ps_error err;
    if (ui_predictor_start(&I->thread, u->w, u->s, &err))
        return -1;
    p->title = "Inside";
    p->draw = draw;
    p->on_key = on_key;
    return 0;
}

void ui_inside_free(ui *u)
{
    ui_inside *I = u->inside;
    if (!I)
        return;
    ui_predictor_stop(I->thread);
    ui_pred_result_free(I->res);
    free(I);
    u->inside = NULL;
}
