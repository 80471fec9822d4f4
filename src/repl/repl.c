/* Reading and running lines.  One path serves the terminal, scripts,
 * `source` and standard input, so that a lesson typed once replays the same. */
#include "repl/repl.h"

#include "paramscope/model_file.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "repl/addr.h"

/* ---- splitting a line into words ---- */

void ps_words_free(char **argv, int argc)
{
    if (!argv)
        return;
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    free(argv);
}

int ps_split_line(const char *line, char ***argv_out, ps_error *err)
{
    size_t n = strlen(line);
    char **argv = calloc(n / 2 + 2, sizeof *argv);
    char *buf = malloc(n + 1);
    int argc = 0;
    if (!argv || !buf) {
        free(argv);
        free(buf);
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    const char *p = line;
    while (*p) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        size_t len = 0;
        int depth = 0;
        char quote = 0;
        const char *start = p;
        /* A quote at the start of a word quotes the word; inside brackets
         * quotes belong to the address (wte["ice cream"]) and are kept. */
        if (*p == '"' || *p == '\'') {
            quote = *p++;
            while (*p && *p != quote) {
                if (*p == '\\' && quote == '"' && p[1])
                    p++;
                buf[len++] = *p++;
            }
            if (*p != quote) {
                ps_error_set(err, PS_ERR_INVALID, "unbalanced %c quote in: %s", quote, start);
                goto fail;
            }
            p++;
        } else {
            while (*p && (depth > 0 || quote || !isspace((unsigned char)*p))) {
                if (quote) {
                    if (*p == '\\' && p[1])
                        buf[len++] = *p++;
                    else if (*p == quote)
                        quote = 0;
                } else if (*p == '"' && depth > 0) {
                    quote = '"';
                } else if (*p == '[') {
                    depth++;
                } else if (*p == ']') {
                    depth--;
                }
                buf[len++] = *p++;
            }
            if (quote || depth > 0) {
                ps_error_set(err, PS_ERR_INVALID, "unbalanced %s in: %s", quote ? "quote" : "bracket", start);
                goto fail;
            }
        }
        buf[len] = '\0';
        argv[argc] = strdup(buf);
        if (!argv[argc]) {
            ps_error_set(err, PS_ERR_NOMEM, "out of memory");
            goto fail;
        }
        argc++;
    }
    free(buf);
    *argv_out = argv;
    return argc;
fail:
    free(buf);
    ps_words_free(argv, argc);
    return -1;
}

/* ---- running one line ---- */

/* Position of an assignment's '=' outside brackets and quotes, or -1. */
static long find_assign(const char *line)
{
    int depth = 0;
    char quote = 0;
    for (const char *p = line; *p; p++) {
        if (quote) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == quote)
                quote = 0;
        } else if (*p == '"' || *p == '\'') {
            quote = *p;
        } else if (*p == '[') {
            depth++;
        } else if (*p == ']') {
            depth--;
        } else if (*p == '=' && depth == 0) {
            return p - line;
        }
    }
    return -1;
}

static char *trimmed(const char *s, size_t n)
{
    while (n && isspace((unsigned char)*s))
        s++, n--;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    return strndup(s, n);
}

static int run_command(ps_session *s, const ps_command *c, int argc, char **argv, ps_out *out)
{
    if (argc < c->min_args || (c->max_args >= 0 && argc > c->max_args))
        return ps_fail(out, PS_ERR_INVALID, "usage: %s%s%s", c->name, *c->args ? " " : "", c->args);
    /* one fstat: a mapped model file truncated or rewritten by another
     * program has silently changed the weights not yet edited */
    ps_error why;
    if (!(c->flags & PS_CMD_ANY_MODEL) && ps_model_file_check(s->lm.model, &why))
        return ps_fail(out, PS_ERR_STATE, "%s; `load` it again (the edits so far: `history`)", why.msg);
    return c->run(s, argc, argv, out);
}

/* Runs a PS_CMD_RAW command on rest, the line after the command's words:
 * one blank separates them, and the rest is the text exactly as typed, since
 * a prompt's own spaces are tokens ("Hello world " ends in GPT-2's id 220). */
