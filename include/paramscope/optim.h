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

/* With g' = g + weight_decay * w for decayed tensors (L2), g' = g otherwise,
 * t = step + 1, mhat = m / (1 - beta1^t), vhat = v / (1 - beta2^t): */
typedef enum ps_optim_kind {
    PS_OPTIM_KIND_SGD,        /* w -= lr g' */
    PS_OPTIM_KIND_MOMENTUM,   /* m = beta1 m + g'; w -= lr m */
    PS_OPTIM_KIND_ADAM,       /* m = beta1 m + (1-beta1) g'; v likewise with g'^2
                                 and beta2; w -= lr mhat / (sqrt(vhat) + eps) */
    PS_OPTIM_KIND_ADAMW,      /* Adam on g (not g'), then decoupled decay:
                                 w -= lr (mhat / (sqrt(vhat) + eps) + wd w) */
} ps_optim_kind;

typedef struct ps_optim_config {
    ps_optim_kind kind;
    float beta1;              /* Adam's beta1, or the momentum coefficient */
    float beta2;
    float eps;
    float weight_decay;
    int decay_all;            /* 0: biases, LayerNorm and embeddings are not decayed */
    unsigned set;             /* PS_OPTIM_SET_* of the fields a person chose;
                                 the others follow the kind (ps_optim_with_kind) */
} ps_optim_config;

enum {
    PS_OPTIM_SET_BETA1 = 1u << 0,
    PS_OPTIM_SET_BETA2 = 1u << 1,
    PS_OPTIM_SET_EPS = 1u << 2,
    PS_OPTIM_SET_WEIGHT_DECAY = 1u << 3,
};

/* Sensible defaults for a kind, the one place they are written down (the
 * `train` subcommand and `train set` both start from here): beta1 0.9
 * (momentum 0.9), beta2 0.999 (0.95 for AdamW, as GPT-2 training commonly
 * uses), eps 1e-8, weight decay 0 (0.1 for AdamW); set 0. */
ps_optim_config ps_optim_defaults(ps_optim_kind kind);

/* cur with its kind changed to kind: the fields in cur->set keep their
 * values, every other field takes kind's default, so the result does not
 * depend on the order in which kinds were chosen (sgd -> adamw has AdamW's
 * decay 0.1, adamw -> adam has Adam's 0). */
ps_optim_config ps_optim_with_kind(const ps_optim_config *cur, ps_optim_kind kind);

/* "sgd", "momentum", "adam", "adamw" <-> kind (exact, lower case).  The
 * parser returns -1 for unknown names; the namer "unknown" for bad kinds. */
const char *ps_optim_kind_name(ps_optim_kind kind);
int ps_optim_kind_parse(const char *name);

typedef struct ps_optim {
    ps_optim_config cfg;
    size_t n;                 /* floats in each moment arena */
    float *m;                 /* [n] first moment / momentum buffer, NULL for SGD */
    float *v;                 /* [n] second moment, NULL unless Adam/AdamW */
    long step;                /* updates applied so far */
} ps_optim;

/* An optimizer for arenas of n floats with zeroed moments and step 0.  Checks
 * the configuration: beta1 in [0, 1) (except SGD), beta2 in [0, 1) and eps > 0
 * (Adam kinds), weight_decay >= 0.  *out is owned by the caller; NULL on
 * failure.  ps_optim_free(NULL) does nothing. */
int ps_optim_init(ps_optim **out, const ps_optim_config *cfg, size_t n,
                  ps_error *err);
void ps_optim_free(ps_optim *o);

/* Whether parameter p is decayed under cfg: always with decay_all, otherwise
 * unless it is a bias or LayerNorm parameter (is_bias) or an embedding.  The
 * step skips the decay altogether when weight_decay is 0. */
int ps_optim_decays(const ps_optim_config *cfg, const ps_param *p);

/* Per-tensor figures of one update, for the trainer and the interface. */
typedef struct ps_update_stats {
    double update_sq;         /* sum of squared changes of the tensor */
    double weight_sq;         /* sum of squared values before the change */
} ps_update_stats;

/* One update of every parameter in params[0..n_params) (values at p->data,
 * gradients at grad + p->offset, offset + numel <= o->n) with learning rate
 * lr.  If delta is not NULL ([n] arena layout) it receives new - old, computed
 * in float from the two stored values, for every value of those parameters
 * (the rest of delta is left alone); if stats is not NULL ([n_params]) it
 * receives per-tensor sums.  Increments o->step.  One pass over memory per
 * tensor; the stats cost no extra pass, the delta one extra write. */
void ps_optim_step(ps_optim *o, const ps_param *params, int n_params,
                   const float *grad, float lr, float *delta,
                   ps_update_stats *stats);

/* sqrt of the sum of squares, accumulated in double. */
double ps_grad_norm(const float *g, size_t n);

/* If max_norm > 0 and the global norm exceeds it, scales g by max_norm/norm.
 * Returns the norm before clipping (NaN or Inf if g holds one; g is then left
 * untouched, and the caller decides whether to skip the step). */
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

/* "constant", "cosine", "step" <-> kind, as for the optimizers. */
const char *ps_sched_kind_name(ps_sched_kind kind);
int ps_sched_kind_parse(const char *name);

/* Learning rate for 0-based step `step`.  Warmup: lr * (step + 1) / warmup for
 * step < warmup.  Cosine after warmup: min_lr + (lr - min_lr) * (1 + cos(pi *
 * progress)) / 2 with progress = (step - warmup) / (total - warmup) clamped to
 * [0, 1] (1 when total <= warmup).  Step: lr * gamma^floor((step - warmup) /
 * step_size), plain lr when step_size <= 0.  Computed in double; a negative
 * step counts as 0. */
float ps_schedule_lr(const ps_schedule *s, long step);

#endif
