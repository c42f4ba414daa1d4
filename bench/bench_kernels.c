/*
 * bench_kernels.c: the machine's own peaks and the kernels' speed on it, in
 * one run (driven by bench/run.sh; `make bench`). Prints human-readable lines
 * and, for tools/bench_torch.py --report, machine lines starting with "R ".
 *
 *   peaks   fp32 FMA (zmm / ymm) and vdpbf16ps loops, 12 independent
 *           accumulators per thread, 1 and 2 threads; memory read bandwidth
 *           (1 GiB buffer, vector loads, 1 and 2 threads); best of 5.
 *   gemm    kern_matmul Y[M][N] = X[M][K] W^T, bf16 W, K=3584, N=18944, at
 *           M = 300 (GFLOP/s, % of the path's instruction peak) and M = 1, 16,
 *           29, 64 (GB/s of weights streamed, % of read bandwidth), each path
 *           the CPU has; best of 3 after a warm-up.
 *   Every rate is given on wall-clock time and, in [brackets], on the CPU
 *   time of our own threads (run with OMP_WAIT_POLICY=passive, as run.sh
 *   does): on a shared machine other processes lower the first, not the
 *   second; % of peak compares CPU-time rates on both sides. Plus oneDNN f32 matmul and
 *           OpenBLAS sgemm on the same weights pre-widened to fp32 (the library
 *           alternatives to our packed kernel) at M = 300.
 *   bf16    the speed mode's accuracy against the fp32 path on the Qwen2-0.5B
 *           unembedding shape (K=896, N=151936): top-1 agreement, max diff.
 *   bf16 small M  the speed mode's vdpbf16ps dot form against the fp32 dot form
 *           at M = 1..32 on 7B and 0.5B shapes (which one the bf16 mode runs).
 *   exact GEMM  own kernels vs oneDNN f32 (bf16 weights widened per panel) per
 *           shape at M = 64, 128, 300, % of the FMA peak, and the per-CPU table row.
 *   gemv    M = 1 (decode) on the 0.5B and 7B shapes against the read loop over
 *           the same bytes, paired in time, 1 and 2 threads, each fp32 path.
 * Options: --quick (one repeat), --peaks (peaks only), --tune (block-size
 * sweep used to choose kern_tune_params), --bf16-small, --exact-gemm, --gemv
 * (that section only).
 * Never fails on timing.
 */
#include <cblas.h>
#include <dnnl.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_mem.h"

#include "kernels/kern_internal.h"
#include "kernels/kernels.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static int g_threads;
static int g_reps = 3;
#define K_BIG (1 << 20)

/* ------------------------------------------------------------------ peaks */

#define NACC 12
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
#define T512BF __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")))
#define T256 __attribute__((target("avx2,fma")))

T512 static float loop_fma_zmm(long it)
{
    __m512 a[NACC], b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    _Pragma("GCC unroll 16") for (int j = 0; j < NACC; j++) a[j] = _mm512_set1_ps((float)j);
    for (long i = 0; i < it; i++) {
        _Pragma("GCC unroll 16") for (int j = 0; j < NACC; j++) a[j] = _mm512_fmadd_ps(a[j], b, c);
    }
    __m512 s = a[0];
    _Pragma("GCC unroll 16") for (int j = 1; j < NACC; j++) s = _mm512_add_ps(s, a[j]);
    return _mm512_reduce_add_ps(s);
}

T256 static float loop_fma_ymm(long it)
{
    __m256 a[NACC], b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    _Pragma("GCC unroll 16") for (int j = 0; j < NACC; j++) a[j] = _mm256_set1_ps((float)j);
    for (long i = 0; i < it; i++) {
        _Pragma("GCC unroll 16") for (int j = 0; j < NACC; j++) a[j] = _mm256_fmadd_ps(a[j], b, c);
    }
    __m256 s = a[0];
    _Pragma("GCC unroll 16") for (int j = 1; j < NACC; j++) s = _mm256_add_ps(s, a[j]);
    float t[8];
    _mm256_storeu_ps(t, s);
    return t[0] + t[7];
}

T512BF static float loop_dpbf16(long it)
{
    __m512 a[NACC];
    __m512i x = _mm512_set1_epi32(0x3f803f80), y = _mm512_set1_epi32(0x33803380);
    _Pragma("GCC unroll 16") for (int j = 0; j < NACC; j++) a[j] = _mm512_set1_ps((float)j);
    for (long i = 0; i < it; i++) {
        _Pragma("GCC unroll 16") for (int j = 0; j < NACC; j++)
            a[j] = _mm512_dpbf16_ps(a[j], (__m512bh)x, (__m512bh)y);
    }
    __m512 s = a[0];
    _Pragma("GCC unroll 16") for (int j = 1; j < NACC; j++) s = _mm512_add_ps(s, a[j]);
    return _mm512_reduce_add_ps(s);
}

/* GFLOP/s of loop fn run by nt threads, flop_per_it per iteration; best of 5.
 * Returns the wall-clock rate; *oncpu: the rate over each thread's own CPU time
 * (what the cores do while they run: other processes on the machine do not
 * lower it). */
