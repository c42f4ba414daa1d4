/*
 * kern_dnnl_f32.c: oneDNN's f32 matmul as an exact-path alternative to our
 * packed GEMM / dot form for large M (issue 24 item 1; docs/perf.md).
 *
 * Exact in the sense of rulings R1: fp32 activations, weights widened exactly
 * to fp32, fp32 accumulation; results differ from our kernels only by
 * summation order. f32 weights are used in place (a K x N strided view);
 * bf16 / f16 weights are widened panel by panel (KERN_DNNL_PANEL_BYTES of
 * fp32 per panel, threads split the widening) into a thread-local scratch and
 * multiplied panel by panel, so no widened copy of the model is ever kept
 * (resident memory stays the file mapping plus one panel).
 *
 * Used only where kern_tune_params.exact_dnnl_m says so (M >= it): the default
 * table (matmul.c) keeps our own kernels on every CPU measured so far, because
 * on Zen 4 they are faster and because a oneDNN product does not give a row
 * the same bits alone and in a batch (kern_matmul_rows_exact then says 0).
 * CLENS_EXACT_GEMM=onednn selects it at M >= 64, `make bench` prints both
 * per shape. The products run through kern_dnnl.c (one engine, one cache).
 */
#include "kernels/kernels.h"
#include "kernels/kern_internal.h"

#include <dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Rows n0..n0+np-1 of W widened to fp32 into P, threads splitting the rows. */
static void widen_panel(float *P, const kern_weight *W, int n0, int np)
{
    size_t es = W->dtype == CLENS_DTYPE_F32 ? 4 : 2, K = (size_t)W->K;
    int nt = kern_get_threads();
    #pragma omp parallel for schedule(static) num_threads(nt) if (np * K >= (1u << 16))
    for (int r = 0; r < np; r++)
        kern_to_f32(P + (size_t)r * K, (const char *)W->data + ((size_t)n0 + r) * K * es, W->dtype, K);
}

int kern_matmul_f32_dnnl(float *Y, const float *X, const kern_weight *W, const float *bias, int M)
{
    int N = W->N, K = W->K, rc = -1;
    int np = (int)(KERN_DNNL_PANEL_BYTES / 4 / (size_t)K) / 64 * 64;
    if (np < 64) np = 64;
    if (W->dtype == CLENS_DTYPE_F32 || np > N) np = N;
    /* a panel's output goes to a contiguous M x np buffer first when Y's
     * rows are longer: oneDNN 2.6 picks its slower gemm:jit for a strided
     * destination, brgemm for a dense one */
    int dense = np == N;
    float *P = W->dtype == CLENS_DTYPE_F32 ? NULL : kern_scratch_get(0, (size_t)np * K * 4);
    float *Yp = dense ? NULL : kern_scratch_get(1, (size_t)M * np * 4);
    if ((W->dtype != CLENS_DTYPE_F32 && !P) || (!dense && !Yp)) return -1;
    rc = 0;
    for (int n0 = 0; n0 < N && rc == 0; n0 += np) {
        int nb = N - n0 < np ? N - n0 : np;
        const float *Wp = (const float *)W->data + (size_t)n0 * K;
        if (P) { widen_panel(P, W, n0, nb); Wp = P; }
        rc = kern_dnnl_matmul(dense ? Y : Yp, nb, X, 0, Wp, 0, bias ? bias + n0 : NULL, M, nb, K);
        if (!rc && !dense)
            for (int m = 0; m < M; m++) memcpy(Y + (size_t)m * N + n0, Yp + (size_t)m * nb, (size_t)nb * 4);
    }
    return rc;
}

const char *kern_dnnl_f32_impl_name(void)
{
    return kern_dnnl_impl_name(0);
}
