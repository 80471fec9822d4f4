/* paramscope — the command language: one table of commands is the single
 * source for dispatch, help, completion and docs/commands.md.
 *
 * A handler gets the session, its arguments (argv[0] is the first argument,
 * not the command's name) and an output; it prints to out->f and returns 0,
 * or a PS_ERR_* code with a one-line message in out->err.  A handler that
 * fails changes nothing. */
#ifndef PARAMSCOPE_REPL_COMMAND_H
#define PARAMSCOPE_REPL_COMMAND_H

#include <stdio.h>

#include "repl/session.h"

typedef struct ps_out {
    FILE *f;                  /* where results go */
    ps_error err;             /* the failure's message */
    int utf8;                 /* block characters allowed */
    int width;                /* columns available (80 when unknown) */
} ps_out;

/* What the arguments are, for completion. */
typedef enum ps_complete {
    PS_COMPLETE_NONE,
    PS_COMPLETE_ADDR,         /* tensor names and views */
    PS_COMPLETE_FILE,
    PS_COMPLETE_SETTING,      /* names for `set` */
    PS_COMPLETE_COMMAND,      /* names for `help` */
    PS_COMPLETE_TRAIN,        /* names for `train set` */
} ps_complete;

enum {
    PS_CMD_RAW = 1 << 0,      /* argv[0] is the rest of the line, verbatim (prompts) */
    PS_CMD_EDITS = 1 << 1,    /* changes parameters (queued while training runs) */
    PS_CMD_ANY_MODEL = 1 << 2, /* runs even when the model's mapped file changed
                                 underneath (load, help, quit, history): every
                                 other command refuses then, since the weights
                                 not yet edited are no longer the file's */
};

typedef int (*ps_cmd_fn)(ps_session *s, int argc, char **argv, ps_out *out);

typedef struct ps_command {
    const char *name;         /* "scale", or two words: "train step" */
    const char *args;         /* "ADDR FACTOR"; "" for none */
    const char *summary;      /* one line */
    const char *help;         /* a paragraph or more; lines end in \n */
    const char *group;        /* "Predictions", "Looking at parameters", ... */
    ps_complete complete;
    int min_args, max_args;   /* max_args -1: any number */
    unsigned flags;
    ps_cmd_fn run;
} ps_command;

/* The groups, each terminated by an entry with name NULL. */
extern const ps_command ps_cmds_predict[];   /* cmd_predict.c */
extern const ps_command ps_cmds_inspect[];   /* cmd_inspect.c */
extern const ps_command ps_cmds_edit[];      /* cmd_edit.c */
extern const ps_command ps_cmds_train[];     /* cmd_train_repl.c */
extern const ps_command ps_cmds_inside[];    /* cmd_inside.c */
extern const ps_command ps_cmds_misc[];      /* cmd_misc.c */

/* Every command, in table order, for help, completion and docs. */
typedef void (*ps_command_visit)(const ps_command *c, void *ctx);
void ps_commands_each(ps_command_visit fn, void *ctx);

/* The command called name ("train step"), or NULL. */
const ps_command *ps_command_find(const char *name);

/* Up to 3 nearest command names for an unknown one, as "a, b or c" in buf
 * (empty when none is close). */
void ps_command_suggest(const char *name, char *buf, size_t size);

/* ---- shared helpers for handlers ---- */

/* Parses a whole-string number; on failure fills out->err naming what. */
int ps_parse_double(const char *text, const char *what, double *v, ps_out *out);
int ps_parse_long(const char *text, const char *what, long lo, long hi, long *v, ps_out *out);

/* Sets out->err and returns code (handlers: return ps_fail(out, ...)). */
int ps_fail(ps_out *out, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
