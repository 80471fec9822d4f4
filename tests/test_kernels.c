/* Each kernel against naive double-precision loops; each backward against
 * central finite differences of the double-precision reference.
 *
 * Tolerances: forward results must match the double reference within
 * 1e-5 relative to the largest reference magnitude (float32 has 24 bits, the
 * sizes here sum at most a few hundred terms); gradients within 1e-4 of the
 * same scale (finite differences in double with h = 1e-6 are accurate to
 * ~1e-9, so the float32 kernels dominate). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "paramscope/blas.h"
#include "paramscope/kernels.h"
#include "paramscope/rng.h"
#include "engine/vecmath.h"

#define FWD_TOL 1e-5
#define BWD_TOL 1e-4
#define FD_H 1e-6

static ps_rng rng;

static float *randf(size_t n, float scale)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = ps_rng_normal(&rng) * scale;
    return x;
}

static double *to_d(const float *x, size_t n)
{
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

/* max |got - want| <= tol * max(1, max |want|) */
static void expect_close(const float *got, const double *want, size_t n, double tol,
                         const char *what)
{
    double scale = 1.0, worst = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++)
        scale = fabs(want[i]) > scale ? fabs(want[i]) : scale;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (!(e <= worst)) {
            worst = e;
            at = i;
        }
    }
    if (!(worst <= tol * scale))
        fail_msg("%s: element %zu is %.9g, reference %.9g (error %.3g > %.3g)", what, at,
                 (double)got[at], want[at], worst, tol * scale);
}

/* ---- naive double references ---- */

static void ref_matmul(double *out, const double *x, const double *w, const double *b,
                       int N, int C, int OC)
{
    for (int i = 0; i < N; i++)
        for (int o = 0; o < OC; o++) {
            double s = b ? b[o] : 0.0;
            for (int c = 0; c < C; c++)
                s += x[i * C + c] * w[c * OC + o];
            out[i * OC + o] = s;
        }
}

static void ref_layernorm(double *out, const double *x, const double *w, const double *b,
                          int N, int C)
{
    for (int i = 0; i < N; i++) {
        double m = 0, v = 0;
        for (int c = 0; c < C; c++)
            m += x[i * C + c];
        m /= C;
        for (int c = 0; c < C; c++)
            v += (x[i * C + c] - m) * (x[i * C + c] - m);
        v /= C;
        for (int c = 0; c < C; c++)
            out[i * C + c] = (x[i * C + c] - m) / sqrt(v + 1e-5) * w[c] + b[c];
    }
}

static double ref_gelu1(double x)
{
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

static void ref_attention(double *out, double *att, const double *qkv, int B, int T, int C,
                          int NH)
{
    int hd = C / NH;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                const double *q = qkv + (b * T + t) * 3 * C + h * hd;
                double s[64], mx = -1e300, sum = 0;
                for (int u = 0; u <= t; u++) {
                    const double *k = qkv + (b * T + u) * 3 * C + C + h * hd;
                    double d = 0;
                    for (int i = 0; i < hd; i++)
                        d += q[i] * k[i];
                    s[u] = d / sqrt((double)hd);
                    mx = s[u] > mx ? s[u] : mx;
                }
                for (int u = 0; u <= t; u++) {
                    s[u] = exp(s[u] - mx);
                    sum += s[u];
                }
                for (int u = 0; u < T; u++) {
                    double p = u <= t ? s[u] / sum : 0.0;
                    if (att)
                        att[((b * NH + h) * T + t) * T + u] = p;
                }
                for (int i = 0; i < hd; i++) {
                    double acc = 0;
                    for (int u = 0; u <= t; u++)
                        acc += s[u] / sum * qkv[(b * T + u) * 3 * C + 2 * C + h * hd + i];
                    out[(b * T + t) * C + h * hd + i] = acc;
                }
            }
}

/* Finite-difference gradient of J(x) = sum(dout * f(x)) with respect to x[n]. */
typedef void (*ref_fn)(double *out, const double *x, void *ctx);

static void fd_grad(double *grad, double *x, size_t n, const double *dout, size_t n_out,
                    ref_fn f, void *ctx)
{
    double *o = malloc(n_out * sizeof *o);
    for (size_t i = 0; i < n; i++) {
        double keep = x[i], jp = 0, jm = 0;
        x[i] = keep + FD_H;
        f(o, x, ctx);
        for (size_t j = 0; j < n_out; j++)
            jp += dout[j] * o[j];
        x[i] = keep - FD_H;
        f(o, x, ctx);
        for (size_t j = 0; j < n_out; j++)
            jm += dout[j] * o[j];
        x[i] = keep;
        grad[i] = (jp - jm) / (2 * FD_H);
    }
    free(o);
}

