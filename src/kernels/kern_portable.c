/*
 * kern_portable.c: the plain C reference twin of every kernel, and the
 * element-wise kernels (conversions, RMSNorm, SwiGLU) shared by all paths.
 *
 * The portable matmul computes each output element with one sequential fp32
 * dot product (double-free, fixed order), so a row's result never depends on
 * how many rows are in the batch (rulings R3: asserted bitwise).
 */
#include "kernels/kernels.h"
#include "kernels/kern_internal.h"

#include <math.h>
#include <string.h>

float kern_bf16_to_f32(uint16_t v)
{
    uint32_t u = (uint32_t)v << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t kern_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float kern_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) u = sign;
        else { /* subnormal: renormalise */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            u = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) u = sign | 0x7f800000 | man << 13;
    else u = sign | (exp + 127 - 15) << 23 | man << 13;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void kern_to_f32(float *dst, const void *src, clens_dtype dt, size_t n)
{
    if (dt == CLENS_DTYPE_F32) { memcpy(dst, src, n * 4); return; }
    const uint16_t *s = src;
    if (dt == CLENS_DTYPE_BF16)
        for (size_t i = 0; i < n; i++) dst[i] = kern_bf16_to_f32(s[i]);
    else
        for (size_t i = 0; i < n; i++) dst[i] = kern_f16_to_f32(s[i]);
}

/* One output element: sequential dot product of x[K] with weight row n. */
static float dot_row(const float *x, const kern_weight *W, int n)
{
    size_t K = (size_t)W->K;
    float acc = 0.0f;
    if (W->dtype == CLENS_DTYPE_F32) {
        const float *w = (const float *)W->data + (size_t)n * K;
        for (size_t k = 0; k < K; k++) acc += x[k] * w[k];
    } else if (W->dtype == CLENS_DTYPE_BF16) {
        const uint16_t *w = (const uint16_t *)W->data + (size_t)n * K;
        for (size_t k = 0; k < K; k++) acc += x[k] * kern_bf16_to_f32(w[k]);
    } else {
        const uint16_t *w = (const uint16_t *)W->data + (size_t)n * K;
        for (size_t k = 0; k < K; k++) acc += x[k] * kern_f16_to_f32(w[k]);
    }
    return acc;
}

void kern_matmul_portable(float *Y, const float *X, const kern_weight *W, const float *bias, int M)
{
    int N = W->N, K = W->K;
    /* small products on the calling thread (no fork/join); same bits either way */
    #pragma omp parallel for schedule(static) if ((double)M * N * K >= 1e6)
    for (int n = 0; n < N; n++)
        for (int m = 0; m < M; m++) {
            float v = dot_row(X + (size_t)m * K, W, n);
            Y[(size_t)m * N + n] = bias ? v + bias[n] : v;
        }
}

void kern_rmsnorm(float *y, const float *x, const float *w, float eps, int n, int C)
{
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * C;
        float *yi = y + (size_t)i * C;
        double ss = 0.0;
        for (int c = 0; c < C; c++) ss += (double)xi[c] * xi[c];
        float inv = (float)(1.0 / sqrt(ss / C + (double)eps));
        for (int c = 0; c < C; c++) yi[c] = w[c] * (xi[c] * inv);
    }
}

void kern_swiglu_portable(float *y, const float *g, const float *u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float z = g[i];
        y[i] = z / (1.0f + expf(-z)) * u[i];
    }
}