static double peak(float (*fn)(long), double flop_per_it, int nt, double *oncpu)
{
    long it = 20000000;
    double best = 0, bestc = 0;
    volatile float sink = 0;
    for (int r = 0; r < 5; r++) {
        double t0 = now(), rc = 0;
        #pragma omp parallel num_threads(nt)
        {
            struct timespec a, b;
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
            float v = fn(it);
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
            double g = flop_per_it * it / ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9) / 1e9;
            #pragma omp atomic
            sink += v;
            #pragma omp atomic
            rc += g;
        }
        double g = flop_per_it * it * nt / (now() - t0) / 1e9;
        if (g > best) best = g;
        if (rc > bestc) bestc = rc;
    }
    (void)sink;
    *oncpu = bestc;
    return best;
}

/* ------------------------------------------------------------------- gemm */

/* Best-of-g_reps seconds of one kern_matmul after a warm-up. */
/* CPU seconds of this process (all threads). */
static double cputime(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) * 1e-6;
}

/* Best-of-reps wall seconds of one kern_matmul after a warm-up; *cpu (if not
 * NULL): best CPU seconds per thread, i.e. the time the kernel takes while it
 * runs. With OMP_WAIT_POLICY=passive (bench/run.sh) idle threads sleep, so
 * cpu << wall means other processes took the cores. */
static double time_matmul(float *Y, const float *X, const kern_weight *W, int M, kern_path p, int reps,
                          double *cpu)
{
    kern_matmul(Y, X, W, NULL, M, p);
    double best = 1e30, bc = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now(), c0 = cputime();
        kern_matmul(Y, X, W, NULL, M, p);
        double t = now() - t0, c = (cputime() - c0) / g_threads;
        if (t < best) best = t;
        if (c < bc) bc = c;
    }
    if (cpu) *cpu = bc;
    return best;
}

/* --tune decides on CPU time: other load on a shared machine must not. */
static double tune_time(float *Y, const float *X, const kern_weight *W, int M, kern_path p, int reps)
{
    double c;
    time_matmul(Y, X, W, M, p, reps, &c);
    return c;
}

static double dnnl_f32_matmul(const float *X, const float *Wf, float *Y, int M, int N, int K,
                              char *impl, size_t impl_n, double *cpu)
{
    dnnl_engine_t eng;
    dnnl_stream_t st;
    dnnl_memory_desc_t src, wei, dst;
    dnnl_dims_t ds = {M, K}, dw = {K, N}, sw = {1, K}, dd = {M, N};
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnnl_memory_t ms, mw, mdst;
    double best = -1;
    if (dnnl_engine_create(&eng, dnnl_cpu, 0) != dnnl_success) return -1;
    dnnl_stream_create(&st, eng, dnnl_stream_default_flags);
    dnnl_memory_desc_init_by_tag(&src, 2, ds, dnnl_f32, dnnl_ab);
    dnnl_memory_desc_init_by_strides(&wei, 2, dw, dnnl_f32, sw);
    dnnl_memory_desc_init_by_tag(&dst, 2, dd, dnnl_f32, dnnl_ab);
    dnnl_matmul_desc_init(&md, &src, &wei, NULL, &dst);
    if (dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL) == dnnl_success) {
        const char *s = NULL;
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s);
        snprintf(impl, impl_n, "%s", s ? s : "?");
        dnnl_primitive_create(&prim, pd);
        dnnl_primitive_desc_destroy(pd);
        dnnl_memory_create(&ms, &src, eng, (void *)X);
        dnnl_memory_create(&mw, &wei, eng, (void *)Wf);
        dnnl_memory_create(&mdst, &dst, eng, Y);
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, mdst}};
        best = 1e30;
        *cpu = 1e30;
        for (int r = 0; r <= g_reps; r++) {
            double t0 = now(), c0 = cputime();
            dnnl_primitive_execute(prim, st, 3, args);
            dnnl_stream_wait(st);
            double t = now() - t0, c = (cputime() - c0) / g_threads;
            if (r > 0 && t < best) best = t;
            if (r > 0 && c < *cpu) *cpu = c;
        }
        dnnl_primitive_destroy(prim);
        dnnl_memory_destroy(ms);
        dnnl_memory_destroy(mw);
        dnnl_memory_destroy(mdst);
    }
    dnnl_stream_destroy(st);
    dnnl_engine_destroy(eng);
    return best;
}

static double blas_sgemm(const float *X, const float *Wf, float *Y, int M, int N, int K, double *cpu)
{
    double best = 1e30;
    *cpu = 1e30;
    for (int r = 0; r <= g_reps; r++) {
        double t0 = now(), c0 = cputime();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, X, K, Wf, K, 0.0f, Y, N);
        double t = now() - t0, c = (cputime() - c0) / g_threads;
        if (r > 0 && t < best) best = t;
        if (r > 0 && c < *cpu) *cpu = c;
    }
    return best;
}

static uint64_t g_rng = 88172645463325252ull;
static float frand(void)
{
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) / 8388608.0 - 1.0);
}

/* --tune: the measurements behind kern_tune_params (matmul.c). Prints only. */
/* bf16 speed mode at small M: the vdpbf16ps dot form (activations rounded)
 * against the fp32 dot form (exact) on the same bf16 weights, interleaved
 * A B A B, best of reps each, on the 7B shapes (the big W and its transpose
 * view) and Qwen2-0.5B's MLP shapes. Prints GB/s of weights on wall-clock
 * time [on CPU time] and which kernel kern_matmul's bf16 mode runs at each M
 * (kern_tune_params.stream_m_bf16). */
