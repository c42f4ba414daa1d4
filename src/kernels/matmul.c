/*
 * matmul.c: dispatch of Y = X W^T + b to the kernel path in use, the
 * thread-local scratch of the fast paths and the elementwise dispatchers.
 *
 * Paths (rulings R1): KERN_PATH_AVX512 and KERN_PATH_AVX2 keep fp32
 * activations (bf16 / f16 weights widened exactly to fp32) and agree with the
 * portable twin within fp32 rounding; KERN_PATH_AVX512_BF16 rounds activations
 * to bf16 for bf16 weights (opt-in speed mode) and runs the AVX-512 fp32
 * kernels for f32 / f16 weights. A path the CPU lacks runs the portable twin.
 */
#include "base/alloc.h"
#include "kernels/kernels.h"
#include "kernels/kern_internal.h"

#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Chosen with `bench_kernels --tune` (rates on CPU time, OMP_WAIT_POLICY=passive)
 * on the AVX-512 machine we have (EPYC family 25 model 17 = Zen 4, 2 cores,
 * one zmm FMA per cycle: fp32 peak 234 GFLOP/s, vdpbf16ps 468), bf16 weights
 * of 18944 x 3584 and 3584 x 18944:
 *  - AVX-512: the dot form (then 4 x 6 tiles, now 6 x 4: kern_avx512.c; K
 *    chunks of 4096, 256 rows of X per pass over W) matched or beat the
 *    packed GEMM at every M from 1 to 2048 (M=16: 187-198 vs 158-162; M=64: 214 vs 200; M=300: 217-220 vs 177-215;
 *    M=2048: 197-214 vs 143-172), so it runs every M; a row's result then
 *    does not depend on the batch on this path either.
 *  - AVX2 (the same machine forced to ymm; Zen 3 not measured): the dot form
 *    (3 x 3 tiles: 16 ymm registers) wins only at M <= 3 (M=1: 24-33 vs
 *    21-22); the packed GEMM beyond (M=300: 214 vs 162).
 *  - bf16 mode: the vdpbf16ps dot form wins up to M ~ 32-48 (M=32: 305-317
 *    vs oneDNN 299), oneDNN beyond (M=300: 395-418 of 468); our own
 *    vdpbf16ps GEMM (bf16_gemm = 1) measured 260-388, between the two. */
kern_tune kern_tune_params = {
    .kc = 256,
    .kcp = 1024,
    .small_m = 1 << 30,
    .small_m_avx2 = 3,
    .kdot = 4096,
    .mdot = 256,
    .rowwise_bytes = 8 << 20,
    .small_m_bf16 = 32,
    .stream_m_bf16 = 4,
    .bf16_gemm = 0,
    .exact_dnnl_m = 0,
};

/* Exact-path GEMM per CPU (issue 24 item 1, docs/perf.md): from which M the
 * fp32 paths hand large products to oneDNN's f32 matmul instead of our own
 * kernels. A table, not a start-up measurement: a timing race would make the
 * bits of a forward depend on the machine's load. Every row is a measurement
 * of `make bench` (section "exact GEMM: own kernels vs oneDNN f32") on that CPU:
 *   - AMD family 25 (Zen 3 / Zen 4): own kernels. Zen 4 (this repository's
 *     machine): the dot form 217-220 GFLOP/s at M=300, 93% of the fp32 peak,
 *     at least equal to oneDNN f32 on the same shapes;
 *   - AMD family 26 (Zen 5): own kernels until `make bench` on a Zen 5 has
 *     measured the widened-panel oneDNN path (issue 24 reports oneDNN f32 on
 *     pre-widened weights at 350 vs our 295 GFLOP/s there, not yet with
 *     panels); switching also gives up rows-exact batching at large M
 *     (kern_matmul_rows_exact), which the patching engine uses.
 * CLENS_EXACT_GEMM=onednn (M >= 64) or =own overrides. */
