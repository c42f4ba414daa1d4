/*
 * test_kernels.c: every kernel path against its portable twin / a double
 * reference, on the paths this CPU has (the others are reported as skipped):
 *   - conversions: bf16 round-to-nearest-even, f16 (all 65536 values,
 *     subnormals), and the SIMD widening (an identity product gives W^T back
 *     bit for bit);
 *   - matmul: random shapes incl. odd M/N/K, bf16/f16/f32 weights, bias or
 *     not, each kernel form forced in turn (dot form, packed GEMM, small
 *     blocks): fp32 paths within 1e-5 of the row's rms, bitwise independent
 *     of the thread count; the bf16 speed mode within its own looser bound;
 *   - attention: against a naive double-precision softmax (GQA, windows,
 *     self key, long rows);
 * Matmul bound: 1e-5 of the row rms for K <= 256, growing as sqrt(K) beyond
 * (both sides round, the portable sum sequentially).
 *   - swiglu against double; CLENS_KERNEL override.
 * Force a single path with CLENS_KERNEL=avx2 etc.: the tests then run only it.
 */
#include "testutil.h"

#include <math.h>
#include <omp.h>
#include <time.h>

#include "kernels/kern_internal.h"
#include "kernels/kernels.h"

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd32(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}
static float frand(void) { return (float)((rnd32() & 0xffffff) / 8388608.0 - 1.0); }

static int g_ran[KERN_PATH_COUNT];

/* Kernel forms: 0 the tuned defaults; 1 every M through the packed GEMM (and
 * oneDNN in the bf16 mode); 2 every M through the dot form (vdpbf16ps dot form)
 * with short K chunks; 3 the GEMM with tiny K blocks (and the own vdpbf16ps
 * GEMM in the bf16 mode). */
#define NVARIANTS 4
static kern_tune g_tune0;
static void set_variant(int v)
{
    if (!g_tune0.kc) g_tune0 = kern_tune_params;
    kern_tune_params = g_tune0;
    if (v == 1 || v == 3)
        kern_tune_params.small_m = kern_tune_params.small_m_avx2 = kern_tune_params.small_m_bf16 = 0;
    if (v == 2) {
        kern_tune_params.small_m = kern_tune_params.small_m_avx2 = kern_tune_params.small_m_bf16 = 1 << 30;
        kern_tune_params.kdot = 64;
        kern_tune_params.mdot = 250;
    }
    if (v == 3) { kern_tune_params.kc = 32; kern_tune_params.kcp = 96; kern_tune_params.bf16_gemm = 1; }
    if (v) kern_tune_params.stream_m_bf16 = 0; /* the variants run the bf16 mode's own kernels at every M */
}

/* Paths to test: all available, or only the one forced by CLENS_KERNEL. */
static int want_path(kern_path p)
{
    const char *o = getenv("CLENS_KERNEL");
    if (o && *o && strcmp(o, kern_path_name(p)) != 0) return 0;
    return kern_path_available(p);
}

static float f16_ref(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return (float)(s ? -v : v);
}