static void bf16_small_m(float *Y, const float *X, const uint16_t *wb, int reps)
{
    if (!kern_path_available(KERN_PATH_AVX512_BF16)) {
        printf("\n== bf16 speed mode at small M: skipped, CPU lacks avx512_bf16\n");
        return;
    }
    const struct { const char *name; int N, K; } sh[] = {
        {"7B gate/up", 18944, 3584}, {"7B down", 3584, 18944}, {"0.5B gate/up", 4864, 896}, {"0.5B down", 896, 4864}};
    static const int Ms[] = {1, 2, 4, 8, 16, 32};
    kern_tune save = kern_tune_params;
    printf("\n== bf16 speed mode at small M: vdpbf16ps dot form vs fp32 dot form on the same bf16 weights,"
           " interleaved, best of %d;\n   GB/s of weights, wall [on CPU]; bf16 mode runs the fp32 form at"
           " M <= %d (stream_m_bf16)\n", reps, save.stream_m_bf16);
    printf("%-13s %3s %20s %20s %15s %s\n", "shape", "M", "vdpbf16ps dot", "fp32 dot", "speed fp32/bf16", "bf16 mode runs");
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        kern_weight W = {.data = wb, .dtype = CLENS_DTYPE_BF16, .N = sh[s].N, .K = sh[s].K};
        double bytes = 2.0 * sh[s].N * sh[s].K;
        for (size_t i = 0; i < sizeof Ms / sizeof Ms[0]; i++) {
            int M = Ms[i];
            double tb = 1e30, cb = 1e30, tf = 1e30, cf = 1e30;
            int r = reps * (bytes < 2e7 ? 20 : 2);
            for (int k = 0; k <= r; k++) {
                double c;
                kern_tune_params.stream_m_bf16 = 0;
                double t = time_matmul(Y, X, &W, M, KERN_PATH_AVX512_BF16, 1, &c);
                if (k && t < tb) tb = t;
                if (k && c < cb) cb = c;
                kern_tune_params = save;
                t = time_matmul(Y, X, &W, M, KERN_PATH_AVX512, 1, &c);
                if (k && t < tf) tf = t;
                if (k && c < cf) cf = c;
            }
            printf("%-13s %3d %9.1f [%8.1f] %9.1f [%8.1f] %15.2f %s\n", sh[s].name, M, bytes / tb / 1e9,
                   bytes / cb / 1e9, bytes / tf / 1e9, bytes / cf / 1e9, cb / cf,
                   M <= save.stream_m_bf16 ? "fp32 dot" : "vdpbf16ps dot");
            printf("R bf16small %d %d %d %.6g %.6g %.6g %.6g\n", sh[s].N, sh[s].K, M, tb, cb, tf, cf);
        }
    }
    kern_tune_params = save;
}

/* Exact GEMM per shape: our own kernels (kern_matmul on the default path)
 * against oneDNN's f32 matmul with bf16 weights widened per panel (what the
 * exact path runs where the per-CPU table in matmul.c chooses it), interleaved,
 * best of reps, % of the fp32 FMA peak on CPU time; then the table row this
 * CPU measures for (issue 24 item 1, docs/perf.md). */
static void exact_gemm_choice(float *Y, const float *X, const uint16_t *wb, int reps, double peak)
{
    kern_path p = kern_path_default();
    if (p != KERN_PATH_AVX512 && p != KERN_PATH_AVX2) {
        printf("\n== exact GEMM: skipped (default path %s)\n", kern_path_name(p));
        return;
    }
    const struct { const char *name; int N, K; } sh[] = {
        {"7B gate/up", 18944, 3584}, {"7B down", 3584, 18944}, {"0.5B gate/up", 4864, 896}, {"0.5B down", 896, 4864}};
    static const int Ms[] = {64, 128, 300};
    kern_tune save = kern_tune_params;
    const kern_cpu *c = kern_cpu_get();
    printf("\n== exact GEMM (%s): own kernels vs oneDNN f32 matmul (bf16 weights widened per panel), interleaved,"
           " best of %d;\n   GFLOP/s wall [on CPU], %% of fp32 FMA peak on CPU time\n", kern_path_name(p), reps);
    printf("%-13s %4s %18s %7s %18s %7s %9s\n", "shape", "M", "own", "%peak", "oneDNN f32", "%peak", "own/dnnl");
    int first_win = 0, wins = 0, total = 0;
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        kern_weight W = {.data = wb, .dtype = CLENS_DTYPE_BF16, .N = sh[s].N, .K = sh[s].K};
        for (size_t i = 0; i < sizeof Ms / sizeof Ms[0]; i++) {
            int M = Ms[i];
            double fl = 2.0 * M * sh[s].N * sh[s].K, to = 1e30, co = 1e30, td = 1e30, cd = 1e30;
            int r = reps * (fl < 1e10 ? 4 : 1);
            for (int k = 0; k <= r; k++) {
                double cc;
                kern_tune_params = save;
                kern_tune_params.exact_dnnl_m = 1 << 30;
                double t = time_matmul(Y, X, &W, M, p, 1, &cc);
                if (k && t < to) to = t;
                if (k && cc < co) co = cc;
                kern_tune_params.exact_dnnl_m = 1;
                t = time_matmul(Y, X, &W, M, p, 1, &cc);
                if (k && t < td) td = t;
                if (k && cc < cd) cd = cc;
            }
            kern_tune_params = save;
            double po = peak > 0 ? 100 * fl / co / 1e9 / peak : 0, pd = peak > 0 ? 100 * fl / cd / 1e9 / peak : 0;
            printf("%-13s %4d %7.1f [%7.1f] %6.1f%% %7.1f [%7.1f] %6.1f%% %9.2f\n", sh[s].name, M, fl / to / 1e9,
                   fl / co / 1e9, po, fl / td / 1e9, fl / cd / 1e9, pd, co / cd);
            printf("R exactgemm %d %d %d %.6g %.6g %.6g %.6g\n", sh[s].N, sh[s].K, M, to, co, td, cd);
            total++;
            if (cd < 0.95 * co) {
                wins++;
                if (!first_win || M < first_win) first_win = M;
            }
        }
    }
    kern_tune_params = save;
    printf("oneDNN f32 (%s) faster by > 5%% in %d of %d shapes on CPU time.\n", kern_dnnl_f32_impl_name(), wins,
           total);
    printf("per-CPU table (src/kernels/matmul.c g_exact_table) for family %d model 0x%x: in use %s;"
           " this run measures for %s\n", c->family, c->model,
           kern_exact_dnnl_m() >= (1 << 30) ? "own kernels at every M" : "oneDNN f32 at large M",
           wins * 2 > total ? "oneDNN f32 from M = 64 (CLENS_EXACT_GEMM=onednn tries it)" : "own kernels at every M");
    printf("R exactchoice %d %d %d %d\n", c->family, c->model, wins, total);
}