/* ---- matrix products ---- */

static void test_sgemm_transposes(void **state)
{
    (void)state;
    int M = 13, N = 17, K = 11;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            /* stored A is [M,K] or [K,M]; B is [K,N] or [N,K]; leading dims padded */
            int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 5;
            float *A = randf((size_t)(ta ? K : M) * lda, 1.0f);
            float *Bm = randf((size_t)(tb ? N : K) * ldb, 1.0f);
            float *Cm = randf((size_t)M * ldc, 1.0f);
            double *want = malloc(sizeof(double) * M * N);
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double s = 0;
                    for (int k = 0; k < K; k++) {
                        double a = ta ? A[k * lda + i] : A[i * lda + k];
                        double b = tb ? Bm[j * ldb + k] : Bm[k * ldb + j];
                        s += a * b;
                    }
                    want[i * N + j] = 0.5 * s + 2.0 * Cm[i * ldc + j];
                }
            ps_sgemm(ta, tb, M, N, K, 0.5f, A, lda, Bm, ldb, 2.0f, Cm, ldc);
            float *got = malloc(sizeof(float) * M * N);
            for (int i = 0; i < M; i++)
                memcpy(got + i * N, Cm + i * ldc, sizeof(float) * N);
            expect_close(got, want, (size_t)M * N, FWD_TOL, ta ? (tb ? "A^T B^T" : "A^T B") : (tb ? "A B^T" : "A B"));
            free(A); free(Bm); free(Cm); free(want); free(got);
        }
}

struct mm_ctx { int N, C, OC; const double *x, *w, *b; int which; };

static void mm_fn(double *out, const double *v, void *p)
{
    struct mm_ctx *c = p;
    ref_matmul(out, c->which == 0 ? v : c->x, c->which == 1 ? v : c->w,
               c->which == 2 ? v : c->b, c->N, c->C, c->OC);
}

static void test_matmul(void **state)
{
    (void)state;
    int N = 6, C = 10, OC = 7;
    float *x = randf(N * C, 1), *w = randf(C * OC, 1), *b = randf(OC, 1), *dout = randf(N * OC, 1);
    float *out = malloc(sizeof(float) * N * OC);
    double *xd = to_d(x, N * C), *wd = to_d(w, C * OC), *bd = to_d(b, OC), *dd = to_d(dout, N * OC);
    double *want = malloc(sizeof(double) * N * OC);
    ps_matmul_forward(out, x, w, b, N, C, OC);
    ref_matmul(want, xd, wd, bd, N, C, OC);
    expect_close(out, want, N * OC, FWD_TOL, "matmul forward");

    float *dx = malloc(sizeof(float) * N * C), *dw = calloc(C * OC, sizeof(float)), *db = calloc(OC, sizeof(float));
    /* accumulation: start dw and db at 1 and expect 1 + gradient */
    for (int i = 0; i < C * OC; i++) dw[i] = 1.0f;
    for (int i = 0; i < OC; i++) db[i] = 1.0f;
    ps_matmul_backward(dx, dw, db, dout, x, w, N, C, OC);
    struct mm_ctx ctx = {N, C, OC, xd, wd, bd, 0};
    double *g = malloc(sizeof(double) * C * OC);
    fd_grad(g, xd, N * C, dd, N * OC, mm_fn, &ctx);
    expect_close(dx, g, N * C, BWD_TOL, "matmul dinp");
    ctx.which = 1;
    fd_grad(g, wd, C * OC, dd, N * OC, mm_fn, &ctx);
    for (int i = 0; i < C * OC; i++) g[i] += 1.0;
    expect_close(dw, g, C * OC, BWD_TOL, "matmul dw (accumulated)");
    ctx.which = 2;
    fd_grad(g, bd, OC, dd, N * OC, mm_fn, &ctx);
    for (int i = 0; i < OC; i++) g[i] += 1.0;
    expect_close(db, g, OC, BWD_TOL, "matmul dbias (accumulated)");
    free(x); free(w); free(b); free(dout); free(out); free(xd); free(wd); free(bd); free(dd);
    free(want); free(dx); free(dw); free(db); free(g);
}

/* ---- LayerNorm ---- */

struct ln_ctx { int N, C; const double *x, *w, *b; int which; };

