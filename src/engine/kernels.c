/* The layers as kernels.  Matrix products go through ps_sgemm (BLIS); the rest
 * are plain loops over contiguous rows, written for the compiler to vectorise.
 * The maths follows GPT-2 (pre-LayerNorm blocks, tanh GELU, causal softmax
 * attention); names of buffers follow model.h. */
#include "paramscope/kernels.h"

#include <math.h>
#include <string.h>

#include "paramscope/blas.h"
#include "pool.h"
#include "vecmath.h"

#define LN_EPS 1e-5f

/* ---- matmul (Conv1D layout: y = x W + b, W is [in, out]) ---- */

void ps_matmul_forward(float *out, const float *inp, const float *w,
                       const float *bias, int N, int C, int OC)
{
    ps_sgemm(0, 0, N, OC, C, 1.0f, inp, C, w, OC, 0.0f, out, OC);
    if (!bias)
        return;
    for (int i = 0; i < N; i++) {
        float *row = out + (size_t)i * OC;
        for (int o = 0; o < OC; o++)
            row[o] += bias[o];
    }
}

void ps_matmul_backward(float *dinp, float *dw, float *dbias, const float *dout,
                        const float *inp, const float *w, int N, int C, int OC)
{
    if (dinp) /* dinp[N, C] = dout[N, OC] W^T */
        ps_sgemm(0, 1, N, C, OC, 1.0f, dout, OC, w, OC, 0.0f, dinp, C);
    /* dw[C, OC] += inp^T[C, N] dout[N, OC] */
    ps_sgemm(1, 0, C, OC, N, 1.0f, inp, C, dout, OC, 1.0f, dw, OC);
    if (!dbias)
        return;
    for (int i = 0; i < N; i++) {
        const float *row = dout + (size_t)i * OC;
        for (int o = 0; o < OC; o++)
            dbias[o] += row[o];
    }
}

/* ---- LayerNorm ---- */

PS_VECTOR_CLONES
static void layernorm_forward_core(float *out, float *mean, float *rstd, const float *inp,
                                   const float *w, const float *b, int N, int C)
{
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C;
        float *y = out + (size_t)i * C;
        float sum = 0.0f;
        for (int c = 0; c < C; c++)
            sum += x[c];
        float m = sum / C;
        float var = 0.0f;
        for (int c = 0; c < C; c++) {
            float d = x[c] - m;
            var += d * d;
        }
        float s = 1.0f / sqrtf(var / C + LN_EPS);
        for (int c = 0; c < C; c++)
            y[c] = (x[c] - m) * s * w[c] + b[c];
        mean[i] = m;
        rstd[i] = s;
    }
}

PS_VECTOR_CLONES
void ps_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, const float *mean,
                           const float *rstd, int N, int C)
{
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C;
        const float *dy = dout + (size_t)i * C;
        float *dx = dinp + (size_t)i * C;
        float m = mean[i], s = rstd[i];
        /* With xhat = (x - m) s and g = dy * w: dx = s (g - mean(g) - xhat mean(g xhat)). */
        float g_mean = 0.0f, gx_mean = 0.0f;
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - m) * s;
            float g = dy[c] * w[c];
            g_mean += g;
            gx_mean += g * xhat;
        }
        g_mean /= C;
        gx_mean /= C;
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - m) * s;
            float g = dy[c] * w[c];
            db[c] += dy[c];
            dw[c] += xhat * dy[c];
            dx[c] += s * (g - g_mean - xhat * gx_mean);
        }
    }
}

/* ---- GELU (tanh approximation) ---- */

#define GELU_K 0.7978845608028654f   /* sqrt(2 / pi) */
#define GELU_A 0.044715f

PS_VECTOR_CLONES
static void gelu_forward_core(float *out, const float *inp, int n)
{
    for (int i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_K * (x + GELU_A * x * x * x);
        out[i] = 0.5f * x * (1.0f + ps_tanhf(u));
    }
}