static void tune(float *Y, const float *X, const kern_weight *W0)
{
    kern_tune save = kern_tune_params;
    kern_weight Wd = *W0; /* the same bytes seen as a down projection: N=3584, K=18944 */
    Wd.N = W0->K;
    Wd.K = W0->N;
    const kern_weight *Ws[2] = {W0, &Wd};
    static const int Ms[] = {1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 300};
    static const int kds[] = {1024, 2048, 4096, 1 << 30};
    for (int p = KERN_PATH_AVX2; p < KERN_PATH_COUNT; p++) {
        if (!kern_path_available(p)) continue;
        for (int w = 0; w < 2; w++) {
            const kern_weight *W = Ws[w];
            double fl = 2.0 * W->N * W->K;
            for (size_t i = 0; i < sizeof Ms / sizeof Ms[0]; i++) {
                int M = Ms[i];
                printf("tune %-11s N=%5d K=%5d M=%3d", kern_path_name(p), W->N, W->K, M);
                for (size_t k = 0; k < sizeof kds / sizeof kds[0]; k++) {
                    kern_tune_params = save;
                    kern_tune_params.small_m = kern_tune_params.small_m_avx2 = kern_tune_params.small_m_bf16 = 1 << 30;
                    kern_tune_params.kdot = kds[k];
                    double t = tune_time(Y, X, W, M, p, M >= 128 ? 1 : 3);
                    printf("  dot/%-5d %6.1f", kds[k] > K_BIG ? 0 : kds[k], fl * M / t / 1e9);
                }
                kern_tune_params = save;
                kern_tune_params.small_m = kern_tune_params.small_m_avx2 = kern_tune_params.small_m_bf16 = 0;
                kern_tune_params.bf16_gemm = 0;
                double t = tune_time(Y, X, W, M, p, M >= 128 ? 1 : 3);
                printf("  %s %6.1f", p == KERN_PATH_AVX512_BF16 ? "oneDNN" : "gemm", fl * M / t / 1e9);
                if (p == KERN_PATH_AVX512_BF16) {
                    kern_tune_params.bf16_gemm = 1;
                    t = tune_time(Y, X, W, M, p, M >= 128 ? 1 : 3);
                    printf("  own-gemm %6.1f", fl * M / t / 1e9);
                }
                printf(" GFLOP/s\n");
            }
        }
        if (p == KERN_PATH_AVX512_BF16) continue;
        static const int kcs[] = {128, 256, 512}, kcps[] = {256, 512, 1024};
        for (size_t a = 0; a < sizeof kcs / sizeof kcs[0]; a++)
            for (size_t b = 0; b < sizeof kcps / sizeof kcps[0]; b++) {
                if (kcs[a] > kcps[b]) continue;
                kern_tune_params = save;
                kern_tune_params.small_m = kern_tune_params.small_m_avx2 = 0;
                kern_tune_params.kc = kcs[a];
                kern_tune_params.kcp = kcps[b];
                double t = tune_time(Y, X, W0, 300, p, 2);
                printf("tune %-11s gemm M=300 kc=%3d kcp=%4d  %7.1f GFLOP/s\n", kern_path_name(p), kcs[a],
                       kcps[b], 2.0 * 300 * W0->N * W0->K / t / 1e9);
            }
    }
    kern_tune_params = save;
}

/* --gemv: decode's products (M = 1) against the read loop over the same
 * weight bytes, paired in time (issue 24 item 5; this VM's bandwidth drifts by
 * 2x within minutes, so only a pairing says how close a kernel comes). Each
 * pass sends every copy of W (copies fill 512 MiB: each pass streams from
 * memory) through kern_matmul, then reads the same bytes with the loop (the
 * better of 1 and 16 streams per thread); printed: the median over passes of
 * kernel GB/s, loop GB/s and loop time / kernel time, on 1 and 2 threads, on
 * each fp32 path the CPU has. */
