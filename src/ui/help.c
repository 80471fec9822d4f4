/* The key table and what is made from it: dispatch (ui_key_action), the
 * hint line under the panes and the help overlay, which also lists every
 * command of the language from the command table.  A key that is not in this
 * table does nothing, so the help cannot drift from the code. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "repl/command.h"
#include "ui/ui.h"

#define CTRL(c) ((c) & 0x1f)
#define K(scope, code, name, act, help, hint) {scope, code, 0, name, act, help, hint}
#define F(scope, code, name, act, help, hint) {scope, code, 1, name, act, help, hint}
#define DOC(scope, name, help) {scope, 0, 0, name, UI_ACT_NONE, help, NULL}
#define DOCH(scope, name, help, hint) {scope, 0, 0, name, UI_ACT_NONE, help, hint}

const ui_binding ui_bindings[] = {
    /* everywhere, text fields too */
    F(UI_SCOPE_GLOBAL, KEY_F(1), "F1", UI_ACT_HELP, "this help (also ? outside text fields)", "help"),
    K(UI_SCOPE_GLOBAL, '\t', "Tab", UI_ACT_NEXT_PANE, "next pane: Predict, Tensors, Heatmap, Train, Inside, command line", "pane"),
    F(UI_SCOPE_GLOBAL, KEY_BTAB, "S-Tab", UI_ACT_PREV_PANE, "previous pane", NULL),
    F(UI_SCOPE_GLOBAL, KEY_F(2), "F2", UI_ACT_PROJECTOR, "projector mode: large bars, high contrast", NULL),
    F(UI_SCOPE_GLOBAL, KEY_F(3), "F3", UI_ACT_SCHEME, "colours: colour, monochrome", NULL),
    F(UI_SCOPE_GLOBAL, KEY_F(4), "F4", UI_ACT_GO_PREDICT, "to the prompt", NULL),
    F(UI_SCOPE_GLOBAL, KEY_F(5), "F5", UI_ACT_PHASE, "training: run one phase (forward, loss, backward, update)", NULL),
    F(UI_SCOPE_GLOBAL, KEY_F(6), "F6", UI_ACT_STEP, "training: one whole step", NULL),
    F(UI_SCOPE_GLOBAL, KEY_F(7), "F7", UI_ACT_RUN, "training: run / pause", NULL),
    F(UI_SCOPE_GLOBAL, KEY_F(8), "F8", UI_ACT_TEN, "training: ten steps", NULL),
    F(UI_SCOPE_GLOBAL, KEY_F(9), "F9", UI_ACT_UNDO, "undo the last edit (also u)", NULL),
    F(UI_SCOPE_GLOBAL, KEY_F(10), "F10", UI_ACT_QUIT, "quit (also q outside text fields)", NULL),
    K(UI_SCOPE_GLOBAL, CTRL('c'), "^C", UI_ACT_INTERRUPT, "stop what runs (training, a command); at rest, quit", NULL),
    K(UI_SCOPE_GLOBAL, CTRL('l'), "^L", UI_ACT_REFRESH, "redraw the screen", NULL),
    /* every pane but text fields */
    K(UI_SCOPE_NAV, '?', "?", UI_ACT_HELP, NULL, NULL),
    K(UI_SCOPE_NAV, ':', ":", UI_ACT_COMMAND, "type a command (any command of the language)", "command"),
    K(UI_SCOPE_NAV, 'q', "q", UI_ACT_QUIT, "quit", "quit"),
    K(UI_SCOPE_NAV, 'u', "u", UI_ACT_UNDO, "undo the last edit", "undo"),
    K(UI_SCOPE_NAV, 'i', "i", UI_ACT_GO_INSIDE, "Inside: attention patterns, the logit lens, attribution", "inside"),
    K(UI_SCOPE_NAV, 'U', "U", UI_ACT_REDO, "redo", NULL),
    K(UI_SCOPE_NAV, 'p', "p", UI_ACT_PHASE, "training: one phase", NULL),
    K(UI_SCOPE_NAV, 's', "s", UI_ACT_STEP, "training: one step", NULL),
    K(UI_SCOPE_NAV, 't', "t", UI_ACT_TEN, "training: ten steps", NULL),
    K(UI_SCOPE_NAV, 'r', "r", UI_ACT_RUN, "training: run / pause", NULL),
    K(UI_SCOPE_NAV, 'P', "P", UI_ACT_PROJECTOR, NULL, NULL),


    /* predict: the prompt is a text field */
    DOC(UI_SCOPE_PREDICT, "letters", "type the prompt: the bars follow every key"),
    K(UI_SCOPE_PREDICT, '\n', "Enter", UI_ACT_APPEND_TOP, "append the most likely token", "append top"),
    K(UI_SCOPE_PREDICT, CTRL('r'), "^R", UI_ACT_APPEND_SAMPLE, "append a sampled token (temperature, top-k, top-p, seed)", "sample"),
    DOCH(UI_SCOPE_PREDICT, "Up Down", "temperature up, down (0 is greedy: always the top token)", "temperature"),
    F(UI_SCOPE_PREDICT, KEY_UP, "Up", UI_ACT_TEMP_UP, NULL, NULL),
    F(UI_SCOPE_PREDICT, KEY_DOWN, "Down", UI_ACT_TEMP_DOWN, NULL, NULL),
    K(UI_SCOPE_PREDICT, CTRL('k'), "^K", UI_ACT_TOPK, "top-k: off, 1, 5, 10, 40", "top-k"),
    K(UI_SCOPE_PREDICT, CTRL('p'), "^P", UI_ACT_TOPP, "top-p: off, 0.95, 0.9, 0.5", "top-p"),
    K(UI_SCOPE_PREDICT, CTRL('n'), "^N", UI_ACT_BARS, "number of bars: 5, 10, 15, 20", "bars"),
    K(UI_SCOPE_PREDICT, CTRL('b'), "^B", UI_ACT_BASELINE, "take the bars as they are now as the baseline for changes", NULL),
    K(UI_SCOPE_PREDICT, CTRL('u'), "^U", UI_ACT_CLEAR, "clear the prompt", NULL),
    K(UI_SCOPE_PREDICT, 27, "Esc", UI_ACT_COMMAND, "to the command line (Esc there comes back)", "command"),
    DOC(UI_SCOPE_PREDICT, "Left Right", "move in the prompt; Home End ^A ^E, Backspace, Delete, ^W edit"),

    /* the tensor tree */
    DOCH(UI_SCOPE_TREE, "Up Down", "move in the list (also k j); the heatmap follows", "move"),
    F(UI_SCOPE_TREE, KEY_UP, "Up", UI_ACT_UP, NULL, NULL),
    F(UI_SCOPE_TREE, KEY_DOWN, "Down", UI_ACT_DOWN, NULL, NULL),
    K(UI_SCOPE_TREE, 'k', "k", UI_ACT_UP, NULL, NULL),
    K(UI_SCOPE_TREE, 'j', "j", UI_ACT_DOWN, NULL, NULL),
    K(UI_SCOPE_TREE, '\n', "Enter", UI_ACT_OPEN, "open a group, or go to the tensor's heatmap", "open"),
    F(UI_SCOPE_TREE, KEY_RIGHT, "Right", UI_ACT_OPEN, NULL, NULL),
    K(UI_SCOPE_TREE, 'l', "l", UI_ACT_OPEN, NULL, NULL),
    F(UI_SCOPE_TREE, KEY_LEFT, "Left", UI_ACT_CLOSE, "close the group (also h)", "close"),
    K(UI_SCOPE_TREE, 'h', "h", UI_ACT_CLOSE, NULL, NULL),
    K(UI_SCOPE_TREE, ' ', "Space", UI_ACT_TOGGLE, "open or close a group", NULL),
    K(UI_SCOPE_TREE, '/', "/", UI_ACT_ADDRESS, "show any address: h.0.attn.q[2], wte[\"sky\"], ...", "address"),
    F(UI_SCOPE_TREE, KEY_PPAGE, "PgUp", UI_ACT_PAGE_UP, "a page up", NULL),
    F(UI_SCOPE_TREE, KEY_NPAGE, "PgDn", UI_ACT_PAGE_DOWN, "a page down", NULL),
    F(UI_SCOPE_TREE, KEY_HOME, "Home", UI_ACT_HOME, "first", NULL),
    F(UI_SCOPE_TREE, KEY_END, "End", UI_ACT_END, "last", NULL),

    /* the heatmap */
    DOCH(UI_SCOPE_HEAT, "arrows", "move the cursor over the weights (also h j k l)", "move"),
    F(UI_SCOPE_HEAT, KEY_LEFT, "Left", UI_ACT_LEFT, NULL, NULL),
    F(UI_SCOPE_HEAT, KEY_RIGHT, "Right", UI_ACT_RIGHT, NULL, NULL),
    F(UI_SCOPE_HEAT, KEY_UP, "Up", UI_ACT_UP, NULL, NULL),
    F(UI_SCOPE_HEAT, KEY_DOWN, "Down", UI_ACT_DOWN, NULL, NULL),
    K(UI_SCOPE_HEAT, 'h', "h", UI_ACT_LEFT, NULL, NULL),
    K(UI_SCOPE_HEAT, 'l', "l", UI_ACT_RIGHT, NULL, NULL),
    K(UI_SCOPE_HEAT, 'k', "k", UI_ACT_UP, NULL, NULL),
    K(UI_SCOPE_HEAT, 'j', "j", UI_ACT_DOWN, NULL, NULL),
    K(UI_SCOPE_HEAT, '+', "+", UI_ACT_NUDGE_UP, "raise the weight under the cursor by the step", "raise"),
    K(UI_SCOPE_HEAT, '=', "=", UI_ACT_NUDGE_UP, NULL, NULL),
    K(UI_SCOPE_HEAT, '-', "-", UI_ACT_NUDGE_DOWN, "lower it by the step", "lower"),
    K(UI_SCOPE_HEAT, '<', "<", UI_ACT_STEP_SMALLER, "smaller step (the step is shown)", NULL),
    K(UI_SCOPE_HEAT, '>', ">", UI_ACT_STEP_LARGER, "larger step", NULL),
    K(UI_SCOPE_HEAT, '0', "0", UI_ACT_ZERO, "set the weight to zero", "zero"),
    K(UI_SCOPE_HEAT, 'e', "e", UI_ACT_TYPE_VALUE, "type a value for the weight (also Enter)", "type value"),
    K(UI_SCOPE_HEAT, '\n', "Enter", UI_ACT_TYPE_VALUE, NULL, NULL),
    K(UI_SCOPE_HEAT, 'z', "z", UI_ACT_ZOOM_IN, "zoom in (fewer weights per cell)", "zoom"),
    K(UI_SCOPE_HEAT, 'x', "x", UI_ACT_ZOOM_OUT, "zoom out", NULL),
    K(UI_SCOPE_HEAT, 'c', "c", UI_ACT_FIT, "fit the whole tensor", NULL),
    F(UI_SCOPE_HEAT, KEY_SR, "S-Up", UI_ACT_PAN_UP, "pan (Shift+arrows, PgUp, PgDn)", NULL),
    F(UI_SCOPE_HEAT, KEY_SF, "S-Down", UI_ACT_PAN_DOWN, NULL, NULL),
    F(UI_SCOPE_HEAT, KEY_SLEFT, "S-Left", UI_ACT_PAN_LEFT, NULL, NULL),
    F(UI_SCOPE_HEAT, KEY_SRIGHT, "S-Right", UI_ACT_PAN_RIGHT, NULL, NULL),
    F(UI_SCOPE_HEAT, KEY_PPAGE, "PgUp", UI_ACT_PAN_UP, NULL, NULL),
    F(UI_SCOPE_HEAT, KEY_NPAGE, "PgDn", UI_ACT_PAN_DOWN, NULL, NULL),
    K(UI_SCOPE_HEAT, '1', "1", UI_ACT_SHOW_VALUES, "show the values", "values"),
    K(UI_SCOPE_HEAT, '2', "2", UI_ACT_SHOW_GRAD, "show the gradient (after a backward phase)", "gradient"),
    K(UI_SCOPE_HEAT, '3', "3", UI_ACT_SHOW_UPDATE, "show the last update (after an update phase)", "update"),
    K(UI_SCOPE_HEAT, '4', "4", UI_ACT_SHOW_DIFF, "show the change from the file", "from file"),
    K(UI_SCOPE_HEAT, 'a', "a", UI_ACT_FOLLOW, "follow training: gradient after backward, update after update", NULL),
    K(UI_SCOPE_HEAT, 'm', "m", UI_ACT_SCALE, "colour scale: auto (3 standard deviations for single weights, the largest value when a cell shows the peak of several), 3 sigma, largest", NULL),
    K(UI_SCOPE_HEAT, 'Q', "Q", UI_ACT_VIEW_Q, "view: the query block of the head under the cursor", NULL),
    K(UI_SCOPE_HEAT, 'K', "K", UI_ACT_VIEW_K, "view: its key block", NULL),
    K(UI_SCOPE_HEAT, 'V', "V", UI_ACT_VIEW_V, "view: its value block", NULL),
    K(UI_SCOPE_HEAT, 'N', "N", UI_ACT_VIEW_NEURON, "view: the MLP neuron under the cursor", NULL),
    K(UI_SCOPE_HEAT, 'T', "T", UI_ACT_VIEW_TOKEN, "view: a token's embedding row (asks; default the top prediction)", NULL),
    K(UI_SCOPE_HEAT, 'W', "W", UI_ACT_VIEW_WHOLE, "back to the whole tensor of a view", NULL),
    K(UI_SCOPE_HEAT, ']', "]", UI_ACT_REGION_NEXT, "next part of a view with several (a neuron: in, bias, out)", NULL),
    K(UI_SCOPE_HEAT, '[', "[", UI_ACT_REGION_PREV, "previous part", NULL),
    K(UI_SCOPE_HEAT, '/', "/", UI_ACT_ADDRESS, "show any address", NULL),
    K(UI_SCOPE_HEAT, 27, "Esc", UI_ACT_BACK, "back to the tensor list (also Backspace)", NULL),
    F(UI_SCOPE_HEAT, KEY_BACKSPACE, "Backspace", UI_ACT_BACK, NULL, NULL),
    K(UI_SCOPE_HEAT, 127, "Backspace", UI_ACT_BACK, NULL, NULL),

    /* training */
    K(UI_SCOPE_TRAIN, 'p', "p", UI_ACT_PHASE, "one phase: forward, loss, backward or update (F5)", "phase"),
    K(UI_SCOPE_TRAIN, 's', "s", UI_ACT_STEP, "one step (F6)", "step"),
    K(UI_SCOPE_TRAIN, 't', "t", UI_ACT_TEN, "ten steps (F8)", "ten steps"),
    K(UI_SCOPE_TRAIN, 'r', "r", UI_ACT_RUN, "run / pause (F7, also Space)", "run/pause"),
    K(UI_SCOPE_TRAIN, ' ', "Space", UI_ACT_RUN, NULL, NULL),
    K(UI_SCOPE_TRAIN, 'v', "v", UI_ACT_EVAL, "validation loss now", "validate"),

    /* inside the forward pass */
    F(UI_SCOPE_INSIDE, KEY_LEFT, "Left", UI_ACT_LEFT, "the previous head", NULL),
    F(UI_SCOPE_INSIDE, KEY_RIGHT, "Right", UI_ACT_RIGHT, "the next head", "head"),
    F(UI_SCOPE_INSIDE, KEY_UP, "Up", UI_ACT_UP, "the previous block", NULL),
    F(UI_SCOPE_INSIDE, KEY_DOWN, "Down", UI_ACT_DOWN, "the next block", "block"),
    K(UI_SCOPE_INSIDE, 'a', "a", UI_ACT_ABLATE, "ablate the head shown (u undoes it)", "ablate"),

    /* the command line */
    K(UI_SCOPE_CMD, '\n', "Enter", UI_ACT_NONE, "run the command; its output goes to the log", "run"),
    DOCH(UI_SCOPE_CMD, "Tab", "complete: commands, tensor names and views, files, settings", "complete"),
    DOCH(UI_SCOPE_CMD, "Up Down", "history (kept between sessions); ^R searches it", "history"),
    F(UI_SCOPE_CMD, KEY_PPAGE, "PgUp", UI_ACT_LOG_UP, "scroll the log back", "log back"),
    F(UI_SCOPE_CMD, KEY_NPAGE, "PgDn", UI_ACT_LOG_DOWN, "scroll the log forward", NULL),
    K(UI_SCOPE_CMD, 27, "Esc", UI_ACT_LEAVE, "back to the pane you came from", "leave"),

    /* the help overlay */
    DOC(UI_SCOPE_HELP, "Up Down PgUp PgDn", "scroll this help"),
    K(UI_SCOPE_HELP, 27, "Esc", UI_ACT_LEAVE, "close it (also q, F1)", NULL),
    {UI_SCOPE_COUNT, 0, 0, NULL, UI_ACT_NONE, NULL, NULL},
};

