/*
 * attention.c: causal attention of one query row over the KV cache (see
 * kernels.h), and its dispatch to the SIMD paths (kern_simd.inc). The portable
 * twin: a two-pass softmax per head: the maximum score first, then
 * exp-weights accumulated into the output; scores are recomputed rather than
 * stored so memory stays O(D) per head whatever the context length.
 */
#include "kernels/kernels.h"
#include "kernels/kern_internal.h"

#include <math.h>
#include <omp.h>

void kern_attention_row_portable(float *out, const float *q, const kern_kv *kv, int lo, int hi,
                                 const float *k_self, const float *v_self, int H, int Hkv, int D,
                                 float scale, int h0, int h1)
{
    int rep = H / Hkv;
    size_t stride = kv->pos_stride;
    for (int h = h0; h < h1; h++) {
        const float *qh = q + (size_t)h * D;
        int g = h / rep;
        const float *K = kv->K + (size_t)g * kv->head_stride, *V = kv->V + (size_t)g * kv->head_stride;
        float *o = out + (size_t)h * D;
        float mx = -INFINITY;
        for (int j = lo; j < hi; j++) {
            const float *k = K + j * stride;
            float s = 0.0f;
            for (int d = 0; d < D; d++) s += qh[d] * k[d];
            s *= scale;
            if (s > mx) mx = s;
        }
        float s_self = 0.0f;
        if (k_self) {
            const float *k = k_self + (size_t)g * D;
            for (int d = 0; d < D; d++) s_self += qh[d] * k[d];
            s_self *= scale;
            if (s_self > mx) mx = s_self;
        }
        for (int d = 0; d < D; d++) o[d] = 0.0f;
        float sum = 0.0f;
        for (int j = lo; j < hi; j++) {
            const float *k = K + j * stride;
            const float *v = V + j * stride;
            float s = 0.0f;
            for (int d = 0; d < D; d++) s += qh[d] * k[d];
            float p = expf(s * scale - mx);
            sum += p;
            for (int d = 0; d < D; d++) o[d] += p * v[d];
        }
        if (k_self) {
            const float *v = v_self + (size_t)g * D;
            float p = expf(s_self - mx);
            sum += p;
            for (int d = 0; d < D; d++) o[d] += p * v[d];
        }
        float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
        for (int d = 0; d < D; d++) o[d] *= inv;
    }
}

/* Work unit u of n rows: on the SIMD paths a tile (kern_attention_tile_*,
 * n <= KERN_ATT_TILE; a single row is a tile of one), on the portable path
 * query head u of each row in turn. */
static void att_tile(kern_path path, const kern_att_row *r, int n, int H, int Hkv, int D, float scale, int u)
{
    switch (path) {
    case KERN_PATH_AVX512:
    case KERN_PATH_AVX512_BF16:
        kern_attention_tile_avx512(r, n, H, Hkv, D, scale, u);
        break;
    case KERN_PATH_AVX2:
        kern_attention_tile_avx2(r, n, H, Hkv, D, scale, u);
        break;
    default:
        for (int i = 0; i < n; i++)
            kern_attention_row_portable(r[i].out, r[i].q, &r[i].kv, r[i].lo, r[i].hi, r[i].k_self, r[i].v_self, H,
                                        Hkv, D, scale, u, u + 1);
        break;
    }
}

/* Work units of a row: query heads (portable), else kv groups x head chunks. */
static int att_n_units(kern_path path, int H, int Hkv)
{
    return path == KERN_PATH_PORTABLE ? H : Hkv * ((H / Hkv + KERN_ATT_RCH - 1) / KERN_ATT_RCH);
}

/* Called outside a parallel region (e.g. decode: one row), a long row splits
 * its heads across the threads; inside one (an OpenMP loop over rows) it runs
 * on the calling thread. Units are independent, so results do not change. */
void kern_attention_row_path(float *out, const float *q, const kern_kv *kv, int lo, int hi,
                             const float *k_self, const float *v_self, int H, int Hkv, int D,
                             float scale, kern_path path)
{
    path = kern_path_available(path) ? path : KERN_PATH_PORTABLE;
    const kern_att_row row = {out, q, *kv, lo, hi, k_self, v_self};
    int nu = att_n_units(path, H, Hkv);
    long work = (long)(hi - lo + 1) * H * D;
    int nt = kern_get_threads();
    if (nt > 1 && nu > 1 && work >= (1L << 18) && !omp_in_parallel()) {
        #pragma omp parallel num_threads(nt < nu ? nt : nu)
        {
            int t = omp_get_thread_num(), T = omp_get_num_threads();
            for (int u = nu * t / T; u < nu * (t + 1) / T; u++) att_tile(path, &row, 1, H, Hkv, D, scale, u);
        }
    } else {
        for (int u = 0; u < nu; u++) att_tile(path, &row, 1, H, Hkv, D, scale, u);
    }
}

void kern_attention_row(float *out, const float *q, const kern_kv *kv, int lo, int hi,
                        const float *k_self, const float *v_self, int H, int Hkv, int D, float scale)
{
    kern_attention_row_path(out, q, kv, lo, hi, k_self, v_self, H, Hkv, D, scale, kern_path_default());
}

void kern_attention_rows_path(const kern_att_row *rows, int n, int H, int Hkv, int D, float scale,
                              kern_path path)
{
    path = kern_path_available(path) ? path : KERN_PATH_PORTABLE;
    /* tiles of KERN_ATT_TILE neighbouring rows (sharing key blocks on the SIMD paths) */
    int tile = KERN_ATT_TILE, nt_rows = (n + tile - 1) / tile;
    long nu = att_n_units(path, H, Hkv), items = nu * nt_rows;
    int nt = kern_get_threads();
    /* item u * nt_rows + t: unit u of tile t, so that neighbouring items share a unit's keys */
    #pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1 && items > 1)
    for (long it = 0; it < items; it++) {
        int u = (int)(it / nt_rows), t = (int)(it % nt_rows), r0 = t * tile;
        int m = n - r0 < tile ? n - r0 : tile;
        att_tile(path, &rows[r0], m, H, Hkv, D, scale, u);
    }
}
