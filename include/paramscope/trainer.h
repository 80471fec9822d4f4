/* paramscope — the trainer as a phase machine.
 *
 * A step is four phases, FORWARD -> LOSS -> BACKWARD -> UPDATE, and each can be
 * run on its own with ps_trainer_phase(); after each one its result is in the
 * trainer for anyone to look at:
 *   after LOSS      loss, target_probs (each target's probability)
 *   after BACKWARD  grad_norm, param_grad_norm[] (and the model's gradients)
 *   after UPDATE    lr, param_update_ratio[] (|update| / |weights| per tensor),
 *                   and delta (the update itself) when keep_update is set.
 * A non-finite loss or gradient ends the step with PS_ERR_NUMERIC and leaves
 * the parameters as they were; the next phase is FORWARD again.
 *
 * Batches are windows of a token stream at positions drawn from a seeded
 * generator; the last val_fraction of the stream is held out for validation. */
#ifndef PARAMSCOPE_TRAINER_H
#define PARAMSCOPE_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "paramscope/error.h"
#include "paramscope/model.h"
#include "paramscope/optim.h"
#include "paramscope/rng.h"

typedef enum ps_phase {
    PS_PHASE_FORWARD,
    PS_PHASE_LOSS,
    PS_PHASE_BACKWARD,
    PS_PHASE_UPDATE,
} ps_phase;

#define PS_PHASE_COUNT 4

/* Front ends give up after this many abandoned steps in a row. */
#define PS_MAX_ABANDONED 10

const char *ps_phase_name(ps_phase p);   /* "forward", "loss", ... */

typedef struct ps_train_config {
    int batch;                /* B */
    int seq;                  /* T */
    ps_optim_config optim;
    ps_schedule sched;
    float clip;               /* global gradient norm limit; <= 0: off */
    uint64_t seed;            /* batch positions */
    float val_fraction;       /* in [0, 0.5] */
    int keep_update;          /* keep the last update in delta */
} ps_train_config;

/* Defaults: B 8, T min(32, n_ctx), AdamW lr 1e-3 constant, clip 1, seed 1337,
 * val_fraction 0.1. */
ps_train_config ps_train_defaults(const ps_model *m);

typedef struct ps_point { long step; float value; } ps_point;

typedef struct ps_trainer {
    ps_model *m;              /* not owned */
    ps_train_config cfg;
    ps_optim *opt;            /* owned */
    const int *tokens;        /* not owned: [n_tokens] */
    size_t n_tokens;
    size_t n_train;           /* [0, n_train) trains, [n_train, n_tokens) validates */
    ps_rng rng;               /* batch positions */

    ps_phase next;            /* the phase ps_trainer_phase runs next */
    long step;                /* completed updates */
    int *inputs, *targets;    /* [B * T] the current batch */

    float loss;               /* after LOSS */
    float *target_probs;      /* [B * T] after LOSS */
    double grad_norm;         /* after BACKWARD, before clipping */
    double *param_grad_norm;  /* [n_params] after BACKWARD */
    float lr;                 /* after UPDATE: the rate used */
    double *param_update_ratio; /* [n_params] after UPDATE */
    float *delta;             /* [n_floats] after UPDATE if keep_update, else NULL */
    int last_skipped;         /* the last step was abandoned (non-finite) */

    double phase_ms[PS_PHASE_COUNT]; /* duration of each phase's last run */

    ps_point *train_hist;     /* loss of every completed step */
    size_t n_train_hist, cap_train_hist;
    ps_point *val_hist;       /* every ps_trainer_eval */
    size_t n_val_hist, cap_val_hist;
} ps_trainer;

/* The model must stay alive as long as the trainer; tokens too.  Needs
 * n_tokens * (1 - val_fraction) > T. */
int ps_trainer_init(ps_trainer **out, ps_model *m, const int *tokens,
                    size_t n_tokens, const ps_train_config *cfg, ps_error *err);
void ps_trainer_free(ps_trainer *t);

/* Runs the next phase; *ran (may be NULL) says which one it was. */
int ps_trainer_phase(ps_trainer *t, ps_phase *ran, ps_error *err);

/* Runs phases until the current step is complete (a whole step when at
 * FORWARD). */
int ps_trainer_step(ps_trainer *t, ps_error *err);

/* Mean loss over up to max_batches consecutive validation windows (all if
 * max_batches <= 0); appended to val_hist.  Leaves the phase machine at
 * FORWARD (the forward pass overwrote the activations). */
int ps_trainer_eval(ps_trainer *t, int max_batches, float *loss, ps_error *err);

/* Changes optimizer settings; moments are kept when the kind is unchanged. */
int ps_trainer_set_optim(ps_trainer *t, const ps_optim_config *cfg, ps_error *err);

/* Changes batch or sequence size (checked against n_ctx and the data). */
int ps_trainer_set_shape(ps_trainer *t, int batch, int seq, ps_error *err);

/* The generator's state, to save with a model and resume exactly. */
void ps_trainer_rng_state(const ps_trainer *t, uint64_t state[4]);
void ps_trainer_set_rng_state(ps_trainer *t, const uint64_t state[4]);

#endif