static const char *const scope_names[UI_SCOPE_COUNT] = {
    [UI_SCOPE_GLOBAL] = "Everywhere",
    [UI_SCOPE_NAV] = "Everywhere except in text (the prompt, the command line)",
    [UI_SCOPE_PREDICT] = "Predict: the prompt and its next-token bars",
    [UI_SCOPE_TREE] = "Tensors: the model's parameters by layer",
    [UI_SCOPE_HEAT] = "Heatmap: the selected tensor or view",
    [UI_SCOPE_TRAIN] = "Train: losses, learning rate, the four phases",
    [UI_SCOPE_INSIDE] = "Inside: attention, the logit lens, what adds to the answer",
    [UI_SCOPE_CMD] = "Command line and log",
    [UI_SCOPE_HELP] = "This help",
};

const char *ui_scope_name(ui_scope scope)
{
    return scope < UI_SCOPE_COUNT ? scope_names[scope] : "";
}

ui_action ui_key_action(ui_scope scope, ui_key k)
{
    for (const ui_binding *b = ui_bindings; b->scope != UI_SCOPE_COUNT; b++)
        if (b->scope == scope && b->code && b->code == k.code && b->fkey == k.fkey)
            return b->action;
    return UI_ACT_NONE;
}

/* ---- the hint line ---- */

