/* The training dashboard: the four phases with the one running (or next)
 * highlighted, the losses as curves (braille, or characters without UTF-8)
 * with labelled axes, the learning-rate schedule with the current step
 * marked, and the speed.  Everything comes from the worker's snapshot, which
 * moves even while a long phase holds the session. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paramscope/optim.h"
#include "ui/ui.h"

typedef struct ui_train {
    ui_canvas train, val, lr;
} ui_train;

#define AXIS_W 8

/* ---- curves ---- */

typedef struct range { double lo, hi; long s0, s1; } range;

static range data_range(ui *u)
{
    range r = {INFINITY, -INFINITY, 0, 1};
    const ps_point *sets[2] = {u->hist_train, u->hist_val};
    size_t ns[2] = {u->n_hist_train, u->n_hist_val};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < ns[k]; i++) {
            double v = sets[k][i].value;
            if (!isfinite(v))
                continue;
            r.lo = v < r.lo ? v : r.lo;
            r.hi = v > r.hi ? v : r.hi;
            if (sets[k][i].step > r.s1)
                r.s1 = sets[k][i].step;
        }
    if (u->n_hist_train)
        r.s0 = u->hist_train[0].step < r.s0 ? u->hist_train[0].step : r.s0;
    if (!(r.hi >= r.lo)) {
        r.lo = 0;
        r.hi = 1;
    }
    if (r.hi - r.lo < 1e-6) {
        r.lo -= 0.5;
        r.hi += 0.5;
    }
    double pad = (r.hi - r.lo) * 0.05;
    r.lo -= pad;
    r.hi += pad;
    if (r.s1 <= r.s0)
        r.s1 = r.s0 + 1;
    return r;
}

/* Plots points on c: one dot column per x, the mean of the points in it,
 * joined by lines. */
static void plot(ui_canvas *c, const ps_point *pts, size_t n, const range *r, int join)
{
    ui_canvas_clear(c);
    int px = -1, py = -1;
    int dw = c->dw, dh = c->dh;
    size_t i = 0;
    while (i < n) {
        int x = (int)((double)(pts[i].step - r->s0) / (double)(r->s1 - r->s0) * (dw - 1) + 0.5);
        double sum = 0;
        int cnt = 0;
        while (i < n) {
            int xi = (int)((double)(pts[i].step - r->s0) / (double)(r->s1 - r->s0) * (dw - 1) + 0.5);
            if (xi != x)
                break;
            if (isfinite(pts[i].value)) {
                sum += pts[i].value;
                cnt++;
            }
            i++;
        }
        if (!cnt)
            continue;
        double v = sum / cnt;
        int y = (int)((r->hi - v) / (r->hi - r->lo) * (dh - 1) + 0.5);
        if (join && px >= 0)
            ui_canvas_line(c, px, py, x, y);
        else
            ui_canvas_dot(c, x, y);
        px = x;
        py = y;
    }
}

