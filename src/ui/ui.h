/* paramscope — the explorer's insides: the state every pane sees, the pane
 * interface, the key table and the drawing helpers the panes share.  Only
 * files in src/ui/ include this header.
 *
 * Threads: everything here belongs to the UI thread.  The session is shared
 * with the worker (worker.h); the UI touches it only while it holds the
 * worker's session lock, and takes that lock with ui_worker_trylock so that
 * a long training phase never stalls a frame. */
#ifndef PARAMSCOPE_UI_UI_H
#define PARAMSCOPE_UI_UI_H

#ifndef NCURSES_WIDECHAR
#define NCURSES_WIDECHAR 1
#endif
#include <curses.h>
#include <stdint.h>

#include "repl/session.h"
#include "ui/theme.h"
#include "ui/worker.h"

/* What a key handler did; the main loop acts on the union of the flags. */
enum {
    UI_HANDLED = 1 << 0,      /* the key meant something here */
    UI_REDRAW = 1 << 1,       /* this pane (or the screen) needs drawing */
    UI_RELAYOUT = 1 << 2,     /* sizes or the set of visible panes changed */
    UI_QUIT = 1 << 3,         /* leave the explorer */
};

typedef enum ui_pane_id {
    UI_PANE_PREDICT,
    UI_PANE_TREE,
    UI_PANE_HEAT,
    UI_PANE_TRAIN,
    UI_PANE_INSIDE,           /* attention, the logit lens, attribution */
    UI_PANE_CMD,              /* the command line and the log above it */
    UI_PANE_COUNT,
} ui_pane_id;

/* A key as ncurses reports it: a character (fkey 0) or a KEY_* code. */
typedef struct ui_key {
    int code;
    int fkey;
} ui_key;

typedef struct ui ui;
typedef struct ui_pane ui_pane;

/* htop's Panel, ncdu's draw/key pairs. */
struct ui_pane {
    const char *title;
    void (*draw)(ui *u, ui_pane *p);
    int (*on_key)(ui *u, ui_pane *p, ui_key k);   /* UI_* flags, 0 if unused */
    void (*on_resize)(ui *u, ui_pane *p);         /* after the window moved */
    int text_entry;           /* printable keys are text here */
    WINDOW *win;              /* NULL while hidden */
    int y, x, h, w;
    int dirty;
};

/* ---- the key table: dispatch, hints and the help overlay ---- */

typedef enum ui_scope {
    UI_SCOPE_GLOBAL,          /* every pane, text fields too */
    UI_SCOPE_NAV,             /* every pane except text fields */
    UI_SCOPE_PREDICT,
    UI_SCOPE_TREE,
    UI_SCOPE_HEAT,
    UI_SCOPE_TRAIN,
    UI_SCOPE_INSIDE,
    UI_SCOPE_CMD,
    UI_SCOPE_HELP,
    UI_SCOPE_COUNT,
} ui_scope;

typedef enum ui_action {
    UI_ACT_NONE,
    /* global */
    UI_ACT_HELP, UI_ACT_NEXT_PANE, UI_ACT_PREV_PANE, UI_ACT_PROJECTOR, UI_ACT_SCHEME,
    UI_ACT_PHASE, UI_ACT_STEP, UI_ACT_TEN, UI_ACT_RUN, UI_ACT_QUIT, UI_ACT_INTERRUPT,
    UI_ACT_REFRESH, UI_ACT_COMMAND, UI_ACT_UNDO, UI_ACT_REDO, UI_ACT_GO_PREDICT,
    UI_ACT_GO_TENSORS, UI_ACT_GO_TRAIN, UI_ACT_GO_INSIDE,
    /* predict */
    UI_ACT_APPEND_TOP, UI_ACT_APPEND_SAMPLE, UI_ACT_TEMP_UP, UI_ACT_TEMP_DOWN,
    UI_ACT_TOPK, UI_ACT_TOPP, UI_ACT_BARS, UI_ACT_BASELINE, UI_ACT_CLEAR,
    /* tree */
    UI_ACT_UP, UI_ACT_DOWN, UI_ACT_OPEN, UI_ACT_CLOSE, UI_ACT_TOGGLE, UI_ACT_ADDRESS,
    UI_ACT_PAGE_UP, UI_ACT_PAGE_DOWN, UI_ACT_HOME, UI_ACT_END,
    /* heatmap */
    UI_ACT_LEFT, UI_ACT_RIGHT, UI_ACT_PAN_UP, UI_ACT_PAN_DOWN, UI_ACT_PAN_LEFT,
    UI_ACT_PAN_RIGHT, UI_ACT_ZOOM_IN, UI_ACT_ZOOM_OUT, UI_ACT_FIT, UI_ACT_NUDGE_UP,
    UI_ACT_NUDGE_DOWN, UI_ACT_STEP_SMALLER, UI_ACT_STEP_LARGER, UI_ACT_ZERO,
    UI_ACT_TYPE_VALUE, UI_ACT_SHOW_VALUES, UI_ACT_SHOW_GRAD, UI_ACT_SHOW_UPDATE,
    UI_ACT_SHOW_DIFF, UI_ACT_FOLLOW, UI_ACT_SCALE, UI_ACT_VIEW_Q, UI_ACT_VIEW_K,
    UI_ACT_VIEW_V, UI_ACT_VIEW_NEURON, UI_ACT_VIEW_TOKEN, UI_ACT_VIEW_WHOLE,
    UI_ACT_REGION_NEXT, UI_ACT_REGION_PREV, UI_ACT_BACK,
    /* train */
    UI_ACT_EVAL,
    /* inside */
    UI_ACT_ABLATE,
    /* command line */
    UI_ACT_LOG_UP, UI_ACT_LOG_DOWN, UI_ACT_LEAVE,
} ui_action;

