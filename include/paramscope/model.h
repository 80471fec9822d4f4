/* paramscope — the GPT-2-architecture model: parameters, forward, loss, backward.
 *
 * Layout and names follow GPT-2's checkpoints (Conv1D: a weight is [in, out] and
 * y = x W + b).  Every parameter lives in one arena of floats, described by a
 * table of (name, shape, offset); params[i].data == w + params[i].offset.  Gradients and optimizer moments are arenas of
 * the same layout: a parameter's gradient is grad + param->offset.
 *
 * Activations are allocated by ps_model_reserve() for a (batch, sequence) size;
 * forward and backward allocate nothing. */
#ifndef PARAMSCOPE_MODEL_H
#define PARAMSCOPE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "paramscope/error.h"

#define PS_NAME_MAX 64

typedef struct ps_config {
    int n_layer;
    int n_head;
    int n_embd;
    int n_ctx;
    int vocab_size;
} ps_config;

/* What part of the network a parameter belongs to (for `count`, decay masks). */
typedef enum ps_param_kind {
    PS_PARAM_KIND_EMBED,      /* wte, wpe */
    PS_PARAM_KIND_ATTN,       /* attn.c_attn, attn.c_proj */
    PS_PARAM_KIND_MLP,        /* mlp.c_fc, mlp.c_proj */
    PS_PARAM_KIND_NORM,       /* ln_1, ln_2, ln_f */
} ps_param_kind;

typedef struct ps_param {
    char name[PS_NAME_MAX];   /* "h.3.attn.c_attn.weight" */
    int ndim;                 /* 1 or 2 */
    int shape[2];             /* shape[1] is 1 when ndim == 1 */
    size_t numel;
    size_t offset;            /* in floats, into the parameter/grad/moment arenas */
    float *data;              /* the values: model->w + offset */
    int layer;                /* block index, -1 outside the blocks */
    ps_param_kind kind;
    int is_bias;              /* biases and LayerNorm gains/shifts: 1 */
} ps_param;

/* Per-block parameter pointers, in the order the forward pass uses them. */
typedef struct ps_block {
    float *ln1_w, *ln1_b;     /* [C] */
    float *qkv_w, *qkv_b;     /* [C, 3C], [3C] */
    float *proj_w, *proj_b;   /* [C, C], [C] */
    float *ln2_w, *ln2_b;     /* [C] */
    float *fc_w, *fc_b;       /* [C, 4C], [4C] */
    float *fcproj_w, *fcproj_b; /* [4C, C], [C] */
} ps_block;

/* Activations for one (B, T); L = n_layer, NH = n_head, V = vocab_size. */
typedef struct ps_acts {
    float *encoded;   /* [B, T, C] token + position embeddings */
    float *ln1;       /* [L, B, T, C] */
    float *ln1_mean;  /* [L, B, T] */
    float *ln1_rstd;  /* [L, B, T] */
    float *qkv;       /* [L, B, T, 3C] */
    float *atty;      /* [L, B, T, C] attention output before c_proj */
    float *att;       /* [L, B, NH, T, T] attention probabilities (row = query) */
    float *resid2;    /* [L, B, T, C] residual after attention */
    float *ln2;       /* [L, B, T, C] */
    float *ln2_mean;  /* [L, B, T] */
    float *ln2_rstd;  /* [L, B, T] */
    float *fch;       /* [L, B, T, 4C] pre-GELU */
    float *fch_gelu;  /* [L, B, T, 4C] */
    float *resid3;    /* [L, B, T, C] residual stream after each block */
    float *lnf;       /* [B, T, C] */
    float *lnf_mean;  /* [B, T] */
    float *lnf_rstd;  /* [B, T] */
    float *logits;    /* [B, T, V] */
    float *probs;     /* [B, T, V] softmax(logits), after ps_model_loss */
    float *losses;    /* [B, T] */
    /* backward scratch, one layer at a time */
    float *dresid;    /* [B, T, C] */
    float *dbuf_c;    /* [B, T, C] */
    float *dbuf_c2;   /* [B, T, C] */
    float *dqkv;      /* [B, T, 3C] */
    float *dfch;      /* [B, T, 4C] */
    float *datt;      /* [B, NH, T, T] */
    float *dlogits;   /* [B, T, V] */
} ps_acts;

typedef struct ps_model {
    ps_config cfg;
    int n_params;             /* entries in params */
    ps_param *params;         /* [n_params], owned */
    size_t n_floats;          /* floats in the arena (and in grad, m, v) */
    size_t n_values;          /* parameters: the sum of every tensor's numel;
                                 equal to n_floats unless the arena is a mapped
                                 file's data area with other tensors between */
    float *w;                 /* [n_floats] the parameters, owned unless w_borrowed */
    int w_borrowed;           /* w belongs to someone else (a mapping) */
    void (*w_release)(void *ctx); /* called by ps_model_free when borrowed */
    void *w_release_ctx;
    uint64_t version;         /* changes whenever the values in w do: every code
                                 path that writes parameters of a live model does
                                 version++ (perturbation journal, optimizer
                                 step), so that caches of results (infer.h) know
                                 they are stale */
    float *grad;              /* [n_floats] or NULL before the first backward */
    ps_block *blocks;         /* [n_layer] */
    float *wte, *wpe, *lnf_w, *lnf_b;

    ps_acts acts;
    float *acts_mem;          /* owned block behind acts */
    int cap_B, cap_T;         /* what acts can hold */
    int B, T;                 /* shape of the last forward */
    int *ids;                 /* [cap_B * cap_T] inputs of the last forward */
    int *targets;             /* [cap_B * cap_T] targets of the last loss */
    int has_forward, has_loss, has_grad;
    float mean_loss;          /* of the last ps_model_loss */
} ps_model;

