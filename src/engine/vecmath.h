/* Internal: elementwise maths written for the vectoriser.
 *
 * Why: libm's expf and tanhf are scalar calls, and GELU, softmax and the
 * cross-entropy run them tens of millions of times a step on GPT-2's shapes.
 * ps_expf is branch-free (clamp, round with a magic constant, a degree-6
 * polynomial, build 2^k from bits), so a loop over it becomes SIMD code; its
 * relative error is below 3e-7 (about 2.5 float ulps) over the range it
 * accepts, [-87, 88]; outside it clamps.
 *
 * PS_VECTOR_CLONES compiles a hot loop three times (AVX-512, AVX2+FMA,
 * baseline x86-64) and picks one at load time, so one binary uses the
 * widest vectors the CPU has.  PS_NO_CLONES (meson's -Dmultiversion=disabled,
 * and auto with clang and under gcc's TSan) makes it expand to nothing. */
#ifndef PARAMSCOPE_VECMATH_H
#define PARAMSCOPE_VECMATH_H

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(PS_NO_CLONES)
#define PS_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define PS_VECTOR_CLONES
#endif

static inline float ps_expf(float x)
{
    /* e^x = 2^k e^r, k = round(x / ln 2), |r| <= ln(2) / 2.  A NaN comes
     * back as NaN; the integer work uses 0 in its place, so that no NaN is
     * ever converted to an integer. */
    float c = x < -87.0f ? -87.0f : x;
    c = c > 88.0f ? 88.0f : c;
    int nan = c != c;
    float xs = nan ? 0.0f : c;
    float kf = xs * 1.44269504088896341f;
    kf = (kf + 12582912.0f) - 12582912.0f;            /* round to nearest */
    float r = xs - kf * 0.693145751953125f;           /* ln 2, high bits */
    r = r - kf * 1.428606765330187e-06f;              /* ln 2, low bits */
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)kf + 127) << 23;         /* kf in [-126, 127] */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return nan ? c : p * scale;
}

/* tanh(u) = 1 - 2 / (e^{2u} + 1): exact limits, absolute error ~1e-7. */
static inline float ps_tanhf(float u)
{
    return 1.0f - 2.0f / (ps_expf(2.0f * u) + 1.0f);
}

#endif
