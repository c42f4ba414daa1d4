/*
 * kern_dnnl.c: the process's one oneDNN engine and stream, and one LRU cache
 * of matmul primitives, for every oneDNN product clens runs (the bf16 speed
 * mode at large M, kern_bf16.c; the optional f32 exact path, kern_dnnl_f32.c).
 * A product Y[M][N] (row stride ldy, fp32) = X[M][K] (src_dt) * W^T (+ bias,
 * fp32), W given in place as rows of K elements (wei_dt), i.e. a K x N view
 * with strides (1, K): no packed copy, the resident memory stays the file
 * mapping. Primitives are cached per (M, N, K, ldy, bias, types), 32 entries,
 * LRU; calls are serialised by a mutex (oneDNN runs its own OpenMP team).
 */
#include "kernels/kern_internal.h"

#include <dnnl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NCACHE 32
typedef struct {
    int M, N, K, ldy, has_bias, src_dt, wei_dt;
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
static char g_impl[2][128]; /* the implementation oneDNN chose last: [0] f32 weights, [1] bf16 */

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

static prim_ent *prim_get(int M, int N, int K, int ldy, int has_bias, dnnl_data_type_t src_dt, dnnl_data_type_t wei_dt)
{
    prim_ent *e = NULL, *lru = &g_cache[0];
    for (int i = 0; i < NCACHE; i++) {
        prim_ent *c = &g_cache[i];
        if (c->prim && c->M == M && c->N == N && c->K == K && c->ldy == ldy && c->has_bias == has_bias &&
            c->src_dt == (int)src_dt && c->wei_dt == (int)wei_dt) {
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
    if (dnnl_memory_desc_init_by_tag(&src, 2, ds, src_dt, dnnl_ab) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&wei, 2, dw, wei_dt, sw) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&bias, 2, db, dnnl_f32, dnnl_ab) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&dst, 2, dd, dnnl_f32, sd) != dnnl_success ||
        dnnl_matmul_desc_init(&md, &src, &wei, has_bias ? &bias : NULL, &dst) != dnnl_success ||
        dnnl_primitive_desc_create(&pd, &md, NULL, g_eng, NULL) != dnnl_success)
        return NULL;
    const char *impl = NULL;
    char *name = g_impl[wei_dt == dnnl_bf16];
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl) {
        strncpy(name, impl, sizeof g_impl[0] - 1);
        name[sizeof g_impl[0] - 1] = 0;
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
    e->src_dt = (int)src_dt; e->wei_dt = (int)wei_dt;
    e->used = ++g_tick;
    return e;
}

int kern_dnnl_matmul(float *Y, int ldy, const void *X, int x_bf16, const void *W, int w_bf16, const float *bias,
                     int M, int N, int K)
{
    int rc = -1;
    pthread_mutex_lock(&g_mu);
    if (setup() == 1) {
        prim_ent *e = prim_get(M, N, K, ldy, bias != NULL, x_bf16 ? dnnl_bf16 : dnnl_f32, w_bf16 ? dnnl_bf16 : dnnl_f32);
        if (e) {
            dnnl_memory_set_data_handle(e->src, (void *)X);
            dnnl_memory_set_data_handle(e->wei, (void *)W);
            dnnl_memory_set_data_handle(e->dst, Y);
            if (bias) dnnl_memory_set_data_handle(e->bias, (void *)bias);
            dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->src}, {DNNL_ARG_WEIGHTS, e->wei},
                                       {DNNL_ARG_DST, e->dst}, {DNNL_ARG_BIAS, e->bias}};
            if (dnnl_primitive_execute(e->prim, g_strm, bias ? 4 : 3, args) == dnnl_success &&
                dnnl_stream_wait(g_strm) == dnnl_success)
                rc = 0;
        }
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

const char *kern_dnnl_impl_name(int w_bf16)
{
    return g_impl[w_bf16 != 0];
}
