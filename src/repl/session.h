/* paramscope — the session: one model with its tokenizer, the undo journal of
 * edits, the prediction settings and baseline, and the training state.  The
 * command language's handlers act on it; the explorer draws it. */
#ifndef PARAMSCOPE_REPL_SESSION_H
#define PARAMSCOPE_REPL_SESSION_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "paramscope/corpus.h"
#include "paramscope/perturb.h"
#include "paramscope/rng.h"
#include "paramscope/trainer.h"
#include "repl/common.h"

typedef struct ps_settings {
    float temperature;        /* 0: greedy */
    int top_k;                /* 0: off */
    float top_p;              /* 1: off */
    uint64_t seed;            /* sampling and noise */
    int threads;              /* BLIS threads */
    int top;                  /* bars shown by predict */
} ps_settings;

typedef struct ps_session {
    ps_loaded lm;             /* model, tokenizer, metadata, path */
    ps_perturb *journal;      /* every edit, for undo/redo/reset/diff */
    ps_settings set;
    ps_rng rng;               /* noise; reseeded by `set seed` */

    char *prompt;             /* the last prompt predicted, or NULL */
    float *baseline;          /* [V] probabilities remembered by `baseline`, or NULL */
    char *baseline_prompt;

    /* training: settings live here until the first training command makes
     * the trainer; data is the bundled corpus unless `train data` says */
    ps_train_config tcfg;
    char *data_path;
    ps_corpus *corpus;
    ps_trainer *trainer;
    long eval_every;          /* steps between validation losses in `train run`/`step` */

    struct ps_neuron_scan *neuron_scan; /* `neuron`'s strongest contexts over the corpus,
                                 for the model version it holds; dropped with the corpus */

    atomic_int interrupt;     /* Ctrl-C: long commands stop between steps; set by
                               * signal handlers and other threads (lock-free) */
    int quit;                 /* `quit` was run */
    int depth;                /* nesting of `source` */
} ps_session;

/* Opens a model file into a new session (defaults for every setting). */
int ps_session_open(ps_session *s, const char *model_path, ps_error *err);
void ps_session_close(ps_session *s);

/* Replaces the model; on failure the session is unchanged. */
int ps_session_load(ps_session *s, const char *path, ps_error *err);

/* Loads the training data (`train data`'s file, else the bundled corpus)
 * if it is not loaded yet. */
int ps_session_corpus(ps_session *s, ps_error *err);

/* Makes the corpus and trainer if they do not exist yet. */
int ps_session_trainer(ps_session *s, ps_error *err);

/* Call after anything changed the parameters outside the journal (training):
 * the journal forgets its entries, since they no longer describe the values. */
void ps_session_params_changed(ps_session *s);

#endif
