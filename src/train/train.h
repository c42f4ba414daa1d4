/*
 * train.h: internal API of the training layer (`clens train`, docs/train.md):
 * the parameter plan of a Qwen2 / OLMo-3 model (and, for attribution patching,
 * Llama / Qwen3 / OLMo-2: atp_train.h) as one flat buffer in Hugging
 * Face tensor order, the forward + backward math (compiled twice: fp32 for
 * training, fp64 for the finite-difference tests), AdamW with its schedule,
 * the trace data, resumable state and the Hugging Face folder writer.
 */
#ifndef CLENS_TRAIN_H
#define CLENS_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "clens.h"

/* ------------------------------------------------------------------ plan */

/* clens train builds Qwen2 and OLMo-3; attribution patching (atp_train.c)
 * also runs Llama (Qwen2's block without the q/k/v bias), Qwen3 (no bias,
 * per-head q/k RMSNorm) and OLMo-2 (OLMo-3's block, every layer full). */
typedef enum { TR_QWEN2 = 0, TR_OLMO3, TR_LLAMA, TR_QWEN3, TR_OLMO2 } tr_arch;

#define TR_MAX_LAYERS 64
#define TR_MAX_HALF 256 /* head_dim / 2 of a given RoPE table */
#define TR_NONE ((size_t)-1)

/* Shape and fixed hyperparameters of the model being trained. */
typedef struct tr_shape {
    tr_arch arch;
    int L, C, H, Hkv, D, F, V; /* layers, width, heads, kv heads, head dim (0 = C / H), ffn, vocab */
    int tied;                  /* lm_head is the embedding */
    int window;                /* sliding window W (keys incl. the query); 0 = none */
    int sliding[TR_MAX_LAYERS];/* 1 = layer uses the window */
    int ctx;                   /* max_position_embeddings */
    double eps, theta;         /* rms_norm_eps, rope_theta */
    /* RoPE tables handed over from the inference engine (rope_given = 1;
     * attribution patching: rope_scaling as src/model/rope.c forms it, the
     * scaled inverse frequencies and YaRN's factor on cos and sin), table
     * rope_table[l] for layer l (OLMo-3 keeps sliding layers on default
     * RoPE). rope_given = 0: inv_freq = 1 / theta^(2j/D) for every layer. */
    int rope_given;
    float inv_freq[2][TR_MAX_HALF];
    float rope_mult[2];
    int rope_table[TR_MAX_LAYERS];
} tr_shape;

/* One tensor of the flat parameter buffer. */
typedef struct tr_tensor {
    char name[96];             /* HF name, e.g. model.layers.0.self_attn.q_proj.weight */
    int ndim, rows, cols;      /* [rows] or [rows][cols] */
    size_t off, n;             /* offset and length in elements */
    int decay;                 /* 1 = AdamW weight decay applies (matrices) */
} tr_tensor;

/* Offsets of a layer's tensors (TR_NONE = absent in this architecture). */
typedef struct tr_layer {
    size_t attn_norm, q, q_b, k, k_b, v, v_b, o, q_norm, k_norm;
    size_t post_attn_norm, mlp_norm, post_mlp_norm, gate, up, down;
} tr_layer;

typedef struct tr_plan {
    tr_shape s;
    tr_tensor *t;
    int n_t;
    size_t n_params;
    size_t embed, final_norm, lm_head; /* lm_head == embed when tied */
    tr_layer layer[TR_MAX_LAYERS];
} tr_plan;

/* Block features of an architecture: post-norm blocks with q/k RMSNorm over
 * the whole projection (OLMo), q/k/v bias (Qwen2), per-head q/k RMSNorm
 * over head_dim with one shared weight (Qwen3). */
static inline int tr_post_norm(tr_arch a) { return a == TR_OLMO3 || a == TR_OLMO2; }
static inline int tr_qkv_bias(tr_arch a) { return a == TR_QWEN2; }
static inline int tr_head_qk_norm(tr_arch a) { return a == TR_QWEN3; }

/* Builds the plan of shape s (validates it: heads divide, even head dim, ...). */
int tr_plan_init(tr_plan *p, const tr_shape *s, clens_error *err);
void tr_plan_free(tr_plan *p);
const tr_tensor *tr_plan_find(const tr_plan *p, const char *name);
/* Deterministic initialisation from seed: matrices N(0, 0.02) (o_proj and
 * down_proj 0.02 / sqrt(2 L)), norms 1, biases 0. */