static uint32_t fbits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bitsf(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static void conversions(void **state)
{
    (void)state;
    struct { uint32_t in; uint16_t out; } bf[] = {
        {0x3f800000, 0x3f80}, {0x3f808000, 0x3f80}, {0x3f818000, 0x3f82}, {0x3f808001, 0x3f81},
        {0x3f807fff, 0x3f80}, {0xbf818000, 0xbf82}, {0x7f800000, 0x7f80}, {0xff800000, 0xff80},
        {0x7f7fffff, 0x7f80}, {0x00000001, 0x0000}, {0x007fffff, 0x0080}, {0x80000000, 0x8000},
        {0x7f800001, 0x7fc0},
    };
    for (size_t i = 0; i < sizeof bf / sizeof bf[0]; i++)
        assert_int_equal(kern_f32_to_bf16(bitsf(bf[i].in)), bf[i].out);
    uint16_t qn = kern_f32_to_bf16(bitsf(0x7fc00001));
    assert_true((qn & 0x7f80) == 0x7f80 && (qn & 0x7f) != 0);
    for (uint32_t v = 0; v < 65536; v++) {
        float f = kern_bf16_to_f32((uint16_t)v);
        assert_int_equal(fbits(f), v << 16);
        if (!isnan(f)) assert_int_equal(kern_f32_to_bf16(f), v);
        float h = kern_f16_to_f32((uint16_t)v), r = f16_ref((uint16_t)v);
        if (isnan(r)) assert_true(isnan(h));
        else assert_int_equal(fbits(h), fbits(r));
    }
    assert_true(kern_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(kern_f16_to_f32(0x03ff) == 1023 * 0x1p-24f);
    assert_true(kern_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(signbit(kern_f16_to_f32(0x8000)));
    uint16_t src[5] = {0x3c00, 0x0001, 0xc000, 0x7bff, 0x8001};
    float dst[5];
    kern_to_f32(dst, src, CLENS_DTYPE_F16, 5);
    assert_true(dst[0] == 1.0f && dst[1] == 0x1p-24f && dst[2] == -2.0f && dst[3] == 65504.0f &&
                dst[4] == -0x1p-24f);
}

/* The SIMD widening is exact: with X = identity rows, Y[m][n] == W[n][m] exactly,
 * over every finite f16 value and many bf16 values, in the dot form (M <= 4) and
 * the packed GEMM (M = 16). */
static void widening_exact(void **state)
{
    (void)state;
    const int K = 16, N = 63488 / 16; /* the finite f16 values */
    uint16_t *w = malloc((size_t)N * K * 2);
    float *X = calloc((size_t)K * K, 4), *Y = malloc((size_t)K * N * 4);
    for (int i = 0; i < K; i++) X[i * K + i] = 1.0f;
    for (int dt = 0; dt < 2; dt++) {
        clens_dtype d = dt ? CLENS_DTYPE_BF16 : CLENS_DTYPE_F16;
        int c = 0;
        for (uint32_t v = 0; v < 65536 && c < N * K; v++) {
            if (d == CLENS_DTYPE_F16 ? ((v >> 10) & 31) == 31 : ((v >> 7) & 255) == 255) continue;
            w[c++] = (uint16_t)v;
        }
        while (c < N * K) w[c++] = 0x3c00;
        kern_weight W = {.data = w, .dtype = d, .N = N, .K = K};
        for (int p = KERN_PATH_AVX2; p < KERN_PATH_COUNT; p++) {
            if (!want_path(p)) continue;
            int Ms[2] = {3, 16};
            for (int t = 0; t < 4; t++) {
                int M = Ms[t % 2];
                set_variant(1 + t / 2);
                kern_matmul(Y, X, &W, NULL, M, p);
                set_variant(0);
                for (int m = 0; m < M; m++)
                    for (int n = 0; n < N; n++) {
                        uint16_t b = w[(size_t)n * K + m];
                        float ref = d == CLENS_DTYPE_F16 ? kern_f16_to_f32(b) : kern_bf16_to_f32(b);
                        if (p == KERN_PATH_AVX512_BF16 && d == CLENS_DTYPE_BF16 && fabsf(ref) < 0x1p-126f)
                            ref = 0.0f; /* vdpbf16ps flushes bf16 denormals */
                        if (Y[(size_t)m * N + n] != ref)
                            fail_msg("path %s dtype %d M=%d: Y[%d][%d]=%a, W=%a", kern_path_name(p),
                                     dt, M, m, n, Y[(size_t)m * N + n], ref);
                    }
            }
        }
    }
    free(w); free(X); free(Y);
}

/* Random weights of dtype d (values in [-1, 1], some f16 subnormals). */
static void *make_weights(clens_dtype d, int N, int K, float *wf)
{
    size_t n = (size_t)N * K;
    void *w = malloc(n * (d == CLENS_DTYPE_F32 ? 4 : 2));
    for (size_t i = 0; i < n; i++) {
        float f = frand();
        if (d == CLENS_DTYPE_F32) ((float *)w)[i] = wf[i] = f;
        else if (d == CLENS_DTYPE_BF16) {
            uint16_t b = kern_f32_to_bf16(f);
            ((uint16_t *)w)[i] = b;
            wf[i] = kern_bf16_to_f32(b);
        } else {
            /* sign, exponent 0 (subnormal) .. 15 (1.x), random mantissa */
            uint16_t h = (uint16_t)((rnd32() & 0x8000) | (rnd32() % 16) << 10 | (rnd32() & 1023));
            ((uint16_t *)w)[i] = h;
            wf[i] = kern_f16_to_f32(h);
        }
    }
    return w;
}

/* max over rows of max|A-B| / rms(B row). */
static double max_rel(const float *A, const float *B, int M, int N)
{
    double worst = 0;
    for (int m = 0; m < M; m++) {
        double ss = 0, md = 0;
        for (int n = 0; n < N; n++) {
            double b = B[(size_t)m * N + n], d = fabs(A[(size_t)m * N + n] - b);
            ss += b * b;
            if (!(d <= md)) md = d; /* NaN propagates */
        }
        double rms = sqrt(ss / N) + 1e-30, r = md / rms;
        if (!(r <= worst)) worst = r;
    }
    return worst;
}

static double g_worst[KERN_PATH_COUNT];

static void check_matmul(int M, int N, int K, clens_dtype d, int with_bias)
{
    float *wf = malloc((size_t)N * K * 4), *X = malloc((size_t)M * K * 4 + 4);
    float *b = malloc((size_t)N * 4 + 4), *Yp = malloc((size_t)M * N * 4 + 4);
    float *Yf = malloc((size_t)M * N * 4 + 4), *Y1 = malloc((size_t)M * N * 4 + 4);
    void *w = make_weights(d, N, K, wf);
    for (size_t i = 0; i < (size_t)M * K; i++) X[i] = frand();
    for (int i = 0; i < N; i++) b[i] = frand();
    kern_weight W = {.data = w, .dtype = d, .N = N, .K = K};
    const float *bias = with_bias ? b : NULL;
    kern_matmul(Yp, X, &W, bias, M, KERN_PATH_PORTABLE);
    g_ran[KERN_PATH_PORTABLE] = 1;
    double *SA = NULL; /* sum |x w| per output, for the bf16 mode's bound */
    for (int p = KERN_PATH_AVX2; p < KERN_PATH_COUNT; p++)
      for (int v = 0; v < NVARIANTS; v++) {
        if (!want_path(p)) continue;
        /* bf16 mode: form 1 (oneDNN at every M) costs a JIT compile per shape; form 0
         * already runs oneDNN for M > small_m_bf16 */
        if (p == KERN_PATH_AVX512_BF16 && v == 1 && d == CLENS_DTYPE_BF16) continue;
        g_ran[p] = 1;
        set_variant(v);
        for (size_t i = 0; i < (size_t)M * N; i++) Yf[i] = NAN;
        kern_matmul(Yf, X, &W, bias, M, p);
        int bf = p == KERN_PATH_AVX512_BF16 && d == CLENS_DTYPE_BF16;
        if (bf) {
            /* activations rounded to bf16: |err| <= 2^-9 sum |x w| + accumulation */
            if (!SA) {
                SA = malloc((size_t)M * N * sizeof(double));
                for (int m = 0; m < M; m++)
                    for (int n = 0; n < N; n++) {
                        double sa = 0;
                        for (int k = 0; k < K; k++) sa += fabs((double)X[(size_t)m * K + k] * wf[(size_t)n * K + k]);
                        SA[(size_t)m * N + n] = sa;
                    }
            }
            for (int m = 0; m < M; m++)
                for (int n = 0; n < N; n++) {
                    double sa = SA[(size_t)m * N + n], e = fabs(Yf[(size_t)m * N + n] - Yp[(size_t)m * N + n]);
                    if (!(e <= 0x1p-8 * sa + 1e-5))
                        fail_msg("matmul bf16 mode form %d M=%d N=%d K=%d: Y[%d][%d] err %g > 2^-8 * %g",
                                 v, M, N, K, m, n, e, sa);
                }
        } else {
            double r = max_rel(Yf, Yp, M, N);
            if (r > g_worst[p]) g_worst[p] = r;
            /* both sides round: the portable sum is sequential, the fast ones blocked */
            double tol = 1e-5 * sqrt((K > 256 ? K : 256) / 256.0);
            if (!(r <= tol))
                fail_msg("matmul path %s form %d M=%d N=%d K=%d dtype %d bias %d: rel err %.3g > %.3g",
                         kern_path_name(p), v, M, N, K, d, with_bias, r, tol);
        }
        /* the AVX-512 dot form (default for every M): a row alone gives the same bits */
        if (v == 0 && p == KERN_PATH_AVX512 && M > 1 && kern_matmul_rows_exact(p, M)) {
            kern_matmul(Y1, X + (size_t)(M - 1) * K, &W, bias, 1, p);
            if (memcmp(Y1, Yf + (size_t)(M - 1) * N, (size_t)N * 4) != 0)
                fail_msg("matmul avx512 M=%d N=%d K=%d: last row alone differs from in the batch", M, N, K);
        }
        /* deterministic: the same bits with one thread */
        kern_set_threads(1);
        kern_matmul(Y1, X, &W, bias, M, p);
        kern_set_threads(0);
        set_variant(0);
        if (memcmp(Y1, Yf, (size_t)M * N * 4) != 0)
            fail_msg("matmul path %s form %d M=%d N=%d K=%d: 1 thread differs from %d threads",
                     kern_path_name(p), v, M, N, K, kern_get_threads());
    }
    free(wf); free(X); free(b); free(Yp); free(Yf); free(Y1); free(w); free(SA);
}

static void matmul_paths(void **state)
{
    (void)state;
    static const int Ms[] = {1, 2, 3, 7, 16, 29, 64, 65, 300};
    static const int NK[][2] = {{1, 1}, {3, 5}, {17, 33}, {33, 100}, {100, 257}, {64, 64}, {37, 600}};
    for (int d = 0; d < 3; d++)
        for (size_t i = 0; i < sizeof Ms / sizeof Ms[0]; i++)
            for (size_t j = 0; j < sizeof NK / sizeof NK[0]; j++)
                check_matmul(Ms[i], NK[j][0], NK[j][1], (clens_dtype)d, (int)(i + j) % 2);
    /* several K blocks, panel groups and both threads busy */
    for (int d = 0; d < 3; d++) {
        check_matmul(65, 600, 1100, (clens_dtype)d, 1);
        check_matmul(4, 603, 1100, (clens_dtype)d, 0);
        check_matmul(7, 40, 1101, (clens_dtype)d, 1);
        check_matmul(65, 40, 1024, (clens_dtype)d, 1); /* 4 kB rows: the dot form reads a padded copy of X */
    }
    /* the dot form's two loop orders (rows of W outer for a small X block, K
     * chunks outer for a large one) give the same bits: a row alone vs in a
     * 200-row batch, K chunks of 64 */
    for (int p = KERN_PATH_AVX2; p <= KERN_PATH_AVX512; p++) {
        if (!want_path(p)) continue;
        const int M = 200, N = 37, K = 1100;
        if (M >= kern_exact_dnnl_m()) { /* CLENS_EXACT_GEMM=onednn: oneDNN runs this M, not the dot form */
            printf("    dot form %s: batch-vs-row check not run (oneDNN f32 selected from M = %d)\n", kern_path_name(p),
                   kern_exact_dnnl_m());
            continue;
        }
        float *wf = malloc((size_t)N * K * 4), *X = malloc((size_t)M * K * 4);
        float *Y = malloc((size_t)M * N * 4), *Y1 = malloc((size_t)N * 4);
        void *w = make_weights(CLENS_DTYPE_BF16, N, K, wf);
        for (size_t i = 0; i < (size_t)M * K; i++) X[i] = frand();
        kern_weight W = {.data = w, .dtype = CLENS_DTYPE_BF16, .N = N, .K = K};
        set_variant(2);
        kern_tune_params.rowwise_bytes = 0; /* the batch: K chunks outer */
        kern_matmul(Y, X, &W, NULL, M, p);
        set_variant(2);                     /* one row: rows of W outer */
        for (int m = 0; m < M; m += 67) {
            kern_matmul(Y1, X + (size_t)m * K, &W, NULL, 1, p);
            if (memcmp(Y1, Y + (size_t)m * N, (size_t)N * 4) != 0)
                fail_msg("dot form %s: row %d alone differs from in the batch", kern_path_name(p), m);
        }
        set_variant(0);
        free(wf); free(X); free(Y); free(Y1); free(w);
    }
    for (int p = KERN_PATH_AVX2; p < KERN_PATH_COUNT; p++)
        if (g_ran[p] && p != KERN_PATH_AVX512_BF16)
            printf("    matmul %-11s max |err| / row rms = %.2e (bound 1e-5 x sqrt(K/256))\n", kern_path_name(p),
                   g_worst[p]);
}

/* Products long enough (>= 1e8 multiply-adds) that the dot form's threads
 * take many chunks dynamically (kern_chunks_for), and several products of
 * one X in one region (kern_matmul_multi, the forward's q/k/v and gate/up):
 * the same bits as each product alone, on one thread and on two, and each
 * row as alone. Shown to fail with a chunk's row range shifted by one block. */
static void matmul_chunks_multi(void **state)
{
    (void)state;
    /* 300 x 793 x 1100: 2.6e8 multiply-adds; K = 1024 (4 kB rows): X read as a
     * padded copy, 256 rows (kern_tune mdot) at a time, one region per block */
    const int M = 300, Ks[2] = {1100, 1024}, Ns[3] = {601, 96, 96};
    for (int pk = 0; pk < 2 * (KERN_PATH_AVX512 - KERN_PATH_AVX2 + 1); pk++) {
        int p = KERN_PATH_AVX2 + pk / 2, K = Ks[pk % 2];
        if (!want_path(p) || M >= kern_exact_dnnl_m()) continue;
        float *X = malloc((size_t)M * K * 4), *wf[3], *Ym[3], *Ys[3], *Y1[3], *b[3];
        void *w[3];
        kern_weight W[3];
        kern_mm_job jobs[3];
        for (size_t i = 0; i < (size_t)M * K; i++) X[i] = frand();
        for (int j = 0; j < 3; j++) {
            wf[j] = malloc((size_t)Ns[j] * K * 4);
            w[j] = make_weights(CLENS_DTYPE_BF16, Ns[j], K, wf[j]);
            W[j] = (kern_weight){.data = w[j], .dtype = CLENS_DTYPE_BF16, .N = Ns[j], .K = K};
            b[j] = malloc((size_t)Ns[j] * 4);
            for (int n = 0; n < Ns[j]; n++) b[j][n] = frand();
            Ym[j] = malloc((size_t)M * Ns[j] * 4);
            Ys[j] = malloc((size_t)M * Ns[j] * 4);
            Y1[j] = malloc((size_t)M * Ns[j] * 4);
            jobs[j] = (kern_mm_job){Ym[j], &W[j], j == 1 ? NULL : b[j]};
        }
        set_variant(0);
        kern_matmul_multi(X, M, jobs, 3, (kern_path)p);
        for (int j = 0; j < 3; j++) kern_matmul(Ys[j], X, &W[j], jobs[j].bias, M, (kern_path)p);
        kern_set_threads(1);
        kern_mm_job one[3];
        for (int j = 0; j < 3; j++) one[j] = (kern_mm_job){Y1[j], &W[j], jobs[j].bias};
        kern_matmul_multi(X, M, one, 3, (kern_path)p);
        kern_set_threads(0);
        for (int j = 0; j < 3; j++) {
            if (memcmp(Ym[j], Ys[j], (size_t)M * Ns[j] * 4) != 0)
                fail_msg("matmul_multi %s job %d: differs from the product alone", kern_path_name(p), j);
            if (memcmp(Y1[j], Ys[j], (size_t)M * Ns[j] * 4) != 0)
                fail_msg("matmul_multi %s job %d: 1 thread differs from %d threads", kern_path_name(p), j,
                         kern_get_threads());
        }
        if (p == KERN_PATH_AVX512 && kern_matmul_rows_exact((kern_path)p, M))
            for (int r = 123; r < M; r += 176) { /* 123, 299: both blocks of 256 rows */
                kern_matmul(Y1[0], X + (size_t)r * K, &W[0], b[0], 1, (kern_path)p);
                if (memcmp(Y1[0], Ys[0] + (size_t)r * Ns[0], (size_t)Ns[0] * 4) != 0)
                    fail_msg("matmul avx512 chunked M=%d K=%d: row %d alone differs from in the batch", M, K, r);
                kern_matmul_multi(X + (size_t)r * K, 1, one, 3, (kern_path)p);
                for (int j = 0; j < 3; j++)
                    if (memcmp(Y1[j], Ym[j] + (size_t)r * Ns[j], (size_t)Ns[j] * 4) != 0)
                        fail_msg("matmul_multi avx512 M=%d K=%d job %d: row %d alone differs", M, K, j, r);
            }
        printf("    %s K=%d: chunked product and 3-job multi product = alone, 1 thread = %d threads\n",
               kern_path_name(p), K, kern_get_threads());
        for (int j = 0; j < 3; j++) { free(wf[j]); free(w[j]); free(b[j]); free(Ym[j]); free(Ys[j]); free(Y1[j]); }
        free(X);
    }
}

/* oneDNN's f32 matmul as the exact path's large-M kernel (kern_dnnl_f32.c,
 * chosen per CPU or by CLENS_EXACT_GEMM): within the fp32 tolerance of the
 * portable twin for every weight dtype, with bias, over several widened
 * panels and a tail panel; the same bits on one thread; and the rows-exact
 * promise withdrawn where it runs. */
static void matmul_dnnl_f32(void **state)
{
    (void)state;
    const int M = 70, N = 600, K = 4100; /* panels of 192 rows: 3 full + a tail of 24 */
    int done = 0;
    for (int p = KERN_PATH_AVX2; p <= KERN_PATH_AVX512; p++) {
        if (!want_path(p)) continue;
        for (int d = 0; d < 3; d++) {
            clens_dtype dt = d == 0 ? CLENS_DTYPE_F32 : d == 1 ? CLENS_DTYPE_BF16 : CLENS_DTYPE_F16;
            float *wf = malloc((size_t)N * K * 4), *X = malloc((size_t)M * K * 4), *b = malloc((size_t)N * 4);
            float *Yp = malloc((size_t)M * N * 4), *Yd = malloc((size_t)M * N * 4), *Y1 = malloc((size_t)M * N * 4);
            void *w = make_weights(dt, N, K, wf);
            for (size_t i = 0; i < (size_t)M * K; i++) X[i] = frand();
            for (int i = 0; i < N; i++) b[i] = frand();
            kern_weight W = {.data = w, .dtype = dt, .N = N, .K = K};
            kern_matmul(Yp, X, &W, b, M, KERN_PATH_PORTABLE);
            kern_tune saved = kern_tune_params;
            kern_tune_params.exact_dnnl_m = 2;
            assert_true(kern_matmul_f32_dnnl(Yd, X, &W, b, M) == 0); /* oneDNN ran */
            kern_matmul(Yd, X, &W, b, M, (kern_path)p);
            assert_false(kern_matmul_rows_exact((kern_path)p, M));
            kern_set_threads(1);
            kern_matmul(Y1, X, &W, b, M, (kern_path)p);
            kern_set_threads(0);
            kern_tune_params = saved;
            double r = max_rel(Yd, Yp, M, N), tol = 1e-5 * sqrt(K / 256.0);
            printf("    oneDNN f32 (%s) on %s, dtype %d: max |err| / row rms = %.2e (bound %.2e)\n",
                   kern_dnnl_f32_impl_name(), kern_path_name(p), d, r, tol);
            assert_true(r <= tol);
            if (memcmp(Y1, Yd, (size_t)M * N * 4) != 0)
                fail_msg("oneDNN f32 on %s dtype %d: 1 thread differs from %d threads", kern_path_name(p), d,
                         kern_get_threads());
            free(wf); free(X); free(b); free(Yp); free(Yd); free(Y1); free(w);
            done = 1;
        }
    }
    if (!done) printf("    oneDNN f32: skipped (no fp32 SIMD path selected)\n");
}

/* The bf16 speed mode: its own tolerance on a larger shape, printed, for each
 * of its kernels (vdpbf16ps dot form, oneDNN); and at M <= stream_m_bf16 it
 * runs the exact fp32 dot form (the same bits as the default path). */
static void matmul_bf16_mode(void **state)
{
    (void)state;
    if (!want_path(KERN_PATH_AVX512_BF16)) {
        printf("    bf16 speed mode: skipped (%s)\n", kern_path_available(KERN_PATH_AVX512_BF16)
                                                       ? "CLENS_KERNEL selects another path"
                                                       : "CPU lacks avx512_bf16");
        return;
    }
    const int N = 512, K = 896;
    int Ms[] = {1, 4, 32, 33, 64};
    for (int t = 0; t < 5; t++) {
        int M = Ms[t];
        float *wf = malloc((size_t)N * K * 4), *X = malloc((size_t)M * K * 4);
        float *Yp = malloc((size_t)M * N * 4), *Yb = malloc((size_t)M * N * 4);
        void *w = make_weights(CLENS_DTYPE_BF16, N, K, wf);
        for (size_t i = 0; i < (size_t)M * K; i++) X[i] = frand();
        kern_weight W = {.data = w, .dtype = CLENS_DTYPE_BF16, .N = N, .K = K};
        kern_matmul(Yp, X, &W, NULL, M, KERN_PATH_AVX512);
        if (M <= kern_tune_params.stream_m_bf16) {
            kern_matmul(Yb, X, &W, NULL, M, KERN_PATH_AVX512_BF16);
            if (memcmp(Yb, Yp, (size_t)M * N * 4) != 0)
                fail_msg("bf16 mode at M=%d <= stream_m_bf16 must run the exact fp32 form", M);
            printf("    bf16 speed mode M=%d N=%d K=%d: exact fp32 dot form (bitwise the default path)\n", M, N, K);
        }
        set_variant(4); /* the bf16 kernels themselves at every M */
        kern_matmul(Yb, X, &W, NULL, M, KERN_PATH_AVX512_BF16);
        set_variant(0);
        double r = max_rel(Yb, Yp, M, N);
        printf("    bf16 speed mode M=%d N=%d K=%d: max |err| / row rms = %.2e (bound 1.5e-2)%s%s\n",
               M, N, K, r, M > kern_tune_params.small_m_bf16 ? ", oneDNN " : ", vdpbf16ps dot form",
               M > kern_tune_params.small_m_bf16 ? kern_bf16_impl_name() : "");
        assert_true(r <= 1.5e-2);
        assert_true(r > 0); /* it really rounds activations */
        free(wf); free(X); free(Yp); free(Yb); free(w);
    }
}

/* ------------------------------------------------------------------ attention */

static void att_ref(double *out, const float *q, const float *K, const float *V, int lo, int hi,
                    const float *ks, const float *vs, int H, int Hkv, int D, float scale)
{
    int rep = H / Hkv;
    size_t st = (size_t)Hkv * D;
    int n = hi - lo + (ks != NULL);
    double *s = malloc(((size_t)n + 1) * sizeof(double));
    for (int h = 0; h < H; h++) {
        int g = h / rep;
        double mx = -INFINITY;
        for (int j = 0; j < n; j++) {
            const float *k = j < hi - lo ? K + (size_t)(lo + j) * st + (size_t)g * D : ks + (size_t)g * D;
            double a = 0;
            for (int d = 0; d < D; d++) a += (double)q[h * D + d] * k[d];
            s[j] = a * scale;
            if (s[j] > mx) mx = s[j];
        }
        double sum = 0;
        for (int j = 0; j < n; j++) sum += s[j] = exp(s[j] - mx);
        for (int d = 0; d < D; d++) {
            double o = 0;
            for (int j = 0; j < n; j++) {
                const float *v = j < hi - lo ? V + (size_t)(lo + j) * st + (size_t)g * D : vs + (size_t)g * D;
                o += s[j] * v[d];
            }
            out[h * D + d] = n ? o / sum : 0.0;
        }
    }
    free(s);
}

static void attention_paths(void **state)
{
    (void)state;
    static const int cfg[][3] = {{14, 2, 64}, {4, 4, 128}, {8, 1, 80}, {3, 1, 20}, {16, 1, 32}, {2, 2, 7}};
    static const int T[] = {0, 1, 63, 64, 65, 300, 700};
    double worst[KERN_PATH_COUNT] = {0};
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        int H = cfg[c][0], Hkv = cfg[c][1], D = cfg[c][2];
        for (size_t t = 0; t < sizeof T / sizeof T[0]; t++)
            for (int var = 0; var < 3; var++) {
                int hi = T[t], lo = var == 2 && hi > 40 ? hi - 37 : 0, self = var != 1;
                if (hi == lo && !self) continue;
                float qmul = var == 2 ? 8.0f : 1.0f; /* large scores: max subtraction matters */
                size_t st = (size_t)Hkv * D;
                float *q = malloc((size_t)H * D * 4), *Kc = malloc(((size_t)hi + 1) * st * 4);
                float *Vc = malloc(((size_t)hi + 1) * st * 4), *ks = malloc(st * 4), *vs = malloc(st * 4);
                float *o = malloc((size_t)H * D * 4);
                double *ref = malloc((size_t)H * D * 8);
                for (int i = 0; i < H * D; i++) q[i] = frand() * qmul;
                for (size_t i = 0; i < (size_t)hi * st; i++) { Kc[i] = frand(); Vc[i] = frand(); }
                for (size_t i = 0; i < st; i++) { ks[i] = frand(); vs[i] = frand(); }
                float scale = 1.0f / sqrtf((float)D);
                att_ref(ref, q, Kc, Vc, lo, hi, self ? ks : NULL, self ? vs : NULL, H, Hkv, D, scale);
                /* the cache token-major (as given) and head-major (as contexts hold it) */
                const kern_kv tok = {Kc, Vc, st, (size_t)D};
                float *Kh = malloc(((size_t)hi + 1) * st * 4), *Vh = malloc(((size_t)hi + 1) * st * 4);
                for (int j = 0; j < hi; j++)
                    for (int g = 0; g < Hkv; g++) {
                        memcpy(Kh + ((size_t)g * hi + j) * D, Kc + (size_t)j * st + (size_t)g * D, (size_t)D * 4);
                        memcpy(Vh + ((size_t)g * hi + j) * D, Vc + (size_t)j * st + (size_t)g * D, (size_t)D * 4);
                    }
                const kern_kv head = {Kh, Vh, (size_t)D, (size_t)hi * D};
                for (int p = 0; p < KERN_PATH_COUNT; p++) {
                    if (p != KERN_PATH_PORTABLE && !want_path(p)) continue;
                    g_ran[p] = 1;
                    kern_attention_row_path(o, q, &tok, lo, hi, self ? ks : NULL, self ? vs : NULL, H, Hkv, D,
                                            scale, p);
                    /* long rows split heads across threads: same bits on one thread, and the
                     * same bits from either layout */
                    float *o1 = malloc((size_t)H * D * 4);
                    kern_set_threads(1);
                    kern_attention_row_path(o1, q, &tok, lo, hi, self ? ks : NULL, self ? vs : NULL, H, Hkv,
                                            D, scale, p);
                    kern_set_threads(0);
                    if (memcmp(o1, o, (size_t)H * D * 4) != 0)
                        fail_msg("attention %s H=%d Hkv=%d D=%d hi=%d: 1 thread differs", kern_path_name(p),
                                 H, Hkv, D, hi);
                    kern_attention_row_path(o1, q, &head, lo, hi, self ? ks : NULL, self ? vs : NULL, H, Hkv,
                                            D, scale, p);
                    if (memcmp(o1, o, (size_t)H * D * 4) != 0)
                        fail_msg("attention %s H=%d Hkv=%d D=%d hi=%d: head-major cache differs",
                                 kern_path_name(p), H, Hkv, D, hi);
                    free(o1);
                    for (int i = 0; i < H * D; i++) {
                        double e = fabs(o[i] - ref[i]);
                        if (!(e <= 1e-5))
                            fail_msg("attention %s H=%d Hkv=%d D=%d lo=%d hi=%d self=%d: out[%d]=%g ref %g",
                                     kern_path_name(p), H, Hkv, D, lo, hi, self, i, o[i], ref[i]);
                        if (e > worst[p]) worst[p] = e;
                    }
                }
                free(q); free(Kc); free(Vc); free(Kh); free(Vh); free(ks); free(vs); free(o); free(ref);
            }
    }
    for (int p = 0; p < KERN_PATH_COUNT; p++)
        if (g_ran[p] && (p == KERN_PATH_PORTABLE || want_path(p)))
            printf("    attention %-11s max |err| vs double = %.2e (bound 1e-5, |v| <= 1)\n",
                   kern_path_name(p), worst[p]);
}

/* A batch of rows (kern_attention_rows_path: head group by head group across
 * rows, tiles of neighbouring rows sharing key blocks) gives each row the bits
 * of kern_attention_row_path on its own, on every path and thread count:
 * layout 0 two caches, mixed windows and own keys; 1 one cache read by rows
 * of a prefill (each row its keys 0..pos); 2 one cache, own keys, some rows
 * with a window (a tile then shares nothing). */
/* Rows of layout (see attention_rows_batch) over caches K/V + c * cache. */
static void rows_of_layout(kern_att_row *rows, int n, int layout, float *o, const float *q, const float *self,
                           const float *K, const float *V, size_t cache, int T, int D, int HD, int KVW)
{
    for (int i = 0; i < n; i++) {
        int hi = (i * 97) % T, own = i % 3 != 0 || hi == 0, lo = i % 5 == 4 ? hi / 2 : 0, c = i & 1;
        if (layout == 1) hi = 20 + 6 * i, own = 0, lo = 0, c = 0;
        if (layout == 2) hi = T - 3 * i, own = 1, lo = i % 8 == 5 ? 30 : 0, c = 0;
        const float *ko = own ? self + (size_t)i * KVW : NULL;
        rows[i] = (kern_att_row){o + (size_t)i * HD, q + (size_t)i * HD,
                                 {K + c * cache, V + c * cache, (size_t)D, (size_t)T * D}, lo, hi, ko, ko};
    }
}

static void attention_rows_batch(void **state)
{
    (void)state;
    const int H = 12, Hkv = 3, D = 72, T = 260, n = 37, HD = H * D, KVW = Hkv * D;
    size_t cache = (size_t)Hkv * T * D;
    float *K = malloc(2 * cache * 4), *V = malloc(2 * cache * 4), *q = malloc((size_t)n * HD * 4);
    float *self = malloc((size_t)n * KVW * 4), *o = malloc((size_t)n * HD * 4), *o1 = malloc((size_t)HD * 4);
    kern_att_row *rows = malloc((size_t)n * sizeof *rows);
    for (size_t i = 0; i < 2 * cache; i++) { K[i] = frand(); V[i] = frand(); }
    for (size_t i = 0; i < (size_t)n * HD; i++) q[i] = frand() * 3;
    for (size_t i = 0; i < (size_t)n * KVW; i++) self[i] = frand();
    float scale = 1.0f / sqrtf((float)D);
    for (int layout = 0; layout < 3; layout++) {
        rows_of_layout(rows, n, layout, o, q, self, K, V, cache, T, D, HD, KVW);
        for (int p = 0; p < KERN_PATH_COUNT; p++) {
            if (p != KERN_PATH_PORTABLE && !want_path(p)) continue;
            for (int threads = 0; threads <= 1; threads++) {
                kern_set_threads(threads);
                memset(o, 0, (size_t)n * HD * 4);
                kern_attention_rows_path(rows, n, H, Hkv, D, scale, p);
                kern_set_threads(0);
                for (int i = 0; i < n; i++) {
                    const kern_att_row *r = &rows[i];
                    kern_attention_row_path(o1, r->q, &r->kv, r->lo, r->hi, r->k_self, r->v_self, H, Hkv, D, scale,
                                            p);
                    if (memcmp(o1, r->out, (size_t)HD * 4) != 0)
                        fail_msg("attention batch %s, layout %d, %d thread(s): row %d (lo %d hi %d) differs from "
                                 "the row alone", kern_path_name(p), layout, threads ? threads : kern_get_threads(),
                                 i, r->lo, r->hi);
                }
            }
        }
    }
    free(K); free(V); free(q); free(self); free(o); free(o1); free(rows);
}

static void swiglu_paths(void **state)
{
    (void)state;
    const size_t n = 1000;
    float *g = malloc(n * 4), *u = malloc(n * 4), *y = malloc(n * 4);
    for (size_t i = 0; i < n; i++) { g[i] = frand() * 20; u[i] = frand(); }
    g[0] = 100; g[1] = -100; g[2] = 0; g[3] = -88.5f; g[4] = 87; g[5] = -87.5f;
    for (int p = 0; p < KERN_PATH_COUNT; p++) {
        if (p != KERN_PATH_PORTABLE && !want_path(p)) continue;
        for (size_t len = 1; len <= n; len += len < 40 ? 1 : 321) {
            kern_swiglu_path(y, g, u, len, p);
            for (size_t i = 0; i < len; i++) {
                double z = g[i], ref = z / (1 + exp(-z)) * u[i];
                if (!(fabs(y[i] - ref) <= 1e-6 * fabs(ref) + 1e-30))
                    fail_msg("swiglu %s: g=%g u=%g -> %g, ref %g", kern_path_name(p), g[i], u[i], y[i], ref);
            }
        }
    }
    free(g); free(u); free(y);
    /* long vectors run on all threads */
    const size_t nl = 300007;
    g = malloc(nl * 4); u = malloc(nl * 4); y = malloc(nl * 4);
    for (size_t i = 0; i < nl; i++) { g[i] = frand() * 10; u[i] = frand(); }
    for (int p = 0; p < KERN_PATH_COUNT; p++) {
        if (p != KERN_PATH_PORTABLE && !want_path(p)) continue;
        kern_swiglu_path(y, g, u, nl, p);
        for (size_t i = 0; i < nl; i++) {
            double z = g[i], ref = z / (1 + exp(-z)) * u[i];
            if (!(fabs(y[i] - ref) <= 1e-6 * fabs(ref) + 1e-30))
                fail_msg("swiglu %s n=%zu [%zu]: %g, ref %g", kern_path_name(p), nl, i, y[i], ref);
        }
    }
    free(g); free(u); free(y);
}

static void override_env(void **state)
{
    (void)state;
    const char *old = getenv("CLENS_KERNEL");
    char *saved = old ? strdup(old) : NULL;
    for (int p = 0; p < KERN_PATH_COUNT; p++) {
        setenv("CLENS_KERNEL", kern_path_name(p), 1);
        assert_int_equal(kern_path_default(), kern_path_available(p) ? p : KERN_PATH_PORTABLE);
    }
    setenv("CLENS_KERNEL", "bogus", 1);
    assert_int_equal(kern_path_default(), KERN_PATH_PORTABLE);
    unsetenv("CLENS_KERNEL");
    kern_path d = kern_path_default();
    assert_true(d != KERN_PATH_AVX512_BF16); /* the bf16 mode is opt-in only */
    assert_int_equal(d, kern_path_available(KERN_PATH_AVX512) ? KERN_PATH_AVX512
                        : kern_path_available(KERN_PATH_AVX2) ? KERN_PATH_AVX2 : KERN_PATH_PORTABLE);
    if (saved) { setenv("CLENS_KERNEL", saved, 1); free(saved); }
}

/* Runs last: which kernel paths the tests above ran, in one line, e.g.
 * "kernel paths run: portable, avx2; not run (CPU lacks): avx512, avx512-bf16".
 * A path the CPU lacks must never count as run (it would have run the
 * portable fallback under another name), and every path the CPU has (and
 * CLENS_KERNEL does not exclude) must have run. */
static void paths_reported(void **state)
{
    (void)state;
    char ran[256] = "", lacks[256] = "", excluded[256] = "";
    for (int p = 0; p < KERN_PATH_COUNT; p++) {
        char *list = g_ran[p] ? ran : !kern_path_available(p) ? lacks : excluded;
        snprintf(list + strlen(list), 256 - strlen(list), "%s%s", *list ? ", " : "", kern_path_name(p));
        if (g_ran[p] && !kern_path_available(p))
            fail_msg("kernel path %s counted as run, but this CPU lacks it", kern_path_name(p));
        if (g_ran[p] && p != KERN_PATH_PORTABLE && !want_path(p))
            fail_msg("kernel path %s ran although CLENS_KERNEL selects another", kern_path_name(p));
        if (!g_ran[p] && (p == KERN_PATH_PORTABLE || want_path(p)))
            fail_msg("kernel path %s is available and selected but no test ran it", kern_path_name(p));
    }
    printf("    kernel paths run: %s; not run (CPU lacks): %s%s%s\n", ran, *lacks ? lacks : "none",
           *excluded ? "; not run (CLENS_KERNEL selects another): " : "", excluded);
}

static int report(void **state)
{
    (void)state;
    const kern_cpu *c = kern_cpu_get();
    printf("    CPU: avx2 %d fma %d f16c %d avx512f %d bw %d vl %d avx512_bf16 %d; threads %d\n", c->avx2,
           c->fma, c->f16c, c->avx512f, c->avx512bw, c->avx512vl, c->avx512_bf16, kern_get_threads());
    kern_scratch_release();
    return 0;
}

static struct timespec g_t0;
static int t_start(void **state)
{
    (void)state;
    clock_gettime(CLOCK_MONOTONIC, &g_t0);
    return 0;
}
static int t_end(void **state)
{
    (void)state;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("    (%.2f s)\n", (double)(t1.tv_sec - g_t0.tv_sec) + (t1.tv_nsec - g_t0.tv_nsec) * 1e-9);
    return 0;
}
#define T(f) cmocka_unit_test_setup_teardown(f, t_start, t_end)

int main(void)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* the thread-count checks need both threads even on a busy machine */
    setenv("CLENS_ADAPT_THREADS", "0", 0);
    const struct CMUnitTest tests[] = {
        T(conversions),
        T(widening_exact),
        T(matmul_paths),
        T(matmul_chunks_multi),
        T(matmul_bf16_mode),
        T(matmul_dnnl_f32),
        T(attention_paths),
        T(attention_rows_batch),
        T(swiglu_paths),
        T(override_env),
        cmocka_unit_test(paths_reported),
    };
    int rc = cmocka_run_group_tests(tests, NULL, report);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("    test_kernels: %.2f s\n", (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
    return rc;
}