static void ln_fn(double *out, const double *v, void *p)
{
    struct ln_ctx *c = p;
    ref_layernorm(out, c->which == 0 ? v : c->x, c->which == 1 ? v : c->w,
                  c->which == 2 ? v : c->b, c->N, c->C);
}

static void test_layernorm(void **state)
{
    (void)state;
    int N = 5, C = 12;
    float *x = randf(N * C, 2), *w = randf(C, 1), *b = randf(C, 1), *dout = randf(N * C, 1);
    for (int c = 0; c < C; c++) x[c] += 3.0f;   /* a row with a large mean */
    float *out = malloc(sizeof(float) * N * C), mean[5], rstd[5];
    double *xd = to_d(x, N * C), *wd = to_d(w, C), *bd = to_d(b, C), *dd = to_d(dout, N * C);
    double *want = malloc(sizeof(double) * N * C);
    ps_layernorm_forward(out, mean, rstd, x, w, b, N, C);
    ref_layernorm(want, xd, wd, bd, N, C);
    expect_close(out, want, N * C, FWD_TOL, "layernorm forward");

    float *dx = calloc(N * C, sizeof(float)), *dw = calloc(C, sizeof(float)), *db = calloc(C, sizeof(float));
    ps_layernorm_backward(dx, dw, db, dout, x, w, mean, rstd, N, C);
    double *g = malloc(sizeof(double) * N * C);
    struct ln_ctx ctx = {N, C, xd, wd, bd, 0};
    fd_grad(g, xd, N * C, dd, N * C, ln_fn, &ctx);
    expect_close(dx, g, N * C, BWD_TOL, "layernorm dinp");
    ctx.which = 1;
    fd_grad(g, wd, C, dd, N * C, ln_fn, &ctx);
    expect_close(dw, g, C, BWD_TOL, "layernorm dw");
    ctx.which = 2;
    fd_grad(g, bd, C, dd, N * C, ln_fn, &ctx);
    expect_close(db, g, C, BWD_TOL, "layernorm db");
    free(x); free(w); free(b); free(dout); free(out); free(xd); free(wd); free(bd); free(dd);
    free(want); free(dx); free(dw); free(db); free(g);
}

/* ---- GELU ---- */

static void gelu_fn(double *out, const double *v, void *p)
{
    int n = *(int *)p;
    for (int i = 0; i < n; i++)
        out[i] = ref_gelu1(v[i]);
}

static void test_gelu(void **state)
{
    (void)state;
    int n = 64;
    float *x = randf(n, 3), *dout = randf(n, 1), *out = malloc(sizeof(float) * n), *dx = malloc(sizeof(float) * n);
    x[0] = 0.0f; x[1] = -10.0f; x[2] = 10.0f;
    double *xd = to_d(x, n), *dd = to_d(dout, n), *want = malloc(sizeof(double) * n);
    ps_gelu_forward(out, x, n);
    gelu_fn(want, xd, &n);
    expect_close(out, want, n, FWD_TOL, "gelu forward");
    assert_true(out[0] == 0.0f);
    assert_true(fabsf(out[2] - 10.0f) < 1e-5f);
    ps_gelu_backward(dx, x, dout, n);
    fd_grad(want, xd, n, dd, n, gelu_fn, &n);
    expect_close(dx, want, n, BWD_TOL, "gelu backward");
    free(x); free(dout); free(out); free(dx); free(xd); free(dd); free(want);
}

/* ---- attention ---- */

struct att_ctx { int B, T, C, NH; };

static void att_fn(double *out, const double *v, void *p)
{
    struct att_ctx *c = p;
    ref_attention(out, NULL, v, c->B, c->T, c->C, c->NH);
}