static int run_raw(ps_session *s, const ps_command *c, const char *rest, ps_out *out)
{
    if (*rest == ' ' || *rest == '\t')
        rest++;
    char *raw = strdup(rest);
    char *argv[1] = {raw};
    int rc = raw ? run_command(s, c, *raw ? 1 : 0, argv, out) : ps_fail(out, PS_ERR_NOMEM, "out of memory");
    free(raw);
    return rc;
}

/* The second words of two-word commands starting with `first`, or "". */
typedef struct subs_ctx { const char *first; char list[256]; } subs_ctx;

static void subs_visit(const ps_command *c, void *p)
{
    subs_ctx *x = p;
    size_t n = strlen(x->first);
    if (!strncmp(c->name, x->first, n) && c->name[n] == ' ') {
        size_t len = strlen(x->list);
        snprintf(x->list + len, sizeof x->list - len, "%s%s", len ? ", " : "", c->name + n + 1);
    }
}

int ps_repl_exec(ps_session *s, const char *line, ps_out *out)
{
    ps_error_clear(&out->err);
    const char *p = line;
    while (isspace((unsigned char)*p))
        p++;
    if (!*p || *p == '#')
        return PS_OK;

    /* A one-word command that takes the rest of the line verbatim (a
     * prompt) is found before anything else looks at the line, since a
     * prompt need not parse: "predict a [b" is a prompt, not a bracket
     * error, and "predict 2 + 2 =" not an assignment. */
    size_t w0 = 0;
    while (p[w0] && !isspace((unsigned char)p[w0]))
        w0++;
    char first[64];
    if (w0 < sizeof first) {
        memcpy(first, p, w0);
        first[w0] = '\0';
        const ps_command *rc0 = ps_command_find(first);
        subs_ctx x = {.first = first};
        ps_commands_each(subs_visit, &x);
        if (rc0 && (rc0->flags & PS_CMD_RAW) && !x.list[0])
            return run_raw(s, rc0, p + w0, out);
    }

    long eq = find_assign(p);
    if (eq >= 0) {
        char *argv[2] = {trimmed(p, (size_t)eq), trimmed(p + eq + 1, strlen(p + eq + 1))};
        int rc;
        const ps_command *c = ps_command_find("=");
        if (!argv[0] || !argv[1])
            rc = ps_fail(out, PS_ERR_NOMEM, "out of memory");
        else if (!c)
            rc = ps_fail(out, PS_ERR_NOT_FOUND, "assignment is not available");
        else if (!*argv[0] || !*argv[1])
            rc = ps_fail(out, PS_ERR_INVALID, "usage: ADDR = VALUE");
        else
            rc = run_command(s, c, 2, argv, out);
        free(argv[0]);
        free(argv[1]);
        return rc;
    }

    char **words = NULL;
    int n = ps_split_line(p, &words, &out->err);
    if (n < 0)
        return out->err.code;
    const ps_command *c = NULL;
    int used = 0;
    if (n >= 2) {
        char two[128];
        snprintf(two, sizeof two, "%s %s", words[0], words[1]);
        if ((c = ps_command_find(two)))
            used = 2;
    }
    if (!c && (c = ps_command_find(words[0])))
        used = 1;
    int rc;
    if (c && (c->flags & PS_CMD_RAW)) {
        /* the rest of the line after the command's words, verbatim */
        const char *rest = p;
        for (int w = 0; w < used; w++) {
            while (isspace((unsigned char)*rest)) rest++;
            while (*rest && !isspace((unsigned char)*rest)) rest++;
        }
        rc = run_raw(s, c, rest, out);
    } else if (c) {
        rc = run_command(s, c, n - used, words + used, out);
    } else {
        subs_ctx x = {.first = words[0]};
        ps_commands_each(subs_visit, &x);
        if (x.list[0]) {
            rc = ps_fail(out, PS_ERR_INVALID, "'%s' needs one of: %s", words[0], x.list);
        } else if (n == 1 && (strchr(words[0], '.') || strchr(words[0], '[') ||
                              ps_model_find(s->lm.model, words[0]))) {
            rc = run_command(s, ps_command_find("show"), 1, words, out);
        } else {
            char sug[256];
            ps_command_suggest(words[0], sug, sizeof sug);
            rc = ps_fail(out, PS_ERR_NOT_FOUND, "unknown command '%s'%s%s%s", words[0],
                         sug[0] ? "; did you mean " : " (type `help` for the list)", sug,
                         sug[0] ? "?" : "");
        }
    }
    ps_words_free(words, n);
    return rc;
}

