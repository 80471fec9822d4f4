/* The explorer: the main loop, the layout of the panes, the keys that work
 * everywhere, and the terminal's safety (restored on every way out).
 *
 * Each frame: apply the worker's snapshot (log text, training state, the
 * version of the parameters), recompute what changed (predictions, the
 * heatmap) under the session lock if it is free, draw with wnoutrefresh and
 * one doupdate, then wait for a key with a timeout.  ncurses owns SIGWINCH
 * and reports KEY_RESIZE; readline is told to keep out (cmdline.c). */
#include "ui/explorer.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <term.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ui/heatmap.h"
#include "paramscope/mapguard.h"
#include "ui/ui.h"

#define MIN_COLS 80
#define MIN_ROWS 24
#define FRAME_MS 40           /* input timeout while something moves */
#define IDLE_MS 120

/* ---- the terminal's safety ---- */

static atomic_int g_signal;     /* lock-free, so a handler may store it */
static struct termios g_termios;
static int g_termios_ok;
static char g_restore[256];   /* terminfo strings that undo ncurses' setup */
static size_t g_restore_len;
static int g_curses_on;

static void on_signal(int sig)
{
    g_signal = sig;
}

/* Crashes and failed assertions: restore the terminal with async-signal-safe
 * calls only, then die of the same signal. */
