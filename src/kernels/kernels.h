/*
 * kernels.h: the numeric kernels of clens (internal API).
 *
 * Kernels are plain functions: output first, const inputs, dimensions last
 * (llm.c). Letters: M rows of activations, K input features, N output features.
 * Weights are stored as in safetensors: W[N][K], one row per output feature,
 * in bf16 / f16 / f32, used in place from the file mapping.
 *
 * Every fast kernel has a plain C twin (the "portable" path) and a test
 * comparing them on every dispatch path the machine has.
 */
#ifndef CLENS_KERNELS_H
#define CLENS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "clens.h"

/* A weight matrix W[N][K], read in place: no path packs a copy (the fp32
 * paths widen on the fly, the bf16 mode gives oneDNN a strided K x N view),
 * so the resident memory stays the file mapping. */
typedef struct kern_weight {
    const void *data;   /* N*K elements of dtype, row-major; file mapping */
    clens_dtype dtype;
    int N, K;
} kern_weight;

typedef enum {
    KERN_PATH_PORTABLE = 0, /* plain C, one row at a time: bitwise batch-independent */
    KERN_PATH_AVX2,         /* AVX2+FMA, bf16 widened to fp32 */
    KERN_PATH_AVX512,       /* AVX-512F, fp32 FMA on widened weights */
    KERN_PATH_AVX512_BF16,  /* bf16 dot products (activations rounded; opt-in) */
    KERN_PATH_COUNT
} kern_path;

/* CPU features, detected once. */
typedef struct kern_cpu {
    int avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512_bf16;
    int family, model; /* CPUID display family and model (per-CPU tables, docs/perf.md) */
} kern_cpu;
const kern_cpu *kern_cpu_get(void);
const char *kern_path_name(kern_path p);
/* Best fp32-activation path on this machine (honours CLENS_KERNEL=portable|avx2|avx512
 * in the environment as an override; an unavailable override falls back to portable). */
kern_path kern_path_default(void);
/* 1 if the path can run on this CPU. */
int kern_path_available(kern_path p);

/* Threads used by the kernels (OpenMP) called from this thread; 0 = all
 * cores; kern_set_threads also sets this thread's OpenMP default. kern_get_threads()
 * is what the next parallel region should use: the configured count, lowered
 * to the cores other runnable processes leave free (cpu.c; off with
 * CLENS_ADAPT_THREADS=0). kern_threads_for(macs): the threads for a product
 * of that many multiply-adds (1 below 1e6; the configured count from 1e8,
 * where a region is long enough to amortise waiting; kern_get_threads() in
 * between). */
void kern_set_threads(int n);
int kern_get_threads(void);
int kern_threads_for(double macs);
/* Work items to split a product of that many multiply-adds into for nt
 * threads taking them dynamically: nt for short products (one contiguous
 * share each, the weight stream unbroken), more for long ones so that a
 * thread that shares its core with another process does fewer of them. */
int kern_chunks_for(double macs, int nt);
/* kern_set_threads for the length of one call: push returns what to restore. */
typedef struct kern_threads_saved { int threads, omp_threads; } kern_threads_saved;
kern_threads_saved kern_threads_push(int n);
void kern_threads_pop(kern_threads_saved s);

/* Y[M][N] = X[M][K] * W^T + bias (bias may be NULL). X, Y fp32, row-major.
 * On KERN_PATH_PORTABLE every output element is computed by the same
 * sequential dot product regardless of M. KERN_PATH_AVX512 / AVX2 agree with
 * it within fp32 rounding (bf16 / f16 weights are widened exactly), give the
 * same bits for any thread count, and on AVX512 (dot form at every M by
 * default) also whatever M. KERN_PATH_AVX512_BF16 rounds X to bf16 for bf16
 * weights (speed mode: ~3 significant digits per activation; f32 / f16
 * weights run the AVX512 kernels). A path the CPU lacks runs the portable
 * twin. Both cores are used above ~1e6 multiply-adds; nothing is allocated
 * except a thread-local scratch that grows to the largest packed GEMM seen
 * (not used by the dot form) and the bf16 mode's bf16 copy of X. */
void kern_matmul(float *Y, const float *X, const kern_weight *W, const float *bias,
                 int M, kern_path path);

/* One output of kern_matmul_multi: Y = X W^T + bias. */
typedef struct kern_mm_job {
    float *Y;
    const kern_weight *W;
    const float *bias;
} kern_mm_job;