#define NEVER (1 << 30)
static const struct {
    int family;       /* CPUID display family, -1 = any */
    int exact_dnnl_m; /* NEVER = our own kernels at every M */
} g_exact_table[] = {
    {25, NEVER},
    {26, NEVER},
    {-1, NEVER},
};

static pthread_once_t g_exact_once = PTHREAD_ONCE_INIT;
static int g_exact_m = NEVER; /* the table's (or CLENS_EXACT_GEMM's) choice */

static void exact_choose(void)
{
    const char *e = getenv("CLENS_EXACT_GEMM");
    int m = NEVER;
    if (e && strcmp(e, "onednn") == 0) m = 64;
    else if (!(e && strcmp(e, "own") == 0)) {
        int fam = kern_cpu_get()->family;
        for (size_t i = 0; i < sizeof g_exact_table / sizeof g_exact_table[0]; i++)
            if (g_exact_table[i].family == fam || g_exact_table[i].family < 0) {
                m = g_exact_table[i].exact_dnnl_m;
                break;
            }
    }
    g_exact_m = m;
}

int kern_exact_dnnl_m(void)
{
    if (kern_tune_params.exact_dnnl_m > 0) return kern_tune_params.exact_dnnl_m; /* tests, benchmarks */
    pthread_once(&g_exact_once, exact_choose);
    return g_exact_m;
}

static _Thread_local void *g_scr[KERN_SCRATCH_SLOTS];
static _Thread_local size_t g_scr_n[KERN_SCRATCH_SLOTS];

void *kern_scratch_get(int slot, size_t bytes)
{
    if (bytes <= g_scr_n[slot]) return g_scr[slot];
    free(g_scr[slot]);
    size_t n = (bytes + bytes / 4 + 4095) & ~(size_t)4095; /* grow with headroom */
    g_scr[slot] = clens_aligned_alloc(64, n);
    g_scr_n[slot] = g_scr[slot] ? n : 0;
    return g_scr[slot];
}

float *kern_panel_buf(void)
{
    static _Thread_local float buf[KERN_KCP_MAX * 32] __attribute__((aligned(64)));
    return buf;
}

void kern_scratch_release(void)
{
    for (int i = 0; i < KERN_SCRATCH_SLOTS; i++) {
        free(g_scr[i]);
        g_scr[i] = NULL;
        g_scr_n[i] = 0;
    }
}

static kern_path usable(kern_path path)
{
    return kern_path_available(path) ? path : KERN_PATH_PORTABLE;
}

/* The bf16 speed mode at small M (decode, short batches of patched rows) is
 * bound by the weight stream, not by arithmetic: rounding activations buys
 * nothing there, and the fp32 dot form streams the same bf16 bytes with more
 * rows in flight and prefetch (measured: `bench_kernels`, section "bf16 mode,
 * small M"; docs/perf.md). So those products run the exact fp32 kernels: the
 * speed mode is then never slower than the default at small M, and more
 * accurate there. */
static kern_path bf16_stream_route(kern_path path, int M)
{
    return path == KERN_PATH_AVX512_BF16 && M <= kern_tune_params.stream_m_bf16 ? KERN_PATH_AVX512 : path;
}