static void on_fatal(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    if (sig == SIGBUS && ps_mapguard_handle(si))
        return;               /* a truncated model file: mended, not fatal */
    if (g_curses_on) {
        if (g_termios_ok)
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_termios);
        if (g_restore_len && write(STDOUT_FILENO, g_restore, g_restore_len) < 0)
            g_restore_len = 0;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void add_restore(const char *cap)
{
    char *s = tigetstr((char *)cap);
    if (!s || s == (char *)-1)
        return;
    size_t n = strlen(s);
    if (g_restore_len + n < sizeof g_restore) {
        memcpy(g_restore + g_restore_len, s, n);
        g_restore_len += n;
    }
}

void ui_assert_fail(const char *expr, const char *file, int line)
{
    if (g_curses_on) {
        endwin();
        g_curses_on = 0;
    }
    fprintf(stderr, "paramscope: %s:%d: assertion failed: %s\n", file, line, expr);
    abort();
}

/* ---- small services for the panes ---- */

double ui_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void ui_note(ui *u, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(u->note, sizeof u->note, fmt, ap);
    va_end(ap);
    u->note_until = ui_now() + 4;
    u->any_dirty = 1;
}

void ui_dirty(ui *u, ui_pane_id id)
{
    u->panes[id].dirty = 1;
    u->any_dirty = 1;
}

void ui_dirty_all(ui *u)
{
    for (int i = 0; i < UI_PANE_COUNT; i++)
        u->panes[i].dirty = 1;
    u->any_dirty = 1;
}

void ui_focus(ui *u, ui_pane_id id)
{
    if (id == UI_PANE_CMD && u->focus != UI_PANE_CMD)
        ui_cmd_came_from(u, u->focus);
    u->focus = id;
    if (id == UI_PANE_PREDICT || id == UI_PANE_TRAIN || id == UI_PANE_INSIDE)
        u->page = id;
    if (id == UI_PANE_TREE || id == UI_PANE_HEAT)
        u->page = UI_PANE_TREE;
    if (id == UI_PANE_TREE || id == UI_PANE_HEAT || id == UI_PANE_TRAIN || id == UI_PANE_INSIDE)
        u->right = id == UI_PANE_HEAT ? UI_PANE_TREE : id;
    u->need_layout = 1;
    ui_dirty_all(u);
}

void ui_run(ui *u, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    u->log.scroll = 0;
    ui_worker_submit(u->w, line, 1);
}

/* ---- the model as the UI knows it ---- */

/* Under the lock: a new model (the first, or after `load`) gets a new tree
 * and a new heatmap.  (The prediction thread follows on its own.) */
static void model_changed(ui *u)
{
    ps_model *m = u->s->lm.model;
    u->model_seen = m;
    u->cfg = m->cfg;
    u->n_params = m->n_values;
    const char *path = u->s->lm.path ? u->s->lm.path : "?";
    const char *base = strrchr(path, '/');
    snprintf(u->model_name, sizeof u->model_name, "%s", base ? base + 1 : path);
    ui_tree_rebuild(u);
    ui_heat_model_changed(u);
    ui_inside_model_changed(u);
    ui_dirty_all(u);
}

int ui_lock(ui *u)
{
    /* While short phases run, waiting a little gets the lock between two of
     * them (the worker gives way); a long phase (a big model) or command is
     * not waited for: the frame goes on with what it has. */
    double longest = 0;
    for (int i = 0; i < PS_PHASE_COUNT; i++)
        longest = u->snap.phase_ms[i] > longest ? u->snap.phase_ms[i] : longest;
    int wait = u->snap.job != UI_JOB_NONE ? (longest < 40 ? 30 : 0) : 10;
    if (!ui_worker_trylock(u->w, wait))
        return 0;
    if (u->s->lm.model != u->model_seen)
        model_changed(u);
    return 1;
}

void ui_unlock(ui *u)
{
    ui_worker_unlock(u->w);
}

/* ---- layout ---- */

static void place(ui *u, ui_pane_id id, int y, int x, int h, int w)
{
    ui_pane *p = &u->panes[id];
    p->y = y;
    p->x = x;
    p->h = h;
    p->w = w;
    p->win = newwin(h, w, y, x);
    if (p->win) {
        wbkgdset(p->win, ' ' | ui_attr(&u->theme, UI_NORMAL));
        keypad(p->win, TRUE);
    }
    p->dirty = 1;
}

static void layout(ui *u)
{
    for (int i = 0; i < UI_PANE_COUNT; i++)
        if (u->panes[i].win) {
            delwin(u->panes[i].win);
            u->panes[i].win = NULL;
        }
    getmaxyx(stdscr, u->rows, u->cols);
    u->too_small = u->rows < MIN_ROWS || u->cols < MIN_COLS;
    u->need_layout = 0;
    u->any_dirty = 1;
    wbkgdset(stdscr, ' ' | ui_attr(&u->theme, UI_NORMAL));
    werase(stdscr);
    wnoutrefresh(stdscr);
    if (u->too_small)
        return;
    int R = u->rows, C = u->cols;
    int log_rows = u->projector ? 2 : (R / 6 < 3 ? 3 : R / 6 > 10 ? 10 : R / 6);
    int cmd_h = log_rows + 2;
    place(u, UI_PANE_CMD, R - 1 - cmd_h, 0, cmd_h, C);
    int y0 = 1, mh = R - 1 - cmd_h - 1;
    u->layout = u->projector ? UI_LAYOUT_PAGE : C >= 150 && R >= 40 ? UI_LAYOUT_FULL
                                               : C >= 100 ? UI_LAYOUT_SPLIT : UI_LAYOUT_PAGE;
    int tree_w;
    switch (u->layout) {
    case UI_LAYOUT_FULL: {
        int lw = C * 2 / 5;
        int ph = mh / 2;
        place(u, UI_PANE_PREDICT, y0, 0, ph, lw);
        place(u, UI_PANE_TRAIN, y0 + ph, 0, mh - ph, lw);
        if (u->right == UI_PANE_INSIDE) {
            place(u, UI_PANE_INSIDE, y0, lw, mh, C - lw);
            break;
        }
        tree_w = (C - lw) / 3 > 36 ? 36 : (C - lw) / 3;
        place(u, UI_PANE_TREE, y0, lw, mh, tree_w);
        place(u, UI_PANE_HEAT, y0, lw + tree_w, mh, C - lw - tree_w);
        break;
    }
    case UI_LAYOUT_SPLIT: {
        int lw = C * 38 / 100 < 38 ? 38 : C * 38 / 100 > 60 ? 60 : C * 38 / 100;
        place(u, UI_PANE_PREDICT, y0, 0, mh, lw);
        if (u->right == UI_PANE_TRAIN || u->right == UI_PANE_INSIDE) {
            place(u, u->right, y0, lw, mh, C - lw);
        } else {
            tree_w = (C - lw) * 36 / 100 < 20 ? 20 : (C - lw) * 36 / 100 > 32 ? 32 : (C - lw) * 36 / 100;
            place(u, UI_PANE_TREE, y0, lw, mh, tree_w);
            place(u, UI_PANE_HEAT, y0, lw + tree_w, mh, C - lw - tree_w);
        }
        break;
    }
    default:
        if (u->page == UI_PANE_TREE) {
            tree_w = C * 3 / 10 < 24 ? 24 : C * 3 / 10 > 36 ? 36 : C * 3 / 10;
            place(u, UI_PANE_TREE, y0, 0, mh, tree_w);
            place(u, UI_PANE_HEAT, y0, tree_w, mh, C - tree_w);
        } else {
            place(u, u->page == UI_PANE_TRAIN || u->page == UI_PANE_INSIDE ? u->page : UI_PANE_PREDICT, y0, 0, mh, C);
        }
        break;
    }
    /* the focus must be on something visible */
    if (!u->panes[u->focus].win)
        u->focus = u->page == UI_PANE_TREE ? UI_PANE_TREE : u->page;
    for (int i = 0; i < UI_PANE_COUNT; i++)
        if (u->panes[i].win && u->panes[i].on_resize)
            u->panes[i].on_resize(u, &u->panes[i]);
    ui_worker_set_width(u->w, C - 2);
    ui_dirty_all(u);
}

/* ---- drawing ---- */

static void draw_title(ui *u)
{
    attr_t a = ui_attr(&u->theme, UI_TITLE);
    ui_fill(stdscr, 0, 0, u->cols, " ", a);
    char cnt[32], line[512];
    const ui_train_snap *sn = &u->snap;
    snprintf(line, sizeof line, " paramscope  %s  %s parameters  step %ld  edits %d", u->model_name,
             ps_fmt_count(u->n_params, cnt, sizeof cnt), sn->step, sn->edits);
    int x = ui_put(stdscr, 0, 0, line, u->cols, a);
    char right[256] = "";
    if (u->note[0] && ui_now() < u->note_until)
        snprintf(right, sizeof right, "%s", u->note);
    else if (sn->running[0])
        snprintf(right, sizeof right, "running: %s%s", sn->running, sn->queued ? " (+ queued)" : "");
    else if (sn->job == UI_JOB_RUN)
        snprintf(right, sizeof right, "training%s", u->projector ? "" : "  (r pauses)");
    else
        snprintf(right, sizeof right, "F1 help  q quit%s", u->projector ? "  F2 projector off" : "");
    int rw = ui_strwidth(right);
    int rx = u->cols - rw - 1;
    if (rx < x + 2)
        rx = x + 2;
    ui_put(stdscr, 0, rx, right, u->cols - rx, a);
}

static void draw_too_small(ui *u)
{
    werase(stdscr);
    char l1[128], l2[128];
    snprintf(l1, sizeof l1, "paramscope needs a terminal of at least %dx%d;", MIN_COLS, MIN_ROWS);
    snprintf(l2, sizeof l2, "this one is %dx%d.  Enlarge it, or press q to quit.", u->cols, u->rows);
    int y = u->rows / 2 - 1;
    ui_put(stdscr, y, (u->cols - ui_strwidth(l1)) / 2 > 0 ? (u->cols - ui_strwidth(l1)) / 2 : 0, l1, u->cols,
           ui_attr(&u->theme, UI_WARN));
    ui_put(stdscr, y + 1, (u->cols - ui_strwidth(l2)) / 2 > 0 ? (u->cols - ui_strwidth(l2)) / 2 : 0, l2, u->cols,
           ui_attr(&u->theme, UI_NORMAL));
    wnoutrefresh(stdscr);
}

static void draw(ui *u)
{
    if (u->too_small) {
        draw_too_small(u);
        curs_set(0);
        doupdate();
        return;
    }
    u->cursor_on = 0;
    draw_title(u);
    ui_hints_draw(u, stdscr, u->rows - 1, u->cols);
    wnoutrefresh(stdscr);
    for (int i = 0; i < UI_PANE_COUNT; i++) {
        ui_pane *p = &u->panes[i];
        if (!p->win)
            continue;
        p->draw(u, p);
        p->dirty = 0;
        wnoutrefresh(p->win);
    }
    if (u->help_open) {
        ui_help_draw(u);
        if (u->help_win) {
            touchwin(u->help_win);
            wnoutrefresh(u->help_win);
        }
        curs_set(0);
    } else if (u->cursor_on) {
        ui_pane *p = &u->panes[u->focus];
        if (p->win) {
            wmove(p->win, u->cursor_y - p->y, u->cursor_x - p->x);
            wnoutrefresh(p->win);
        }
        curs_set(1);
    } else {
        curs_set(0);
    }
    doupdate();
    u->any_dirty = 0;
}

/* ---- the worker's news ---- */

static void poll_worker(ui *u)
{
    ui_train_snap sn;
    ui_worker_snapshot(u->w, &sn);
    if (memcmp(&sn, &u->snap, sizeof sn)) {
        u->snap = sn;
        ui_dirty(u, UI_PANE_TRAIN);
        u->any_dirty = 1;
    }
    uint64_t epoch;
    size_t n = ui_worker_history(u->w, 0, u->n_hist_train, &u->hist_train, &u->cap_hist_train, &epoch);
    if (epoch != u->hist_epoch) {
        u->hist_epoch = epoch;
        u->n_hist_train = u->n_hist_val = 0;
        n = ui_worker_history(u->w, 0, 0, &u->hist_train, &u->cap_hist_train, &epoch);
    }
    if (n != u->n_hist_train) {
        u->n_hist_train = n;
        ui_dirty(u, UI_PANE_TRAIN);
    }
    n = ui_worker_history(u->w, 1, u->n_hist_val, &u->hist_val, &u->cap_hist_val, &epoch);
    if (n != u->n_hist_val) {
        u->n_hist_val = n;
        ui_dirty(u, UI_PANE_TRAIN);
    }
    char *text = ui_worker_take_log(u->w);
    if (text) {
        ui_log_add(u, UI_LOG_TEXT, text);
        free(text);
    }
    uint64_t v = ui_worker_version(u->w);
    if (v != u->version) {
        u->version = v;
        ui_dirty_all(u);
    }
    u->params_version = ui_worker_params_version(u->w);
}

/* ---- keys ---- */

static const ui_pane_id cycle[] = {UI_PANE_PREDICT, UI_PANE_TREE, UI_PANE_HEAT, UI_PANE_TRAIN, UI_PANE_INSIDE,
                                   UI_PANE_CMD};

static void next_pane(ui *u, int dir)
{
    int n = (int)(sizeof cycle / sizeof cycle[0]), at = 0;
    while (at < n && cycle[at] != u->focus)
        at++;
    ui_focus(u, cycle[(at + dir + n) % n]);
}

static void set_theme(ui *u)
{
    ui_theme_init(&u->theme, u->projector && u->scheme != UI_SCHEME_MONO ? UI_SCHEME_PROJECTOR : u->scheme, u->utf8);
    u->need_layout = 1;
}

static int global_action(ui *u, ui_action act)
{
    const ui_train_snap *sn = &u->snap;
    switch (act) {
    case UI_ACT_HELP:
        u->help_open = 1;
        u->help_scroll = 0;
        break;
    case UI_ACT_NEXT_PANE: next_pane(u, 1); break;
    case UI_ACT_PREV_PANE: next_pane(u, -1); break;
    case UI_ACT_PROJECTOR:
        u->projector = !u->projector;
        set_theme(u);
        ui_note(u, "projector %s", u->projector ? "on (F2: off)" : "off");
        break;
    case UI_ACT_SCHEME:
        u->scheme = u->scheme == UI_SCHEME_MONO ? UI_SCHEME_DEFAULT : UI_SCHEME_MONO;
        set_theme(u);
        ui_note(u, "colours: %s", ui_scheme_name(u->theme.scheme));
        break;
    case UI_ACT_PHASE: ui_worker_train(u->w, UI_JOB_PHASE, 1); break;
    case UI_ACT_STEP: ui_worker_train(u->w, UI_JOB_STEPS, 1); break;
    case UI_ACT_TEN: ui_worker_train(u->w, UI_JOB_STEPS, 10); break;
    case UI_ACT_RUN:
        ui_worker_train(u->w, sn->job == UI_JOB_RUN ? UI_JOB_NONE : UI_JOB_RUN, 0);
        break;
    case UI_ACT_QUIT:
        return UI_QUIT;
    case UI_ACT_INTERRUPT:
        if (sn->busy || sn->job != UI_JOB_NONE || sn->queued) {
            ui_worker_interrupt(u->w);
            ui_note(u, "stopped");
            u->interrupts = 0;
        } else if (++u->interrupts >= 2) {
            return UI_QUIT;
        } else {
            ui_note(u, "press ^C again (or q) to quit");
        }
        break;
    case UI_ACT_REFRESH:
        clearok(curscr, TRUE);
        u->need_layout = 1;
        break;
    case UI_ACT_COMMAND: ui_focus(u, UI_PANE_CMD); break;
    case UI_ACT_UNDO: ui_run(u, "undo"); break;
    case UI_ACT_REDO: ui_run(u, "redo"); break;
    case UI_ACT_GO_PREDICT: ui_focus(u, UI_PANE_PREDICT); break;
    case UI_ACT_GO_INSIDE: ui_focus(u, UI_PANE_INSIDE); break;
    default:
        return 0;
    }
    if (act != UI_ACT_INTERRUPT)
        u->interrupts = 0;
    return UI_HANDLED | UI_REDRAW;
}

static int handle_key(ui *u, ui_key k)
{
    if (!k.fkey && k.code == '\r')
        k.code = '\n';
    if (k.fkey && k.code == KEY_ENTER)
        k = (ui_key){'\n', 0};
    if (u->too_small) {
        if ((!k.fkey && (k.code == 'q' || k.code == 3)) || (k.fkey && k.code == KEY_F(10)))
            return UI_QUIT;
        return 0;
    }
    if (u->help_open) {
        ui_action a = ui_key_action(UI_SCOPE_GLOBAL, k);
        if (a == UI_ACT_QUIT || a == UI_ACT_INTERRUPT)
            return global_action(u, a);
        return ui_help_key(u, k);
    }
    ui_pane *p = &u->panes[u->focus];
    int r = p->on_key ? p->on_key(u, p, k) : 0;
    if (r & UI_HANDLED)
        return r;
    if (!p->text_entry) {
        ui_action a = ui_key_action(UI_SCOPE_NAV, k);
        if (a != UI_ACT_NONE)
            return global_action(u, a);
    }
    return global_action(u, ui_key_action(UI_SCOPE_GLOBAL, k));
}

/* ---- the loop ---- */

/* PARAMSCOPE_UI_TIMING=1: after quitting, how long the longest frame (the
 * work between two waits for a key) took, on standard error. */
static double longest_frame;

static int run_loop(ui *u)
{
    int status = 0;
    double work_start = ui_now();
    for (;;) {
        if (g_signal) {
            int sig = g_signal;
            g_signal = 0;
            if (sig == SIGINT && (u->snap.busy || u->snap.job != UI_JOB_NONE)) {
                ui_worker_interrupt(u->w);
                ui_note(u, "stopped");
            } else {
                status = 128 + sig;
                break;
            }
        }
        poll_worker(u);
        if (u->snap.quit)
            break;
        if (u->need_layout)
            layout(u);
        if (!u->too_small) {
            ui_predict_poll(u);
            ui_inside_poll(u);
            if (ui_heat_needs(u)) {
                if (ui_lock(u)) {
                    ui_heat_compute(u);
                    ui_unlock(u);
                } else {
                    ui_heat_stale(u);
                }
            }
        }
        if (u->note[0] && ui_now() >= u->note_until) {
            u->note[0] = '\0';
            u->any_dirty = 1;
        }
        if (u->any_dirty)
            draw(u);
        int busy = u->snap.busy || u->snap.job != UI_JOB_NONE || u->snap.queued;
        double spent = ui_now() - work_start;
        longest_frame = spent > longest_frame ? spent : longest_frame;
        timeout(busy ? FRAME_MS : IDLE_MS);
        wint_t wc;
        int got = get_wch(&wc);
        work_start = ui_now();
        int keys = 0, flags = 0;
        while (got != ERR && keys < 64) {
            ui_key k = {(int)wc, got == KEY_CODE_YES};
            if (k.fkey && k.code == KEY_RESIZE)
                u->need_layout = 1;
            else
                flags |= handle_key(u, k);
            if (flags & UI_QUIT)
                return 0;
            keys++;
            timeout(0);
            got = get_wch(&wc);
        }
        if (flags & (UI_REDRAW | UI_HANDLED))
            ui_dirty_all(u);
        if (flags & UI_RELAYOUT)
            u->need_layout = 1;
    }
    return status;
}

int ps_ui_run(ps_session *s)
{
    const char *term = getenv("TERM");
    if (!term || !*term || !strcmp(term, "dumb"))
        return -1;
    g_termios_ok = tcgetattr(STDIN_FILENO, &g_termios) == 0;
    SCREEN *scr = newterm(NULL, stdout, stdin);
    if (!scr)
        return -1;
    set_term(scr);
    g_curses_on = 1;
    g_restore_len = 0;
    add_restore("sgr0");
    add_restore("cnorm");
    add_restore("rmkx");
    add_restore("rmcup");

    struct sigaction sa, old_int, old_term, old_hup;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);
    struct sigaction fa, old_fatal[4];
    const int fatal[4] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE};
    memset(&fa, 0, sizeof fa);
    fa.sa_sigaction = on_fatal;
    fa.sa_flags = SA_SIGINFO | SA_NODEFER;
    for (int i = 0; i < 4; i++)
        sigaction(fatal[i], &fa, &old_fatal[i]);

    raw();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    set_escdelay(25);
    curs_set(0);

    ui *u = calloc(1, sizeof *u);
    int status = 1;
    ps_error err = {0};
    if (!u)
        goto done;
    u->s = s;
    u->utf8 = ps_utf8_output();
    u->scheme = UI_SCHEME_DEFAULT;
    ui_theme_init(&u->theme, u->scheme, u->utf8);
    u->focus = UI_PANE_PREDICT;
    u->page = UI_PANE_PREDICT;
    u->right = UI_PANE_TREE;
    if (ui_worker_start(&u->w, s, u->utf8, &err))
        goto done;
    if (ui_predict_init(u, &u->panes[UI_PANE_PREDICT]) || ui_tree_init(u, &u->panes[UI_PANE_TREE]) ||
        ui_heat_init(u, &u->panes[UI_PANE_HEAT]) || ui_train_init(u, &u->panes[UI_PANE_TRAIN]) ||
        ui_inside_init(u, &u->panes[UI_PANE_INSIDE]) ||
        ui_cmd_init(u, &u->panes[UI_PANE_CMD])) {
        ps_error_set(&err, PS_ERR_NOMEM, "out of memory");
        goto done;
    }
    ui_worker_lock(u->w);
    model_changed(u);
    ui_worker_unlock(u->w);
    if (ui_heat_open(u, "h.0.attn.c_attn.weight", &err))
        ui_heat_open(u, "wte.weight", &err);
    err.msg[0] = '\0';
    ui_log_add(u, UI_LOG_INFO, "Welcome.  Type a prompt; Tab moves between panes; F1 (or ?) lists every key and command.");
    u->need_layout = 1;
    status = run_loop(u);
done:
    /* the terminal first, so that a slow join leaves a usable screen */
    endwin();
    g_curses_on = 0;
    if (u) {
        ui_predict_free(u);       /* its thread first: it uses the worker's lock */
        ui_inside_free(u);
        ui_worker_stop(u->w);
        ui_cmd_free(u);
        ui_train_free(u);
        ui_heat_free(u);
        ui_tree_free(u);
        free(u->hist_train);
        free(u->hist_val);
        for (int i = 0; i < UI_PANE_COUNT; i++)
            if (u->panes[i].win)
                delwin(u->panes[i].win);
        if (u->help_win)
            delwin(u->help_win);
        free(u);
    }
    delscreen(scr);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    for (int i = 0; i < 4; i++)
        sigaction(fatal[i], &old_fatal[i], NULL);
    if (err.msg[0])
        fprintf(stderr, "paramscope: %s\n", err.msg);
    const char *timing = getenv("PARAMSCOPE_UI_TIMING");
    if (timing && *timing && strcmp(timing, "0"))
        fprintf(stderr, "paramscope: longest frame %.1f ms\n", longest_frame * 1000);
    return status;
}