static ui_scope scope_of(ui_pane_id id)
{
    switch (id) {
    case UI_PANE_PREDICT: return UI_SCOPE_PREDICT;
    case UI_PANE_TREE: return UI_SCOPE_TREE;
    case UI_PANE_HEAT: return UI_SCOPE_HEAT;
    case UI_PANE_TRAIN: return UI_SCOPE_TRAIN;
    case UI_PANE_INSIDE: return UI_SCOPE_INSIDE;
    default: return UI_SCOPE_CMD;
    }
}

void ui_hints_draw(ui *u, WINDOW *win, int y, int w)
{
    attr_t ah = ui_attr(&u->theme, UI_HINT), ak = ui_attr(&u->theme, UI_HINT_KEY);
    ui_fill(win, y, 0, w, " ", ah);
    /* F1 help always shows, at the right end */
    int right = w - 1 - ui_strwidth("F1 help");
    ui_put(win, y, right, "F1", 2, ak);
    ui_put(win, y, right + 2, " help", 5, ah);
    int x = 1;
    ui_scope scopes[3] = {u->help_open ? UI_SCOPE_HELP : scope_of(u->focus), UI_SCOPE_NAV, UI_SCOPE_GLOBAL};
    int n = u->help_open ? 1 : (u->panes[u->focus].text_entry ? 1 : 2);
    if (!u->help_open)
        scopes[n++] = UI_SCOPE_GLOBAL;
    for (int i = 0; i < n; i++) {
        for (const ui_binding *b = ui_bindings; b->scope != UI_SCOPE_COUNT; b++) {
            if (b->scope != scopes[i] || !b->hint || b->action == UI_ACT_HELP)
                continue;
            if (b->action == UI_ACT_NEXT_PANE && u->focus == UI_PANE_CMD)
                continue;       /* Tab completes there */
            int need = ui_strwidth(b->key_name) + 1 + ui_strwidth(b->hint) + 2;
            if (x + need > right - 1)
                return;
            x += ui_put(win, y, x, b->key_name, w - x, ak);
            x += ui_put(win, y, x, " ", 1, ah);
            x += ui_put(win, y, x, b->hint, w - x, ah);
            x += ui_put(win, y, x, "  ", 2, ah);
        }
    }
}

