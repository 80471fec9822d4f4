/* paramscope — surviving a mapped file that another program truncates.
 *
 * A model file larger than PS_ST_COPY_MAX stays memory-mapped (copying
 * GPT-2-sized files would double their memory).  If another program then
 * truncates it, touching a page past the new end raises SIGBUS, which would
 * kill the process and lose every unsaved edit.  The guard keeps a table of
 * the live file mappings; its SIGBUS handler, for a fault inside one of them,
 * puts a page of zeros where the file's page was and lets the computation go
 * on.  The numbers computed from it are wrong, but the size check that every
 * command of the language runs first (ps_model_file_check, in the REPL's
 * dispatch) then says the file changed, and the session can `load` it again.
 *
 * The table is the one piece of process-wide mutable state below the UI: a
 * signal handler can find nothing else.  It is lock-free (atomics), so the
 * handler may read it at any moment. */
#ifndef PARAMSCOPE_MAPGUARD_H
#define PARAMSCOPE_MAPGUARD_H

#include <signal.h>
#include <stddef.h>

/* Installs the SIGBUS handler (idempotent; main() calls it once).  A fault
 * outside every guarded mapping is left to the previous handler, or kills the
 * process as without the guard. */
int ps_mapguard_install(void);

/* Adds or removes a file mapping [addr, addr + len).  Adding fails (-1) only
 * when the table is full; the mapping then simply is not guarded. */
int ps_mapguard_add(const void *addr, size_t len);
void ps_mapguard_remove(const void *addr);

/* For handlers of their own (the explorer's, which restores the terminal
 * before dying): 1 when the fault described by si was inside a guarded
 * mapping and has been mended, else 0.  Async-signal-safe. */
int ps_mapguard_handle(const siginfo_t *si);

/* Faults mended so far (for tests and messages). */
unsigned long ps_mapguard_mended(void);

#endif
