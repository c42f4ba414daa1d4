/*
 * rope.c: rotary position embedding tables, written from transformers 4.57
 * modeling_rope_utils.py (default, linear, llama3, yarn) as summarised in
 * architectures.md §1.3-1.4. Frequencies and angles are computed in fp32 as
 * HF does; cos and sin are both multiplied by the attention factor (YaRN).
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>

#include "base/alloc.h"
#include "base/base.h"
#include "model/model.h"

static double yarn_mscale(double scale, double mscale)
{
    return scale <= 1.0 ? 1.0 : 0.1 * mscale * log(scale) + 1.0;
}

static double yarn_correction_dim(double rot, int dim, double base, double max_pos)
{
    return (dim * log(max_pos / (rot * 2.0 * M_PI))) / (2.0 * log(base));
}

int rope_init(rope_table *t, const rope_config *rc, int D, int max_pos, clens_error *err)
{
    int half = D / 2;
    t->inv_freq = clens_malloc(sizeof(float) * half);
    t->attn_factor = 1.0f;
    if (!t->inv_freq) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    float base = (float)rc->theta;
    for (int j = 0; j < half; j++) {
        float expo = (float)(2 * j) / (float)D;
        t->inv_freq[j] = 1.0f / powf(base, expo);
    }
    switch (rc->type) {
    case ROPE_DEFAULT:
        break;
    case ROPE_LINEAR:
        for (int j = 0; j < half; j++) t->inv_freq[j] /= (float)rc->factor;
        break;
    case ROPE_LLAMA3: {
        double old = rc->orig_max_pos, lo_wl = old / rc->low_freq_factor, hi_wl = old / rc->high_freq_factor;
        for (int j = 0; j < half; j++) {
            float inv = t->inv_freq[j];
            float wl = (float)(2.0 * M_PI) / inv;
            float scaled = wl > lo_wl ? inv / (float)rc->factor : inv;
            if (!(wl < hi_wl) && !(wl > lo_wl)) {
                float s = ((float)old / wl - (float)rc->low_freq_factor) /
                          (float)(rc->high_freq_factor - rc->low_freq_factor);
                scaled = (1 - s) * scaled / (float)rc->factor + s * scaled;
            }
            t->inv_freq[j] = scaled;
        }
        break;
    }
    case ROPE_YARN: {
        double factor = rc->factor;
        double orig = rc->orig_max_pos > 0 ? rc->orig_max_pos : max_pos;
        if (rc->attention_factor >= 0) t->attn_factor = (float)rc->attention_factor;
        else if (rc->mscale != 0 && rc->mscale_all_dim != 0)
            t->attn_factor = (float)(yarn_mscale(factor, rc->mscale) / yarn_mscale(factor, rc->mscale_all_dim));
        else t->attn_factor = (float)yarn_mscale(factor, 1.0);
        double low = yarn_correction_dim(rc->beta_fast, D, rc->theta, orig);
        double high = yarn_correction_dim(rc->beta_slow, D, rc->theta, orig);
        if (rc->truncate) { low = floor(low); high = ceil(high); }
        if (low < 0) low = 0;
        if (high > D - 1) high = D - 1;
        if (low == high) high += 0.001;
        for (int j = 0; j < half; j++) {
            float pos_freq = powf(base, (float)(2 * j) / (float)D);
            float extrap = 1.0f / pos_freq;
            float interp = 1.0f / ((float)factor * pos_freq);
            float ramp = ((float)j - (float)low) / (float)(high - low);
            ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
            float ext_factor = 1.0f - ramp;
            /* HF's blend form, kept for bit-exactness. */
            t->inv_freq[j] = interp * (1.0f - ext_factor) + extrap * ext_factor;
        }
        break;
    }
    }
    return CLENS_OK;
}

void rope_free(rope_table *t)
{
    free(t->inv_freq);
    t->inv_freq = NULL;
}

void rope_apply(const rope_table *t, float *q, int Hq, float *k, int Hk, int D, int pos, float *cs)
{
    int half = D / 2;
    assert(t->inv_freq && cs && D > 0 && D % 2 == 0 && pos >= 0 && Hq > 0 && Hk > 0);
    float *c = cs, *s = cs + half; /* [D] scratch of the caller's context */
    for (int j = 0; j < half; j++) {
        float a = (float)pos * t->inv_freq[j];
        c[j] = cosf(a) * t->attn_factor;
        s[j] = sinf(a) * t->attn_factor;
    }
    for (int pass = 0; pass < 2; pass++) {
        float *x = pass ? k : q;
        int H = pass ? Hk : Hq;
        for (int h = 0; h < H; h++) {
            float *v = x + (size_t)h * D;
            for (int j = 0; j < half; j++) {
                float x1 = v[j], x2 = v[j + half];
                v[j] = x1 * c[j] - x2 * s[j];
                v[j + half] = x2 * c[j] + x1 * s[j];
            }
        }
    }
}