/* ---- the overlay ---- */

typedef struct help_lines {
    char **text;
    unsigned char *style;     /* 0 text, 1 heading, 2 key line */
    int n, cap;
} help_lines;

static void add_line(help_lines *h, int style, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void add_line(help_lines *h, int style, const char *fmt, ...)
{
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : 128;
        char **t = realloc(h->text, sizeof *t * (size_t)cap);
        if (!t)
            return;
        h->text = t;
        unsigned char *s = realloc(h->style, (size_t)cap);
        if (!s)
            return;
        h->style = s;
        h->cap = cap;
    }
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    h->text[h->n] = strdup(buf);
    if (h->text[h->n])
        h->style[h->n++] = (unsigned char)style;
}

typedef struct cmd_ctx { help_lines *h; const char *group; } cmd_ctx;

static void visit_command(const ps_command *c, void *p)
{
    cmd_ctx *x = p;
    if (!x->group || strcmp(x->group, c->group)) {
        x->group = c->group;
        add_line(x->h, 0, "%s", "");
        add_line(x->h, 1, "  %s", c->group);
    }
    char head[128];
    if (!strcmp(c->name, "="))
        snprintf(head, sizeof head, "%s", c->args);
    else
        snprintf(head, sizeof head, "%s%s%s", c->name, *c->args ? " " : "", c->args);
    add_line(x->h, 2, "    %-26s %s", head, c->summary);
}

