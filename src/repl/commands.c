/* The command table as a whole: lookup, suggestions, and helpers shared by
 * the handlers. */
#include <stdarg.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "repl/command.h"

static const ps_command *const groups[] = {
    ps_cmds_predict, ps_cmds_inside, ps_cmds_inspect, ps_cmds_edit, ps_cmds_train, ps_cmds_misc,
};

void ps_commands_each(ps_command_visit fn, void *ctx)
{
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
        for (const ps_command *c = groups[g]; c->name; c++)
            fn(c, ctx);
}

const ps_command *ps_command_find(const char *name)
{
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
        for (const ps_command *c = groups[g]; c->name; c++)
            if (!strcmp(c->name, name))
                return c;
    return NULL;
}

/* Levenshtein distance with adjacent transpositions, small strings only. */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    int d[41][41];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}

typedef struct suggest_ctx {
    const char *name;
    int n;
    char best[3][64];         /* first words of the nearest commands */
    int dist[3];
} suggest_ctx;

static void suggest_visit(const ps_command *c, void *p)
{
    suggest_ctx *s = p;
    char first[64];
    snprintf(first, sizeof first, "%s", c->name);
    char *sp = strchr(first, ' ');
    if (sp)
        *sp = '\0';
    int d = edit_distance(s->name, first);
    if (d > (strlen(s->name) <= 3 ? 1 : 2) || !strcmp(first, "="))
        return;
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->best[i], first))
            return;
    int at = s->n;
    while (at > 0 && d < s->dist[at - 1])
        at--;
    if (at >= 3)
        return;
    for (int j = (s->n < 3 ? s->n : 2); j > at; j--) {
        memcpy(s->best[j], s->best[j - 1], sizeof s->best[j]);
        s->dist[j] = s->dist[j - 1];
    }
    memcpy(s->best[at], first, sizeof first);
    s->dist[at] = d;
    if (s->n < 3)
        s->n++;
}

void ps_command_suggest(const char *name, char *buf, size_t size)
{
    suggest_ctx s = {.name = name};
    ps_commands_each(suggest_visit, &s);
    buf[0] = '\0';
    for (int i = 0; i < s.n; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s'%s'", i == 0 ? "" : (i == s.n - 1 ? " or " : ", "), s.best[i]);
    }
}

int ps_fail(ps_out *out, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ps_error_vset(&out->err, code, fmt, ap);   /* escapes control bytes: one line */
    va_end(ap);
    return code;
}

int ps_parse_double(const char *text, const char *what, double *v, ps_out *out)
{
    const char *why = ps_number_read(text, v);
    if (why)
        return ps_fail(out, PS_ERR_INVALID, "%s: '%s' %s", what, text, why);
    return PS_OK;
}

int ps_parse_long(const char *text, const char *what, long lo, long hi, long *v, ps_out *out)
{
    char *end;
    errno = 0;
    long d = strtol(text, &end, 10);
    if (end == text || *end || errno)
        return ps_fail(out, PS_ERR_INVALID, "%s: '%s' is not a whole number", what, text);
    if (d < lo || d > hi)
        return ps_fail(out, PS_ERR_RANGE, "%s: %ld is not in [%ld, %ld]", what, d, lo, hi);
    *v = d;
    return PS_OK;
}