PS_VECTOR_CLONES
static void gelu_backward_core(float *dinp, const float *inp, const float *dout, int n)
{
    for (int i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_K * (x + GELU_A * x * x * x);
        float th = ps_tanhf(u);
        float sech2 = 1.0f - th * th;
        float du = GELU_K * (1.0f + 3.0f * GELU_A * x * x);
        float grad = 0.5f * (1.0f + th) + 0.5f * x * sech2 * du;
        dinp[i] = grad * dout[i];
    }
}

/* ---- causal self-attention ---- */

typedef struct attn_job {
    float *out, *att, *dqkv, *datt;
    const float *qkv, *dout, *att_in;
    int B, T, C, NH;
} attn_job;

/* Heads [i0, i1) of the B x NH (sequence, head) pairs. */
static void attention_forward_heads(void *p, int i0, int i1)
{
    const attn_job *j = p;
    int T = j->T, C = j->C, NH = j->NH, hd = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hd);
    for (int i = i0; i < i1; i++) {
        int b = i / NH, h = i % NH;
        const float *q = j->qkv + (size_t)b * T * C3 + h * hd;
        const float *k = q + C;
        const float *v = q + 2 * C;
        float *a = j->att + (size_t)i * T * T;
        /* scores[T, T] = scale * Q K^T; only the lower triangle is used */
        ps_sgemm(0, 1, T, T, hd, scale, q, C3, k, C3, 0.0f, a, T);
        for (int t = 0; t < T; t++) {
            float *row = a + (size_t)t * T;
            float mx = row[0];
            for (int u = 1; u <= t; u++)
                mx = row[u] > mx ? row[u] : mx;
            float sum = 0.0f;
            for (int u = 0; u <= t; u++) {
                row[u] = ps_expf(row[u] - mx);
                sum += row[u];
            }
            float inv = 1.0f / sum;
            for (int u = 0; u <= t; u++)
                row[u] *= inv;
            for (int u = t + 1; u < T; u++)
                row[u] = 0.0f;
        }
        /* out[T, hd] = att[T, T] V[T, hd] */
        ps_sgemm(0, 0, T, hd, T, 1.0f, a, T, v, C3, 0.0f, j->out + (size_t)b * T * C + h * hd, C);
    }
}

void ps_attention_forward(float *out, float *att, const float *qkv,
                          int B, int T, int C, int NH)
{
    attn_job j = {.out = out, .att = att, .qkv = qkv, .B = B, .T = T, .C = C, .NH = NH};
    ps_parallel_for(B * NH, attention_forward_heads, &j);
}

static void attention_backward_heads(void *p, int i0, int i1)
{
    const attn_job *j = p;
    int T = j->T, C = j->C, NH = j->NH, hd = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hd);
    for (int i = i0; i < i1; i++) {
        int b = i / NH, h = i % NH;
        size_t base = (size_t)b * T * C3 + h * hd;
        const float *q = j->qkv + base, *k = q + C, *v = q + 2 * C;
        float *dq = j->dqkv + base, *dk = dq + C, *dv = dq + 2 * C;
        const float *a = j->att_in + (size_t)i * T * T;
        float *da = j->datt + (size_t)i * T * T;
        const float *dy = j->dout + (size_t)b * T * C + h * hd;
        /* datt = dY V^T;  dV = att^T dY */
        ps_sgemm(0, 1, T, T, hd, 1.0f, dy, C, v, C3, 0.0f, da, T);
        ps_sgemm(1, 0, T, hd, T, 1.0f, a, T, dy, C, 0.0f, dv, C3);
        /* through the softmax: dS = att * (datt - sum(att * datt)), scaled */
        for (int t = 0; t < T; t++) {
            const float *ar = a + (size_t)t * T;
            float *dr = da + (size_t)t * T;
            float dot = 0.0f;
            for (int u = 0; u <= t; u++)
                dot += ar[u] * dr[u];
            for (int u = 0; u <= t; u++)
                dr[u] = ar[u] * (dr[u] - dot) * scale;
            for (int u = t + 1; u < T; u++)
                dr[u] = 0.0f;
        }
        /* dQ = dS K;  dK = dS^T Q */
        ps_sgemm(0, 0, T, hd, T, 1.0f, da, T, k, C3, 0.0f, dq, C3);
        ps_sgemm(1, 0, T, hd, T, 1.0f, da, T, q, C3, 0.0f, dk, C3);
    }
}

