/*
 * kern_avx512.c: the fp32 kernels for AVX-512F (+BW/VL for 16-bit masked
 * loads, F16C), zmm registers, 16 lanes. The kernels themselves are in
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

#define KT __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
/* The bf16 speed mode's micro-kernel (vdpbf16ps), run only on AVX512-BF16 CPUs. */
#define KTB __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma,f16c")))
#define KTI KT static inline __attribute__((always_inline))
#define VW 16
#define MR 14
/* The dot form's register tile: DOT_MB rows of X x DOT_NB rows of W (24
 * accumulators + 6 X vectors + 1 widened W vector of 32 zmm). Each widened
 * weight vector (a load-widen and a shift) feeds DOT_MB FMAs: 6 x 4 needs 8
 * such non-FMA vector ops per 24 FMAs where 4 x 6 needed 12, and its weight
 * tile at a 4096-deep K chunk (32 kB of bf16) fits Zen 5's 48 kB L1 where 4 x 6
 * (48 kB) did not; for a CPU whose FMA pipes are not the bottleneck (Zen 4) the
 * two measured alike (docs/perf.md section 1; same bits: every output keeps
 * its own accumulator whatever the tile). Override to compare on a new CPU:
 *   make CFLAGS='-DAVX512_DOT_MB=4 -DAVX512_DOT_NB=6' BUILD=build-t46 \
 *        build-t46/bench/bench_kernels && build-t46/bench/bench_kernels --exact-gemm */
#ifndef AVX512_DOT_MB
#define AVX512_DOT_MB 6
#endif
#ifndef AVX512_DOT_NB
#define AVX512_DOT_NB 4
#endif
#define DOT_MB AVX512_DOT_MB
#define DOT_NB AVX512_DOT_NB
#define GEMV_NB 6   /* rows of W in flight at M = 1 (kern_simd.inc gemv_tile) */
#define GEMV_PF 384 /* bytes ahead in each of them */
#define ATT_MR 4   /* query rows sharing each value load (kern_simd.inc att_values) */
#define UNROLL _Pragma("GCC unroll 16")
#define SFX(n) n##_avx512

typedef __m512 vf;

KTI vf v_zero(void) { return _mm512_setzero_ps(); }
KTI vf v_load(const float *p) { return _mm512_loadu_ps(p); }
KTI void v_store(float *p, vf v) { _mm512_storeu_ps(p, v); }
KTI vf v_set1(float x) { return _mm512_set1_ps(x); }
KTI vf v_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
KTI vf v_add(vf a, vf b) { return _mm512_add_ps(a, b); }
KTI vf v_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
KTI vf v_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
KTI vf v_div(vf a, vf b) { return _mm512_div_ps(a, b); }
KTI vf v_max(vf a, vf b) { return _mm512_max_ps(a, b); }
KTI __mmask16 v_mask(int n) { return (__mmask16)((1u << n) - 1u); }
KTI vf v_load_n(const float *p, int n) { return _mm512_maskz_loadu_ps(v_mask(n), p); }
KTI void v_store_n(float *p, vf v, int n) { _mm512_mask_storeu_ps(p, v_mask(n), v); }
KTI vf v_widen_bf16(__m256i h)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
KTI vf v_bf16(const uint16_t *p) { return v_widen_bf16(_mm256_loadu_si256((const __m256i *)p)); }
KTI vf v_bf16_n(const uint16_t *p, int n) { return v_widen_bf16(_mm256_maskz_loadu_epi16(v_mask(n), p)); }
KTI vf v_f16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
KTI vf v_f16_n(const uint16_t *p, int n) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(v_mask(n), p)); }
/* The low / high bf16 of each 32-bit word of raw, widened to fp32. */
KTI vf v_bf16_lo(vf raw) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(raw), 16)); }
KTI vf v_bf16_hi(vf raw)
{   /* zero the low 16-bit halves through a mask register: no zmm constant */
    return _mm512_castsi512_ps(_mm512_maskz_mov_epi16(0xaaaaaaaau, _mm512_castps_si512(raw)));
}
KTI float v_hsum(vf v) { return _mm512_reduce_add_ps(v); }
KTI float v_hmax(vf v) { return _mm512_reduce_max_ps(v); }

/* out[j] = sum of the lanes of a[j], j < 16: a transpose-add tree. */
KTI vf v_hsum_vw(vf a[16])
{
    vf t[8], u[4], w[2];
    UNROLL for (int i = 0; i < 8; i++) /* 128-bit lanes: [a0 a1 a0 a1] partial pairs */
        t[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]),
                             _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    UNROLL for (int i = 0; i < 4; i++) /* 128-bit lanes: [a0 a1 a2 a3] */
        u[i] = _mm512_castpd_ps(_mm512_castps_pd(_mm512_add_ps(
            _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[2 * i]), _mm512_castps_pd(t[2 * i + 1]))),
            _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[2 * i]), _mm512_castps_pd(t[2 * i + 1]))))));
    UNROLL for (int i = 0; i < 2; i++)
        w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0xdd));
    return _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], 0x88), _mm512_shuffle_f32x4(w[0], w[1], 0xdd));
}

/* In-place transpose of a 16 x 16 fp32 block held in r[0..15]. */
KTI void v_transpose(vf r[16])
{
    vf t[16], u[16];
    UNROLL for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#define PD(x) _mm512_castps_pd(x)
#define PS(x) _mm512_castpd_ps(x)
    UNROLL for (int b = 0; b < 4; b++) { /* u[4b + j]: rows 4b..4b+3, columns j, j+4, j+8, j+12 */
        u[4 * b + 0] = PS(_mm512_unpacklo_pd(PD(t[4 * b]), PD(t[4 * b + 2])));
        u[4 * b + 1] = PS(_mm512_unpackhi_pd(PD(t[4 * b]), PD(t[4 * b + 2])));
        u[4 * b + 2] = PS(_mm512_unpacklo_pd(PD(t[4 * b + 1]), PD(t[4 * b + 3])));
        u[4 * b + 3] = PS(_mm512_unpackhi_pd(PD(t[4 * b + 1]), PD(t[4 * b + 3])));
    }
#undef PD
#undef PS
    UNROLL for (int j = 0; j < 4; j++) {
        vf vlo = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
        vf vhi = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xdd);
        vf wlo = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
        vf whi = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xdd);
        r[j] = _mm512_shuffle_f32x4(vlo, wlo, 0x88);
        r[j + 8] = _mm512_shuffle_f32x4(vlo, wlo, 0xdd);
        r[j + 4] = _mm512_shuffle_f32x4(vhi, whi, 0x88);
        r[j + 12] = _mm512_shuffle_f32x4(vhi, whi, 0xdd);
    }
}

/* exp(x), about 1 ulp (Cephes expf polynomial, Cody-Waite reduction).
 * x < -87.3 gives 0 (true value is below FLT_MIN), x > 88.3 gives +inf. */
KTI vf v_exp(vf x)
{
    const vf lo = _mm512_set1_ps(-87.3365447504f), hi = _mm512_set1_ps(88.3f);
    vf xc = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
    vf n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    vf r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    vf p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    vf y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    y = _mm512_mul_ps(y, _mm512_castsi512_ps(e));
    y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), y, _mm512_setzero_ps());
    y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ), y, _mm512_set1_ps(INFINITY));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);
}

#include "kernels/kern_simd.inc"

const int kern_avx512_dot_tile[2] = {DOT_MB, DOT_NB};
