/*
 * clens.h: the one public header of libclens, a C engine for mechanistic
 * interpretability experiments on Hugging Face transformer checkpoints.
 *
 * Conventions (after llama.h and jansson):
 *   - opaque types, clens_<object>_<verb> names, _open/_free pairs;
 *   - every fallible call returns a status code (CLENS_OK == 0) and fills an
 *     optional caller-provided clens_error with a one-line message naming the
 *     file, tensor or line/column and what was expected;
 *   - the library never prints and never exits;
 *   - ownership is stated on every pointer-returning call.
 *
 * Sections: errors; model; inference context and forward pass; hooks;
 * tokenizer; chat templates; pairs; patching.
 */
#ifndef CLENS_H
#define CLENS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CLENS_VERSION "0.1.0"

/* ------------------------------------------------------------------ errors */

typedef enum {
    CLENS_OK = 0,
    CLENS_E_IO = 1,          /* a file could not be opened, read, written */
    CLENS_E_FORMAT = 2,      /* malformed input: JSON, safetensors, JSONL, template */
    CLENS_E_UNSUPPORTED = 3, /* well-formed but not supported (arch, dtype, field value) */
    CLENS_E_ARG = 4,         /* bad argument: id out of vocab, prompt too long, ... */
    CLENS_E_NOMEM = 5,       /* allocation failed */
    CLENS_E_STATE = 6,       /* call not valid in the current state (e.g. settings mismatch) */
} clens_status;

typedef struct clens_error {
    int code;        /* a clens_status */
    char msg[1024];  /* one line, no trailing newline */
} clens_error;

/* Returns a static name for a status code ("io", "format", ...). */
const char *clens_status_name(int code);

/* ------------------------------------------------------------------- model */

typedef struct clens_model clens_model;

typedef enum {
    CLENS_ARCH_UNKNOWN = 0,
    CLENS_ARCH_LLAMA,
    CLENS_ARCH_QWEN2,
    CLENS_ARCH_QWEN3,
    CLENS_ARCH_OLMO2,
    CLENS_ARCH_OLMO3,
    CLENS_ARCH_COUNT
} clens_arch;

typedef enum { CLENS_DTYPE_F32 = 0, CLENS_DTYPE_BF16, CLENS_DTYPE_F16 } clens_dtype;

/* Matrix-product mode (rulings R1). DEFAULT feeds fp32 activations to every
 * product; BF16 rounds activations to bf16 (opt-in speed mode); PORTABLE forces
 * the plain C reference kernels (bitwise batch-independent). */
typedef enum { CLENS_MATMUL_DEFAULT = 0, CLENS_MATMUL_PORTABLE, CLENS_MATMUL_BF16 } clens_matmul_mode;

typedef struct clens_model_params {
    int n_threads;              /* 0 = all cores */
    clens_matmul_mode matmul;   /* see above */
    int verbose_unknown_keys;   /* collect unknown config keys for `info --verbose` */
} clens_model_params;

clens_model_params clens_model_default_params(void);

typedef struct clens_model_info {
    clens_arch arch;
    const char *arch_name;      /* "qwen2", "olmo3", ... */
    clens_dtype dtype;          /* dtype of the large weight matrices */
    int n_layers, d_model, n_heads, n_kv_heads, head_dim, d_ff, vocab;
    int max_pos;                /* max_position_embeddings */
    int tied_embeddings;
    int64_t n_params;           /* parameters counted from the tensors */
    int64_t weight_bytes;       /* bytes of all tensors as stored */
    int64_t kv_bytes_per_token; /* fp32 K+V over all layers, one token */
    const char *path;           /* resolved model folder */
    int bos_id, eos_id;         /* from config.json, -1 if absent */
} clens_model_info;

/* Opens a Hugging Face model folder, or `org/name[@revision]` resolved offline
 * in the HF cache ($HF_HOME, default ~/.cache/huggingface). Weights are
 * memory-mapped and used in place. On success *out owns the model; free it
 * with clens_model_free. */
