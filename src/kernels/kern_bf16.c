/*
 * kern_bf16.c: the opt-in bf16 speed mode (KERN_PATH_AVX512_BF16, rulings R1).
 * Activations are rounded to bf16 (round to nearest even) and multiplied with
 * bf16 weights by bf16 dot-product instructions, accumulating in fp32:
 *   - M <= small_m_bf16 (32): a hand-written vdpbf16ps dot form (4 x 6
 *     register tiles) streaming each weight row once per call (all M rows
 *     against it), K in chunks, threads over the rows of W;
 *   - larger M: oneDNN's bf16 matmul primitive (not inner_product, which is a
 *     slow path in oneDNN 2.6), weights used in place as a K x N view with
 *     strides (1, K) (no packed copy: the resident memory stays the file
 *     mapping); kern_dnnl.c caches the primitives. bf16_gemm = 1 selects our own
 *     vdpbf16ps packed GEMM instead (kern_simd.inc; measured slower at M >= 96).
 * Accuracy: about 3 significant digits per activation (rounding error of each
 * product <= 2^-9 |x w|); the tolerance is stated by the tests and `make
 * bench`, never used by equality tests.
 * Needs AVX512-BF16 (Zen 4/5, Cooper Lake, Sapphire Rapids); on other CPUs
 * kern_matmul_bf16 returns -1 before executing any of it.
 */
#include "kernels/kernels.h"
#include "kernels/kern_internal.h"

#include <immintrin.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define KTB __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma,f16c")))
#define KTBI KTB static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")

/* Xb[m][0..Kp) = bf16(X[m][0..K)), zero padded to Kp (a multiple of 32). */
KTB static void rows_to_bf16(uint16_t *Xb, const float *X, int M, int K, int Kp)
{
    for (int m = 0; m < M; m++) {
        const float *x = X + (size_t)m * K;
        uint16_t *xb = Xb + (size_t)m * Kp;
        for (int k = 0; k < Kp; k += 32) {
            int r = K - k;
            __mmask16 m0 = r >= 16 ? 0xffff : r > 0 ? (__mmask16)((1u << r) - 1) : 0;
            __mmask16 m1 = r >= 32 ? 0xffff : r > 16 ? (__mmask16)((1u << (r - 16)) - 1) : 0;
            __m512 lo = _mm512_maskz_loadu_ps(m0, x + k), hi = _mm512_maskz_loadu_ps(m1, x + k + 16);
            __m512bh v = _mm512_cvtne2ps_pbh(hi, lo);
            int s = Kp - k;
            __mmask32 ms = s >= 32 ? 0xffffffffu : (__mmask32)((1u << s) - 1);
            _mm512_mask_storeu_epi16(xb + k, ms, (__m512i)v);
        }
    }
}

#define DP_MB 4
#define DP_NB 6

/* Y[i][n+j] (i < mb, j < nb) (+)= dot(Xb[i][k0..k0+kc), W[n+j][k0..k0+kc)) by
 * vdpbf16ps; Xb rows are zero-padded to Kp (a multiple of 32), kc is a multiple
 * of 32 except for the chunk ending at K. first: Y is overwritten, else
 * accumulated into; bias (last chunk only) may be NULL. */
KTBI void dp_tile(const int mb, const int nb, float *Y, int ldy, const uint16_t *Xb, int Kp,
                  const uint16_t *W, int K, int n, int k0, int kc, int first, const float *bias)
{
    __m512 acc[DP_MB][DP_NB];
    UNROLL for (int i = 0; i < mb; i++) UNROLL for (int j = 0; j < nb; j++) acc[i][j] = _mm512_setzero_ps();
    const uint16_t *w0 = W + (size_t)n * K + k0, *x0 = Xb + k0;
    for (int k = 0; k < kc; k += 32) {
        __m512i x[DP_MB];
        UNROLL for (int i = 0; i < mb; i++) x[i] = _mm512_loadu_si512((const void *)(x0 + (size_t)i * Kp + k));
        __mmask32 mk = kc - k >= 32 ? 0xffffffffu : (__mmask32)((1u << (kc - k)) - 1);
        UNROLL for (int j = 0; j < nb; j++) {
            __m512i w = _mm512_maskz_loadu_epi16(mk, w0 + (size_t)j * K + k);
            UNROLL for (int i = 0; i < mb; i++)
                acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)x[i], (__m512bh)w);
        }
    }
    UNROLL for (int i = 0; i < mb; i++)
        UNROLL for (int j = 0; j < nb; j++) {
            float v = _mm512_reduce_add_ps(acc[i][j]), *y = Y + (size_t)i * ldy + n + j;
            if (!first) v += *y;
            *y = bias ? v + bias[n + j] : v;
        }
}

