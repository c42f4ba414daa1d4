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
 * per shape. Primitives are cached per shape (16 entries, LRU); calls are
 * serialised by a mutex (oneDNN runs its own OpenMP team inside).
 */
#include "kernels/kernels.h"
#include "kernels/kern_internal.h"

#include <dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NCACHE 16
typedef struct {
    int M, N, K, ldy, has_bias;
    unsigned long used;
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, bias, dst;
} prim_ent;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_state; /* 0 untried, 1 ready, -1 unavailable */
static dnnl_engine_t g_eng;
static dnnl_stream_t g_strm;
static prim_ent g_cache[NCACHE];
static unsigned long g_tick;
static char g_impl[128];

static void ent_free(prim_ent *e)
{
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->src) dnnl_memory_destroy(e->src);
    if (e->wei) dnnl_memory_destroy(e->wei);
    if (e->bias) dnnl_memory_destroy(e->bias);
    if (e->dst) dnnl_memory_destroy(e->dst);
    memset(e, 0, sizeof *e);
}

static void teardown(void)
{
    for (int i = 0; i < NCACHE; i++) ent_free(&g_cache[i]);
    if (g_strm) dnnl_stream_destroy(g_strm);
    if (g_eng) dnnl_engine_destroy(g_eng);
    g_strm = NULL;
    g_eng = NULL;
    g_state = 0;
}

static int setup(void)
{
    if (g_state) return g_state;
    g_state = -1;
    if (dnnl_engine_create(&g_eng, dnnl_cpu, 0) != dnnl_success) return -1;
    if (dnnl_stream_create(&g_strm, g_eng, dnnl_stream_default_flags) != dnnl_success) return -1;
    atexit(teardown);
    g_state = 1;
    return 1;
}

/* Y[M][N] (row stride ldy) = X[M][K] * W^T (+ bias), W rows of length K. */
static prim_ent *prim_get(int M, int N, int K, int ldy, int has_bias)
{
    prim_ent *e = NULL, *lru = &g_cache[0];
    for (int i = 0; i < NCACHE; i++) {
        prim_ent *c = &g_cache[i];
        if (c->prim && c->M == M && c->N == N && c->K == K && c->ldy == ldy && c->has_bias == has_bias) {
            e = c;
            break;
        }
        if (c->used < lru->used) lru = c;
    }
    if (e) { e->used = ++g_tick; return e; }
    e = lru;
    ent_free(e);
    dnnl_memory_desc_t src, wei, bias, dst;
    dnnl_dims_t ds = {M, K}, dw = {K, N}, sw = {1, K}, db = {1, N}, dd = {M, N}, sd = {ldy, 1};
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_memory_desc_init_by_tag(&src, 2, ds, dnnl_f32, dnnl_ab) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&wei, 2, dw, dnnl_f32, sw) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&bias, 2, db, dnnl_f32, dnnl_ab) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&dst, 2, dd, dnnl_f32, sd) != dnnl_success ||
        dnnl_matmul_desc_init(&md, &src, &wei, has_bias ? &bias : NULL, &dst) != dnnl_success ||
        dnnl_primitive_desc_create(&pd, &md, NULL, g_eng, NULL) != dnnl_success)
        return NULL;
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl) {
        strncpy(g_impl, impl, sizeof g_impl - 1);
        g_impl[sizeof g_impl - 1] = 0;
    }
    dnnl_status_t st = dnnl_primitive_create(&e->prim, pd);
    dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success ||
        dnnl_memory_create(&e->src, &src, g_eng, DNNL_MEMORY_NONE) != dnnl_success ||
        dnnl_memory_create(&e->wei, &wei, g_eng, DNNL_MEMORY_NONE) != dnnl_success ||
        dnnl_memory_create(&e->bias, &bias, g_eng, DNNL_MEMORY_NONE) != dnnl_success ||
        dnnl_memory_create(&e->dst, &dst, g_eng, DNNL_MEMORY_NONE) != dnnl_success) {
        ent_free(e);
        return NULL;
    }
    e->M = M; e->N = N; e->K = K; e->ldy = ldy; e->has_bias = has_bias;
    e->used = ++g_tick;
    return e;
}

static int run(prim_ent *e, float *Y, const float *X, const float *W, const float *bias)
{
    dnnl_memory_set_data_handle(e->src, (void *)X);
    dnnl_memory_set_data_handle(e->wei, (void *)W);
    dnnl_memory_set_data_handle(e->dst, Y);
    if (bias) dnnl_memory_set_data_handle(e->bias, (void *)bias);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->src}, {DNNL_ARG_WEIGHTS, e->wei},
                               {DNNL_ARG_DST, e->dst}, {DNNL_ARG_BIAS, e->bias}};
    return dnnl_primitive_execute(e->prim, g_strm, bias ? 4 : 3, args) == dnnl_success &&
                   dnnl_stream_wait(g_strm) == dnnl_success
               ? 0
               : -1;
}

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
    pthread_mutex_lock(&g_mu);
    if (setup() == 1) {
        rc = 0;
        for (int n0 = 0; n0 < N && rc == 0; n0 += np) {
            int nb = N - n0 < np ? N - n0 : np;
            prim_ent *e = prim_get(M, nb, K, nb, bias != NULL);
            if (!e) { rc = -1; break; }
            const float *Wp = (const float *)W->data + (size_t)n0 * K;
            if (P) { widen_panel(P, W, n0, nb); Wp = P; }
            rc = run(e, dense ? Y : Yp, X, Wp, bias ? bias + n0 : NULL);
            if (!dense)
                for (int m = 0; m < M; m++) memcpy(Y + (size_t)m * N + n0, Yp + (size_t)m * nb, (size_t)nb * 4);
        }
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

const char *kern_dnnl_f32_impl_name(void)
{
    return g_impl;
}