typedef struct ui_binding {
    ui_scope scope;
    int code;                 /* character or KEY_* */
    int fkey;
    const char *key_name;     /* as shown: "F5", "Tab", "+" */
    ui_action action;
    const char *help;         /* NULL: an alias, left out of hints and help */
    const char *hint;         /* a word or two for the hint line, or NULL */
} ui_binding;

extern const ui_binding ui_bindings[];   /* help.c; ends with scope UI_SCOPE_COUNT */

/* The action bound to k in scope, or UI_ACT_NONE. */
ui_action ui_key_action(ui_scope scope, ui_key k);
const char *ui_scope_name(ui_scope scope);

/* ---- the log (command output) ---- */

typedef enum ui_log_style {
    UI_LOG_TEXT,
    UI_LOG_ECHO,              /* the command as typed */
    UI_LOG_ERROR,
    UI_LOG_INFO,              /* the explorer's own notes */
} ui_log_style;

#define UI_LOG_LINES 4000

typedef struct ui_log {
    char *text[UI_LOG_LINES];
    unsigned char style[UI_LOG_LINES];
    long first, count;        /* ring: the oldest kept line, how many */
    long scroll;              /* lines scrolled back from the end */
} ui_log;

/* ---- the explorer ---- */

typedef enum ui_layout {
    UI_LAYOUT_PAGE,           /* one of predict / tensors / train at a time */
    UI_LAYOUT_SPLIT,          /* predict | tensors or train */
    UI_LAYOUT_FULL,           /* predict and train | tensors */
} ui_layout;

struct ui_predict;
struct ui_tree;
struct ui_heat;
struct ui_train;
struct ui_inside;
struct ui_cmd;

struct ui {
    ps_session *s;
    ui_worker *w;
    ui_theme theme;
    int utf8;                 /* block and braille characters allowed */
    int projector;            /* large bars, high contrast */
    int rows, cols;
    int too_small;
    ui_layout layout;

    ui_pane panes[UI_PANE_COUNT];
    ui_pane_id focus;
    ui_pane_id page;          /* the main pane shown in the page layout */
    ui_pane_id right;         /* tensors or train, beside predict */
    int need_layout;
    int any_dirty;
    ui_scheme scheme;         /* chosen with F3; the projector overrides it */
    int help_open;
    int help_scroll;
    WINDOW *help_win;

    /* what the UI knows of the model; rebuilt when `load` replaces it */
    ps_model *model_seen;     /* the session's model when this was built */
    char model_name[256];
    size_t n_params;
    ps_config cfg;
    uint64_t version;         /* the worker's version last seen */
    uint64_t params_version;  /* and its version of the parameters */
    ui_train_snap snap;       /* the worker's state, copied each frame */
    ps_point *hist_train, *hist_val;   /* the loss histories, copied */
    size_t n_hist_train, n_hist_val, cap_hist_train, cap_hist_val;
    uint64_t hist_epoch;

    struct ui_predict *pred;
    struct ui_tree *tree;
    struct ui_heat *heat;
    struct ui_train *train;
    struct ui_inside *inside;
    struct ui_cmd *cmd;
    ui_log log;

    int cursor_y, cursor_x;   /* where the focused text field wants the cursor, */
    int cursor_on;            /* in screen coordinates */

    char note[256];           /* one line in the title bar, for a while */
    double note_until;
    int interrupts;           /* ^C presses while idle */
};

/* ---- explorer.c ---- */

/* Takes the session lock if it is free (1), and then brings what the UI
 * knows of the model up to date (`load` may have replaced it).  Every read
 * of the session goes between ui_lock and ui_unlock. */
int ui_lock(ui *u);
void ui_unlock(ui *u);

/* An invariant: on failure the terminal is restored before aborting. */
#define UI_ASSERT(cond) ((cond) ? (void)0 : ui_assert_fail(#cond, __FILE__, __LINE__))
void ui_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));