static void build(help_lines *h)
{
    add_line(h, 1, "%s", "paramscope explorer: keys and commands");
    add_line(h, 0, "%s", "");
    add_line(h, 1, "%s", "  First steps");
    add_line(h, 0, "%s", "    1. Type a prompt, e.g. The sky is: the bars show the next token as you type.");
    add_line(h, 0, "%s", "    2. Tab to Tensors.  Down to \"block 0\" and Enter: it opens, on \"attention\";");
    add_line(h, 0, "%s", "       Enter again: on c_attn.weight; Enter: its heatmap.  Arrows pick a weight.");
    add_line(h, 0, "%s", "    3. + and - change that weight (0 zeroes it, e types a value); watch the bars:");
    add_line(h, 0, "%s", "       the signed number beside each is its change.  u undoes the edit.");
    add_line(h, 0, "%s", "    4. F8 (t outside the prompt) runs ten training steps: Tab to Train to watch");
    add_line(h, 0, "%s", "       the loss curve and the four phases.  F5 runs one phase, F7 runs and pauses.");
    add_line(h, 0, "%s", "    5. Esc in the prompt (: elsewhere) opens the command line for any command");
    add_line(h, 0, "%s", "       below; Esc comes back.  F10 (q outside the prompt) quits.");
    for (int sc = 0; sc < UI_SCOPE_COUNT; sc++) {
        add_line(h, 0, "%s", "");
        add_line(h, 1, "  %s", ui_scope_name((ui_scope)sc));
        for (const ui_binding *b = ui_bindings; b->scope != UI_SCOPE_COUNT; b++)
            if ((int)b->scope == sc && b->help)
                add_line(h, 2, "    %-12s %s", b->key_name, b->help);
    }
    add_line(h, 0, "%s", "");
    add_line(h, 1, "%s", "  Commands (press : and type one; help COMMAND explains it in the log)");
    cmd_ctx x = {h, NULL};
    ps_commands_each(visit_command, &x);
}