static void gemv_vs_loop(int reps)
{
    static const struct { const char *name; int N, K; } shapes[] = {
        {"0.5B gate/up", 4864, 896}, {"0.5B down", 896, 4864}, {"0.5B unembed", 151936, 896},
        {"7B gate/up", 18944, 3584}, {"7B down", 3584, 18944},
    };
    enum { MAX_COPIES = 128, MAX_PASSES = 15 };
    const size_t total = (size_t)512 << 20;
    int max_n = 0, max_k = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        if (shapes[si].N > max_n) max_n = shapes[si].N;
        if (shapes[si].K > max_k) max_k = shapes[si].K;
    }
    uint16_t *buf = aligned_alloc(64, total);
    float *x = aligned_alloc(64, (size_t)max_k * 4), *y = aligned_alloc(64, (size_t)max_n * 4);
    if (!buf || !x || !y) { fprintf(stderr, "bench_kernels: out of memory (gemv)\n"); exit(1); }
    for (size_t i = 0; i < total / 2; i++) buf[i] = kern_f32_to_bf16(frand() * 0.05f);
    for (int i = 0; i < max_k; i++) x[i] = frand();
    int passes = 2 * reps + 3 < MAX_PASSES ? 2 * reps + 3 : MAX_PASSES;
    printf("\n== M = 1 (decode) vs the read loop over the same weight bytes, paired, median of %d passes\n", passes);
    printf("%-14s %-8s %8s %28s %28s\n", "shape", "path", "MB", "1 thread: kern / loop GB/s", "2 threads: kern / loop GB/s");
    static const kern_path paths[] = {KERN_PATH_AVX512, KERN_PATH_AVX2};
    for (size_t pi = 0; pi < sizeof paths / sizeof paths[0]; pi++) {
        if (!kern_path_available(paths[pi])) continue;
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            int N = shapes[si].N, K = shapes[si].K;
            size_t bytes = (size_t)N * K * 2;
            int copies = (int)(total / bytes);
            if (copies > MAX_COPIES) copies = MAX_COPIES;
            bench_span sp[MAX_COPIES];
            for (int c = 0; c < copies; c++) sp[c] = (bench_span){(const char *)buf + c * bytes, bytes};
            printf("%-14s %-8s %8.1f", shapes[si].name, kern_path_name(paths[pi]), bytes / 1e6);
            for (int nt = 1; nt <= 2; nt++) {
                if (nt > g_threads) { printf(" %28s", "n/a"); continue; }
                kern_set_threads(nt);
                double gk[MAX_PASSES], gl[MAX_PASSES], rt[MAX_PASSES];
                for (int r = 0; r < passes; r++) {
                    double t0 = now();
                    for (int c = 0; c < copies; c++) {
                        kern_weight W = {.data = sp[c].p, .dtype = CLENS_DTYPE_BF16, .N = N, .K = K};
                        kern_matmul(y, x, &W, NULL, 1, paths[pi]);
                    }
                    double tk = now() - t0;
                    double a = bench_read_spans_s(sp, copies, nt, 1), b = bench_read_spans_s(sp, copies, nt, BENCH_BW_STREAMS);
                    double tl = a < b ? a : b;
                    gk[r] = copies * bytes / tk / 1e9;
                    gl[r] = copies * bytes / tl / 1e9;
                    rt[r] = tl / tk;
                }
                printf("    %6.1f / %6.1f = %5.1f%%", bench_median(gk, passes), bench_median(gl, passes),
                       100 * bench_median(rt, passes));
                fflush(stdout);
            }
            kern_set_threads(0);
            printf("\n");
        }
    }
    free(buf); free(x); free(y);
}

/* Attention (H query, Hkv kv heads of D) on an fp32 head-major KV cache of TD
 * positions: prefill of T causal rows through kern_attention_rows_path (as a
 * context's batch runs it) and one decode row over TD - 1 cached keys and its
 * own; best of g_reps per path (portable only if with_portable: it is slow).
 * Prints "R attn NAME PATH PREFILL_S DECODE_S" for tools/bench_torch.py. */