void tr_plan_init_params(const tr_plan *p, float *params, uint64_t seed);

/* ------------------------------------------------------------- the math */

/* Workspace for batches of up to B sequences of up to T tokens. One type per
 * precision; the functions are the same code (train_math.inc). */
typedef struct tr_work_f32 tr_work_f32;
typedef struct tr_work_f64 tr_work_f64;

tr_work_f32 *tr_work_new_f32(const tr_plan *p, int B, int T);
void tr_work_free_f32(tr_work_f32 *w);
/* Mean cross-entropy of the batch: ids[B][T], mask[B][T] (1 = this token is a
 * target; token t is predicted from position t-1, so mask[b][0] is unused).
 * If grads is not NULL it is overwritten with d loss / d params. Returns the
 * loss; *n_targets (may be NULL) gets the number of target tokens. */
double tr_loss_grad_f32(tr_work_f32 *w, const float *params, float *grads, const int32_t *ids,
                        const uint8_t *mask, int B, int T, long *n_targets);

tr_work_f64 *tr_work_new_f64(const tr_plan *p, int B, int T);
void tr_work_free_f64(tr_work_f64 *w);
double tr_loss_grad_f64(tr_work_f64 *w, const double *params, double *grads, const int32_t *ids,
                        const uint8_t *mask, int B, int T, long *n_targets);

/* ------------------------------------------------------------ optimizer */

typedef struct tr_adamw {
    double beta1, beta2, eps, weight_decay;
} tr_adamw;

/* Learning rate of step s (0-based): linear warmup over `warmup` steps to
 * lr, then cosine to lr * min_frac at the last step. */
double tr_lr_at(int s, int steps, int warmup, double lr, double min_frac);
/* Global L2 norm of g (accumulated in double, fixed order). */
double tr_grad_norm(const float *g, size_t n);
/* Scales g by max_norm / (norm + 1e-6) if that is < 1 (torch clip_grad_norm_). */
void tr_clip(float *g, size_t n, double norm, double max_norm);
/* One AdamW step t (1-based) as torch.optim.AdamW: decoupled decay on
 * tensors with decay set, bias-corrected moments. */
void tr_adamw_step(const tr_plan *p, const tr_adamw *o, float *params, const float *grads, float *m, float *v,
                   long t, double lr);

/* ------------------------------------------------------------------ data */

typedef struct tr_example {
    int32_t *ids;
    uint8_t *mask;   /* 1 = token is a loss target */
    int n;
} tr_example;

typedef struct tr_data {
    tr_example *ex;
    int n_ex;
    long n_tokens, n_targets;
    int eos_id, pad_id;
} tr_data;

/* Reads GSM8K JSONL ("question", "answer") and tokenizes each example as
 * docs/train.md says; examples longer than seq are truncated. */
int tr_data_load(tr_data *d, const char *path, const clens_tokenizer *tok, int seq, clens_error *err);
void tr_data_free(tr_data *d);
/* The batch of step s: B examples of the epoch permutation drawn from
 * (seed, epoch), padded to T = the longest of them. ids / mask hold B * seq. */
void tr_data_batch(const tr_data *d, uint64_t seed, long step, int B, int32_t *ids, uint8_t *mask, int *T);

/* ----------------------------------------------------------- checkpoints */

/* Resumable state: step done, parameters, AdamW moments. Written atomically. */
int tr_state_save(const char *path, const char *settings_hash, long step, const float *params, const float *m,
                  const float *v, size_t n, clens_error *err);
/* Returns 0 and fills *step on success; CLENS_E_IO if the file is absent. */
int tr_state_load(const char *path, const char *settings_hash, long *step, float *params, float *m, float *v,
                  size_t n, clens_error *err);

/* Writes a Hugging Face folder: config.json, generation_config.json,
 * model.safetensors (F32), the tokenizer files of tok_dir and training.json
 * (the given text). Files are written atomically, into dir. */
int tr_hf_save(const char *dir, const tr_plan *p, const float *params, int bos_id, int eos_id, const char *tok_dir,
               const char *training_json, clens_error *err);
/* Loads the weights of an HF folder of the same shape into params. */
int tr_hf_load(const char *dir, const tr_plan *p, float *params, clens_error *err);

/* Deterministic standard normal stream (splitmix64 + Box-Muller). */
typedef struct tr_rng {
    uint64_t s;
    int have;
    double spare;
} tr_rng;
uint64_t tr_rng_u64(tr_rng *r);
double tr_rng_normal(tr_rng *r);

#endif