int clens_model_open(clens_model **out, const char *path,
                     const clens_model_params *params, clens_error *err);
void clens_model_free(clens_model *m);
/* Valid as long as the model. */
const clens_model_info *clens_model_get_info(const clens_model *m);
/* Config keys clens does not use (valid as long as the model), NULL-terminated. */
const char *const *clens_model_unknown_keys(const clens_model *m);
/* Name of the kernel path used for matrix products ("avx512-bf16", "avx2", "portable"). */
const char *clens_model_kernel_name(const clens_model *m);
/* Layer type: 1 if layer l uses sliding-window attention, with its window in *window. */
int clens_model_layer_sliding(const clens_model *m, int l, int *window);

/* ------------------------------------------------------------------- hooks */

/* Hook points, named as TransformerLens names them. In a pre-norm block
 * (Llama, Qwen2, Qwen3):
 *   resid_pre -> attn(norm(x)) = attn_out -> resid_mid -> mlp(norm(x)) = mlp_out -> resid_post
 * In a post-norm OLMo-2/3 block the norms sit on the sublayer outputs, and
 * attn_out / mlp_out are the values added to the residual stream, i.e. AFTER
 * post_attention_layernorm / post_feedforward_layernorm (rulings R12):
 *   resid_pre -> attn_out = N_post_attn(o_proj(attn(x))) ; resid_mid = resid_pre + attn_out
 *             -> mlp_out = N_post_ffn(mlp(resid_mid))     ; resid_post = resid_mid + mlp_out
 * so resid_post == resid_pre + attn_out + mlp_out in every architecture.
 * attn.hook_z is the per-head attention output before o_proj, width
 * n_heads*head_dim, head-major (feature h*head_dim + d). */
typedef enum {
    CLENS_HOOK_EMBED = 0,     /* hook_embed                      [C] */
    CLENS_HOOK_RESID_PRE,     /* blocks.{L}.hook_resid_pre       [C] */
    CLENS_HOOK_ATTN_Z,        /* blocks.{L}.attn.hook_z          [H*D] */
    CLENS_HOOK_ATTN_OUT,      /* blocks.{L}.hook_attn_out        [C] */
    CLENS_HOOK_MLP_OUT,       /* blocks.{L}.hook_mlp_out         [C] */
    CLENS_HOOK_RESID_POST,    /* blocks.{L}.hook_resid_post      [C] */
    CLENS_HOOK_LN_FINAL,      /* ln_final.hook_normalized        [C] */
    CLENS_HOOK_COUNT
} clens_hook_point;

/* Formats the TransformerLens name of (point, layer) into buf. Returns buf. */
char *clens_hook_name(clens_hook_point point, int layer, char *buf, size_t n);
/* Parses a hook name; layer is -1 for hook_embed / ln_final. 0 on success. */
int clens_hook_parse(const char *name, clens_hook_point *point, int *layer);
/* Width of the activation at a hook point. */
int clens_hook_width(const clens_model *m, clens_hook_point point);

/* One batch row = one token of one sequence (see clens_forward). */
typedef struct clens_row {
    int seq;          /* KV-cache sequence index in the context */
    int pos;          /* absolute position of this token in the sequence */
    int token;        /* token id (unused when start_layer > 0) */
    int start_layer;  /* 0: start from the embedding; L > 0: the residual stream
                         before block L is given (init_resid) and blocks < L are
                         skipped for this row */
    int commit;       /* 1: write this row's K/V into the cache at pos (pos must
                         be the sequence's next position); 0: ephemeral row that
                         attends to cache[0, pos) plus itself and writes nothing */
    int want_logits;  /* 1: compute logits of this row */
} clens_row;

/* A hook event: activation rows [n_rows][width] at one (point, layer), rows in
 * batch order (row i of the batch is data + i*width; rows not yet started,
 * i.e. start_layer > layer, are absent: rows[i] maps the event row i to the
 * batch row index). The hook may read and overwrite the data; writes take
 * effect for the rest of the forward pass. Valid only during the call. */
