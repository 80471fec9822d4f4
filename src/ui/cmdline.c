/* The command line and the log: readline inside ncurses, as tig's prompt.c
 * does it.  ncurses reads the keys; the command pane hands them to readline
 * through rl_getc_function (a small byte queue) and readline's callback
 * interface; rl_redisplay_function only marks the pane dirty, and drawing
 * reads rl_line_buffer and rl_point.  Readline never touches the terminal:
 * its terminal preparation is a no-op and its output goes to /dev/null.
 * Lines run through the worker (worker.h); what they print lands in the log.
 *
 * Readline keeps global state, hence the one global pointer below. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "repl/repl.h"
#include "ui/ui.h"

#define QUEUE 512
#define PROMPT ": "

typedef struct ui_cmd {
    unsigned char queue[QUEUE];
    int q_head, q_len;
    char *line;               /* accepted by readline, waiting to be run */
    int have_line;
    char *history;            /* the history file, or NULL */
    ui_pane_id came_from;
    /* asking for one value instead of a command */
    int asking;
    char ask_prompt[256];
    int ask_addr;
    ui_ask_fn ask_done;
    void *ask_ctx;
    FILE *devnull;
} ui_cmd;

static ui *g_ui;

/* ---- the log ---- */

void ui_log_clear(ui_log *log)
{
    for (long i = 0; i < log->count; i++)
        free(log->text[(log->first + i) % UI_LOG_LINES]);
    log->first = log->count = log->scroll = 0;
}

static void log_push(ui_log *log, ui_log_style style, const char *text, size_t n)
{
    /* tabs to spaces (settings print aligned with tabs) */
    size_t cap = n * 8 + 1, o = 0;
    char *line = malloc(cap);
    if (!line)
        return;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\t') {
            do
                line[o++] = ' ';
            while (o % 8);
        } else if (text[i] != '\r') {
            line[o++] = text[i];
        }
    }
    line[o] = '\0';
    long at;
    if (log->count == UI_LOG_LINES) {
        at = log->first;
        free(log->text[at]);
        log->first = (log->first + 1) % UI_LOG_LINES;
    } else {
        at = (log->first + log->count) % UI_LOG_LINES;
        log->count++;
    }
    log->text[at] = line;
    log->style[at] = (unsigned char)style;
    if (log->scroll > 0 && log->scroll < log->count)
        log->scroll++;        /* keep what the reader looks at in place */
}

void ui_log_add(ui *u, ui_log_style style, const char *text)
{
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        ui_log_style st = style;
        const char *s = p;
        if (n && (unsigned char)*s >= 1 && (unsigned char)*s <= 3) {
            st = *s == 1 ? UI_LOG_ECHO : *s == 2 ? UI_LOG_ERROR : UI_LOG_INFO;
            s++;
            n--;
        }
        log_push(&u->log, st, s, n);
        p = s + n + (nl ? 1 : 0);
    }
    ui_dirty(u, UI_PANE_CMD);
}

void ui_log_draw(ui *u, WINDOW *win, int y, int x, int h, int w)
{
    ui_log *log = &u->log;
    if (log->scroll > log->count - h)
        log->scroll = log->count - h > 0 ? log->count - h : 0;
    long end = log->count - log->scroll;
    long start = end - h > 0 ? end - h : 0;
    for (long i = start; i < end; i++) {
        long k = (log->first + i) % UI_LOG_LINES;
        ui_elem e = log->style[k] == UI_LOG_ECHO ? UI_LOG_CMD
                    : log->style[k] == UI_LOG_ERROR ? UI_LOG_ERR
                    : log->style[k] == UI_LOG_INFO ? UI_LABEL : UI_LOG;
        ui_put(win, y + (int)(i - start), x, log->text[k], w, ui_attr(&u->theme, e));
    }
    if (log->scroll > 0) {
        char tag[48];
        snprintf(tag, sizeof tag, " %ld lines below (PgDn) ", log->scroll);
        ui_put(win, y + h - 1, x + w - ui_strwidth(tag), tag, w, ui_attr(&u->theme, UI_WARN));
    }
}

