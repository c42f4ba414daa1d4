/*
 * bench_mem.h: the memory read-bandwidth loop of the benchmarks (bench_kernels
 * for the machine's peaks, bench_model again right after each decode
 * measurement, because this VM's bandwidth drifts by up to 2x within minutes).
 */
#ifndef CLENS_BENCH_MEM_H
#define CLENS_BENCH_MEM_H

#include <immintrin.h>
#include <omp.h>
#include <stddef.h>
#include <time.h>

#define BENCH_BW_STREAMS 16

static double bench_mem_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* The loops' sums land here: a volatile object, so the reads are not
 * optimised away. */
static volatile float bench_sink;

/* One sequential stream over n bytes (unaligned loads: also a model's mapped
 * tensors). */
__attribute__((target("avx2,fma"))) static inline float bench_read_one(const char *p, size_t n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps((const float *)(p + i)));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps((const float *)(p + i + 32)));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps((const float *)(p + i + 64)));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps((const float *)(p + i + 96)));
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    float t[8];
    _mm256_storeu_ps(t, s);
    return t[0] + t[3];
}

/* BENCH_BW_STREAMS equal parts of n bytes read 64 bytes at a time, round
 * robin: more misses in flight, as in a GEMV over that many weight rows. */
__attribute__((target("avx2,fma"))) static inline float bench_read_streams(const char *p, size_t n)
{
    size_t part = n / BENCH_BW_STREAMS / 64 * 64;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    for (size_t i = 0; i < part; i += 64)
        for (int s = 0; s < BENCH_BW_STREAMS; s++) {
            a0 = _mm256_add_ps(a0, _mm256_loadu_ps((const float *)(p + s * part + i)));
            a1 = _mm256_add_ps(a1, _mm256_loadu_ps((const float *)(p + s * part + i + 32)));
        }
    float t[8];
    _mm256_storeu_ps(t, _mm256_add_ps(a0, a1));
    return t[0] + t[5];
}

typedef struct bench_span {
    const char *p;
    size_t n;
} bench_span;

/* Seconds to read every span once with nt threads (each thread its share of
 * each span), with one stream (streams = 1) or BENCH_BW_STREAMS per thread. */
static inline double bench_read_spans_s(const bench_span *sp, int ns, int nt, int streams)
{
    double t0 = bench_mem_now();
    #pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        float v = 0;
        for (int i = 0; i < ns; i++) {
            size_t a = sp[i].n / T * t & ~(size_t)127, b = t == T - 1 ? sp[i].n : sp[i].n / T * (t + 1) & ~(size_t)127;
            v += streams > 1 ? bench_read_streams(sp[i].p + a, b - a) : bench_read_one(sp[i].p + a, b - a);
        }
        #pragma omp atomic
        bench_sink += v;
    }
    return bench_mem_now() - t0;
}

/* The median of v[0..n-1] (sorted in place; n >= 1): the middle value, or
 * the mean of the two middle ones. Paired ratios are summarised by it: one
 * pass disturbed by another tenant moves it less than the mean or the best. */
static inline double bench_median(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* GB/s reading buf (n floats, larger than the caches) with nt threads: the
 * best of reps runs of each loop. */
static inline double bench_read_gbs(const float *buf, size_t n, int nt, int reps)
{
    bench_span all = {(const char *)buf, n * sizeof(float)};
    double best = 0;
    for (int r = 0; r < 2 * reps; r++) {
        double g = all.n / bench_read_spans_s(&all, 1, nt, r % 2 ? BENCH_BW_STREAMS : 1) / 1e9;
        if (g > best) best = g;
    }
    return best;
}

#endif