/* ---- scripts and standard input ---- */

int ps_repl_run_stream(ps_session *s, FILE *in, const char *name, const ps_repl_opts *o,
                       ps_out *out)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int failed = 0;
    while (!s->quit && (len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';      /* a script written with CRLF line ends */
        if (o->echo) {
            const char *q = line;
            while (isspace((unsigned char)*q)) q++;
            if (*q && *q != '#') {
                fputs("> ", out->f);
                ps_put_token(out->f, line);      /* a script's bytes, escaped */
                fputc('\n', out->f);
            }
        }
        s->interrupt = 0;
        if (ps_repl_exec(s, line, out)) {
            fflush(out->f);
            char shown[256];
            fprintf(stderr, "%s:%ld: %s\n", ps_printable(name, shown, sizeof shown), lineno, out->err.msg);
            failed++;
            if (o->bail) {
                free(line);
                return -1;
            }
        }
        fflush(out->f);
    }
    free(line);
    return failed;
}

/* ---- the interactive prompt ---- */

static ps_session *rl_session;

typedef struct gen_state {
    char **items;
    int n, next;
} gen_state;

static gen_state gen;

static void gen_reset(void)
{
    for (int i = gen.next; i < gen.n; i++)
        free(gen.items[i]);
    free(gen.items);
    memset(&gen, 0, sizeof gen);
}

static void gen_add(const char *cand, void *ctx)
{
    const char *prefix = ctx;
    if (strncmp(cand, prefix, strlen(prefix)))
        return;
    char **items = realloc(gen.items, sizeof *items * (size_t)(gen.n + 1));
    if (!items)
        return;
    gen.items = items;
    gen.items[gen.n] = strdup(cand);
    if (gen.items[gen.n])
        gen.n++;
}

static char *gen_next(const char *text, int state)
{
    (void)text;
    if (gen.next < gen.n)
        return gen.items[gen.next++];   /* readline frees it */
    return NULL;
}

typedef struct cmd_complete_ctx { const char *prefix; int first_word_only; } cmd_complete_ctx;

static void cmd_visit(const ps_command *c, void *p)
{
    const char *prefix = p;
    char word[64];
    snprintf(word, sizeof word, "%s", c->name);
    char *sp = strchr(word, ' ');
    if (sp)
        *sp = '\0';
    if (!strcmp(word, "="))
        return;
    for (int i = 0; i < gen.n; i++)
        if (!strcmp(gen.items[i], word))
            return;
    gen_add(word, (void *)prefix);
}

typedef struct second_ctx { const char *first; const char *prefix; } second_ctx;

static void second_visit(const ps_command *c, void *p)
{
    second_ctx *x = p;
    size_t n = strlen(x->first);
    if (!strncmp(c->name, x->first, n) && c->name[n] == ' ')
        gen_add(c->name + n + 1, (void *)x->prefix);
}

static void complete_addr(const char *cand, void *ctx)
{
    gen_add(cand, ctx);
}

static const char *const setting_names[] = {"temperature", "top-k", "top-p", "seed", "threads", "top", NULL};