/* ---- readline's side ---- */

static int rl_getc_queue(FILE *f)
{
    (void)f;
    ui_cmd *c = g_ui->cmd;
    if (c->q_len == 0)
        return EOF;
    int ch = c->queue[c->q_head];
    c->q_head = (c->q_head + 1) % QUEUE;
    c->q_len--;
    return ch;
}

static int rl_input_queued(void)
{
    return g_ui->cmd->q_len > 0;
}

static void rl_redisplay_pane(void)
{
    ui_dirty(g_ui, UI_PANE_CMD);
}

static void rl_prep_nothing(int meta)
{
    (void)meta;
}

static void rl_deprep_nothing(void)
{
}

static void on_line(char *line)
{
    ui_cmd *c = g_ui->cmd;
    free(c->line);
    c->line = line;
    c->have_line = 1;
}

static char **cmd_complete(const char *text, int start, int end)
{
    (void)end;
    rl_attempted_completion_over = 1;
    ui *u = g_ui;
    if (!ui_lock(u)) {
        ui_note(u, "busy: completion waits until the current phase or command ends");
        return NULL;
    }
    int files = 0;
    char **m = ui_complete(u->s, rl_line_buffer, text, start, u->cmd->asking && u->cmd->ask_addr, &files);
    ui_unlock(u);
    /* no space after an opened index or view: wte["  h.0.attn.q[ */
    if (m && !m[1]) {
        size_t n = strlen(m[0]);
        if (n && strchr("[\".", m[0][n - 1]))
            rl_completion_append_character = '\0';
    }
    if (files)
        rl_attempted_completion_over = 0;   /* readline completes file names */
    return m;
}

/* More than one candidate: list them in the log, in columns. */
static void rl_show_matches(char **matches, int n, int max_len)
{
    ui *u = g_ui;
    int width = u->panes[UI_PANE_CMD].w - 2;
    int colw = max_len + 2;
    int cols = width / (colw > 0 ? colw : 1);
    if (cols < 1)
        cols = 1;
    int shown = n < 200 ? n : 200;
    char line[1024];
    size_t o = 0;
    for (int i = 1; i <= shown; i++) {
        o += (size_t)snprintf(line + o, sizeof line - o, "%-*s", colw, matches[i]);
        if (i % cols == 0 || i == shown || o + (size_t)colw >= sizeof line) {
            ui_log_add(u, UI_LOG_INFO, line);
            o = 0;
        }
    }
    if (shown < n) {
        snprintf(line, sizeof line, "... and %d more", n - shown);
        ui_log_add(u, UI_LOG_INFO, line);
    }
}

static void install(ui_cmd *c)
{
    rl_callback_handler_install(c->asking ? c->ask_prompt : PROMPT, on_line);
}

static void feed(ui_cmd *c, const char *bytes, int n)
{
    for (int i = 0; i < n && c->q_len < QUEUE; i++) {
        c->queue[(c->q_head + c->q_len) % QUEUE] = (unsigned char)bytes[i];
        c->q_len++;
    }
    for (int guard = 0; c->q_len > 0 && !c->have_line && guard < QUEUE; guard++)
        rl_callback_read_char();
}

/* ---- history ---- */

/* ---- the pane ---- */

static void leave(ui *u)
{
    ui_cmd *c = u->cmd;
    if (c->asking) {
        ui_ask_fn done = c->ask_done;
        void *ctx = c->ask_ctx;
        c->asking = 0;
        rl_callback_handler_remove();
        rl_replace_line("", 0);
        install(c);
        if (done)
            done(u, NULL, ctx);
    }
    ui_focus(u, c->came_from == UI_PANE_CMD ? UI_PANE_PREDICT : c->came_from);
}

