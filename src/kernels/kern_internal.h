/* kern_internal.h: per-path kernel entry points, selected by kern_matmul and
 * the other dispatchers (matmul.c, attention.c). Not for use outside
 * src/kernels/ (tests and benchmarks may use it). */
#ifndef CLENS_KERN_INTERNAL_H
#define CLENS_KERN_INTERNAL_H

#include "kernels/kernels.h"

/* Blocking and form thresholds; defaults in matmul.c, chosen with
 * `build/bench/bench_kernels --tune` (see the numbers there). */
#define KERN_KCP_MAX 1024
typedef struct kern_tune {
    int kc;           /* K depth of one micro-kernel pass (L1-resident slice of a panel) */
    int kcp;          /* K depth of a packed weight panel (<= KERN_KCP_MAX, L2-resident) */
    int small_m;      /* AVX-512: M <= small_m runs the dot form, else the packed GEMM */
    int small_m_avx2; /* the same for AVX2 */
    int kdot;         /* K chunk of the dot form (rows of X in use stay in cache) */
    int mdot;         /* rows of X per pass over W in the dot form */
    double rowwise_bytes; /* dot form: X blocks up to this size walk W row by row */
    int small_m_bf16; /* M <= small_m_bf16: vdpbf16ps dot form, else the large-M kernel */
    int stream_m_bf16; /* bf16 mode, M <= stream_m_bf16: the fp32 dot form (exact, and the
                        * faster weight stream where the product is bandwidth-bound) */
    int bf16_gemm;    /* large-M bf16 mode: 0 oneDNN matmul, 1 own vdpbf16ps packed GEMM */
    int exact_dnnl_m; /* fp32 paths: M >= exact_dnnl_m runs oneDNN's f32 matmul (kern_dnnl_f32.c);
                       * 0 = the per-CPU table's choice in matmul.c, or CLENS_EXACT_GEMM's
                       * (docs/perf.md); > 0 overrides both (tests, benchmarks) */
} kern_tune;
extern kern_tune kern_tune_params;
/* The AVX-512 dot form's register tile as built: rows of X, rows of W (kern_avx512.c). */
extern const int kern_avx512_dot_tile[2];

/* Slots: 0 packed X / oneDNN weight panel, 1 bf16 X / oneDNN output, 2 the dot
 * form's padded copy of X (kern_simd.inc x_block).
 * Thread-local growable scratch of the calling thread (slot 0..KERN_SCRATCH_SLOTS-1),
 * 64-byte aligned; grows only, so steady state allocates nothing. NULL if out of memory. */
#define KERN_SCRATCH_SLOTS 3
void *kern_scratch_get(int slot, size_t bytes);
/* The calling thread's packed-panel buffer, KERN_KCP_MAX * 32 floats, static
 * thread-local (no allocation). */
float *kern_panel_buf(void);

void kern_matmul_portable(float *Y, const float *X, const kern_weight *W, const float *bias, int M);
/* Query heads h0..h1-1 of kern_attention_row (the portable twin). */
void kern_attention_row_portable(float *out, const float *q, const kern_kv *kv, int lo, int hi,
                                 const float *k_self, const float *v_self, int H, int Hkv, int D,
                                 float scale, int h0, int h1);
/* Query heads of one kv group processed together by the SIMD attention, and
 * rows of a batch that share its key blocks (kern_attention_rows_path). */
#define KERN_ATT_RCH 8
#define KERN_ATT_TILE 4
void kern_swiglu_portable(float *y, const float *g, const float *u, size_t n);

/* kern_avx2.c / kern_avx512.c (from kern_simd.inc). */
#define KERN_DECLARE_SIMD(S)                                                                 \
    void kern_matmul_dot_##S(float *Y, const float *X, const kern_weight *W,                 \
                             const float *bias, int M, int nthreads, int nchunks,        \
                             const kern_tune *tu);                                         \
    void kern_matmul_dot_multi_##S(const float *X, int M, const kern_mm_job *jobs,          \
                                   int n_jobs, int nthreads, int nchunks,                  \
                                   const kern_tune *tu);                                   \
    size_t kern_gemm_scratch_##S(int M, int K);                                              \
    void kern_matmul_gemm_##S(float *Y, const float *X, const kern_weight *W,                \
                              const float *bias, int M, float *Ap, int nthreads,             \
                              const kern_tune *tu, int bf16act);                             \
    void kern_attention_tile_##S(const kern_att_row *rows, int n, int H, int Hkv, int D,     \
                                 float scale, int u);                                        \
    void kern_swiglu_##S(float *y, const float *g, const float *u, size_t n);
KERN_DECLARE_SIMD(avx2)
KERN_DECLARE_SIMD(avx512)
#undef KERN_DECLARE_SIMD

/* kern_bf16.c: the opt-in bf16 speed mode (activations rounded to bf16).
 * Returns 0 when it ran, -1 when it could not (caller falls back to fp32). */
int kern_matmul_bf16(float *Y, const float *X, const kern_weight *W, const float *bias, int M);
/* Name of the oneDNN implementation used for the last large-M bf16 product ("" if none). */
const char *kern_bf16_impl_name(void);
/* One oneDNN matmul (kern_dnnl.c): Y[M][N] (row stride ldy, fp32) = X[M][K]
 * (bf16 if x_bf16, else fp32) * W^T (+ bias), W rows of K elements (bf16 if
 * w_bf16, else fp32) used in place. 0, or -1 when oneDNN cannot run it. */
int kern_dnnl_matmul(float *Y, int ldy, const void *X, int x_bf16, const void *W, int w_bf16, const float *bias,
                     int M, int N, int K);
/* The implementation oneDNN chose last for bf16 (w_bf16 = 1) or f32 weights. */
const char *kern_dnnl_impl_name(int w_bf16);

/* kern_dnnl_f32.c: oneDNN's f32 matmul on fp32 activations, bf16 / f16 weights
 * widened per panel of about KERN_DNNL_PANEL_BYTES (exact path, rulings R1).
 * Returns 0 when it ran, -1 when it could not (caller runs its own kernels). */
#define KERN_DNNL_PANEL_BYTES ((size_t)4 << 20)
int kern_matmul_f32_dnnl(float *Y, const float *X, const kern_weight *W, const float *bias, int M);
const char *kern_dnnl_f32_impl_name(void);
/* The M from which the fp32 paths run oneDNN (kern_tune_params.exact_dnnl_m
 * after its first-use choice); INT_MAX-like (1 << 30) = never. */
int kern_exact_dnnl_m(void);

#endif