static void attention_bench(const char *name, int H, int Hkv, int D, int T, int TD, int with_portable)
{
    size_t kvw = (size_t)Hkv * D;
    float *Kc = malloc((size_t)TD * kvw * 4), *Vc = malloc((size_t)TD * kvw * 4);
    float *q = malloc((size_t)T * H * D * 4), *o = malloc((size_t)T * H * D * 4);
    kern_att_row *rows = malloc((size_t)T * sizeof *rows);
    for (size_t i = 0; i < (size_t)TD * kvw; i++) { Kc[i] = frand(); Vc[i] = frand(); }
    for (size_t i = 0; i < (size_t)T * H * D; i++) q[i] = frand();
    float sc = 1.0f / sqrtf((float)D);
    const kern_kv kv = {Kc, Vc, (size_t)D, (size_t)TD * D}; /* head-major, as contexts hold it */
    for (int i = 0; i < T; i++) /* prefill: row i attends keys 0..i-1 and its own */
        rows[i] = (kern_att_row){o + (size_t)i * H * D, q + (size_t)i * H * D, kv, 0, i, Kc + (size_t)i * kvw,
                                 Vc + (size_t)i * kvw};
    printf("\n== attention %s: H=%d Hkv=%d D=%d (prefill: kern_attention_rows_path, decode: "
           "kern_attention_row_path), best of %d\n", name, H, Hkv, D, g_reps);
    char ph[64], dh[64];
    snprintf(ph, sizeof ph, "prefill %d rows (causal)", T);
    snprintf(dh, sizeof dh, "decode 1 row, %d keys", TD);
    printf("%-12s %37s %37s\n", "path", ph, dh);
    for (int p = with_portable ? 0 : 1; p < KERN_PATH_AVX512_BF16; p++) {
        if (!kern_path_available(p)) continue;
        double tp = 1e30, td = 1e30, cp = 1e30, cd = 1e30;
        for (int r = 0; r <= g_reps; r++) {
            double t0 = now(), c0 = cputime();
            kern_attention_rows_path(rows, T, H, Hkv, D, sc, (kern_path)p);
            double t1 = now(), c1 = cputime();
            kern_attention_row_path(o, q, &kv, 0, TD - 1, Kc + (size_t)(TD - 1) * kvw, Vc + (size_t)(TD - 1) * kvw,
                                    H, Hkv, D, sc, (kern_path)p);
            double t2 = now(), c2 = cputime();
            if (r > 0 && t1 - t0 < tp) tp = t1 - t0;
            if (r > 0 && t2 - t1 < td) td = t2 - t1;
            if (r > 0 && (c1 - c0) / g_threads < cp) cp = (c1 - c0) / g_threads;
            if (r > 0 && (c2 - c1) / g_threads < cd) cd = (c2 - c1) / g_threads;
        }
        double fp = 4.0 * H * D * (T * (T + 1) / 2.0), fd = 4.0 * H * D * TD;
        printf("%-12s %9.3f ms %6.1f [%6.1f] GFLOP/s %9.3f ms %6.1f [%6.1f] GFLOP/s\n", kern_path_name(p),
               tp * 1e3, fp / tp / 1e9, fp / cp / 1e9, td * 1e3, fd / td / 1e9, fd / cd / 1e9);
        printf("R attn %s %s %.6f %.6f\n", name, kern_path_name(p), tp, td);
    }
    free(Kc); free(Vc); free(q); free(o); free(rows);
}