typedef struct clens_hook_event {
    clens_hook_point point;
    int layer;              /* -1 for embed / ln_final */
    int width;
    int n_rows;
    const int *rows;        /* event row -> batch row index */
    const clens_row *batch; /* the batch as passed to clens_forward */
    float *data;            /* [n_rows][width] */
} clens_hook_event;

typedef void (*clens_hook_fn)(void *user, const clens_hook_event *ev);

/* --------------------------------------------- inference context, forward */

typedef struct clens_ctx clens_ctx;

/* A context holds the KV caches of n_seq sequences of up to n_ctx tokens each
 * (fp32; clens_model_info.kv_bytes_per_token per token) and the scratch of
 * batches of up to max_rows rows. Owned by the caller; free with clens_ctx_free. */
int clens_ctx_new(clens_ctx **out, clens_model *m, int n_seq, int n_ctx,
                  int max_rows, clens_error *err);
void clens_ctx_free(clens_ctx *ctx);
int clens_ctx_seq_len(const clens_ctx *ctx, int seq);
void clens_ctx_seq_clear(clens_ctx *ctx, int seq);
/* Copies the first n positions of src's cache into dst (dst length becomes n). */
int clens_ctx_seq_copy(clens_ctx *ctx, int dst, int src, int n, clens_error *err);

typedef struct clens_forward_args {
    clens_hook_fn hook;        /* called at every hook point, or NULL */
    void *hook_user;
    const float *init_resid;   /* [n_rows][C]: row i's residual before block
                                  start_layer (read only for rows with start_layer > 0) */
    float *out_resid;          /* [n_rows][C] residual after the last block, or NULL */
    float *out_logits;         /* [n_logit_rows][vocab] for rows with want_logits,
                                  in batch order, or NULL */
} clens_forward_args;

/* Runs rows through the model. Rows must be sorted by start_layer; committed
 * rows of one sequence must be consecutive positions starting at the
 * sequence's current length. Positions must be < n_ctx and < max_pos. */
int clens_forward(clens_ctx *ctx, const clens_row *rows, int n_rows,
                  const clens_forward_args *args, clens_error *err);

/* The one function that turns a final residual row into logits: final norm and
 * unembedding (rulings R3). logits has vocab entries. */
void clens_logits_from_resid(const clens_model *m, const float *resid, float *logits);

/* Convenience: prefill ids into seq (appending) and return the logits of every
 * new position ([n][vocab], may be NULL) or only of the last (last_logits). */
int clens_prefill(clens_ctx *ctx, int seq, const int32_t *ids, int n,
                  float *all_logits, float *last_logits,
                  const clens_forward_args *hooks, clens_error *err);

typedef struct clens_sample_params {
    float temperature;   /* 0 = greedy */
    float top_p;         /* 1 = off */
    int top_k;           /* 0 = off */
    uint64_t seed;
    int max_new_tokens;
    const int32_t *stop_ids; int n_stop;
} clens_sample_params;

clens_sample_params clens_sample_default_params(void);

/* Generates up to max_new_tokens for n_prompts prompts as one batch. out[i] is
 * malloc'd (caller frees) and holds the new ids of prompt i (stop id included
 * if hit), with out_n[i] its length. */
int clens_generate(clens_model *m, const int32_t *const *prompts, const int *prompt_len,
                   int n_prompts, const clens_sample_params *sp,
                   int32_t **out, int *out_n, clens_error *err);

/* --------------------------------------------------------------- tokenizer */
/* (section owned by src/tokenizer/) */

/* ---------------------------------------------------------- chat templates */
/* (section owned by src/tokenizer/template*) */

/* ------------------------------------------------------------------- pairs */
/* (section owned by src/data/) */

/* ---------------------------------------------------------------- patching */
/* (section owned by src/interp/) */

#ifdef __cplusplus
}
#endif
#endif /* CLENS_H */
