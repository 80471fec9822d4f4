/* paramscope — the ncurses explorer. */
#ifndef PARAMSCOPE_UI_EXPLORER_H
#define PARAMSCOPE_UI_EXPLORER_H

#include "repl/session.h"

/* Runs the explorer on the terminal until the user quits; returns the exit
 * status for the process.  The terminal is restored on every way out. */
int ps_ui_run(ps_session *s);

#endif
