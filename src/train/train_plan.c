/*
 * train_plan.c: the parameters of a Qwen2 / OLMo-3 (trainable) or Llama /
 * Qwen3 / OLMo-2 (attribution patching) model as one
 * flat fp32 buffer, tensor by tensor in the order transformers writes them,
 * with the Hugging Face names the loader binds (src/model/arch.c). One flat
 * buffer makes gradients, AdamW moments, clipping and checkpoints plain loops
 * over n_params. Also the deterministic initialisation and random stream.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/rng.h"
#include "train/train.h"

uint64_t tr_rng_u64(tr_rng *r) { return clens_splitmix64(&r->s); }

double tr_rng_normal(tr_rng *r)
{
    if (r->have) { r->have = 0; return r->spare; }
    double u1 = ((tr_rng_u64(r) >> 11) + 1.0) / 9007199254740993.0; /* (0, 1] */
    double u2 = (tr_rng_u64(r) >> 11) / 9007199254740992.0;
    double rad = sqrt(-2.0 * log(u1));
    r->spare = rad * sin(2 * M_PI * u2);
    r->have = 1;
    return rad * cos(2 * M_PI * u2);
}

static size_t add(tr_plan *p, int *cap, int decay, int rows, int cols, const char *fmt, int l)
{
    if (p->n_t == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        tr_tensor *t = realloc(p->t, sizeof *t * *cap);
        if (!t) return TR_NONE;
        p->t = t;
    }
    tr_tensor *t = &p->t[p->n_t++];
    snprintf(t->name, sizeof t->name, fmt, l);
    t->ndim = cols ? 2 : 1;
    t->rows = rows;
    t->cols = cols;
    t->n = (size_t)rows * (cols ? cols : 1);
    t->off = p->n_params;
    t->decay = decay;
    p->n_params += t->n;
    return t->off;
}