static void draw_loss(ui *u, ui_pane *p, int y, int h)
{
    ui_train *T = u->train;
    int w = p->w - AXIS_W - 2;
    if (h < 2 || w < 8)
        return;
    attr_t al = ui_attr(&u->theme, UI_LABEL);
    range r = data_range(u);
    if (T->train.w != w || T->train.h != h - 1 || T->train.utf8 != u->utf8) {
        ui_canvas_free(&T->train);
        ui_canvas_free(&T->val);
        ui_canvas_init(&T->train, w, h - 1, u->utf8);
        ui_canvas_init(&T->val, w, h - 1, u->utf8);
    }
    if (!T->train.cells || !T->val.cells)
        return;
    /* the y axis */
    char b[32];
    for (int i = 0; i < h - 1; i++)
        ui_put(p->win, y + i, AXIS_W, u->utf8 ? "\u2502" : "|", 1, al);
    if (u->n_hist_train) {
        ui_put(p->win, y, 0, ui_fmt_width(r.hi, AXIS_W - 1, b, sizeof b), AXIS_W - 1, al);
        ui_put(p->win, y + h - 2, 0, ui_fmt_width(r.lo, AXIS_W - 1, b, sizeof b), AXIS_W - 1, al);
    }
    if (h >= 6)
        ui_put(p->win, y + (h - 1) / 2, 0, "loss", AXIS_W - 1, al);
    if (!u->n_hist_train) {
        ui_put(p->win, y + (h - 1) / 2, AXIS_W + 2, "no steps yet: s steps, t ten, r runs", w, al);
    } else {
        plot(&T->train, u->hist_train, u->n_hist_train, &r, 1);
        plot(&T->val, u->hist_val, u->n_hist_val, &r, 0);
        ui_canvas_draw(&T->train, p->win, y, AXIS_W + 1, ui_attr(&u->theme, UI_PLOT_TRAIN), "*");
        /* validation points as marks of their own, so they read without colour */
        for (size_t i = 0; i < u->n_hist_val; i++) {
            int x = (int)((double)(u->hist_val[i].step - r.s0) / (double)(r.s1 - r.s0) * (w - 1) + 0.5);
            int yy = (int)((r.hi - u->hist_val[i].value) / (r.hi - r.lo) * (h - 2) + 0.5);
            ui_put(p->win, y + yy, AXIS_W + 1 + x, u->utf8 ? "\u00d7" : "x", 1, ui_attr(&u->theme, UI_PLOT_VAL));
        }
    }
    /* the x axis */
    int yx = y + h - 1;
    if (!u->n_hist_train)
        return;
    char left[32], right[96];
    snprintf(left, sizeof left, "step %ld", r.s0);
    snprintf(right, sizeof right, "%ld  (%zu point%s", r.s1, u->n_hist_train, u->n_hist_train == 1 ? "" : "s");
    size_t o = strlen(right);
    if (u->n_hist_val)
        snprintf(right + o, sizeof right - o, ", %zu validation)", u->n_hist_val);
    else
        snprintf(right + o, sizeof right - o, ")");
    ui_put(p->win, yx, AXIS_W + 1, left, w, al);
    int rw = ui_strwidth(right);
    ui_put(p->win, yx, p->w - 1 - rw, right, rw, al);
    int lx = AXIS_W + 2 + ui_strwidth(left) + 2;
    if (lx + 24 < p->w - rw) {
        lx += ui_put(p->win, yx, lx, u->utf8 ? "\u2812\u2812 train " : "** train ", 10, ui_attr(&u->theme, UI_PLOT_TRAIN));
        ui_put(p->win, yx, lx, u->utf8 ? "\u00d7 validation" : "x validation", 13, ui_attr(&u->theme, UI_PLOT_VAL));
    }
}