static void test_attention(void **state)
{
    (void)state;
    int B = 2, T = 7, C = 12, NH = 3;
    size_t nq = (size_t)B * T * 3 * C, no = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    float *qkv = randf(nq, 1), *dout = randf(no, 1);
    float *out = malloc(sizeof(float) * no), *att = malloc(sizeof(float) * na);
    float *dqkv = malloc(sizeof(float) * nq), *datt = malloc(sizeof(float) * na);
    double *qd = to_d(qkv, nq), *dd = to_d(dout, no);
    double *want = malloc(sizeof(double) * no), *want_att = malloc(sizeof(double) * na);
    ps_attention_forward(out, att, qkv, B, T, C, NH);
    ref_attention(want, want_att, qd, B, T, C, NH);
    expect_close(out, want, no, FWD_TOL, "attention output");
    expect_close(att, want_att, na, FWD_TOL, "attention probabilities");
    /* causality: probabilities above the diagonal are exactly zero, rows sum to 1 */
    for (int r = 0; r < B * NH * T; r++) {
        int t = r % T;
        double s = 0;
        for (int u = 0; u < T; u++) {
            if (u > t)
                assert_true(att[(size_t)r * T + u] == 0.0f);
            s += att[(size_t)r * T + u];
        }
        assert_true(fabs(s - 1.0) < 1e-6);
    }
    /* fill dqkv with garbage: backward must overwrite all of it */
    for (size_t i = 0; i < nq; i++)
        dqkv[i] = 1e30f;
    ps_attention_backward(dqkv, datt, dout, qkv, att, B, T, C, NH);
    double *g = malloc(sizeof(double) * nq);
    struct att_ctx ctx = {B, T, C, NH};
    fd_grad(g, qd, nq, dd, no, att_fn, &ctx);
    expect_close(dqkv, g, nq, BWD_TOL, "attention dqkv");
    free(qkv); free(dout); free(out); free(att); free(dqkv); free(datt); free(qd); free(dd);
    free(want); free(want_att); free(g);
}

/* ---- softmax and cross-entropy ---- */

static void test_softmax_crossentropy(void **state)
{
    (void)state;
    int N = 4, V = 23;
    float *logits = randf(N * V, 3), *probs = malloc(sizeof(float) * N * V);
    logits[5] = 80.0f;   /* large logits must not overflow */
    int targets[4] = {0, 22, 5, 11};
    for (int i = 0; i < N; i++)
        ps_softmax(probs + i * V, logits + i * V, V, 1.0f);
    double *want = malloc(sizeof(double) * N * V), *wl = malloc(sizeof(double) * N);
    for (int i = 0; i < N; i++) {
        double mx = -1e300, s = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, logits[i * V + v]);
        for (int v = 0; v < V; v++) s += exp(logits[i * V + v] - mx);
        for (int v = 0; v < V; v++) want[i * V + v] = exp(logits[i * V + v] - mx) / s;
        wl[i] = log(s) + mx - logits[i * V + targets[i]];
    }
    expect_close(probs, want, N * V, FWD_TOL, "softmax");
    /* temperature 2 equals softmax of logits / 2 */
    float *p2 = malloc(sizeof(float) * V), half[23];
    for (int v = 0; v < V; v++) half[v] = logits[V + v] / 2;
    ps_softmax(p2, logits + V, V, 2.0f);
    for (int v = 0; v < V; v++) {
        double mx = -1e300, s = 0;
        for (int u = 0; u < V; u++) mx = fmax(mx, half[u]);
        for (int u = 0; u < V; u++) s += exp(half[u] - mx);
        want[v] = exp(half[v] - mx) / s;
    }
    expect_close(p2, want, V, FWD_TOL, "softmax with temperature 2");

    float losses[4];
    ps_crossentropy_forward(losses, logits, targets, N, V);
    expect_close(losses, wl, N, FWD_TOL, "cross-entropy");
    /* a target with an underflowing probability still has a finite loss */
    float lo[3] = {100.0f, 0.0f, 0.0f};
    int t1 = 1;
    ps_crossentropy_forward(losses, lo, &t1, 1, 3);
    assert_true(fabsf(losses[0] - 100.0f) < 1e-3f);

    /* the fused kernel gives the same probabilities and losses */
    float *fp = malloc(sizeof(float) * N * V), fl[4];
    ps_softmax_crossentropy(fp, fl, logits, targets, N, V);
    for (int i = 0; i < N; i++)
        for (int v = 0; v < V; v++) {
            double mx = -1e300, sm = 0;
            for (int u = 0; u < V; u++) mx = fmax(mx, logits[i * V + u]);
            for (int u = 0; u < V; u++) sm += exp(logits[i * V + u] - mx);
            want[i * V + v] = exp(logits[i * V + v] - mx) / sm;
        }
    expect_close(fp, want, N * V, FWD_TOL, "fused softmax");
    expect_close(fl, wl, N, FWD_TOL, "fused cross-entropy");
    free(fp);

    float *dl = malloc(sizeof(float) * N * V);
    ps_crossentropy_softmax_backward(dl, probs, targets, 0.25f, N, V);
    /* d mean-loss / d logits = (p - onehot) / N, by finite differences */
    for (int i = 0; i < N; i++)
        for (int v = 0; v < V; v++) {
            double l0[23];
            for (int u = 0; u < V; u++) l0[u] = logits[i * V + u];
            double f[2];
            for (int s = 0; s < 2; s++) {
                l0[v] = logits[i * V + v] + (s ? -FD_H : FD_H);
                double mx = -1e300, sum = 0;
                for (int u = 0; u < V; u++) mx = fmax(mx, l0[u]);
                for (int u = 0; u < V; u++) sum += exp(l0[u] - mx);
                f[s] = (log(sum) + mx - l0[targets[i]]) / N;
            }
            want[i * V + v] = (f[0] - f[1]) / (2 * FD_H);
        }
    expect_close(dl, want, N * V, BWD_TOL, "cross-entropy backward");
    free(logits); free(probs); free(want); free(wl); free(p2); free(dl);
}