double ui_now(void);                          /* seconds, monotonic */
void ui_note(ui *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ui_focus(ui *u, ui_pane_id id);
void ui_dirty(ui *u, ui_pane_id id);
void ui_dirty_all(ui *u);
/* Runs a command line through the worker, echoed in the log. */
void ui_run(ui *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- the panes: each file fills its ui_pane and owns its state ---- */
int ui_predict_init(ui *u, ui_pane *p);
void ui_predict_free(ui *u);
/* Each frame: asks the prediction thread for what changed (the prompt, the
 * parameters) and takes what it finished. */
void ui_predict_poll(ui *u);
/* The most likely next token now, for other panes ("T": its embedding). */
const char *ui_predict_top_token(ui *u);
/* The prompt as typed so far. */
const char *ui_predict_text(ui *u);

int ui_tree_init(ui *u, ui_pane *p);
void ui_tree_free(ui *u);
void ui_tree_rebuild(ui *u);                 /* under the session lock */
void ui_tree_ask_address(ui *u);             /* "show address:" in the command line */

int ui_heat_init(ui *u, ui_pane *p);
void ui_heat_free(ui *u);
/* Shows an address in the heatmap; 0, or a message in err. */
int ui_heat_open(ui *u, const char *addr, ps_error *err);
int ui_heat_needs(ui *u);                    /* as for the predictions */
void ui_heat_compute(ui *u);
void ui_heat_stale(ui *u);
void ui_heat_model_changed(ui *u);           /* under the session lock */

int ui_train_init(ui *u, ui_pane *p);
void ui_train_free(ui *u);

int ui_inside_init(ui *u, ui_pane *p);
void ui_inside_free(ui *u);
void ui_inside_poll(ui *u);                  /* asks and adopts, like ui_predict_poll */
void ui_inside_model_changed(ui *u);         /* under the session lock */

int ui_cmd_init(ui *u, ui_pane *p);
void ui_cmd_free(ui *u);
/* Asks for one line in the command line; done(u, text) runs on Enter (text
 * NULL on Esc).  complete_addr: Tab completes addresses. */
typedef void (*ui_ask_fn)(ui *u, const char *text, void *ctx);
void ui_cmd_ask(ui *u, const char *prompt, const char *initial, int complete_addr,
                ui_ask_fn done, void *ctx);
/* Esc in the command line goes back to this pane. */
void ui_cmd_came_from(ui *u, ui_pane_id from);

void ui_log_add(ui *u, ui_log_style style, const char *text);  /* splits lines */
void ui_log_clear(ui_log *log);
/* The log inside the command pane: lines above the prompt. */
void ui_log_draw(ui *u, WINDOW *win, int y, int x, int h, int w);

/* ---- help.c ---- */
void ui_help_draw(ui *u);
int ui_help_key(ui *u, ui_key k);
/* The hint line for the focused pane. */
void ui_hints_draw(ui *u, WINDOW *win, int y, int w);

/* ---- complete.c: completion by context ---- */
/* Candidates for the word text that starts at byte start of line: the
 * command first, then what its arguments are (tensor names and views,
 * settings, command names); addr_only: addresses whatever the line.  Returns
 * a readline match list (or NULL); *files is set when readline's own file
 * name completion should run instead.  Reads the model: hold the lock. */
char **ui_complete(ps_session *s, const char *line, const char *text, int start, int addr_only,
                   int *files);

/* ---- draw.c ---- */

/* Display width of a UTF-8 string (control bytes count 0, invalid bytes 1). */
int ui_strwidth(const char *s);
/* Draws s at (y, x), at most maxw cells; returns the cells drawn. */
int ui_put(WINDOW *w, int y, int x, const char *s, int maxw, attr_t a);
/* printf then ui_put. */
int ui_putf(WINDOW *w, int y, int x, int maxw, attr_t a, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* n cells of ch (a UTF-8 string of one cell). */
void ui_fill(WINDOW *w, int y, int x, int n, const char *ch, attr_t a);
/* A pane's title row: "─ Title ──── extra" with the focus shown. */
void ui_title_row(ui *u, ui_pane *p, const char *extra);
/* Compact numbers for labels: 0.0123, -1.2e-05, 3.14. */
const char *ui_fmt(double v, char *buf, size_t size);
/* The most precise of a few formats that fits width characters. */
const char *ui_fmt_width(double v, int width, char *buf, size_t size);
/* 16384 -> "16,384". */

/* A dot canvas: braille (2x4 dots per cell) or, without UTF-8, one dot per
 * cell drawn as a character. */
typedef struct ui_canvas {
    int w, h;                 /* cells */
    int dw, dh;               /* dots */
    int utf8;
    unsigned char *cells;     /* [h * w] braille bits */
} ui_canvas;

int ui_canvas_init(ui_canvas *c, int w, int h, int utf8);
void ui_canvas_free(ui_canvas *c);
void ui_canvas_clear(ui_canvas *c);
void ui_canvas_dot(ui_canvas *c, int x, int y);
void ui_canvas_line(ui_canvas *c, int x0, int y0, int x1, int y1);
/* Draws the set cells (empty ones are left alone, so canvases overlay). */
void ui_canvas_draw(const ui_canvas *c, WINDOW *win, int y, int x, attr_t a, const char *ascii_dot);

#endif