static void draw_lr(ui *u, ui_pane *p, int y, int h)
{
    ui_train *T = u->train;
    int w = p->w - AXIS_W - 2;
    if (h < 1 || w < 8)
        return;
    const ps_schedule *sc = &u->snap.sched;
    long step = u->snap.step;
    long horizon = step * 5 / 4 + 10;
    if ((sc->kind == PS_SCHED_KIND_COSINE) && sc->total > 0 && sc->total * 11 / 10 > horizon)
        horizon = sc->total * 11 / 10;
    if (sc->warmup > 0 && sc->warmup * 4 > horizon)
        horizon = (long)sc->warmup * 4;
    if (sc->kind == PS_SCHED_KIND_STEP && sc->step_size > 0 && (long)sc->step_size * 4 > horizon)
        horizon = (long)sc->step_size * 4;
    if (T->lr.w != w || T->lr.h != h || T->lr.utf8 != u->utf8) {
        ui_canvas_free(&T->lr);
        ui_canvas_init(&T->lr, w, h, u->utf8);
    }
    if (!T->lr.cells)
        return;
    ui_canvas_clear(&T->lr);
    double hi = 0;
    for (int x = 0; x < T->lr.dw; x++) {
        double v = ps_schedule_lr(sc, (long)((double)x / (T->lr.dw - 1) * horizon));
        hi = v > hi ? v : hi;
    }
    if (hi <= 0)
        hi = 1;
    int px = -1, py = -1;
    for (int x = 0; x < T->lr.dw; x++) {
        double v = ps_schedule_lr(sc, (long)((double)x / (T->lr.dw - 1) * horizon));
        int yy = (int)((hi - v) / hi * (T->lr.dh - 1) + 0.5);
        if (px >= 0)
            ui_canvas_line(&T->lr, px, py, x, yy);
        px = x;
        py = yy;
    }
    attr_t al = ui_attr(&u->theme, UI_LABEL);
    char b[32];
    ui_put(p->win, y, 0, ui_fmt_width(hi, AXIS_W - 1, b, sizeof b), AXIS_W - 1, al);
    if (h > 1)
        ui_put(p->win, y + h - 1, 0, "lr", AXIS_W - 1, al);
    for (int i = 0; i < h; i++)
        ui_put(p->win, y + i, AXIS_W, u->utf8 ? "\u2502" : "|", 1, al);
    ui_canvas_draw(&T->lr, p->win, y, AXIS_W + 1, ui_attr(&u->theme, UI_PLOT_LR), "-");
    /* the current step */
    int cx = (int)((double)step / horizon * (w - 1) + 0.5);
    double cur = ps_schedule_lr(sc, step);
    int cy = (int)((hi - cur) / hi * (h - 1) + 0.5);
    if (cx >= 0 && cx < w)
        ui_put(p->win, y + cy, AXIS_W + 1 + cx, u->utf8 ? "\u25cf" : "@", 1, ui_attr(&u->theme, UI_MARK));
    char lbl[64];
    snprintf(lbl, sizeof lbl, " step %ld: lr %s, %s ", step, ui_fmt(cur, b, sizeof b), ps_sched_kind_name(sc->kind));
    int lw = ui_strwidth(lbl);
    ui_put(p->win, y, p->w - 1 - lw, lbl, lw, ui_attr(&u->theme, UI_MARK));
}

/* ---- the pane ---- */

static void draw_phases(ui *u, ui_pane *p, int y)
{
    const ui_train_snap *sn = &u->snap;
    int x = 1;
    for (int ph = 0; ph < PS_PHASE_COUNT; ph++) {
        ui_elem e = UI_PHASE;
        char t[32];
        if (sn->running_phase == ph) {
            e = UI_PHASE_ACTIVE;
            snprintf(t, sizeof t, "%s%s", u->utf8 ? "\u25b6 " : "> ", ps_phase_name((ps_phase)ph));
        } else if (sn->running_phase < 0 && sn->next_phase == ph) {
            e = UI_PHASE_NEXT;
            snprintf(t, sizeof t, "next: %s", ps_phase_name((ps_phase)ph));
        } else {
            snprintf(t, sizeof t, "%s", ps_phase_name((ps_phase)ph));
        }
        x += ui_put(p->win, y, x, t, p->w - x - 1, ui_attr(&u->theme, e));
        if (ph < PS_PHASE_COUNT - 1)
            x += ui_put(p->win, y, x, u->utf8 ? " \u2192 " : " -> ", p->w - x - 1, ui_attr(&u->theme, UI_LABEL));
    }
    char job[64];
    switch (sn->job) {
    case UI_JOB_RUN: snprintf(job, sizeof job, "running (r pauses)"); break;
    case UI_JOB_STEPS: snprintf(job, sizeof job, "%ld step%s to go", sn->steps_left, sn->steps_left == 1 ? "" : "s"); break;
    case UI_JOB_PHASE: snprintf(job, sizeof job, "%ld phase%s to go", sn->steps_left, sn->steps_left == 1 ? "" : "s"); break;
    default:
        /* a phase already under way (or just taken: busy is set with the
         * job, before the phase shows as running) finishes before training
         * stops: say "paused" only once nothing runs */
        snprintf(job, sizeof job, "%s",
                 sn->running_phase >= 0 || sn->busy ? "pausing" : sn->has_trainer ? "paused" : "not started");
        break;
    }
    int jw = ui_strwidth(job);
    if (x + jw + 3 < p->w)
        ui_put(p->win, y, p->w - 1 - jw, job, jw, ui_attr(&u->theme, sn->job == UI_JOB_RUN ? UI_PHASE_ACTIVE : UI_LABEL));
}

