/*
 * model.h: internal model representation: the architecture table, the parsed
 * config, bound weights, RoPE tables, and the inference context.
 */
#ifndef CLENS_MODEL_H
#define CLENS_MODEL_H

#include "clens.h"
#include "formats/formats.h"
#include "kernels/kernels.h"

/* ------------------------------------------------------ architecture table */

typedef enum { NORM_PRE = 0, NORM_POST } norm_placement;
typedef enum { QKNORM_NONE = 0, QKNORM_PER_HEAD, QKNORM_FULL } qknorm_kind;
typedef enum { QKV_BIAS_CONFIG = 0, QKV_BIAS_ALWAYS } qkv_bias_rule;
typedef enum { SWA_NONE = 0, SWA_QWEN, SWA_OLMO3 } sliding_rule;

/* Tensor roles. Per-layer roles take the layer index in their name format. */
typedef enum {
    ROLE_EMBED = 0, ROLE_FINAL_NORM, ROLE_LM_HEAD,
    ROLE_ATTN_NORM, ROLE_Q, ROLE_K, ROLE_V, ROLE_O,
    ROLE_Q_BIAS, ROLE_K_BIAS, ROLE_V_BIAS, ROLE_O_BIAS,
    ROLE_Q_NORM, ROLE_K_NORM, ROLE_MLP_NORM, ROLE_POST_ATTN_NORM, ROLE_POST_MLP_NORM,
    ROLE_GATE, ROLE_UP, ROLE_DOWN,
    ROLE_COUNT
} tensor_role;

typedef struct arch_desc {
    clens_arch arch;
    const char *model_type;        /* config.json model_type */
    norm_placement norm;
    qknorm_kind qknorm;
    qkv_bias_rule qkv_bias;
    sliding_rule sliding;
    int rope_scaling_full_only;    /* OLMo-3 (transformers 4.57): sliding layers use default RoPE */
    double default_rms_eps;        /* HF config class default when the key is absent */
    int default_window;            /* sliding_window default (0 = none) */
    const char *names[ROLE_COUNT]; /* HF tensor name formats, NULL = role absent */
} arch_desc;

const arch_desc *arch_find(const char *model_type);
/* Comma-separated list of supported model_type values (static string). */
const char *arch_supported_list(void);

/* ------------------------------------------------------------------ config */

typedef enum { ROPE_DEFAULT = 0, ROPE_LINEAR, ROPE_LLAMA3, ROPE_YARN } rope_type;

typedef struct rope_config {
    rope_type type;
    double theta;
    double factor;
    double low_freq_factor, high_freq_factor;  /* llama3 */
    double orig_max_pos;                       /* llama3 / yarn */
    double beta_fast, beta_slow;               /* yarn */
    double attention_factor;                   /* yarn; < 0 = derive */
    double mscale, mscale_all_dim;             /* yarn (DeepSeek style), 0 = absent */
    int truncate;                              /* yarn */
} rope_config;

typedef struct model_config {
    const arch_desc *arch;
    int d_model, d_ff, n_layers, n_heads, n_kv_heads, head_dim, vocab, max_pos;
    double rms_eps;
    int tied, attn_bias;
    rope_config rope;          /* as configured (rope_scaling) */
    int *layer_sliding;        /* [n_layers] 1 = sliding-window layer */
    int window;                /* sliding window W (keys incl. the query) */
    clens_dtype dtype;         /* torch_dtype / dtype, informational */
    int bos_id, eos_id;
    char **unknown_keys;       /* NULL-terminated */
} model_config;

/* Parses config.json of a model folder. Unsupported values of math-changing
 * fields are errors naming the field (rulings R7). */
int config_load(model_config *c, const char *path, clens_error *err);
int config_parse(model_config *c, const char *json, size_t len, const char *path, clens_error *err);
void config_free(model_config *c);

/* ------------------------------------------------------------------- rope */

typedef struct rope_table {
    float *inv_freq;          /* [D/2] */
    float attn_factor;        /* multiplies cos and sin */
} rope_table;

/* Fills inv_freq per modeling_rope_utils (transformers 4.57). */
int rope_init(rope_table *t, const rope_config *rc, int head_dim, int max_pos, clens_error *err);
void rope_free(rope_table *t);
/* Rotates the head vectors q[Hq][D] and k[Hk][D] in place for position pos
 * (rotate_half convention: dimension i pairs with i + D/2). */
void rope_apply(const rope_table *t, float *q, int Hq, float *k, int Hk, int D, int pos, float *cs);

/* ------------------------------------------------------------------ model */

typedef struct layer_weights {
    kern_weight q, k, v, o, gate, up, down;
    float *q_bias, *k_bias, *v_bias, *o_bias;     /* NULL if absent */
    float *attn_norm, *mlp_norm;                  /* pre-norms (Llama/Qwen) */
    float *post_attn_norm, *post_mlp_norm;        /* post-norms (OLMo) */
    float *q_norm, *k_norm;                       /* [D] per head or [H*D]/[Hkv*D] */
    int sliding;                                  /* uses the sliding window */
    const rope_table *rope;
} layer_weights;

struct clens_model {
    model_config cfg;
    clens_model_info info;
    st_archive st;
    char *path;
    kern_path path_kind;
    clens_model_params params;
    const void *embed;            /* [V][C] in embed_dtype */
    clens_dtype embed_dtype;
    kern_weight lm_head;          /* [V][C] (the embedding when tied) */
    float *final_norm;            /* [C] */
    layer_weights *layers;
    rope_table rope_full, rope_default;
    float **small;                /* fp32 copies of small vectors, freed at close */
    int n_small, cap_small;
};

/* --------------------------------------------------------------- context */

struct clens_ctx {
    clens_model *m;
    int n_seq, n_ctx, max_rows;
    int n_threads;                /* threads of this context's forward passes (0 = all cores) */
    int *seq_len;                 /* [n_seq] */
    float *k_cache, *v_cache;     /* [n_seq][n_layers][Hkv][n_ctx][D]: head-major, see kern_kv */
    /* scratch for a batch of max_rows rows */
    float *x;                     /* (R, C) residual stream */
    float *h;                     /* (R, C) normed input / sublayer output */
    float *q;                     /* (R, H*D) */
    float *k, *v;                 /* (R, Hkv*D) */
    float *z;                     /* (R, H*D) attention output before o_proj */
    float *g, *u;                 /* (R, F) */
    float *norm_row;              /* (R, C) final-normed rows */
    int *row_ids;                 /* 0..R-1, for hook events */
    /* per-call scratch owned here so that no stack array is sized by the
     * caller's n_seq / max_rows (or the config's head_dim) */
    int *next_len;                /* [n_seq] sequence lengths after the batch */
    clens_row *prefill_rows;      /* [R] rows of clens_prefill's chunks */
    float *rope_cs;               /* [head_dim] cos (first half) and sin of one position */
    kern_att_row *att_rows;       /* [R] a batch's attention rows */
};

/* Offset of (seq, layer, kv head, pos) in k_cache / v_cache. */
size_t ctx_kv_offset(const clens_ctx *ctx, int seq, int layer, int head, int pos);

/* nonfinite.c: CLENS_OK if x[n_rows][width] is finite, else CLENS_E_NONFINITE
 * naming point/layer (CLENS_HOOK_COUNT = the logits), the row's position and
 * sequence; row_of maps a scanned row to its batch row (NULL = identity);
 * what (may be NULL) is appended to the point's name. */
int forward_check_rows(const float *x, int n_rows, int width, const clens_row *rows, const int *row_of,
                       clens_hook_point point, int layer, const char *what, clens_error *err);

#endif
