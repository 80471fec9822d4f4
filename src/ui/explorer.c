/* The explorer: being written.  Until then the line REPL runs. */
#include "ui/explorer.h"

int ps_ui_run(ps_session *s)
{
    (void)s;
    return -1;
}