void ps_attention_backward(float *dqkv, float *datt, const float *dout,
                           const float *qkv, const float *att,
                           int B, int T, int C, int NH)
{
    attn_job j = {.dqkv = dqkv, .datt = datt, .dout = dout, .qkv = qkv, .att_in = att,
                  .B = B, .T = T, .C = C, .NH = NH};
    ps_parallel_for(B * NH, attention_backward_heads, &j);
}

/* ---- embeddings, residual ---- */

PS_VECTOR_CLONES
void ps_encoder_forward(float *out, const int *ids, const float *wte,
                        const float *wpe, int B, int T, int C)
{
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            float *o = out + ((size_t)b * T + t) * C;
            const float *te = wte + (size_t)ids[b * T + t] * C;
            const float *pe = wpe + (size_t)t * C;
            for (int c = 0; c < C; c++)
                o[c] = te[c] + pe[c];
        }
    }
}

PS_VECTOR_CLONES
void ps_encoder_backward(float *dwte, float *dwpe, const float *dout,
                         const int *ids, int B, int T, int C)
{
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            const float *d = dout + ((size_t)b * T + t) * C;
            float *te = dwte + (size_t)ids[b * T + t] * C;
            float *pe = dwpe + (size_t)t * C;
            for (int c = 0; c < C; c++) {
                te[c] += d[c];
                pe[c] += d[c];
            }
        }
    }
}