/* Outputs n0..n1-1 of every row over K range [k0, k0+kc) in chunks of KD;
 * one call over all of K or one call per chunk gives the same bits. */
KTB static void dp_rows(float *Y, const uint16_t *Xb, int Kp, const uint16_t *W, const float *bias,
                        int M, int N, int K, int n0, int n1, int k0, int kc, int KD)
{
    int n = n0;
    for (; n + DP_NB <= n1; n += DP_NB)
        for (int kk = k0; kk < k0 + kc; kk += KD) {
            int kn = k0 + kc - kk < KD ? k0 + kc - kk : KD, first = kk == 0;
            const float *bs = kk + kn == K ? bias : NULL;
            int m = 0;
            for (; m + DP_MB <= M; m += DP_MB)
                dp_tile(DP_MB, DP_NB, Y + (size_t)m * N, N, Xb + (size_t)m * Kp, Kp, W, K, n, kk, kn, first, bs);
            switch (M - m) {
            case 1: dp_tile(1, DP_NB, Y + (size_t)m * N, N, Xb + (size_t)m * Kp, Kp, W, K, n, kk, kn, first, bs); break;
            case 2: dp_tile(2, DP_NB, Y + (size_t)m * N, N, Xb + (size_t)m * Kp, Kp, W, K, n, kk, kn, first, bs); break;
            case 3: dp_tile(3, DP_NB, Y + (size_t)m * N, N, Xb + (size_t)m * Kp, Kp, W, K, n, kk, kn, first, bs); break;
            default: break;
            }
        }
    for (; n < n1; n++)
        for (int kk = k0; kk < k0 + kc; kk += KD) {
            int kn = k0 + kc - kk < KD ? k0 + kc - kk : KD, first = kk == 0;
            const float *bs = kk + kn == K ? bias : NULL;
            for (int m = 0; m < M; m++)
                dp_tile(1, 1, Y + (size_t)m * N, N, Xb + (size_t)m * Kp, Kp, W, K, n, kk, kn, first, bs);
        }
}

/* Threads split the rows of W; K in chunks of tu->kdot (a multiple of 32):
 * rows of W outer when the bf16 copy of X is within tu->rowwise_bytes, else
 * K chunks outer (same bits either way). */
static void matmul_dp(float *Y, const uint16_t *Xb, int Kp, const kern_weight *W, const float *bias, int M)
{
    int N = W->N, K = W->K, nblk = (N + DP_NB - 1) / DP_NB, nt = kern_threads_for((double)M * N * K);
    int KD = kern_tune_params.kdot > 0 ? (kern_tune_params.kdot + 31) / 32 * 32 : Kp;
    int rowwise = (double)M * Kp * 2 <= kern_tune_params.rowwise_bytes;
    if (nt > nblk) nt = nblk;
    #pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        int b0 = (int)((long)nblk * t / T), b1 = (int)((long)nblk * (t + 1) / T);
        int n0 = b0 * DP_NB, n1 = b1 * DP_NB < N ? b1 * DP_NB : N;
        for (int k0 = 0; k0 < K && n0 < n1; k0 += rowwise ? K : KD) {
            int kc = rowwise ? K : K - k0 < KD ? K - k0 : KD;
            dp_rows(Y, Xb, Kp, W->data, bias, M, N, K, n0, n1, k0, kc, KD);
        }
    }
}

const char *kern_bf16_impl_name(void)
{
    return kern_dnnl_impl_name(1);
}

int kern_matmul_bf16(float *Y, const float *X, const kern_weight *W, const float *bias, int M)
{
    if (W->dtype != CLENS_DTYPE_BF16 || !kern_path_available(KERN_PATH_AVX512_BF16)) return -1;
    int K = W->K, small = M <= kern_tune_params.small_m_bf16;
    if (!small && kern_tune_params.bf16_gemm) {
        float *Ap = kern_scratch_get(0, kern_gemm_scratch_avx512(M, K));
        if (!Ap) return -1;
        kern_matmul_gemm_avx512(Y, X, W, bias, M, Ap, kern_threads_for((double)M * W->N * K), &kern_tune_params, 1);
        return 0;
    }
    int Kp = small ? (K + 31) / 32 * 32 : K;
    uint16_t *Xb = kern_scratch_get(1, (size_t)M * Kp * 2);
    if (!Xb) return -1;
    rows_to_bf16(Xb, X, M, K, Kp);
    if (small) {
        matmul_dp(Y, Xb, Kp, W, bias, M);
        return 0;
    }
    return kern_dnnl_matmul(Y, W->N, Xb, 1, W->data, 1, bias, M, W->N, K);
}
