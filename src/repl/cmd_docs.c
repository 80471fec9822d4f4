/* `paramscope commands`: the command language's reference, made from the
 * command table, so that docs/commands.md cannot drift from the code (a test
 * compares them). */
#include <stdio.h>
#include <string.h>

#include "repl/command.h"
#include "repl/subcommands.h"

typedef struct md_ctx { FILE *f; const char *group; } md_ctx;

static void md_visit(const ps_command *c, void *p)
{
    md_ctx *m = p;
    if (!m->group || strcmp(m->group, c->group)) {
        m->group = c->group;
        fprintf(m->f, "\n## %s\n", c->group);
    }
    if (!strcmp(c->name, "="))
        fprintf(m->f, "\n### `ADDR = VALUE`\n\n%s.\n", c->summary);
    else
        fprintf(m->f, "\n### `%s%s%s`\n\n%s.\n", c->name, *c->args ? " " : "", c->args, c->summary);
    if (*c->help) {
        fputs("\n```\n", m->f);
        fputs(c->help, m->f);
        fputs("```\n", m->f);
    }
}

static void text_visit(const ps_command *c, void *p)
{
    md_ctx *m = p;
    if (!m->group || strcmp(m->group, c->group)) {
        m->group = c->group;
        fprintf(m->f, "\n%s\n", c->group);
    }
    char head[96];
    snprintf(head, sizeof head, "%s%s%s", c->name, *c->args ? " " : "", c->args);
    fprintf(m->f, "  %-28s %s\n", head, c->summary);
}

int ps_cmd_commands(int argc, char **argv)
{
    int markdown = argc > 1 && !strcmp(argv[1], "--markdown");
    if (argc > 1 && !markdown) {
        if (!strcmp(argv[1], "--help")) {
            puts("usage: paramscope commands [--markdown]\n\nLists the command language of the prompt "
                 "and the explorer; --markdown prints docs/commands.md.");
            return PS_EXIT_OK;
        }
        fprintf(stderr, "paramscope commands: unknown option '%s'\n", argv[1]);
        return PS_EXIT_USAGE;
    }
    md_ctx m = {stdout, NULL};
    if (markdown) {
        fputs("# The command language\n\n"
              "Every command below works at the `paramscope>` prompt, in the explorer's\n"
              "command line, in scripts (`--script FILE`, `source FILE`) and on standard\n"
              "input.  This page is generated from the command table by\n"
              "`paramscope commands --markdown`; a test fails when they differ.\n\n"
              "Two forms have no command word: a line that is just an ADDR shows it, and\n"
              "`ADDR = VALUE` sets it.  ADDR is a tensor, a view, an element or a slice;\n"
              "see [addresses.md](addresses.md).\n", stdout);
        ps_commands_each(md_visit, &m);
    } else {
        ps_commands_each(text_visit, &m);
    }
    return PS_EXIT_OK;
}
