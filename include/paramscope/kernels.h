/* paramscope — the layers of the model as plain kernels, forward and backward.
 *
 * Shapes: N rows (N = B*T), C channels, OC output channels.  Backward functions
 * accumulate (+=) into parameter gradients; an input gradient is accumulated
 * where its comment says "+=" and overwritten otherwise. */
#ifndef PARAMSCOPE_KERNELS_H
#define PARAMSCOPE_KERNELS_H

/* out[N, OC] = inp[N, C] W[C, OC] + bias[OC] (bias may be NULL). */
void ps_matmul_forward(float *out, const float *inp, const float *w,
                       const float *bias, int N, int C, int OC);
/* dinp[N, C] = dout W^T (overwritten; skipped if dinp is NULL);
 * dw[C, OC] += inp^T dout; dbias[OC] += column sums of dout (may be NULL). */
void ps_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout,
                        const float *inp, const float *w, int N, int C, int OC);

/* out = (inp - mean) * rstd * w + b per row, eps 1e-5; saves mean and rstd [N]. */
void ps_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int N, int C);
/* dinp += ...; dw += ...; db += ... */
void ps_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, const float *mean,
                           const float *rstd, int N, int C);

/* GELU, tanh approximation. */
void ps_gelu_forward(float *out, const float *inp, int n);
/* dinp = gelu'(inp) * dout (overwritten). */
void ps_gelu_backward(float *dinp, const float *inp, const float *dout, int n);

/* Causal multi-head attention.  qkv [B, T, 3C] holds Q, K, V side by side; head
 * h uses columns h*hd .. (h+1)*hd-1 of each.  att [B, NH, T, T] gets the
 * probabilities (zero above the diagonal); out [B, T, C] the heads' outputs. */
void ps_attention_forward(float *out, float *att, const float *qkv,
                          int B, int T, int C, int NH);
/* dqkv [B, T, 3C] overwritten; datt [B, NH, T, T] is scratch. */
void ps_attention_backward(float *dqkv, float *datt, const float *dout,
                           const float *qkv, const float *att,
                           int B, int T, int C, int NH);

/* Token plus position embedding: out[b, t] = wte[ids[b, t]] + wpe[t]. */
void ps_encoder_forward(float *out, const int *ids, const float *wte,
                        const float *wpe, int B, int T, int C);
/* dwte[ids[b,t]] += dout[b,t]; dwpe[t] += dout[b,t]. */
void ps_encoder_backward(float *dwte, float *dwpe, const float *dout,
                         const int *ids, int B, int T, int C);

/* out = a + b, n elements (out may alias a). */
void ps_residual_forward(float *out, const float *a, const float *b, int n);

/* Row softmax of logits / temperature over V (temperature > 0). */
void ps_softmax(float *probs, const float *logits, int V, float temperature);

/* losses[i] = -log softmax(logits[i])[targets[i]], computed as
 * logsumexp - logit so that it stays finite when the probability underflows. */
void ps_crossentropy_forward(float *losses, const float *logits,
                             const int *targets, int N, int V);
/* Both of the above in one pass over the logits (one exp per logit):
 * probs[i] = softmax(logits[i]) and losses[i] = logsumexp - logit[target]. */
void ps_softmax_crossentropy(float *probs, float *losses, const float *logits,
                             const int *targets, int N, int V);

/* dlogits[i] = (probs[i] - onehot(targets[i])) * scale (overwritten). */
void ps_crossentropy_softmax_backward(float *dlogits, const float *probs,
                                      const int *targets, float scale,
                                      int N, int V);

#endif