static void draw_numbers(ui *u, ui_pane *p, int y)
{
    const ui_train_snap *sn = &u->snap;
    char b1[32], b2[32], line[256];
    if (!sn->has_trainer) {
        snprintf(line, sizeof line, "batch %d x %d tokens, lr %s (%s); `train set` changes them", sn->batch,
                 sn->seq, ui_fmt(sn->sched.lr, b1, sizeof b1), ps_sched_kind_name(sn->sched.kind));
        ui_put(p->win, y, 1, line, p->w - 2, ui_attr(&u->theme, UI_LABEL));
        return;
    }
    snprintf(line, sizeof line, "loss %.4f  |grad| %.3g  lr %s", (double)sn->loss, sn->grad_norm,
             ui_fmt(sn->lr, b2, sizeof b2));
    int x = 1 + ui_put(p->win, y, 1, line, p->w - 2, ui_attr(&u->theme, UI_VALUE));
    if (sn->steps_per_s > 0)
        snprintf(line, sizeof line, "%.3g steps/s  %s tokens/s", sn->steps_per_s,
                 ps_fmt_count((size_t)sn->tokens_per_s, b1, sizeof b1));
    else
        snprintf(line, sizeof line, "batch %dx%d", sn->batch, sn->seq);
    int w = ui_strwidth(line);
    if (x + 2 + w >= p->w && sn->steps_per_s > 0) {
        snprintf(line, sizeof line, "%.3g step/s %s tok/s", sn->steps_per_s,
                 ps_fmt_count((size_t)sn->tokens_per_s, b1, sizeof b1));
        w = ui_strwidth(line);
    }
    if (x + 2 + w < p->w)
        ui_put(p->win, y, p->w - 1 - w, line, w, ui_attr(&u->theme, UI_LABEL));
    else
        ui_put(p->win, y, x + 2, line, p->w - x - 3, ui_attr(&u->theme, UI_LABEL));
}


static void draw(ui *u, ui_pane *p)
{
    werase(p->win);
    char extra[64];
    snprintf(extra, sizeof extra, "step %ld", u->snap.step);
    ui_title_row(u, p, extra);
    draw_phases(u, p, 1);
    draw_numbers(u, p, 2);
    int rest = p->h - 3;
    int lr_h = rest >= 14 ? 4 : rest >= 9 ? 3 : rest >= 6 ? 2 : 0;
    draw_loss(u, p, 3, rest - lr_h - (lr_h ? 1 : 0));
    if (lr_h)
        draw_lr(u, p, p->h - lr_h, lr_h);
}

static int on_key(ui *u, ui_pane *p, ui_key k)
{
    (void)p;
    switch (ui_key_action(UI_SCOPE_TRAIN, k)) {
    case UI_ACT_EVAL:
        ui_run(u, "eval");
        return UI_HANDLED | UI_REDRAW;
    default:
        return 0;    /* p, s, t, r: the global training keys */
    }
}

int ui_train_init(ui *u, ui_pane *p)
{
    ui_train *T = calloc(1, sizeof *T);
    if (!T)
        return -1;
    u->train = T;
    p->title = "Train";
    p->draw = draw;
    p->on_key = on_key;
    return 0;
}

void ui_train_free(ui *u)
{
    ui_train *T = u->train;
    if (!T)
        return;
    ui_canvas_free(&T->train);
    ui_canvas_free(&T->val);
    ui_canvas_free(&T->lr);
    free(T);
    u->train = NULL;
}