static char **complete(const char *text, int start, int end)
{
    (void)end;
    gen_reset();
    rl_attempted_completion_over = 1;
    char *head = strndup(rl_line_buffer, (size_t)start);
    char **words = NULL;
    int n = head ? ps_split_line(head, &words, NULL) : -1;
    free(head);
    if (n <= 0) {
        ps_commands_each(cmd_visit, (void *)text);
        addr_complete(rl_session->lm.model, rl_session->lm.tok, text, complete_addr, (void *)text);
    } else {
        const ps_command *c = NULL;
        if (n >= 2) {
            char two[128];
            snprintf(two, sizeof two, "%s %s", words[0], words[1]);
            c = ps_command_find(two);
        }
        if (!c)
            c = ps_command_find(words[0]);
        if (!c && n == 1) {
            second_ctx x = {words[0], text};
            ps_commands_each(second_visit, &x);
        } else if (c) {
            switch (c->complete) {
            case PS_COMPLETE_ADDR:
                addr_complete(rl_session->lm.model, rl_session->lm.tok, text, complete_addr, (void *)text);
                break;
            case PS_COMPLETE_SETTING:
                for (int i = 0; setting_names[i]; i++)
                    gen_add(setting_names[i], (void *)text);
                break;
            case PS_COMPLETE_COMMAND:
                ps_commands_each(cmd_visit, (void *)text);
                break;
            case PS_COMPLETE_FILE:
                ps_words_free(words, n);
                rl_attempted_completion_over = 0;
                return NULL;   /* readline's own file name completion */
            default:
                break;
            }
        }
    }
    ps_words_free(words, n);
    if (gen.n == 0)
        return NULL;
    return rl_completion_matches(text, gen_next);
}

char *ps_history_path(void)
{
    const char *state = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    char dir[4096];
    if (state && *state)
        snprintf(dir, sizeof dir, "%s/paramscope", state);
    else if (home && *home)
        snprintf(dir, sizeof dir, "%s/.local/state/paramscope", home);
    else
        return NULL;
    /* mkdir -p, quietly: history is a convenience */
    for (char *q = dir + 1; *q; q++)
        if (*q == '/') {
            *q = '\0';
            mkdir(dir, 0700);
            *q = '/';
        }
    mkdir(dir, 0700);
    size_t n = strlen(dir) + 16;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/history", dir);
    return p;
}

static char *pending_line;
static int have_line;

static void on_line(char *line)
{
    pending_line = line;
    have_line = 1;
    rl_callback_handler_remove();
}

int ps_repl_interactive(ps_session *s, ps_out *out)
{
    rl_session = s;
    rl_readline_name = "paramscope";
    rl_attempted_completion_function = complete;
    rl_basic_word_break_characters = " \t\n";
    rl_catch_signals = 0;
    char *hist = ps_history_path();
    using_history();
    if (hist && read_history(hist) != 0)
        write_history(hist);   /* append_history needs the file to exist */
    int interrupts = 0;
    while (!s->quit) {
        have_line = 0;
        pending_line = NULL;
        rl_callback_handler_install("paramscope> ", on_line);
        s->interrupt = 0;
        while (!have_line) {
            fd_set fds;
            FD_ZERO(&fds);
            FD_SET(STDIN_FILENO, &fds);
            int r = select(STDIN_FILENO + 1, &fds, NULL, NULL, NULL);
            if (r < 0 && errno == EINTR) {
                if (s->interrupt) {
                    /* Ctrl-C: clear the line; twice at an empty prompt: leave */
                    s->interrupt = 0;
                    int empty = rl_end == 0;
                    if (empty && ++interrupts >= 2) {
                        rl_callback_handler_remove();
                        fputc('\n', stdout);
                        s->quit = 1;
                        break;
                    }
                    if (!empty)
                        interrupts = 0;
                    rl_replace_line("", 0);
                    rl_crlf();
                    if (empty)
                        fputs("(press Ctrl-C again or type quit to leave)\n", stdout);
                    rl_on_new_line();
                    rl_redisplay();
                }
                continue;
            }
            if (r > 0)
                rl_callback_read_char();
        }
        if (s->quit)
            break;
        if (!pending_line) {           /* end of input */
            fputc('\n', stdout);
            break;
        }
        interrupts = 0;
        const char *q = pending_line;
        while (isspace((unsigned char)*q)) q++;
        if (*q) {
            add_history(pending_line);
            if (hist)
                append_history(1, hist);
        }
        if (ps_repl_exec(s, pending_line, out))
            fprintf(stderr, "error: %s\n", out->err.msg);
        fflush(out->f);
        free(pending_line);
    }
    if (hist)
        history_truncate_file(hist, 2000);
    free(hist);
    gen_reset();
    return 0;
}