static void accept_line(ui *u)
{
    ui_cmd *c = u->cmd;
    char *line = c->line;
    c->line = NULL;
    c->have_line = 0;
    rl_callback_handler_remove();
    if (c->asking) {
        ui_ask_fn done = c->ask_done;
        void *ctx = c->ask_ctx;
        c->asking = 0;
        install(c);
        ui_focus(u, c->came_from == UI_PANE_CMD ? UI_PANE_PREDICT : c->came_from);
        if (done)
            done(u, line, ctx);
        free(line);
        return;
    }
    install(c);
    if (!line) {                   /* ^D on an empty line */
        leave(u);
        return;
    }
    const char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p) {
        add_history(line);
        if (c->history)
            append_history(1, c->history);
        u->log.scroll = 0;
        ui_worker_submit(u->w, line, 1);
    }
    free(line);
}

static void draw(ui *u, ui_pane *p)
{
    ui_cmd *c = u->cmd;
    werase(p->win);
    char extra[96];
    snprintf(extra, sizeof extra, "%s", u->log.scroll ? "PgUp PgDn scroll" : "");
    ui_title_row(u, p, extra);
    ui_log_draw(u, p->win, 1, 1, p->h - 2, p->w - 2);
    int y = p->h - 1;
    const char *prompt = rl_display_prompt ? rl_display_prompt : (c->asking ? c->ask_prompt : PROMPT);
    const char *buf = rl_line_buffer ? rl_line_buffer : "";
    int focus = u->focus == UI_PANE_CMD;
    int pw = ui_put(p->win, y, 0, prompt, p->w, ui_attr(&u->theme, UI_PROMPT));
    if (!focus && !*buf && !c->asking) {
        ui_put(p->win, y, pw, "press : (in the prompt: Esc) to type a command; help lists them", p->w - pw,
               ui_attr(&u->theme, UI_LABEL));
        return;
    }
    /* scroll the line so that the cursor shows */
    int point = rl_point < 0 ? 0 : rl_point;
    char *before = strndup(buf, (size_t)point);
    int cw = before ? ui_strwidth(before) : 0;
    free(before);
    int room = p->w - pw - 1;
    const char *shown = buf;
    int skip = cw > room ? cw - room : 0;
    while (skip > 0 && *shown) {
        char one[8] = {0};
        int n = 1;
        while ((shown[n] & 0xc0) == 0x80)
            n++;
        memcpy(one, shown, (size_t)n);
        skip -= ui_strwidth(one);
        shown += n;
    }
    ui_put(p->win, y, pw, shown, room + 1, ui_attr(&u->theme, UI_NORMAL));
    if (focus) {
        u->cursor_on = 1;
        u->cursor_y = p->y + y;
        u->cursor_x = p->x + pw + (cw > room ? room : cw);
    }
}

static void utf8_encode(int cp, char *out, int *n)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        *n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        *n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        *n = 3;
    } else {
        out[0] = (char)(0xf0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[3] = (char)(0x80 | (cp & 0x3f));
        *n = 4;
    }
}

