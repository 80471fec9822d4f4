/* paramscope — inference with a key/value cache: next-token logits for a
 * growing sequence without recomputing what was computed before.
 *
 * The training forward (model.h) keeps every activation of B x T tokens for
 * backward.  Inference needs far less: for each layer the keys and values of
 * the tokens seen so far ([len, n_embd] each), and scratch for the few new
 * tokens.  ps_infer_append runs only the new tokens through the blocks (their
 * queries attend to every cached key, causally), and computes the LM head for
 * the last position only, so typing one more word or generating one more
 * token costs one token's forward (plus attention over the cache).
 *
 * Results equal ps_model_forward's logits at the last position within float
 * rounding (the test asserts 1e-5 of max(1, |logit|)).
 *
 * Speed: up to 4 new rows go through BLIS's matrix-vector product, which runs
 * on one thread whatever ps_blas_threads() says (it is bound by memory; see
 * infer.c for the measurements); more rows through ps_sgemm.
 *
 * Staleness.  The cache holds values computed from the parameters as they
 * were.  Every use compares m->version with the version the cache was built
 * with and, when they differ, recomputes the cached tokens from scratch, so a
 * stale cache never yields stale logits provided that whoever writes
 * parameters increments m->version (the perturbation journal and the
 * optimizer step do).  Code that writes parameters by hand must do
 * m->version++ or call ps_infer_invalidate on every ps_infer of the model.
 * The upper 32 bits of m->version are given, the first time an inference
 * state sees the model, a value unique in the process, so that a model
 * allocated where a freed one lived is never mistaken for it.
 *
 * Memory: the cache grows on demand (doubling, at least 64 positions) up to
 * n_ctx; for GPT-2 124M at 1024 positions K and V take 75 MB.  After growth,
 * appending allocates nothing.  Prompts are processed in chunks of at most
 * PS_INFER_CHUNK tokens, which bounds the scratch.
 *
 * One ps_infer belongs to one model, which must outlive it; one thread at a
 * time, and not while another thread writes the parameters. */
#ifndef PARAMSCOPE_INFER_H
#define PARAMSCOPE_INFER_H

#include <stdint.h>

#include "paramscope/error.h"
#include "paramscope/model.h"

#define PS_INFER_CHUNK 128

typedef struct ps_infer ps_infer;

/* An empty inference state for m (no cache allocated yet).  *out is owned by
 * the caller and freed with ps_infer_free; NULL on failure (PS_ERR_NOMEM). */
int ps_infer_init(ps_infer **out, ps_model *m, ps_error *err);
void ps_infer_free(ps_infer *inf);

/* Makes *inf an inference state for m: keeps it when it was made for m with
 * m's current configuration, otherwise frees it and makes a new one (*inf may
 * be NULL).  For callers that keep one state across calls while the model may
 * be replaced.  On failure *inf is NULL. */
int ps_infer_attach(ps_infer **inf, ps_model *m, ps_error *err);

/* Forgets every cached token (keeps the memory). */
void ps_infer_reset(ps_infer *inf);

/* The same, named for its use: call it when the parameters changed without
 * m->version++ (see above).  Never needed after journal edits or training. */
void ps_infer_invalidate(ps_infer *inf);

/* Feeds ids [n >= 1] after the cached tokens and computes the logits of the
 * last one.  PS_ERR_RANGE when an id is not in [0, vocab_size) or when the
 * cached and new tokens together would exceed n_ctx (the caller decides what
 * to drop: see ps_infer_prompt); PS_ERR_INVALID for n < 1; PS_ERR_NOMEM when
 * the cache cannot grow.  On failure the cache is as before. */
int ps_infer_append(ps_infer *inf, const int *ids, int n, ps_error *err);

/* Makes the cached sequence exactly ids [1 <= n <= n_ctx] and computes the
 * logits of its last token, reusing the longest common prefix of the cached
 * tokens and ids (with current parameters): a prompt that extends the last
 * one runs only its new tokens, the same prompt again runs nothing.  Errors
 * as ps_infer_append (n > n_ctx is PS_ERR_RANGE); on failure the cache is
 * as before. */
int ps_infer_prompt(ps_infer *inf, const int *ids, int n, ps_error *err);

/* Logits [vocab_size] of the last cached token, valid until the next call on
 * inf; NULL when nothing is cached.  Owned by inf. */
const float *ps_infer_logits(const ps_infer *inf);

/* Where the first NaN or infinity of the cached tokens' forward pass
 * appears, for a message when the logits are not finite: reruns every cached
 * token with a check after each stage (ps_forward_stage_name) and fills
 * where ("block 3 (attention)").  Returns 1 if a stage held one, 0 if the
 * whole pass is finite (where is then "").  Costs one forward of the cached
 * tokens; the normal path checks nothing. */
int ps_infer_find_nonfinite(ps_infer *inf, char *where, size_t size);

/* Tokens cached now, and their ids ([ps_infer_len], owned by inf). */
int ps_infer_len(const ps_infer *inf);
const int *ps_infer_ids(const ps_infer *inf);

/* Tokens computed by the last append or prompt call (0 when it reused
 * everything): for tests and benchmarks of the reuse. */
int ps_infer_last_computed(const ps_infer *inf);

/* Bytes allocated for the cache and scratch. */
size_t ps_infer_bytes(const ps_infer *inf);

#endif
