/* paramscope — probes inside one forward pass: what the parameters do on a
 * prompt.  Each reads the activations that ps_model_forward kept (model.h:
 * attention probabilities, the residual stream after each block, the MLP's
 * hidden activations, the final LayerNorm's mean and 1/std) and returns
 * numbers; none copies the model or writes its parameters.  Call them after
 * ps_model_forward on the prompt, with b the sequence and t the position.
 *
 * Attention patterns need no function of their own: ps_model_attention(m,
 * layer, b, head) is the [T, T] matrix, row = query, each row a distribution
 * over the positions up to and including its own. */
#ifndef PARAMSCOPE_PROBE_H
#define PARAMSCOPE_PROBE_H

#include <stddef.h>

#include "paramscope/model.h"

/* ---- the logit lens ---- */

/* What the model would predict at (b, t) if it stopped early: the final
 * LayerNorm (with its own mean and variance of that residual) and the LM head
 * applied to the residual stream after the embeddings (row 0) and after each
 * block l (row l + 1).  logits: [n_layer + 1, V], caller-owned.  The last
 * row equals the forward's logits at (b, t) within float rounding. */
int ps_probe_lens(ps_model *m, int b, int t, float *logits, ps_error *err);

/* ---- direct logit attribution ---- */

/* The residual stream at the end is a sum of parts, each written by one
 * piece of the network:
 *     x = wte[id] + wpe[t] + sum_l ( sum_h head_lh + attn_bias_l + mlp_l )
 * head_lh is head h's slice of the attention output times its rows of
 * c_proj, attn_bias_l is c_proj's bias, mlp_l the MLP's output with its
 * bias.  The final LayerNorm is linear once its mean mu and 1/std r are
 * fixed at the values of the actual forward pass, so the logit of token v
 * splits exactly:
 *     logit_v = sum_parts r * (p - mean(p)) . (g * wte[v])  +  beta . wte[v]
 * with g, beta ln_f's weight and bias (mean(x) is the sum of the parts'
 * means).  ps_attribution holds each part's term; `total` is their sum plus
 * `lnf_bias`, equal to the forward's logit up to float rounding. */
typedef struct ps_attribution {
    int n_layer, n_head;
    int token;                /* v */
    double token_embed;       /* wte[id] */
    double pos_embed;         /* wpe[t] */
    double *head;             /* [n_layer * n_head], layer-major */
    double *attn_bias;        /* [n_layer] */
    double *mlp;              /* [n_layer] */
    double lnf_bias;          /* beta . wte[v] */
    double total;             /* the sum of everything above */
    double logit;             /* the forward's logit, for comparison */
} ps_attribution;

/* Fills *a (allocating its arrays; free with ps_attribution_clear). */
int ps_probe_attribute(ps_model *m, int b, int t, int token, ps_attribution *a, ps_error *err);
void ps_attribution_clear(ps_attribution *a);

/* ---- neurons ---- */

/* Activation (after GELU) of MLP neuron n of block `layer` at every position
 * of sequence b: act[T], caller-owned. */
int ps_probe_neuron(const ps_model *m, int layer, int neuron, int b, float *act, ps_error *err);

/* The strongest activations of every neuron of every block over a token
 * stream, found in one pass: the stream is cut into windows of `seq` tokens
 * (the last one shorter), run through the model `batch` windows at a time,
 * and each neuron keeps its k largest activations with their positions in
 * the stream (each position at most once per neuron). */
typedef struct ps_neuron_hit {
    float act;
    size_t pos;               /* index into the stream */
} ps_neuron_hit;

typedef struct ps_neuron_scan {
    int n_layer, n_neuron, k; /* n_neuron = 4 * n_embd */
    ps_neuron_hit *hits;      /* [n_layer, n_neuron, k], strongest first;
                                 pos == SIZE_MAX where fewer were seen */
    size_t n_tokens;          /* of the stream scanned */
    uint64_t model_version;   /* the model's version the scan was made at */
} ps_neuron_scan;

/* progress(ctx, done, total) is called after each batch with tokens done
 * so far; a nonzero return stops the scan with PS_ERR_INTERRUPTED.  The
 * model's activations are reused (its last forward is overwritten). */
int ps_neuron_scan_run(ps_neuron_scan **out, ps_model *m, const int *tokens, size_t n, int seq,
                       int batch, int k, int (*progress)(void *ctx, size_t done, size_t total),
                       void *ctx, ps_error *err);
void ps_neuron_scan_free(ps_neuron_scan *s);
/* The k hits of one neuron. */
const ps_neuron_hit *ps_neuron_scan_hits(const ps_neuron_scan *s, int layer, int neuron);

/* ---- activation patching ---- */

/* Two prompts of the same length T: clean (e.g. "the sky is") and corrupt
 * ("the grass is").  The metric is the logit difference at the last position,
 * LD = logit[answer] - logit[wrong] (answer: the clean prompt's answer,
 * wrong: the corrupt one's).  Each experiment runs the corrupt prompt with one
 * piece of the clean run put in place and reports how much of the gap comes
 * back: (LD_patched - LD_corrupt) / (LD_clean - LD_corrupt), 1 fully restored,
 * 0 not at all (NaN when the two runs' LD are equal).
 *   resid[l, p]  the residual stream entering block l (l == n_layer: after
 *                the last block) at position p;
 *   head[l, h]   head h's output in block l, at every position.
 * Batched: the experiments of one stage run as forwards of up to 8
 * sequences (positions) or n_head sequences (heads), so memory stays a few
 * forwards' worth whatever the prompt's length. */
typedef struct ps_patching {
    int n_layer, n_head, T;
    int answer, wrong;
    double ld_clean, ld_corrupt;
    double *resid;            /* [n_layer + 1, T] */
    double *head;             /* [n_layer, n_head] */
} ps_patching;

int ps_probe_patch(ps_model *m, const int *clean, const int *corrupt, int T, int answer, int wrong,
                   ps_patching *out, ps_error *err);
void ps_patching_clear(ps_patching *p);

/* ---- saliency ---- */

/* After a forward of one sequence (B == 1): the gradient of log p(token) at
 * the last position with respect to each position's embedded input
 * (wte[id] + wpe[t]); grad_norm[t] is its length and grad_x_input[t] its
 * dot product with that input.  Both [T], caller-owned.  Runs a backward
 * pass: needs the gradient arena (as large as the model) and overwrites the
 * model's gradients. */
int ps_probe_saliency(ps_model *m, int token, float *grad_norm, float *grad_x_input, ps_error *err);

#endif