static void test_encoder(void **state)
{
    (void)state;
    int B = 2, T = 3, C = 4, V = 5;
    int ids[6] = {4, 0, 4, 1, 2, 4};
    float *wte = randf(V * C, 1), *wpe = randf(T * C, 1), out[24];
    ps_encoder_forward(out, ids, wte, wpe, B, T, C);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++)
                assert_true(out[(b * T + t) * C + c] == wte[ids[b * T + t] * C + c] + wpe[t * C + c]);
    float dout[24], dwte[20] = {0}, dwpe[12] = {0};
    for (int i = 0; i < 24; i++) dout[i] = (float)(i + 1);
    ps_encoder_backward(dwte, dwpe, dout, ids, B, T, C);
    /* token 4 occurs at (0,0), (0,2), (1,2): its gradient is the sum of those rows */
    for (int c = 0; c < C; c++) {
        assert_true(dwte[4 * C + c] == dout[0 * C + c] + dout[2 * C + c] + dout[5 * C + c]);
        assert_true(dwte[3 * C + c] == 0.0f);
        assert_true(dwpe[1 * C + c] == dout[1 * C + c] + dout[4 * C + c]);
    }
    free(wte); free(wpe);
}

/* The vectorisable exp and tanh against libm in double over their range. */
static void test_vecmath(void **state)
{
    (void)state;
    double worst = 0;
    for (int i = 0; i <= 2000000; i++) {
        float x = -87.0f + 175.0f * (float)i / 2000000.0f;
        double want = exp((double)x), got = ps_expf(x);
        double e = fabs(got - want) / want;
        worst = e > worst ? e : worst;
    }
    if (worst > 3e-7)
        fail_msg("ps_expf: relative error %.3g > 3e-7", worst);
    assert_true(ps_expf(-1000.0f) >= 0.0f && ps_expf(-1000.0f) < 1e-37f);
    assert_true(ps_expf(0.0f) == 1.0f);
    assert_true(isnan(ps_expf(NAN)));          /* NaN passes through, no UB on the way */
    assert_true(ps_expf(INFINITY) > 1e38f && ps_expf(-INFINITY) < 1e-37f);
    worst = 0;
    for (int i = 0; i <= 200000; i++) {
        float u = -20.0f + 40.0f * (float)i / 200000.0f;
        double e = fabs(ps_tanhf(u) - tanh((double)u));
        worst = e > worst ? e : worst;
    }
    if (worst > 3e-7)
        fail_msg("ps_tanhf: absolute error %.3g > 3e-7", worst);
    assert_true(ps_tanhf(100.0f) == 1.0f && ps_tanhf(-100.0f) == -1.0f);
}

/* Sizes above the threshold at which the kernels split work over threads,
 * with two threads: the same answers as the naive references. */