PS_VECTOR_CLONES
void ps_residual_forward(float *out, const float *a, const float *b, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

/* ---- softmax and cross-entropy ---- */

PS_VECTOR_CLONES
void ps_softmax(float *probs, const float *logits, int V, float temperature)
{
    float inv_t = 1.0f / temperature;
    float mx = logits[0];
    for (int i = 1; i < V; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    float sum = 0.0f;
    for (int i = 0; i < V; i++) {
        probs[i] = ps_expf((logits[i] - mx) * inv_t);
        sum += probs[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < V; i++)
        probs[i] *= inv;
}

PS_VECTOR_CLONES
void ps_crossentropy_forward(float *losses, const float *logits,
                             const int *targets, int N, int V)
{
    for (int i = 0; i < N; i++) {
        const float *l = logits + (size_t)i * V;
        float mx = l[0];
        for (int v = 1; v < V; v++)
            mx = l[v] > mx ? l[v] : mx;
        float sum = 0.0f;
        for (int v = 0; v < V; v++)
            sum += ps_expf(l[v] - mx);
        losses[i] = logf(sum) + mx - l[targets[i]];
    }
}

PS_VECTOR_CLONES
static void softmax_crossentropy_core(float *probs, float *losses, const float *logits,
                                      const int *targets, int N, int V)
{
    for (int i = 0; i < N; i++) {
        const float *l = logits + (size_t)i * V;
        float *p = probs + (size_t)i * V;
        float mx = l[0];
        for (int v = 1; v < V; v++)
            mx = l[v] > mx ? l[v] : mx;
        float sum = 0.0f;
        for (int v = 0; v < V; v++) {
            p[v] = ps_expf(l[v] - mx);
            sum += p[v];
        }
        float inv = 1.0f / sum;
        for (int v = 0; v < V; v++)
            p[v] *= inv;
        losses[i] = logf(sum) + mx - l[targets[i]];
    }
}

PS_VECTOR_CLONES
static void crossentropy_backward_core(float *dlogits, const float *probs,
                                       const int *targets, float scale,
                                       int N, int V)
{
    for (int i = 0; i < N; i++) {
        const float *p = probs + (size_t)i * V;
        float *d = dlogits + (size_t)i * V;
        for (int v = 0; v < V; v++)
            d[v] = p[v] * scale;
        d[targets[i]] -= scale;
    }
}

/* ---- parallel wrappers: rows or element ranges split over the pool ---- */

/* Below this many elements the hand-off to another thread costs more than it
 * saves. */
#define PARALLEL_MIN 32768
#define CHUNK 4096

typedef struct ew_job {
    float *out, *out2, *out3;
    const float *in, *in2, *in3;
    const int *targets;
    float scale;
    int n, N, C;
} ew_job;

static void gelu_fwd_range(void *p, int c0, int c1)
{
    const ew_job *j = p;
    int i0 = c0 * CHUNK, i1 = c1 * CHUNK < j->n ? c1 * CHUNK : j->n;
    gelu_forward_core(j->out + i0, j->in + i0, i1 - i0);
}

void ps_gelu_forward(float *out, const float *inp, int n)
{
    if (n < PARALLEL_MIN) {
        gelu_forward_core(out, inp, n);
        return;
    }
    ew_job j = {.out = out, .in = inp, .n = n};
    ps_parallel_for((n + CHUNK - 1) / CHUNK, gelu_fwd_range, &j);
}

static void gelu_bwd_range(void *p, int c0, int c1)
{
    const ew_job *j = p;
    int i0 = c0 * CHUNK, i1 = c1 * CHUNK < j->n ? c1 * CHUNK : j->n;
    gelu_backward_core(j->out + i0, j->in + i0, j->in2 + i0, i1 - i0);
}

void ps_gelu_backward(float *dinp, const float *inp, const float *dout, int n)
{
    if (n < PARALLEL_MIN) {
        gelu_backward_core(dinp, inp, dout, n);
        return;
    }
    ew_job j = {.out = dinp, .in = inp, .in2 = dout, .n = n};
    ps_parallel_for((n + CHUNK - 1) / CHUNK, gelu_bwd_range, &j);
}

static void ln_fwd_rows(void *p, int r0, int r1)
{
    const ew_job *j = p;
    size_t o = (size_t)r0 * j->C;
    layernorm_forward_core(j->out + o, j->out2 + r0, j->out3 + r0, j->in + o, j->in2, j->in3,
                           r1 - r0, j->C);
}

void ps_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int N, int C)
{
    if ((long)N * C < PARALLEL_MIN) {
        layernorm_forward_core(out, mean, rstd, inp, w, b, N, C);
        return;
    }
    ew_job j = {.out = out, .out2 = mean, .out3 = rstd, .in = inp, .in2 = w, .in3 = b, .N = N, .C = C};
    ps_parallel_for(N, ln_fwd_rows, &j);
}

static void sxent_rows(void *p, int r0, int r1)
{
    const ew_job *j = p;
    size_t o = (size_t)r0 * j->C;
    softmax_crossentropy_core(j->out + o, j->out2 + r0, j->in + o, j->targets + r0, r1 - r0, j->C);
}

void ps_softmax_crossentropy(float *probs, float *losses, const float *logits,
                             const int *targets, int N, int V)
{
    if ((long)N * V < PARALLEL_MIN) {
        softmax_crossentropy_core(probs, losses, logits, targets, N, V);
        return;
    }
    ew_job j = {.out = probs, .out2 = losses, .in = logits, .targets = targets, .N = N, .C = V};
    ps_parallel_for(N, sxent_rows, &j);
}

static void xent_bwd_rows(void *p, int r0, int r1)
{
    const ew_job *j = p;
    size_t o = (size_t)r0 * j->C;
    crossentropy_backward_core(j->out + o, j->in + o, j->targets + r0, j->scale, r1 - r0, j->C);
}

void ps_crossentropy_softmax_backward(float *dlogits, const float *probs,
                                      const int *targets, float scale,
                                      int N, int V)
{
    if ((long)N * V < PARALLEL_MIN) {
        crossentropy_backward_core(dlogits, probs, targets, scale, N, V);
        return;
    }
    ew_job j = {.out = dlogits, .in = probs, .targets = targets, .scale = scale, .N = N, .C = V};
    ps_parallel_for(N, xent_bwd_rows, &j);
}