static int on_key(ui *u, ui_pane *p, ui_key k)
{
    ui_cmd *c = u->cmd;
    ui_action act = ui_key_action(UI_SCOPE_CMD, k);
    int page = p->h > 4 ? p->h - 3 : 1;
    switch (act) {
    case UI_ACT_LEAVE:
        leave(u);
        return UI_HANDLED | UI_REDRAW;
    case UI_ACT_LOG_UP:
        u->log.scroll += page;
        return UI_HANDLED | UI_REDRAW;
    case UI_ACT_LOG_DOWN:
        u->log.scroll = u->log.scroll > page ? u->log.scroll - page : 0;
        return UI_HANDLED | UI_REDRAW;
    default:
        break;
    }
    if (k.fkey) {
        switch (k.code) {
        case KEY_UP: rl_get_previous_history(1, 0); break;
        case KEY_DOWN: rl_get_next_history(1, 0); break;
        case KEY_LEFT: rl_backward_char(1, 0); break;
        case KEY_RIGHT: rl_forward_char(1, 0); break;
        case KEY_HOME: rl_beg_of_line(1, 0); break;
        case KEY_END: rl_end_of_line(1, 0); break;
        case KEY_DC: rl_delete(1, 0); break;
        case KEY_BACKSPACE: feed(c, "\x7f", 1); break;
        case KEY_ENTER: feed(c, "\r", 1); break;
        default: return 0;
        }
    } else {
        char b[4];
        int n;
        if (k.code == '\n')
            k.code = '\r';
        if (k.code == 3)        /* ^C is the explorer's */
            return 0;
        utf8_encode(k.code, b, &n);
        feed(c, b, n);
    }
    /* a pasted burst may hold several lines */
    while (c->have_line) {
        accept_line(u);
        if (c->q_len && u->focus == UI_PANE_CMD)
            feed(c, NULL, 0);
        else
            c->q_len = 0;
    }
    ui_dirty(u, UI_PANE_CMD);
    return UI_HANDLED | UI_REDRAW;
}

static void on_resize(ui *u, ui_pane *p)
{
    rl_set_screen_size(1, p->w > 10 ? p->w : 10);
}

void ui_cmd_came_from(ui *u, ui_pane_id from)
{
    u->cmd->came_from = from;
}

void ui_cmd_ask(ui *u, const char *prompt, const char *initial, int complete_addr, ui_ask_fn done,
                void *ctx)
{
    ui_cmd *c = u->cmd;
    if (c->asking && c->ask_done)
        c->ask_done(u, NULL, c->ask_ctx);
    if (u->focus != UI_PANE_CMD)
        c->came_from = u->focus;
    c->asking = 1;
    snprintf(c->ask_prompt, sizeof c->ask_prompt, "%s", prompt);
    c->ask_addr = complete_addr;
    c->ask_done = done;
    c->ask_ctx = ctx;
    rl_callback_handler_remove();
    install(c);
    rl_replace_line(initial ? initial : "", 0);
    rl_point = rl_end;
    u->focus = UI_PANE_CMD;
    ui_dirty_all(u);
}

int ui_cmd_init(ui *u, ui_pane *p)
{
    ui_cmd *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    u->cmd = c;
    g_ui = u;
    p->title = "Command line and log";
    p->draw = draw;
    p->on_key = on_key;
    p->on_resize = on_resize;
    p->text_entry = 1;
    c->came_from = UI_PANE_PREDICT;
    c->devnull = fopen("/dev/null", "w");

    rl_readline_name = "paramscope";
    rl_catch_signals = 0;
    rl_catch_sigwinch = 0;
    rl_change_environment = 0;
    rl_prep_term_function = rl_prep_nothing;
    rl_deprep_term_function = rl_deprep_nothing;
    rl_getc_function = rl_getc_queue;
    rl_input_available_hook = rl_input_queued;
    rl_redisplay_function = rl_redisplay_pane;
    if (c->devnull)
        rl_outstream = c->devnull;
    rl_attempted_completion_function = cmd_complete;
    rl_completion_display_matches_hook = rl_show_matches;
    rl_basic_word_break_characters = " \t\n";
    using_history();
    c->history = ps_history_path();
    if (c->history)
        read_history(c->history);
    install(c);
    return 0;
}

void ui_cmd_free(ui *u)
{
    ui_cmd *c = u->cmd;
    if (!c)
        return;
    rl_callback_handler_remove();
    if (c->history) {
        history_truncate_file(c->history, 2000);
        free(c->history);
    }
    rl_outstream = stdout;
    if (c->devnull)
        fclose(c->devnull);
    free(c->line);
    free(c);
    u->cmd = NULL;
    ui_log_clear(&u->log);
    g_ui = NULL;
}