void kern_matmul(float *Y, const float *X, const kern_weight *W, const float *bias, int M,
                 kern_path path)
{
    int N = W->N, K = W->K;
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) Y[(size_t)m * N + n] = bias ? bias[n] : 0.0f;
        return;
    }
    const kern_tune *tu = &kern_tune_params;
    /* Small products run on the calling thread: a parallel region costs more
     * than it saves there (and spins for nothing on a busy machine). Results
     * do not depend on the thread count. */
    double macs = (double)M * N * K;
    int nt = kern_threads_for(macs), nch = kern_chunks_for(macs, nt);
    path = bf16_stream_route(usable(path), M);
    if (path == KERN_PATH_AVX512_BF16) {
        if (W->dtype == CLENS_DTYPE_BF16 && kern_matmul_bf16(Y, X, W, bias, M) == 0) return;
        path = KERN_PATH_AVX512; /* fp32 kernels for other dtypes or if oneDNN failed */
    }
    if ((path == KERN_PATH_AVX512 || path == KERN_PATH_AVX2) && M >= kern_exact_dnnl_m() &&
        kern_matmul_f32_dnnl(Y, X, W, bias, M) == 0)
        return;
    switch (path) {
    case KERN_PATH_AVX512: {
        float *Ap = M > tu->small_m ? kern_scratch_get(0, kern_gemm_scratch_avx512(M, K)) : NULL;
        if (Ap) kern_matmul_gemm_avx512(Y, X, W, bias, M, Ap, nt, tu, 0);
        else kern_matmul_dot_avx512(Y, X, W, bias, M, nt, nch, tu);
        return;
    }
    case KERN_PATH_AVX2: {
        float *Ap = M > tu->small_m_avx2 ? kern_scratch_get(0, kern_gemm_scratch_avx2(M, K)) : NULL;
        if (Ap) kern_matmul_gemm_avx2(Y, X, W, bias, M, Ap, nt, tu, 0);
        else kern_matmul_dot_avx2(Y, X, W, bias, M, nt, nch, tu);
        return;
    }
    default:
        kern_matmul_portable(Y, X, W, bias, M);
        return;
    }
}

static void swiglu_part(float *y, const float *g, const float *u, size_t n, kern_path path)
{
    switch (path) {
    case KERN_PATH_AVX512:
    case KERN_PATH_AVX512_BF16: kern_swiglu_avx512(y, g, u, n); break;
    case KERN_PATH_AVX2: kern_swiglu_avx2(y, g, u, n); break;
    default: kern_swiglu_portable(y, g, u, n); break;
    }
}

/* Element-wise, so splitting across threads changes no result. */
void kern_swiglu_path(float *y, const float *g, const float *u, size_t n, kern_path path)
{
    path = usable(path);
    int nt = kern_get_threads();
    if (n < ((size_t)1 << 15) || nt < 2 || omp_in_parallel()) {
        swiglu_part(y, g, u, n, path);
        return;
    }
    #pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        size_t a = n / T * t & ~(size_t)63, b = t == T - 1 ? n : n / T * (t + 1) & ~(size_t)63;
        swiglu_part(y + a, g + a, u + a, b - a, path);
    }
}

void kern_swiglu(float *y, const float *g, const float *u, size_t n)
{
    kern_swiglu_path(y, g, u, n, kern_path_default());
}

int kern_matmul_rows_exact(kern_path path, int M)
{
    return path == KERN_PATH_PORTABLE || M <= 1 ||
           (path == KERN_PATH_AVX512 && M <= kern_tune_params.small_m && M < kern_exact_dnnl_m());
}

void kern_matmul_multi(const float *X, int M, const kern_mm_job *jobs, int n_jobs, kern_path path)
{
    const kern_tune *tu = &kern_tune_params;
    kern_path p = bf16_stream_route(usable(path), M);
    int dot = ((p == KERN_PATH_AVX512 && M <= tu->small_m) || (p == KERN_PATH_AVX2 && M <= tu->small_m_avx2)) &&
              M < kern_exact_dnnl_m();
    double macs = 0;
    for (int j = 0; j < n_jobs; j++) {
        const kern_weight *W = jobs[j].W;
        dot &= W->K > 0 && W->N > 0;
        macs += (double)M * W->N * W->K;
    }
    if (!dot || M <= 0) {
        for (int j = 0; j < n_jobs; j++) kern_matmul(jobs[j].Y, X, jobs[j].W, jobs[j].bias, M, p);
        return;
    }
    int nt = kern_threads_for(macs), nch = kern_chunks_for(macs, nt);
    if (p == KERN_PATH_AVX512) kern_matmul_dot_multi_avx512(X, M, jobs, n_jobs, nt, nch, tu);
    else kern_matmul_dot_multi_avx2(X, M, jobs, n_jobs, nt, nch, tu);
}
