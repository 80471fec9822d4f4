/* paramscope — reading and running command lines: the same path serves the
 * terminal (readline), --script FILE, `source FILE` and standard input. */
#ifndef PARAMSCOPE_REPL_REPL_H
#define PARAMSCOPE_REPL_REPL_H

#include <stdio.h>

#include "repl/command.h"

/* Runs one line: a command, `ADDR = VALUE`, or a bare ADDR (shown).  Blank
 * lines and lines starting with # do nothing.  Returns the handler's status;
 * the message is in out->err. */
int ps_repl_exec(ps_session *s, const char *line, ps_out *out);

typedef struct ps_repl_opts {
    int bail;                 /* stop at the first error */
    int echo;                 /* print each command before running it (scripts) */
} ps_repl_opts;

/* Runs every line of in (named name in messages: "FILE:LINE: message" on
 * stderr); returns the number of failed lines, or -1 when bail stopped it. */
int ps_repl_run_stream(ps_session *s, FILE *in, const char *name, const ps_repl_opts *o,
                       ps_out *out);

/* $XDG_STATE_HOME/paramscope/history (or ~/.local/state/...), its folder
 * made if missing; malloc'd, NULL when there is no home. */
char *ps_history_path(void);

/* The interactive loop with readline, history and completion. */
int ps_repl_interactive(ps_session *s, ps_out *out);

/* Splits a line into words: white space separates, "..." and '...' quote,
 * and brackets keep what they enclose together (wte["ice cream"]).  Returns
 * the number of words (malloc'd in *argv, free with ps_words_free) or -1
 * with a message on unbalanced quotes or brackets. */
int ps_split_line(const char *line, char ***argv, ps_error *err);
void ps_words_free(char **argv, int argc);

#endif