int tr_plan_init(tr_plan *p, const tr_shape *s, clens_error *err)
{
    memset(p, 0, sizeof *p);
    p->s = *s;
    if (s->L < 1 || s->L > TR_MAX_LAYERS)
        return clens_err(err, CLENS_E_ARG, "layers must be in [1, %d] (got %d)", TR_MAX_LAYERS, s->L);
    if (s->C < 2 || s->H < 1 || s->Hkv < 1 || s->F < 1 || s->V < 2)
        return clens_err(err, CLENS_E_ARG, "hidden, heads, kv-heads, ffn and vocab must be positive");
    if (s->H % s->Hkv)
        return clens_err(err, CLENS_E_ARG, "heads (%d) must be a multiple of kv-heads (%d)", s->H, s->Hkv);
    if (s->D > 0 ? s->D % 2 : (s->C % s->H || (s->C / s->H) % 2))
        return clens_err(err, CLENS_E_ARG, "hidden (%d) / heads (%d) or head_dim (%d) must be an even head size",
                         s->C, s->H, s->D);
    if (s->rope_given && (s->D > 0 ? s->D : s->C / s->H) / 2 > TR_MAX_HALF)
        return clens_err(err, CLENS_E_ARG, "head_dim above %d", 2 * TR_MAX_HALF);
    p->s.D = s->D > 0 ? s->D : s->C / s->H;
    const int C = s->C, HD = s->H * p->s.D, KVW = s->Hkv * p->s.D, F = s->F;
    const int olmo = tr_post_norm(s->arch), bias = tr_qkv_bias(s->arch), head_norm = tr_head_qk_norm(s->arch);
    int cap = 0;
#define L_ "model.layers.%d."
    p->embed = add(p, &cap, 1, s->V, C, "model.embed_tokens.weight", 0);
    for (int l = 0; l < s->L; l++) {
        tr_layer *y = &p->layer[l];
        memset(y, 0xff, sizeof *y); /* every offset TR_NONE */
        if (!olmo) y->attn_norm = add(p, &cap, 0, C, 0, L_ "input_layernorm.weight", l);
        y->q = add(p, &cap, 1, HD, C, L_ "self_attn.q_proj.weight", l);
        if (bias) y->q_b = add(p, &cap, 0, HD, 0, L_ "self_attn.q_proj.bias", l);
        y->k = add(p, &cap, 1, KVW, C, L_ "self_attn.k_proj.weight", l);
        if (bias) y->k_b = add(p, &cap, 0, KVW, 0, L_ "self_attn.k_proj.bias", l);
        y->v = add(p, &cap, 1, KVW, C, L_ "self_attn.v_proj.weight", l);
        if (bias) y->v_b = add(p, &cap, 0, KVW, 0, L_ "self_attn.v_proj.bias", l);
        y->o = add(p, &cap, 1, C, HD, L_ "self_attn.o_proj.weight", l);
        if (head_norm) {
            y->q_norm = add(p, &cap, 0, p->s.D, 0, L_ "self_attn.q_norm.weight", l);
            y->k_norm = add(p, &cap, 0, p->s.D, 0, L_ "self_attn.k_norm.weight", l);
        }
        if (olmo) {
            y->q_norm = add(p, &cap, 0, HD, 0, L_ "self_attn.q_norm.weight", l);
            y->k_norm = add(p, &cap, 0, KVW, 0, L_ "self_attn.k_norm.weight", l);
            y->post_attn_norm = add(p, &cap, 0, C, 0, L_ "post_attention_layernorm.weight", l);
            y->post_mlp_norm = add(p, &cap, 0, C, 0, L_ "post_feedforward_layernorm.weight", l);
        } else {
            /* Qwen2's post_attention_layernorm is the pre-MLP norm. */
            y->mlp_norm = add(p, &cap, 0, C, 0, L_ "post_attention_layernorm.weight", l);
        }
        y->gate = add(p, &cap, 1, F, C, L_ "mlp.gate_proj.weight", l);
        y->up = add(p, &cap, 1, F, C, L_ "mlp.up_proj.weight", l);
        y->down = add(p, &cap, 1, C, F, L_ "mlp.down_proj.weight", l);
    }
#undef L_
    p->final_norm = add(p, &cap, 0, C, 0, "model.norm.weight", 0);
    p->lm_head = s->tied ? p->embed : add(p, &cap, 1, s->V, C, "lm_head.weight", 0);
    if (!p->t || p->final_norm == TR_NONE || p->lm_head == TR_NONE) {
        tr_plan_free(p);
        return clens_err(err, CLENS_E_NOMEM, "out of memory");
    }
    return CLENS_OK;
}

void tr_plan_free(tr_plan *p)
{
    free(p->t);
    p->t = NULL;
    p->n_t = 0;
}

const tr_tensor *tr_plan_find(const tr_plan *p, const char *name)
{
    for (int i = 0; i < p->n_t; i++)
        if (strcmp(p->t[i].name, name) == 0) return &p->t[i];
    return NULL;
}

void tr_plan_init_params(const tr_plan *p, float *params, uint64_t seed)
{
    for (int i = 0; i < p->n_t; i++) {
        const tr_tensor *t = &p->t[i];
        float *x = params + t->off;
        /* One stream per tensor, so a tensor's values do not depend on the others. */
        tr_rng r = {seed * 0x100000001B3ull + (uint64_t)i * 0x9E3779B97F4A7C15ull, 0, 0};
        const char *nm = t->name;
        size_t ln = strlen(nm);
        int is_norm = ln > 11 && strcmp(nm + ln - 11, "norm.weight") == 0;
        if (t->ndim == 1) {
            for (size_t j = 0; j < t->n; j++) x[j] = is_norm ? 1.0f : 0.0f;
            continue;
        }
        double std = 0.02;
        if (strstr(nm, "o_proj") || strstr(nm, "down_proj")) std /= sqrt(2.0 * p->s.L);
        for (size_t j = 0; j < t->n; j++) x[j] = (float)(std * tr_rng_normal(&r));
    }
}