int main(int argc, char **argv)
{
    int do_tune = 0, peaks_only = 0, bf16_small_only = 0, exact_only = 0, gemv_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) g_reps = 1;
        else if (!strcmp(argv[i], "--tune")) do_tune = 1;
        else if (!strcmp(argv[i], "--peaks")) peaks_only = 1;
        else if (!strcmp(argv[i], "--bf16-small")) bf16_small_only = 1;
        else if (!strcmp(argv[i], "--exact-gemm")) exact_only = 1;
        else if (!strcmp(argv[i], "--gemv")) gemv_only = 1;
        else {
            fprintf(stderr, "usage: bench_kernels [--quick] [--tune] [--peaks] [--bf16-small] [--exact-gemm] [--gemv]\n");
            return 2;
        }
    }
    kern_set_threads(0);
    g_threads = kern_get_threads();
    const kern_cpu *c = kern_cpu_get();
    printf("CPU: avx2 %d fma %d avx512f %d avx512_bf16 %d; threads %d; default path %s\n", c->avx2,
           c->fma, c->avx512f, c->avx512_bf16, g_threads, kern_path_name(kern_path_default()));

    const int K = 3584, N = 18944, MMAX = 300;
    size_t nw = (size_t)N * K;
    uint16_t *wb = aligned_alloc(64, nw * 2);
    float *X = aligned_alloc(64, (size_t)MMAX * K * 4), *Y = aligned_alloc(64, (size_t)MMAX * N * 4);
    for (size_t i = 0; i < nw; i++) wb[i] = kern_f32_to_bf16(frand() * 0.05f);
    for (size_t i = 0; i < (size_t)MMAX * K; i++) X[i] = frand();
    kern_weight W = {.data = wb, .dtype = CLENS_DTYPE_BF16, .N = N, .K = K};
    if (bf16_small_only || exact_only || gemv_only) {
        if (bf16_small_only) bf16_small_m(Y, X, wb, g_reps);
        if (exact_only) exact_gemm_choice(Y, X, wb, g_reps, 0);
        if (gemv_only) gemv_vs_loop(g_reps);
        free(wb); free(X); free(Y);
        kern_scratch_release();
        return 0;
    }
    if (do_tune) {
        tune(Y, X, &W);
        free(wb); free(X); free(Y);
        kern_scratch_release();
        return 0;
    }

    /* peaks: wall-clock rate, and the rate on each thread's CPU time (cpu_*) */
    double pk_zmm[3] = {0}, pk_ymm[3] = {0}, pk_bf[3] = {0}, bw[3] = {0};
    double cz[3] = {0}, cy[3] = {0}, cb[3] = {0};
    for (int nt = 1; nt <= g_threads && nt <= 2; nt++) {
        if (c->avx512f) pk_zmm[nt] = peak(loop_fma_zmm, NACC * 16 * 2.0, nt, &cz[nt]);
        if (c->avx2 && c->fma) pk_ymm[nt] = peak(loop_fma_ymm, NACC * 8 * 2.0, nt, &cy[nt]);
        if (c->avx512_bf16) pk_bf[nt] = peak(loop_dpbf16, NACC * 16 * 4.0, nt, &cb[nt]);
    }
    size_t nbuf = (size_t)1 << 28; /* 1 GiB */
    float *buf = aligned_alloc(64, nbuf * 4);
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < nbuf; i++) buf[i] = 1.0f;
    for (int nt = 1; nt <= g_threads && nt <= 2; nt++) bw[nt] = bench_read_gbs(buf, nbuf, nt, 5);
    free(buf);
    int T = g_threads >= 2 ? 2 : 1;
    printf("\n== peaks (12 independent accumulators per thread, best of 5); wall clock [on CPU time]\n");
    printf("%-26s %20s %20s   perf-notes Zen 5 / Zen 3 (2T)\n", "", "1 thread", "2 threads");
    if (pk_zmm[1] > 0)
        printf("%-26s %9.1f [%7.1f] %9.1f [%7.1f]   420 / -\n", "fp32 FMA zmm GFLOP/s", pk_zmm[1], cz[1],
               pk_zmm[2], cz[2]);
    if (pk_ymm[1] > 0)
        printf("%-26s %9.1f [%7.1f] %9.1f [%7.1f]   - / 197\n", "fp32 FMA ymm GFLOP/s", pk_ymm[1], cy[1],
               pk_ymm[2], cy[2]);
    if (pk_bf[1] > 0)
        printf("%-26s %9.1f [%7.1f] %9.1f [%7.1f]   842 / -\n", "vdpbf16ps zmm GFLOP/s", pk_bf[1], cb[1],
               pk_bf[2], cb[2]);
    else printf("%-26s %20s %20s   (CPU lacks avx512_bf16)\n", "vdpbf16ps zmm GFLOP/s", "-", "-");
    printf("%-26s %9.1f %9s %9.1f %9s   30-73 / 31-36\n", "memory read GB/s (1 GiB)", bw[1], "", bw[2], "");
    printf("  (the better of one stream and %d interleaved streams per thread)\n", BENCH_BW_STREAMS);
    if (cz[T] > 1.25 * pk_zmm[T] || cy[T] > 1.25 * pk_ymm[T])
        printf("NOTE: other processes used the CPU during this run: wall-clock figures are low;"
               " %%peak below uses CPU-time rates on both sides\n");
    printf("R peak fma_zmm %.2f\nR peak fma_ymm %.2f\nR peak dpbf16 %.2f\nR peak bw %.2f\n", cz[T], cy[T],
           cb[T], bw[T]);
    if (peaks_only) {
        free(wb); free(X); free(Y);
        return 0;
    }

    /* gemm */
    printf("\n== kern_matmul, bf16 weights W[%d][%d] (%.0f MB), fp32 X and Y, %d threads, best of %d\n",
           N, K, nw * 2 / 1e6, T, g_reps);
    printf("%-12s %4s %9s %9s %9s %8s %9s %8s\n", "path", "M", "ms", "GFLOP/s", "[on CPU]", "%peak",
           "GB/s(W)", "%bw");
    static const int Ms[] = {300, 64, 29, 16, 1};
    double pct300[KERN_PATH_COUNT] = {0};
    for (int p = 0; p < KERN_PATH_COUNT; p++) {
        if (!kern_path_available(p)) {
            printf("%-12s  skipped: CPU lacks it\n", kern_path_name(p));
            continue;
        }
        double pk = p == KERN_PATH_AVX512_BF16 ? cb[T] : p == KERN_PATH_AVX512 ? cz[T]
                  : p == KERN_PATH_AVX2 ? cy[T] : 0; /* the path's own instruction, CPU-time rate */
        for (size_t i = 0; i < sizeof Ms / sizeof Ms[0]; i++) {
            int M = Ms[i];
            if (p == KERN_PATH_PORTABLE && M > 1) continue; /* minutes at M = 300 */
            double c, t = time_matmul(Y, X, &W, M, (kern_path)p, p == KERN_PATH_PORTABLE ? 1 : g_reps, &c);
            double gf = 2.0 * M * N * K / t / 1e9, gbs = nw * 2.0 / t / 1e9;
            double gc = 2.0 * M * N * K / c / 1e9;
            if (M == 300 && pk > 0) pct300[p] = 100 * gc / pk;
            printf("%-12s %4d %9.2f %9.1f [%7.1f] %7.1f%% %9.1f %7.1f%%%s\n", kern_path_name(p), M, t * 1e3,
                   gf, gc, pk > 0 ? 100 * gc / pk : 0, gbs, 100 * gbs / bw[T],
                   t > 1.25 * c ? "  (others used the CPU)" : "");
            printf("R gemm %s %d %.6f %.2f %.2f %.6f\n", kern_path_name(p), M, t, gf, gbs, c);
        }
    }
    printf("M=300 against the 80%% of peak target:");
    for (int p = KERN_PATH_AVX2; p < KERN_PATH_COUNT; p++)
        if (pct300[p] > 0)
            printf(" %s %.0f%% (%s)", kern_path_name(p), pct300[p], pct300[p] >= 80 ? "met" : "OUT OF REACH here");
    printf("\n");
    if (kern_path_available(KERN_PATH_AVX512_BF16) && kern_bf16_impl_name()[0])
        printf("(avx512-bf16 large M: oneDNN %s; small M <= %d: vdpbf16ps dot form)\n",
               kern_bf16_impl_name(), kern_tune_params.small_m_bf16);
    printf("(avx512: dot form (%dx%d tiles, K chunks %d, %d rows of X per pass over W) %s;\n"
           " avx2: dot form (3x3 tiles) at M <= %d, packed GEMM (6x16 tiles, kc %d, kcp %d) above)\n",
           kern_avx512_dot_tile[0], kern_avx512_dot_tile[1], kern_tune_params.kdot, kern_tune_params.mdot,
           kern_tune_params.small_m >= (1 << 20) ? "at every M" : "at small M, packed GEMM above",
           kern_tune_params.small_m_avx2, kern_tune_params.kc, kern_tune_params.kcp);

    bf16_small_m(Y, X, wb, g_reps);
    exact_gemm_choice(Y, X, wb, g_reps, kern_path_default() == KERN_PATH_AVX512 ? cz[T] : cy[T]);
    gemv_vs_loop(g_reps);

    /* library alternatives on pre-widened fp32 weights */
    float *wf = aligned_alloc(64, nw * 4);
    kern_to_f32(wf, wb, CLENS_DTYPE_BF16, nw);
    char impl[128] = "";
    printf("\n== library alternatives at M=300, weights pre-widened to fp32 (%.0f MB): kern_matmul's own"
           " kernels are used where these are slower\n", nw * 4 / 1e6);
    double fl300 = 2.0 * 300 * N * K, cd = 0, cbl = 0;
    double td = dnnl_f32_matmul(X, wf, Y, 300, N, K, impl, sizeof impl, &cd);
    if (td > 0) {
        printf("oneDNN f32 matmul (%s): %.2f ms, %.1f [%.1f] GFLOP/s\n", impl, td * 1e3, fl300 / td / 1e9,
               fl300 / cd / 1e9);
        printf("R alt dnnl_f32 300 %.6f %.2f %.6f\n", td, fl300 / td / 1e9, cd);
    }
    double tb = blas_sgemm(X, wf, Y, 300, N, K, &cbl);
    printf("OpenBLAS sgemm (OPENBLAS_CORETYPE=%s): %.2f ms, %.1f [%.1f] GFLOP/s\n",
           getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "auto", tb * 1e3, fl300 / tb / 1e9,
           fl300 / cbl / 1e9);
    printf("R alt openblas_sgemm 300 %.6f %.2f %.6f\n", tb, fl300 / tb / 1e9, cbl);
    free(wf);

    /* attention: Qwen2-0.5B heads at 300 tokens; OLMo-3-7B's (every query head
     * its own kv head: the most cache per token) at a 1500-token prompt */
    attention_bench("qwen2-0.5b", 14, 2, 64, 300, 4096, 1);
    attention_bench("olmo3-7b", 32, 32, 128, 1500, 1500, 0);

    /* bf16 speed mode accuracy, Qwen2-0.5B unembedding shape */
    if (kern_path_available(KERN_PATH_AVX512_BF16)) {
        const int Ku = 896, Nu = 151936, Mu = 64;
        uint16_t *wu = malloc((size_t)Nu * Ku * 2);
        float *xu = malloc((size_t)Mu * Ku * 4), *y0 = malloc((size_t)Mu * Nu * 4), *y1 = malloc((size_t)Mu * Nu * 4);
        for (size_t i = 0; i < (size_t)Nu * Ku; i++) wu[i] = kern_f32_to_bf16(frand() * 0.05f);
        for (size_t i = 0; i < (size_t)Mu * Ku; i++) xu[i] = frand() * 3;
        kern_weight Wu = {.data = wu, .dtype = CLENS_DTYPE_BF16, .N = Nu, .K = Ku};
        double maxd = 0;
        int agree = 0, tot = 0;
        for (int pass = 0; pass < 2; pass++) { /* oneDNN (M=64) and the dot form (M=1 rows) */
            if (pass == 0) {
                kern_matmul(y0, xu, &Wu, NULL, Mu, KERN_PATH_AVX512);
                kern_matmul(y1, xu, &Wu, NULL, Mu, KERN_PATH_AVX512_BF16);
            } else { /* the vdpbf16ps dot form itself (the mode runs the exact form at M <= stream_m_bf16) */
                int sm = kern_tune_params.stream_m_bf16;
                kern_tune_params.stream_m_bf16 = 0;
                for (int m = 0; m < Mu; m++)
                    kern_matmul(y1 + (size_t)m * Nu, xu + (size_t)m * Ku, &Wu, NULL, 1, KERN_PATH_AVX512_BF16);
                kern_tune_params.stream_m_bf16 = sm;
            }
            for (int m = 0; m < Mu; m++) {
                int a0 = 0, a1 = 0;
                for (int n = 0; n < Nu; n++) {
                    size_t i = (size_t)m * Nu + n;
                    if (y0[i] > y0[(size_t)m * Nu + a0]) a0 = n;
                    if (y1[i] > y1[(size_t)m * Nu + a1]) a1 = n;
                    double d = fabs(y0[i] - y1[i]);
                    if (d > maxd) maxd = d;
                }
                agree += a0 == a1;
                tot++;
            }
        }
        printf("\n== bf16 speed mode vs fp32 path, random weights on the Qwen2-0.5B unembedding shape"
               " (K=%d, N=%d, %d rows x 2 kernels)\n", Ku, Nu, Mu);
        printf("top-1 agreement %d/%d = %.1f%% (target >= 99%% on real models), max |diff| %.3g"
               " (logit rms %.3g)\n", agree, tot, 100.0 * agree / tot, maxd,
               sqrt(Ku * (3.0 * 3 / 3) * (0.05 * 0.05 / 3)));
        printf("R bf16acc %d %d %.6g\n", agree, tot, maxd);
        free(wu); free(xu); free(y0); free(y1);
    } else {
        printf("\n== bf16 speed mode: skipped, CPU lacks avx512_bf16\n");
    }
    free(wb); free(X); free(Y);
    kern_scratch_release();
    return 0;
}
