/* Completion by context for the explorer's command line: the command first
 * (one or two words), then what the command's table row says its arguments
 * are.  The line REPL completes the same way (repl.c); its completer is
 * static there, so the explorer has this one over the same tables:
 * ps_commands_each for names and ps_complete kinds, addr_complete for
 * tensors and views. */
#include <stdlib.h>
#include <string.h>

#include <readline/readline.h>

#include "repl/addr.h"
#include "repl/repl.h"
#include "ui/ui.h"

typedef struct cands {
    char **items;
    int n, cap;
    const char *prefix;
} cands;

static void add(cands *c, const char *s)
{
    if (strncmp(s, c->prefix, strlen(c->prefix)))
        return;
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->items[i], s))
            return;
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 32;
        char **p = realloc(c->items, sizeof *p * (size_t)cap);
        if (!p)
            return;
        c->items = p;
        c->cap = cap;
    }
    char *d = strdup(s);
    if (d)
        c->items[c->n++] = d;
}

static void add_addr(const char *candidate, void *ctx)
{
    add(ctx, candidate);
}

/* First words of every command (not "="). */
static void visit_first(const ps_command *cmd, void *ctx)
{
    char word[64];
    snprintf(word, sizeof word, "%s", cmd->name);
    char *sp = strchr(word, ' ');
    if (sp)
        *sp = '\0';
    if (strcmp(word, "="))
        add(ctx, word);
}

typedef struct second { cands *c; const char *first; } second;

static void visit_second(const ps_command *cmd, void *ctx)
{
    second *s = ctx;
    size_t n = strlen(s->first);
    if (!strncmp(cmd->name, s->first, n) && cmd->name[n] == ' ')
        add(s->c, cmd->name + n + 1);
}

static const char *const settings[] = {"temperature", "top-k", "top-p", "seed", "threads", "top", NULL};
static const char *const train_settings[] = {"optimizer", "lr", "schedule", "warmup", "decay-steps", "min-lr",
                                             "batch", "seq", "weight-decay", "clip", "eval-every", "seed", NULL};

/* Readline's match list: [0] the common prefix, then the candidates. */
static char **to_matches(cands *c)
{
    if (c->n == 0) {
        free(c->items);
        return NULL;
    }
    char **m = malloc(sizeof *m * (size_t)(c->n + 2));
    if (!m) {
        for (int i = 0; i < c->n; i++)
            free(c->items[i]);
        free(c->items);
        return NULL;
    }
    size_t common = strlen(c->items[0]);
    for (int i = 1; i < c->n; i++) {
        size_t k = 0;
        while (k < common && c->items[i][k] == c->items[0][k])
            k++;
        common = k;
    }
    m[0] = c->n == 1 ? strdup(c->items[0]) : strndup(c->items[0], common);
    for (int i = 0; i < c->n; i++)
        m[i + 1] = c->items[i];
    m[c->n + 1] = NULL;
    if (c->n == 1) {
        m[1] = NULL;
        free(c->items[0]);
    }
    free(c->items);
    return m;
}

char **ui_complete(ps_session *s, const char *line, const char *text, int start, int addr_only,
                   int *files)
{
    cands c = {.prefix = text};
    *files = 0;
    if (addr_only) {
        addr_complete(s->lm.model, s->lm.tok, text, add_addr, &c);
        return to_matches(&c);
    }
    char *head = strndup(line, (size_t)start);
    char **words = NULL;
    int n = head ? ps_split_line(head, &words, NULL) : -1;
    free(head);
    if (n <= 0) {
        /* the first word: a command, or an address to show or assign */
        ps_commands_each(visit_first, &c);
        addr_complete(s->lm.model, s->lm.tok, text, add_addr, &c);
    } else {
        const ps_command *cmd = NULL;
        if (n >= 2) {
            char two[128];
            snprintf(two, sizeof two, "%s %s", words[0], words[1]);
            cmd = ps_command_find(two);
        }
        if (!cmd)
            cmd = ps_command_find(words[0]);
        if (!cmd && n == 1) {
            second x = {&c, words[0]};
            ps_commands_each(visit_second, &x);
            if (c.n == 0 && strchr(line, '='))
                addr_complete(s->lm.model, s->lm.tok, text, add_addr, &c);
        } else if (cmd) {
            int arg = n - (strchr(cmd->name, ' ') ? 2 : 1);   /* which argument */
            switch (cmd->complete) {
            case PS_COMPLETE_ADDR:
                if (arg == 0)
                    addr_complete(s->lm.model, s->lm.tok, text, add_addr, &c);
                else if (!strcmp(cmd->name, "export"))
                    *files = 1;
                break;
            case PS_COMPLETE_SETTING:
                for (int i = 0; arg == 0 && settings[i]; i++)
                    add(&c, settings[i]);
                break;
            case PS_COMPLETE_TRAIN:
                for (int i = 0; arg == 0 && train_settings[i]; i++)
                    add(&c, train_settings[i]);
                break;
            case PS_COMPLETE_COMMAND:
                ps_commands_each(visit_first, &c);
                break;
            case PS_COMPLETE_FILE:
                *files = 1;
                break;
            default:
                break;
            }
        }
    }
    ps_words_free(words, n);
    return to_matches(&c);
}