static void test_parallel_paths(void **state)
{
    (void)state;
    int keep = ps_blas_threads();
    ps_blas_set_threads(2, NULL);
    int n = 100003;
    float *x = randf(n, 2), *y = malloc(sizeof(float) * n), *dy = randf(n, 1), *dx = malloc(sizeof(float) * n);
    double *want = malloc(sizeof(double) * n);
    ps_gelu_forward(y, x, n);
    for (int i = 0; i < n; i++) want[i] = ref_gelu1(x[i]);
    expect_close(y, want, n, FWD_TOL, "parallel gelu");
    ps_gelu_backward(dx, x, dy, n);
    for (int i = 0; i < n; i++) {
        double a = x[i];
        want[i] = (ref_gelu1(a + 1e-6) - ref_gelu1(a - 1e-6)) / 2e-6 * dy[i];
    }
    expect_close(dx, want, n, BWD_TOL, "parallel gelu backward");

    int N = 300, C = 128;
    float *w = randf(C, 1), *b = randf(C, 1), mean[300], rstd[300];
    double *xd = to_d(x, (size_t)N * C), *wd = to_d(w, C), *bd = to_d(b, C);
    ps_layernorm_forward(y, mean, rstd, x, w, b, N, C);
    ref_layernorm(want, xd, wd, bd, N, C);
    expect_close(y, want, (size_t)N * C, FWD_TOL, "parallel layernorm");

    int R = 40, V = 1001, tg[40];
    for (int i = 0; i < R; i++) tg[i] = (i * 37) % V;
    float losses[40];
    ps_softmax_crossentropy(y, losses, x, tg, R, V);
    for (int i = 0; i < R; i++) {
        double mx = -1e300, sm = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, x[i * V + v]);
        for (int v = 0; v < V; v++) sm += exp(x[i * V + v] - mx);
        for (int v = 0; v < V; v++) want[i * V + v] = exp(x[i * V + v] - mx) / sm;
        if (fabs(losses[i] - (log(sm) + mx - x[i * V + tg[i]])) > 1e-5 * fmax(1.0, fabs(log(sm) + mx)))
            fail_msg("parallel cross-entropy row %d", i);
    }
    expect_close(y, want, (size_t)R * V, FWD_TOL, "parallel softmax");
    ps_crossentropy_softmax_backward(dx, y, tg, 0.5f, R, V);
    for (int i = 0; i < R * V; i++) want[i] = 0.5 * y[i] - (i % V == tg[i / V] ? 0.5 : 0.0);
    expect_close(dx, want, (size_t)R * V, FWD_TOL, "parallel cross-entropy backward");

    /* large products are split into bands of columns (or rows) over the
     * threads: every transpose form against the naive loops */
    int shapes[2][3] = {{300, 200, 40}, {100, 700, 30}};
    for (int sh = 0; sh < 2; sh++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int M = shapes[sh][0], N2 = shapes[sh][1], K = shapes[sh][2];
                int lda = ta ? M : K, ldb = tb ? K : N2;
                float *A = randf((size_t)M * K, 1), *Bm = randf((size_t)K * N2, 1);
                float *Cm = malloc(sizeof(float) * M * N2);
                double *ref = malloc(sizeof(double) * M * N2);
                for (int i = 0; i < M; i++)
                    for (int jj = 0; jj < N2; jj++) {
                        double acc = 0;
                        for (int kk = 0; kk < K; kk++)
                            acc += (double)(ta ? A[kk * lda + i] : A[i * lda + kk]) *
                                   (tb ? Bm[jj * ldb + kk] : Bm[kk * ldb + jj]);
                        ref[i * N2 + jj] = acc;
                    }
                ps_sgemm(ta, tb, M, N2, K, 1.0f, A, lda, Bm, ldb, 0.0f, Cm, N2);
                expect_close(Cm, ref, (size_t)M * N2, FWD_TOL, "split sgemm");
                free(A); free(Bm); free(Cm); free(ref);
            }

    /* attention over many heads: each head's output equals the serial run */
    int B = 4, T = 16, AC = 32, NH = 8;
    size_t nq = (size_t)B * T * 3 * AC, no = (size_t)B * T * AC, na = (size_t)B * NH * T * T;
    float *qkv = randf(nq, 1), *o1 = malloc(sizeof(float) * no), *o2 = malloc(sizeof(float) * no);
    float *a1 = malloc(sizeof(float) * na), *a2 = malloc(sizeof(float) * na);
    ps_attention_forward(o1, a1, qkv, B, T, AC, NH);
    ps_blas_set_threads(1, NULL);
    ps_attention_forward(o2, a2, qkv, B, T, AC, NH);
    assert_memory_equal(o1, o2, sizeof(float) * no);
    assert_memory_equal(a1, a2, sizeof(float) * na);
    ps_blas_set_threads(keep, NULL);
    free(x); free(y); free(dy); free(dx); free(want); free(w); free(b); free(xd); free(wd); free(bd);
    free(qkv); free(o1); free(o2); free(a1); free(a2);
}

int main(void)
{
    ps_rng_seed(&rng, 1234);
    ps_blas_init(0, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgemm_transposes),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_gelu),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_softmax_crossentropy),
        cmocka_unit_test(test_encoder),
        cmocka_unit_test(test_vecmath),
        cmocka_unit_test(test_parallel_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
