/* paramscope — optimizers, learning-rate schedules and gradient clipping.
 *
 * An optimizer owns moment arenas of the model's layout (m, v: [n_floats]) and
 * updates every parameter of a table in place.  Its state is public for
 * inspection: a parameter's first moment is o->m + param->offset. */
#ifndef PARAMSCOPE_OPTIM_H
#define PARAMSCOPE_OPTIM_H

#include <stddef.h>

#include "paramscope/error.h"
#include "paramscope/model.h"

typedef enum ps_optim_kind {
    PS_OPTIM_KIND_SGD,        /* w -= lr g */
    PS_OPTIM_KIND_MOMENTUM,   /* m = beta1 m + g; w -= lr m */
    PS_OPTIM_KIND_ADAM,       /* Adam; weight_decay added to the gradient (L2) */
    PS_OPTIM_KIND_ADAMW,      /* Adam with decoupled weight decay */
} ps_optim_kind;

typedef struct ps_optim_config {
    ps_optim_kind kind;
    float beta1;              /* Adam's beta1, or the momentum coefficient */
    float beta2;
    float eps;
    float weight_decay;
    int decay_all;            /* 0: biases, LayerNorm and embeddings are not decayed */
} ps_optim_config;

/* Sensible defaults for a kind: beta1 0.9 (momentum 0.9), beta2 0.999 (0.95
 * for AdamW, as GPT-2 training commonly uses), eps 1e-8, weight decay 0 (0.1
 * for AdamW). */
ps_optim_config ps_optim_defaults(ps_optim_kind kind);

/* "sgd", "momentum", "adam", "adamw" <-> kind.  Returns -1 for unknown names. */
const char *ps_optim_kind_name(ps_optim_kind kind);
int ps_optim_kind_parse(const char *name);

typedef struct ps_optim {
    ps_optim_config cfg;
    size_t n;                 /* floats in each moment arena */
    float *m;                 /* [n] first moment / momentum buffer, NULL for SGD */
    float *v;                 /* [n] second moment, NULL unless Adam/AdamW */
    long step;                /* updates applied so far */
} ps_optim;

int ps_optim_init(ps_optim **out, const ps_optim_config *cfg, size_t n,
                  ps_error *err);
void ps_optim_free(ps_optim *o);

/* Whether parameter p is decayed under cfg. */
int ps_optim_decays(const ps_optim_config *cfg, const ps_param *p);

/* Per-tensor figures of one update, for the trainer and the interface. */
typedef struct ps_update_stats {
    double update_sq;         /* sum of squared changes of the tensor */
    double weight_sq;         /* sum of squared values before the change */
} ps_update_stats;

/* One update of every parameter in params[0..n_params) (values at p->data,
 * gradients at grad + p->offset) with learning rate lr.  If delta is not NULL
 * ([n] arena layout) it receives new - old for every value; if stats is not
 * NULL ([n_params]) it receives per-tensor sums.  Increments o->step. */
void ps_optim_step(ps_optim *o, const ps_param *params, int n_params,
                   const float *grad, float lr, float *delta,
                   ps_update_stats *stats);

/* sqrt of the sum of squares, accumulated in double. */
double ps_grad_norm(const float *g, size_t n);

/* If max_norm > 0 and the global norm exceeds it, scales g by max_norm/norm.
 * Returns the norm before clipping (NaN or Inf if g holds one). */
double ps_grad_clip(float *g, size_t n, double max_norm);

/* ---- schedules ---- */

typedef enum ps_sched_kind {
    PS_SCHED_KIND_CONSTANT,   /* lr */
    PS_SCHED_KIND_COSINE,     /* linear warmup, then cosine from lr to min_lr */
    PS_SCHED_KIND_STEP,       /* linear warmup, then lr * gamma^floor(s / step_size) */
} ps_sched_kind;

typedef struct ps_schedule {
    ps_sched_kind kind;
    float lr;                 /* peak learning rate */
    int warmup;               /* steps of linear warmup (all kinds) */
    long total;               /* cosine: steps until min_lr is reached */
    float min_lr;             /* cosine floor */
    int step_size;            /* step decay: steps between drops */
    float gamma;              /* step decay: factor per drop */
} ps_schedule;

const char *ps_sched_kind_name(ps_sched_kind kind);
int ps_sched_kind_parse(const char *name);

/* Learning rate for 0-based step `step`.  Warmup: lr * (step + 1) / warmup for
 * step < warmup.  Cosine after warmup: min_lr + (lr - min_lr) * (1 + cos(pi *
 * progress)) / 2 with progress = (step - warmup) / (total - warmup) clamped to
 * [0, 1].  Step: lr * gamma^floor((step - warmup) / step_size). */
float ps_schedule_lr(const ps_schedule *s, long step);

#endif
