/*
 * attention.c: causal attention of one query row over the KV cache (see
 * kernels.h). A two-pass softmax per head: the maximum score first, then
 * exp-weights accumulated into the output; scores are recomputed rather than
 * stored so memory stays O(D) per head whatever the context length.
 */
#include "kernels/kernels.h"

#include <math.h>

void kern_attention_row(float *out, const float *q, const float *K, const float *V,
                        int lo, int hi, const float *k_self, const float *v_self,
                        int H, int Hkv, int D, float scale)
{
    int rep = H / Hkv;
    size_t stride = (size_t)Hkv * D;
    for (int h = 0; h < H; h++) {
        const float *qh = q + (size_t)h * D;
        int g = h / rep;
        float *o = out + (size_t)h * D;
        float mx = -INFINITY;
        for (int j = lo; j < hi; j++) {
            const float *k = K + j * stride + (size_t)g * D;
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
            const float *k = K + j * stride + (size_t)g * D;
            const float *v = V + j * stride + (size_t)g * D;
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
