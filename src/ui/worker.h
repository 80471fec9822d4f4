/* paramscope — the explorer's worker thread: it owns training and runs the
 * command language, so that the UI thread never waits for either.
 *
 * The two threads meet in three places:
 *   - the session lock, held by the worker around every training phase and
 *     every command; the UI takes it with ui_worker_trylock to read the
 *     session (predictions, heatmaps) and skips a frame when it is busy;
 *   - a queue of command lines and training jobs, filled by the UI; command
 *     lines that change parameters (PS_CMD_EDITS) wait for the end of the
 *     step while training runs;
 *   - a snapshot of the training state (step, phase, losses, speed) and the
 *     text the commands printed, under a small mutex that nobody holds for
 *     long, so that the dashboard moves even while a phase runs for seconds.
 * Cancellation: s->interrupt, which commands check between steps. */
#ifndef PARAMSCOPE_UI_WORKER_H
#define PARAMSCOPE_UI_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "paramscope/trainer.h"
#include "repl/session.h"

typedef enum ui_job {
    UI_JOB_NONE,
    UI_JOB_PHASE,             /* one phase */
    UI_JOB_STEPS,             /* n steps (finishing a step begun first) */
    UI_JOB_RUN,               /* until paused */
} ui_job;

typedef struct ui_train_snap {
    int has_trainer;
    long step;                /* completed updates */
    int next_phase;           /* the phase that runs next (ps_phase) */
    int running_phase;        /* the phase running now, -1 when none */
    ui_job job;
    long steps_left;          /* UI_JOB_STEPS */
    float loss;               /* of the last LOSS phase */
    double grad_norm;         /* of the last BACKWARD */
    float lr;                 /* of the last UPDATE */
    double steps_per_s, tokens_per_s;
    ps_schedule sched;
    int batch, seq;
    double phase_ms[PS_PHASE_COUNT];
    uint64_t epoch;           /* changes when the loss history starts over */
    size_t n_train, n_val;    /* points in the histories */
    int queued;               /* command lines waiting */
    int busy;                 /* a command or phase is running */
    char running[96];         /* the command running, "" if none */
    int quit;                 /* `quit` was run */
    int edits;                /* applied journal entries (undo depth) */
} ui_train_snap;

typedef struct ui_worker ui_worker;

/* Starts the thread.  The session must outlive the worker.  utf8 and width
 * are what command output may use. */
int ui_worker_start(ui_worker **out, ps_session *s, int utf8, ps_error *err);
/* Interrupts what runs, joins and frees.  NULL does nothing. */
void ui_worker_stop(ui_worker *w);

/* The session lock.  trylock returns 1 when the lock was taken, waiting at
 * most wait_ms; when it fails, the worker gives the UI a turn at the end of
 * the current phase or command. */
int ui_worker_trylock(ui_worker *w, int wait_ms);
void ui_worker_lock(ui_worker *w);
void ui_worker_unlock(ui_worker *w);

/* Queues a command line (training commands become jobs).  echo: show it in
 * the log as typed. */
void ui_worker_submit(ui_worker *w, const char *line, int echo);
/* Queues a change of one element by delta: `ADDR = old + delta`. */
void ui_worker_nudge(ui_worker *w, const char *addr, double delta);
/* Starts a job (UI_JOB_NONE pauses at the next phase boundary). */
void ui_worker_train(ui_worker *w, ui_job job, long n);
/* Ctrl-C: stops the running command, pauses training, drops the queue. */
void ui_worker_interrupt(ui_worker *w);

/* Width of command output, in columns. */
void ui_worker_set_width(ui_worker *w, int cols);

/* Copies the snapshot. */
void ui_worker_snapshot(ui_worker *w, ui_train_snap *out);
/* Copies history points [from, n) of the training (which 0) or validation
 * (1) loss into *dst (grown with realloc, *cap its size); returns n, or
 * from when nothing is new.  *epoch receives the history's epoch. */
size_t ui_worker_history(ui_worker *w, int which, size_t from, ps_point **dst, size_t *cap,
                         uint64_t *epoch);
/* Takes the text printed since the last call (malloc'd, NULL if none).
 * Lines start with a style byte: 1 echo, 2 error, 3 note, else text. */
char *ui_worker_take_log(ui_worker *w);

/* Increases whenever anything the panes show may have changed (parameters,
 * gradients, settings). */
uint64_t ui_worker_version(ui_worker *w);
/* Increases when what predictions depend on may have changed: parameters
 * (an update, an edit) or settings (any command). */
uint64_t ui_worker_params_version(ui_worker *w);

#endif
