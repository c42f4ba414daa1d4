/*
 * kern_avx2.c: the fp32 kernels for AVX2 + FMA + F16C, ymm registers, 8
 * lanes (Zen 3 and later, Haswell and later). The kernels themselves are in
 * kern_simd.inc; this file supplies the vector vocabulary. Compiled for the
 * portable baseline: every function carries a target attribute and is called
 * only when cpu.c found the features (kern_path_available).
 */
#include "kernels/kernels.h"
#include "kernels/kern_internal.h"

#include <assert.h>
#include <immintrin.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#define KT __attribute__((target("avx2,fma,f16c")))
#define KTI KT static inline __attribute__((always_inline))
#define VW 8
#define MR 6
#define DOT_MB 3
#define GEMV_NB 6   /* rows of W in flight at M = 1 (kern_simd.inc gemv_tile) */
#define GEMV_PF 384 /* bytes ahead in each of them */
#define ATT_MR 2   /* query rows sharing each value load (kern_simd.inc att_values) */
#define DOT_NB 3
#define UNROLL _Pragma("GCC unroll 16")
#define SFX(n) n##_avx2

typedef __m256 vf;

KTI vf v_zero(void) { return _mm256_setzero_ps(); }
KTI vf v_load(const float *p) { return _mm256_loadu_ps(p); }
KTI void v_store(float *p, vf v) { _mm256_storeu_ps(p, v); }
KTI vf v_set1(float x) { return _mm256_set1_ps(x); }
KTI vf v_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
KTI vf v_add(vf a, vf b) { return _mm256_add_ps(a, b); }
KTI vf v_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
KTI vf v_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
KTI vf v_div(vf a, vf b) { return _mm256_div_ps(a, b); }
KTI vf v_max(vf a, vf b) { return _mm256_max_ps(a, b); }
KTI __m256i v_mask(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
KTI vf v_load_n(const float *p, int n) { return _mm256_maskload_ps(p, v_mask(n)); }
KTI void v_store_n(float *p, vf v, int n) { _mm256_maskstore_ps(p, v_mask(n), v); }
KTI vf v_widen_bf16(__m128i h)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
KTI __m128i v_load16_n(const uint16_t *p, int n)
{
    uint16_t t[8] = {0};
    memcpy(t, p, (size_t)n * 2);
    return _mm_loadu_si128((const __m128i *)t);
}
KTI vf v_bf16(const uint16_t *p) { return v_widen_bf16(_mm_loadu_si128((const __m128i *)p)); }
KTI vf v_bf16_n(const uint16_t *p, int n) { return v_widen_bf16(v_load16_n(p, n)); }
KTI vf v_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
KTI vf v_f16_n(const uint16_t *p, int n) { return _mm256_cvtph_ps(v_load16_n(p, n)); }
/* The low / high bf16 of each 32-bit word of raw, widened to fp32. */
KTI vf v_bf16_lo(vf raw) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(raw), 16)); }
KTI vf v_bf16_hi(vf raw)
{   /* two shifts rather than an AND with a constant: the micro-kernel needs all 16 ymm */
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_srli_epi32(_mm256_castps_si256(raw), 16), 16));
}
KTI float v_hsum(vf v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
KTI float v_hmax(vf v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* out[j] = sum of the lanes of a[j], j < 8: a transpose-add tree. */
KTI vf v_hsum_vw(vf a[8])
{
    vf t[4], u[2];
    UNROLL for (int i = 0; i < 4; i++)
        t[i] = _mm256_add_ps(_mm256_unpacklo_ps(a[2 * i], a[2 * i + 1]),
                             _mm256_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    UNROLL for (int i = 0; i < 2; i++)
        u[i] = _mm256_add_ps(
            _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(t[2 * i]), _mm256_castps_pd(t[2 * i + 1]))),
            _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(t[2 * i]), _mm256_castps_pd(t[2 * i + 1]))));
    /* u[0] = [a0..a3 | a0..a3] partial (low / high 128 bits), u[1] the same for a4..a7 */
    return _mm256_add_ps(_mm256_permute2f128_ps(u[0], u[1], 0x20), _mm256_permute2f128_ps(u[0], u[1], 0x31));
}

/* In-place transpose of an 8 x 8 fp32 block held in r[0..7]. */
KTI void v_transpose(vf r[8])
{
    vf t[8], u[8];
    UNROLL for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    UNROLL for (int b = 0; b < 2; b++) { /* u[4b + j]: rows 4b..4b+3, columns j, j+4 */
        u[4 * b + 0] = _mm256_shuffle_ps(t[4 * b], t[4 * b + 2], 0x44);
        u[4 * b + 1] = _mm256_shuffle_ps(t[4 * b], t[4 * b + 2], 0xee);
        u[4 * b + 2] = _mm256_shuffle_ps(t[4 * b + 1], t[4 * b + 3], 0x44);
        u[4 * b + 3] = _mm256_shuffle_ps(t[4 * b + 1], t[4 * b + 3], 0xee);
    }
    UNROLL for (int j = 0; j < 4; j++) {
        r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
        r[j + 4] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
    }
}

/* exp(x), about 1 ulp (Cephes expf polynomial, Cody-Waite reduction).
 * x < -87.3 gives 0 (true value is below FLT_MIN), x > 88.3 gives +inf. */
KTI vf v_exp(vf x)
{
    const vf lo = _mm256_set1_ps(-87.3365447504f), hi = _mm256_set1_ps(88.3f);
    vf xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    vf n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    vf r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    vf p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    vf y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
    y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

#include "kernels/kern_simd.inc"