/* Several products of the same X[M][K] (q, k, v; gate, up). On the fp32 dot
 * form (AVX-512 at every M, AVX2 at small M) they run in one parallel region
 * with the threads splitting the rows of all weights; otherwise one
 * kern_matmul each. Every Y gets the bits kern_matmul would give it. */
void kern_matmul_multi(const float *X, int M, const kern_mm_job *jobs, int n_jobs, kern_path path);

/* 1 if a product of M rows on this path gives every row the same bits as
 * that row alone (portable; avx512 in its dot form, tested in test_kernels).
 * Callers that need exact equality across calls (the patching metrics,
 * rulings R3) batch rows only then. */
int kern_matmul_rows_exact(kern_path path, int M);

/* Convert n elements of dtype at src to fp32. */
void kern_to_f32(float *dst, const void *src, clens_dtype dt, size_t n);
float kern_bf16_to_f32(uint16_t v);
uint16_t kern_f32_to_bf16(float v); /* round to nearest even */
float kern_f16_to_f32(uint16_t v);

/* y[C] = w[C] * x / sqrt(mean(x^2) + eps), n rows. y may alias x. */
void kern_rmsnorm(float *y, const float *x, const float *w, float eps, int n, int C);

/* y = silu(g) * u, n elements; y may alias g. kern_swiglu uses kern_path_default();
 * the SIMD paths use a vector exp (about 1 ulp) instead of expf. */
void kern_swiglu(float *y, const float *g, const float *u, size_t n);
void kern_swiglu_path(float *y, const float *g, const float *u, size_t n, kern_path path);

/* A KV cache as the attention kernels read it: key j of kv head g starts at
 * K + g * head_stride + j * pos_stride (values alike in V). Head-major caches
 * (pos_stride = D) keep each head's keys contiguous; a token-major one
 * (pos_stride = Hkv*D, head_stride = D) strides 4-16 kB between keys: a few
 * cache sets and a page per key at long contexts (docs/perf.md section 6). */
typedef struct {
    const float *K, *V;
    size_t pos_stride, head_stride;
} kern_kv;

/* Causal attention of one query row over a KV cache, all heads, with an
 * online (streaming) softmax: no score matrix is materialised.
 *   out[H*D]  attention output (head-major), q[H*D] query (post-RoPE),
 *   kv        the cache; keys lo..hi-1 are attended,
 *   k_self, v_self  an extra key/value after them ([Hkv*D]) or NULL,
 *   scale     1/sqrt(D). Query head h uses kv head h / (H/Hkv) (GQA).
 * fp32 throughout; softmax max-subtracted in fp32. */
void kern_attention_row(float *out, const float *q, const kern_kv *kv, int lo, int hi,
                        const float *k_self, const float *v_self, int H, int Hkv, int D, float scale);
/* The same on an explicit path (kern_attention_row uses kern_path_default()).
 * The SIMD paths make one pass over the keys in blocks of 64 (online softmax
 * with rescaling), process the query heads of a kv group together and agree
 * with the portable twin within fp32 rounding. Thread-safe, allocates nothing:
 * call it from an OpenMP loop over rows. */
void kern_attention_row_path(float *out, const float *q, const kern_kv *kv, int lo, int hi,
                             const float *k_self, const float *v_self, int H, int Hkv, int D,
                             float scale, kern_path path);

/* One query row of a batch for kern_attention_rows_path: the arguments of
 * kern_attention_row, each row with its own cache and key range. */
typedef struct {
    float *out;
    const float *q;
    kern_kv kv;
    int lo, hi;
    const float *k_self, *v_self;
} kern_att_row;

/* n rows at once (prefill, a patching batch), the same bits as n calls of
 * kern_attention_row_path. Works head group by head group across all rows
 * (its threads on neighbouring rows of one group), so that a group's keys are
 * read from cache n times rather than the whole cache from memory per row
 * (with the head-major layout 4.9x at 1500 tokens of OLMo-3-7B's shape,
 * docs/perf.md section 6). Call it outside a parallel region; it uses the
 * kernels' threads. */
void kern_attention_rows_path(const kern_att_row *rows, int n, int H, int Hkv, int D, float scale,
                              kern_path path);

/* Frees the calling thread's kernel scratch (grown on demand by the fast matmul
 * paths and then reused; call at thread or program end, never required). */
void kern_scratch_release(void);

#endif /* CLENS_KERNELS_H */