/* Checks sizes: all positive, n_embd divisible by n_head, sane upper bounds. */
int ps_config_check(const ps_config *cfg, ps_error *err);

/* Parameter count implied by a configuration (no allocation). */
size_t ps_config_param_count(const ps_config *cfg);

/* Allocates a model with zeroed parameters.  *out is owned by the caller and
 * freed with ps_model_free. */
int ps_model_init(ps_model **out, const ps_config *cfg, ps_error *err);

/* Allocates a model whose parameters live in caller-provided memory `w`
 * ([n_floats] in the standard layout); `release(ctx)` is called on free. */
int ps_model_init_borrowed(ps_model **out, const ps_config *cfg, float *w,
                           void (*release)(void *), void *ctx, ps_error *err);

/* Like ps_model_init_borrowed, for an arena of n_floats in which parameter i
 * starts at offsets[i] (in floats, table order) rather than densely: a
 * file's data area mapped privately, so that editing copies only the pages
 * touched.  Fails if a parameter does not fit inside the arena. */
int ps_model_init_mapped(ps_model **out, const ps_config *cfg, float *w, size_t n_floats,
                         const size_t *offsets, void (*release)(void *), void *ctx,
                         ps_error *err);

/* A model over src's parameters (no copy: edits of either show in both),
 * with activations, gradients and a version of its own, for work that must
 * not disturb src's last forward (a probe while a training step is half
 * done).  src must outlive it. */
int ps_model_init_shared(ps_model **out, const ps_model *src, ps_error *err);

void ps_model_free(ps_model *m);

/* GPT-2's initialisation from a seed: weights N(0, 0.02), residual output
 * projections (attn.c_proj, mlp.c_proj) N(0, 0.02/sqrt(2 n_layer)), LayerNorm
 * weight 1 and bias 0, other biases 0. */
void ps_model_init_random(ps_model *m, uint64_t seed);

/* The parameter called `name`, or NULL. */
ps_param *ps_model_find(ps_model *m, const char *name);

/* Index of `p` in m->params. */
int ps_model_param_index(const ps_model *m, const ps_param *p);

/* Makes room for activations of B sequences of T tokens (grows only). */
int ps_model_reserve(ps_model *m, int B, int T, ps_error *err);

/* Allocates the gradient arena if needed and zeroes it. */
int ps_model_grad_alloc(ps_model *m, ps_error *err);

/* Forward over ids [B, T]: fills every activation up to logits.  Checks T <=
 * n_ctx and every id < vocab_size.  Invalidates loss and gradients. */
int ps_model_forward(ps_model *m, const int *ids, int B, int T, ps_error *err);

/* After forward: probabilities, per-position cross-entropy against targets
 * [B, T] (ids < vocab_size), and their mean in *loss (may be NULL). */
int ps_model_loss(ps_model *m, const int *targets, float *loss, ps_error *err);

/* After a forward: runs it again from block `layer` on (layer == n_layer:
 * only ln_f and the LM head) over the activations as they are now, so that
 * a caller who changed the residual stream entering that block (activation
 * patching: acts.encoded for block 0, else acts.resid3 of block layer - 1)
 * sees its effect.  at_proj: start inside block `layer`, at its attention
 * output acts.atty (patching one head's output).  The same ids and (B, T). */
int ps_model_forward_from(ps_model *m, int layer, int at_proj, ps_error *err);

/* After loss: gradient of the mean loss for every parameter into m->grad
 * (overwritten, allocated on first use). */
int ps_model_backward(ps_model *m, ps_error *err);

/* The stages of a forward pass in order, for naming where the first NaN or
 * infinity appears: 0 the embeddings (wte + wpe), 1 + 2l block l's
 * attention (its residual after c_proj), 2 + 2l block l's MLP (the residual
 * after the block), 1 + 2L ln_f, 2 + 2L the LM head (the logits).  Writes
 * "embeddings", "block 3 (attention)", "block 3 (MLP)", "ln_f" or "the LM
 * head" to buf. */
void ps_forward_stage_name(int n_layer, int stage, char *buf, size_t size);

/* After ps_model_forward: the first stage whose activations hold a NaN or
 * infinity (its name in where, as above), 1 if there is one, else 0 and "".
 * Reads the kept activations: no computation, for messages when a loss or
 * a logit is not finite. */
int ps_model_find_nonfinite(const ps_model *m, char *where, size_t size);

/* Pointers into the last forward's activations. */
float *ps_model_logits(ps_model *m, int b, int t);          /* [V] */
float *ps_model_probs(ps_model *m, int b, int t);           /* [V], after loss */
float *ps_model_attention(ps_model *m, int layer, int b, int head); /* [T, T] */
float *ps_model_residual(ps_model *m, int layer, int b);    /* [T, C] after block */

/* After a forward: the backward pass of whatever function of the logits
 * the caller wrote the gradient of into acts.dlogits [B, T, V] (saliency:
 * of one token's log-probability).  Parameter gradients land in m->grad as
 * with ps_model_backward; the gradient with respect to the embedded input
 * (wte[id] + wpe[t]) is then ps_model_input_grad's. */
int ps_model_backward_logits(ps_model *m, ps_error *err);
/* [T, C] of sequence b after a backward, or NULL. */
const float *ps_model_input_grad(const ps_model *m, int b);

/* The gradient of parameter p, or NULL when no backward has run. */
float *ps_model_param_grad(ps_model *m, const ps_param *p);

/* FLOPs of one forward pass over B x T tokens (matmuls and attention). */
double ps_model_forward_flops(const ps_config *cfg, int B, int T);

#endif