static void free_lines(help_lines *h)
{
    for (int i = 0; i < h->n; i++)
        free(h->text[i]);
    free(h->text);
    free(h->style);
}

void ui_help_draw(ui *u)
{
    int h = u->rows - 2, w = u->cols - 4;
    if (h < 5 || w < 20)
        return;
    if (!u->help_win)
        u->help_win = newwin(h, w, 1, 2);
    else {
        wresize(u->help_win, h, w);
        mvwin(u->help_win, 1, 2);
    }
    WINDOW *win = u->help_win;
    attr_t an = ui_attr(&u->theme, UI_NORMAL);
    wbkgdset(win, ' ' | an);
    werase(win);
    /* a frame of our own: box() may draw VT100 line-drawing letters */
    const char *hz = u->utf8 ? "\u2500" : "-", *vt = u->utf8 ? "\u2502" : "|";
    ui_fill(win, 0, 1, w - 2, hz, an);
    ui_fill(win, h - 1, 1, w - 2, hz, an);
    for (int y = 1; y < h - 1; y++) {
        ui_put(win, y, 0, vt, 1, an);
        ui_put(win, y, w - 1, vt, 1, an);
    }
    ui_put(win, 0, 0, u->utf8 ? "\u250c" : "+", 1, an);
    ui_put(win, 0, w - 1, u->utf8 ? "\u2510" : "+", 1, an);
    ui_put(win, h - 1, 0, u->utf8 ? "\u2514" : "+", 1, an);
    ui_put(win, h - 1, w - 1, u->utf8 ? "\u2518" : "+", 1, an);
    help_lines hl = {0};
    build(&hl);
    int rows = h - 2;
    if (u->help_scroll > hl.n - rows)
        u->help_scroll = hl.n - rows;
    if (u->help_scroll < 0)
        u->help_scroll = 0;
    for (int i = 0; i < rows && u->help_scroll + i < hl.n; i++) {
        int k = u->help_scroll + i;
        attr_t a = hl.style[k] == 1 ? ui_attr(&u->theme, UI_VALUE) | A_BOLD : an;
        if (hl.style[k] == 2) {
            /* the key in its own colour */
            const char *t = hl.text[k];
            int lead = 4;
            const char *sp = strchr(t + lead, ' ');
            int klen = sp ? (int)(sp - t - lead) : 0;
            char key[64];
            snprintf(key, sizeof key, "%.*s", klen < 63 ? klen : 63, t + lead);
            ui_put(win, 1 + i, 1, t, w - 2, an);
            ui_put(win, 1 + i, 1 + lead, key, w - 2 - lead, ui_attr(&u->theme, UI_HINT_KEY));
        } else {
            ui_put(win, 1 + i, 1, hl.text[k], w - 2, a);
        }
    }
    char pos[64];
    snprintf(pos, sizeof pos, " %d-%d of %d  Esc closes ", u->help_scroll + 1,
             u->help_scroll + rows < hl.n ? u->help_scroll + rows : hl.n, hl.n);
    ui_put(win, h - 1, w - 2 - ui_strwidth(pos), pos, w - 2, ui_attr(&u->theme, UI_LABEL));
    free_lines(&hl);
    wnoutrefresh(win);
}

int ui_help_key(ui *u, ui_key k)
{
    int page = u->rows - 6;
    if ((!k.fkey && (k.code == 27 || k.code == 'q' || k.code == '?')) || (k.fkey && k.code == KEY_F(1))) {
        u->help_open = 0;
        return UI_HANDLED | UI_RELAYOUT;
    }
    if (k.fkey) {
        switch (k.code) {
        case KEY_UP: u->help_scroll--; break;
        case KEY_DOWN: u->help_scroll++; break;
        case KEY_PPAGE: u->help_scroll -= page; break;
        case KEY_NPAGE: u->help_scroll += page; break;
        case KEY_HOME: u->help_scroll = 0; break;
        case KEY_END: u->help_scroll = 1 << 20; break;
        default: return UI_HANDLED;
        }
    } else if (k.code == 'j' || k.code == ' ') {
        u->help_scroll += k.code == ' ' ? page : 1;
    } else if (k.code == 'k') {
        u->help_scroll--;
    }
    return UI_HANDLED | UI_REDRAW;
}
