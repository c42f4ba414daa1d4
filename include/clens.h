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
 * Sections: errors; model; hooks; inference context and forward pass;
 * tokenizer; chat templates; pairs; patching; run engine; comparison; model
 * organisms; training; non-finite values; corruption step; study runner;
 * capture, probes, transfer, lens; steering; training dynamics.
 *
 * Comments cite the documentation shipped in docs/ (schemas, definitions);
 * "docs/rulings.md Rn" is the project's ruling n there.
 */
#ifndef CLENS_H
#define CLENS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CLENS_VERSION "0.1.0"

/* Marks the public API: libclens.so is built with -fvisibility=hidden, so
 * only declarations carrying CLENS_API are exported (every public function
 * in this header carries it; a new section must apply it too). */
#if defined(__GNUC__) || defined(__clang__)
#define CLENS_API __attribute__((visibility("default")))
#else
#define CLENS_API
#endif

/* ------------------------------------------------------------------ errors */

typedef enum {
    CLENS_OK = 0,
    CLENS_E_IO = 1,          /* a file could not be opened, read, written */
    CLENS_E_FORMAT = 2,      /* malformed input: JSON, safetensors, JSONL, template */
    CLENS_E_UNSUPPORTED = 3, /* well-formed but not supported (arch, dtype, field value) */
    CLENS_E_ARG = 4,         /* bad argument: id out of vocab, prompt too long, ... */
    CLENS_E_NOMEM = 5,       /* allocation failed */
    CLENS_E_STATE = 6,       /* call not valid in the current state (e.g. settings mismatch) */
    CLENS_E_NONFINITE = 7,   /* NaN or Inf in weights or activations (see the reliability section) */
} clens_status;

typedef struct clens_error {
    int code;        /* a clens_status */
    char msg[1024];  /* one line, no trailing newline */
} clens_error;

/* Returns a static name for a status code ("io", "format", ...). */
CLENS_API const char *clens_status_name(int code);

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

/* Matrix-product mode (docs/rulings.md R1). DEFAULT feeds fp32 activations to
 * every product; BF16 rounds activations to bf16 (opt-in speed mode); PORTABLE forces
 * the plain C reference kernels (bitwise batch-independent). */
typedef enum { CLENS_MATMUL_DEFAULT = 0, CLENS_MATMUL_PORTABLE, CLENS_MATMUL_BF16 } clens_matmul_mode;

typedef struct clens_model_params {
    int n_threads;              /* threads of each context made on the model (0 = all
                                   cores); per context, never process-wide: see
                                   clens_ctx_set_threads */
    clens_matmul_mode matmul;   /* see above */
} clens_model_params;

CLENS_API clens_model_params clens_model_default_params(void);

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
CLENS_API int clens_model_open(clens_model **out, const char *path,
                     const clens_model_params *params, clens_error *err);
CLENS_API void clens_model_free(clens_model *m);
/* Valid as long as the model. */
CLENS_API const clens_model_info *clens_model_get_info(const clens_model *m);
/* Config keys clens does not use (valid as long as the model), NULL-terminated. */
CLENS_API const char *const *clens_model_unknown_keys(const clens_model *m);
/* Identity of the model files for provenance: hex sha256 of config.json, and
 * of model.safetensors.index.json (sharded) or of the single safetensors
 * file's header (names, dtypes, shapes, offsets); "" when unreadable. */
CLENS_API void clens_model_fingerprint(const clens_model *m, char config_sha[65], char weights_sha[65]);
/* Name of the kernel path used for matrix products ("avx512-bf16", "avx2", "portable"). */
CLENS_API const char *clens_model_kernel_name(const clens_model *m);
/* Memory plan (docs/rulings.md R15): bytes left for KV caches and scratch after the
 * weights and a 2 GiB reserve, from the machine's MemTotal (never below 0). */
CLENS_API int64_t clens_model_kv_budget(const clens_model *m);
/* Largest number of sequences of n_ctx tokens whose fp32 KV caches fit the
 * budget (at least 1). */
CLENS_API int clens_model_plan_seqs(const clens_model *m, int n_ctx);

/* Layer type: 1 if layer l uses sliding-window attention, with its window in *window. */
CLENS_API int clens_model_layer_sliding(const clens_model *m, int l, int *window);

/* ------------------------------------------------------------------- hooks */

/* Hook points, named as TransformerLens names them. In a pre-norm block
 * (Llama, Qwen2, Qwen3):
 *   resid_pre -> attn(norm(x)) = attn_out -> resid_mid -> mlp(norm(x)) = mlp_out -> resid_post
 * In a post-norm OLMo-2/3 block the norms sit on the sublayer outputs, and
 * attn_out / mlp_out are the values added to the residual stream, i.e. AFTER
 * post_attention_layernorm / post_feedforward_layernorm:
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

/* The one site vocabulary. Every hook point has one row in the library's
 * table: its TransformerLens name (above), its short name ("embed",
 * "resid_pre", "z", "attn_out", "mlp_out", "resid_post", "ln_final": the
 * words of `clens patch --sites` and the keys of settings.json and
 * records.jsonl, docs/patch-output.md), whether it splits into heads
 * (attn.hook_z) and whether final-position patching may write it (every
 * per-layer point). */

/* Formats the TransformerLens name of (point, layer) into buf ("?" for an
 * unknown point). Returns buf. */
CLENS_API char *clens_hook_name(clens_hook_point point, int layer, char *buf, size_t n);
/* Parses a TransformerLens hook name; *layer is -1 for hook_embed /
 * ln_final.hook_normalized. CLENS_OK, or CLENS_E_ARG naming the name. */
CLENS_API int clens_hook_parse(const char *name, clens_hook_point *point, int *layer, clens_error *err);
/* Width of the activation at a hook point. */
CLENS_API int clens_hook_width(const clens_model *m, clens_hook_point point);
/* The short name of a point (static string; "?" for an unknown point). */
CLENS_API const char *clens_hook_short_name(clens_hook_point point);
/* Parses a short name. CLENS_OK, or CLENS_E_ARG naming the word. */
CLENS_API int clens_hook_short_parse(const char *s, clens_hook_point *point, clens_error *err);
/* 1 if the point's activation is n_heads blocks of head_dim (head-major). */
CLENS_API int clens_hook_per_head(clens_hook_point point);
/* 1 if the point is a final-position patching site. */
CLENS_API int clens_hook_patchable(clens_hook_point point);
/* Largest layer of a per-layer point for a model of n_layers blocks:
 * n_layers - 1, but n_layers for resid_pre (the residual after the last
 * block, i.e. what ln_final normalises); -1 for hook_embed / ln_final. */
CLENS_API int clens_hook_max_layer(clens_hook_point point, int n_layers);

/* A site: the activation at one hook point and layer, or one head of it. */
typedef struct clens_site {
    clens_hook_point point;   /* a patchable point */
    int layer;                /* 0..clens_hook_max_layer(point, n_layers) */
    int head;                 /* per-head points: 0..n_heads-1 for one head, or -1
                                 for all of them; -1 for every other point */
} clens_site;

/* A site's name: its hook name, with "[HEAD]" appended for one head
 * ("blocks.3.hook_attn_out", "blocks.3.attn.hook_z[5]"). Returns buf.
 * clens_site_parse reads exactly these names back: CLENS_OK, or CLENS_E_ARG
 * with a message naming the malformed part. */
CLENS_API char *clens_site_name(const clens_site *s, char *buf, size_t n);
CLENS_API int clens_site_parse(const char *name, clens_site *out, clens_error *err);
/* CLENS_OK if the site exists in model m (layer and head in range), else
 * CLENS_E_ARG naming the site and the allowed range. */
CLENS_API int clens_site_check(const clens_model *m, const clens_site *s, clens_error *err);
/* The features of the point's activation that a (checked) site covers:
 * [*offset, *offset + *n) (one head: head * head_dim, head_dim). */
CLENS_API void clens_site_span(const clens_model *m, const clens_site *s, int *offset, int *n);

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
CLENS_API int clens_ctx_new(clens_ctx **out, clens_model *m, int n_seq, int n_ctx,
                  int max_rows, clens_error *err);
CLENS_API void clens_ctx_free(clens_ctx *ctx);
CLENS_API int clens_ctx_seq_len(const clens_ctx *ctx, int seq);
CLENS_API void clens_ctx_seq_clear(clens_ctx *ctx, int seq);
/* Copies the first n positions of src's cache into dst (dst length becomes n). */
CLENS_API int clens_ctx_seq_copy(clens_ctx *ctx, int dst, int src, int n, clens_error *err);

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
CLENS_API int clens_forward(clens_ctx *ctx, const clens_row *rows, int n_rows,
                  const clens_forward_args *args, clens_error *err);

/* The one function that turns a final residual row into logits: final norm and
 * unembedding (docs/rulings.md R3). logits has vocab entries. */
CLENS_API void clens_logits_from_resid(const clens_model *m, const float *resid, float *logits);
/* The same for n rows at once (the unembedding weights are read once):
 * normed is caller scratch [n][d_model], logits [n][vocab]. */
CLENS_API void clens_logits_from_resid_rows(const clens_model *m, const float *resid, int n, float *normed, float *logits);

/* Convenience: prefill ids into seq (appending) and return the logits of every
 * new position ([n][vocab], may be NULL) or only of the last (last_logits). */
CLENS_API int clens_prefill(clens_ctx *ctx, int seq, const int32_t *ids, int n,
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

CLENS_API clens_sample_params clens_sample_default_params(void);

/* Generates up to max_new_tokens for n_prompts prompts as one batch. out[i] is
 * malloc'd (caller frees) and holds the new ids of prompt i (stop id included
 * if hit), with out_n[i] its length. */
CLENS_API int clens_generate(clens_model *m, const int32_t *const *prompts, const int *prompt_len,
                   int n_prompts, const clens_sample_params *sp,
                   int32_t **out, int *out_n, clens_error *err);

/* The ids that end generation: generation_config.json's eos_token_id (int or
 * list), else config.json's, else config's eos id. *ids malloc'd (caller
 * frees), *n of them (0: none). CLENS_OK, or CLENS_E_NOMEM. */
CLENS_API int clens_model_stop_ids(const clens_model *m, int32_t **ids, int *n);

/* --------------------------------------------------------------- tokenizer */
/* Byte-level BPE tokenizers, byte-identical to Hugging Face `tokenizers`
 * 0.22 (ids, decodes and offsets). Files: tokenizer.json (model BPE;
 * normalizers NFC/NFD/NFKC/NFKD/Sequence; pre-tokenizers Split/ByteLevel/
 * Sequence; post-processors ByteLevel/TemplateProcessing/Sequence; decoder
 * ByteLevel), or vocab.json + merges.txt + tokenizer_config.json
 * (Qwen2Tokenizer, GPT2Tokenizer). Any other component is an error naming it.
 * An open tokenizer is immutable: every call below may run concurrently. */

typedef struct clens_tokenizer clens_tokenizer;

/* Opens a tokenizer from a model folder, an `org/name[@revision]` in the
 * offline Hugging Face cache, or a tokenizer.json path. tokenizer_config.json
 * beside it (optional with tokenizer.json) gives bos_token, eos_token and
 * add_bos_token; for Llama/Gemma tokenizer classes the add_bos_token /
 * add_eos_token flags replace the post-processor, as transformers does.
 * On success *out owns the tokenizer; free it with clens_tokenizer_free. */
CLENS_API int clens_tokenizer_open(clens_tokenizer **out, const char *path, clens_error *err);
CLENS_API void clens_tokenizer_free(clens_tokenizer *tok);

/* Encodes text[0..len) (UTF-8; invalid UTF-8 is CLENS_E_ARG naming the byte
 * offset, see clens_utf8_lossy). add_special: HF add_special_tokens (the
 * post-processor's BOS/EOS). *ids: malloc'd array of *n ids (never NULL on
 * success; caller frees). offsets: NULL, or receives a malloc'd array of
 * 2 * *n byte offsets into text, [start, end) per token (tokens added by the
 * post-processor get [0, 0)); caller frees. */
CLENS_API int clens_tokenize(const clens_tokenizer *tok, const char *text, size_t len, int add_special,
                   int32_t **ids, int *n, size_t **offsets, clens_error *err);

/* An encoding as HF's Encoding: ids, byte offsets and token strings (the
 * vocabulary string of each id, e.g. "Ġworld"; for an added token the text it
 * matched, including whitespace taken by lstrip/rstrip, normalized if the
 * token is). Free with clens_encoding_free. */
typedef struct clens_encoding {
    int32_t *ids;       /* [n] */
    size_t *offsets;    /* [2*n] byte offsets [start, end) into the text */
    char **tokens;      /* [n] NUL-terminated strings */
    int n;
} clens_encoding;

CLENS_API int clens_tokenize_full(const clens_tokenizer *tok, const char *text, size_t len, int add_special,
                        clens_encoding *out, clens_error *err);
CLENS_API void clens_encoding_free(clens_encoding *e);

/* Encodes n_texts texts on n_threads threads (0 = all cores). ids[i] is a
 * malloc'd array of n[i] ids (caller frees each). On error nothing is
 * returned and the message names the text index. */
CLENS_API int clens_tokenize_batch(const clens_tokenizer *tok, const char *const *texts, const size_t *lens,
                         int n_texts, int add_special, int n_threads, int32_t **ids, int *n,
                         clens_error *err);

/* Decodes ids to text as HF decode does: ids without a token are skipped,
 * skip_special drops special added tokens, byte-level bytes that do not form
 * valid UTF-8 (e.g. the ids end inside a character) become U+FFFD. *text:
 * malloc'd, NUL-terminated, *len bytes (it may contain NUL); caller frees. */
CLENS_API int clens_detokenize(const clens_tokenizer *tok, const int32_t *ids, int n, int skip_special,
                     char **text, size_t *len, clens_error *err);

/* Id of a token string (added tokens first, then the model vocabulary), or -1. */
CLENS_API int32_t clens_tokenizer_token_to_id(const clens_tokenizer *tok, const char *token);
/* Token string of an id (byte-level form, e.g. "Ġworld"), or NULL. Valid as
 * long as the tokenizer. */
CLENS_API const char *clens_tokenizer_id_to_token(const clens_tokenizer *tok, int32_t id);
/* Largest token id + 1, added tokens included (the model's embedding may be larger). */
CLENS_API int32_t clens_tokenizer_vocab_size(const clens_tokenizer *tok);
/* 1 if id is a special added token (dropped by skip_special). */
CLENS_API int clens_tokenizer_is_special(const clens_tokenizer *tok, int32_t id);

typedef struct clens_tokenizer_info {
    const char *path;        /* tokenizer.json, or the folder of the older form */
    const char *dir;         /* folder holding the tokenizer files */
    const char *bos_token;   /* tokenizer_config.json bos_token, NULL if absent/null */
    const char *eos_token;   /* tokenizer_config.json eos_token, NULL if absent/null */
    int32_t bos_id, eos_id;  /* their ids, -1 if absent or not in the vocabulary */
    int add_bos_token;       /* add_bos_token as written: 1, 0, or -1 if absent */
    int adds_bos;            /* 1 if encoding with add_special prepends a token */
    int32_t vocab_size;      /* as clens_tokenizer_vocab_size */
    int n_added;             /* number of added tokens */
} clens_tokenizer_info;

/* Fills info; its strings are valid as long as the tokenizer. */
CLENS_API int clens_tokenizer_get_info(const clens_tokenizer *tok, clens_tokenizer_info *info);

/* UTF-8 helpers. clens_utf8_check returns n if s[0..n) is valid UTF-8, else
 * the byte offset of the first invalid sequence. clens_utf8_lossy replaces
 * every maximal invalid subpart by U+FFFD (WHATWG decoder, as Node and Rust's
 * from_utf8_lossy do) into a malloc'd, NUL-terminated *out; caller frees. */
CLENS_API size_t clens_utf8_check(const char *s, size_t n);
CLENS_API int clens_utf8_lossy(const char *s, size_t n, char **out, size_t *out_len);

/* ---------------------------------------------------------- chat templates */
/* Chat templates are Jinja2 programs shipped with a model (docs/rulings.md
 * R8: always read from the model folder, none compiled in). clens renders them with its
 * own interpreter of the Jinja2 subset real templates use, with the semantics
 * of transformers' apply_chat_template: jinja2 ImmutableSandboxedEnvironment
 * (trim_blocks, lstrip_blocks, loopcontrols), a tojson that does not escape
 * non-ASCII, raise_exception(msg), strftime_now(fmt), the {% generation %}
 * tag. Unsupported constructs are errors naming line and column. A template
 * is immutable once open: renders of one template may run concurrently. */

typedef struct clens_chat_template clens_chat_template;

/* Opens a chat template. path is a model folder (its chat_template.jinja wins
 * over the "chat_template" of its tokenizer_config.json, which may be a string
 * or a list of {"name", "template"} of which "default" is taken), a .jinja
 * file, or a tokenizer_config.json. Special tokens (bos_token, eos_token,
 * unk_token, pad_token, sep_token, cls_token, mask_token,
 * additional_special_tokens; strings or {"content": ...} objects; null ones
 * are left undefined, as transformers does) come from the tokenizer_config.json
 * in the same folder, if there is one. The template is parsed here: syntax
 * errors and unknown filters/tests/tags are reported with line and column.
 * On success *out owns the template; free it with clens_chat_template_free. */
CLENS_API int clens_chat_template_open(clens_chat_template **out, const char *path, clens_error *err);
/* Same from a template source; special_tokens_json is a JSON object such as
 * {"bos_token": "<s>", "eos_token": "</s>"} or NULL. */
CLENS_API int clens_chat_template_from_string(clens_chat_template **out, const char *source, size_t len,
                                    const char *special_tokens_json, clens_error *err);
CLENS_API void clens_chat_template_free(clens_chat_template *t);
/* Provenance, valid as long as the template: sha256 (hex) of the template
 * source bytes; where it was read from ("DIR/chat_template.jinja" or
 * "DIR/tokenizer_config.json#chat_template" or "<string>"); the source. */
CLENS_API const char *clens_chat_template_sha256(const clens_chat_template *t);
CLENS_API const char *clens_chat_template_origin(const clens_chat_template *t);
CLENS_API const char *clens_chat_template_source(const clens_chat_template *t, size_t *len);
/* A special token string by name ("bos_token", ...), or NULL when undefined. */
CLENS_API const char *clens_chat_template_special_token(const clens_chat_template *t, const char *name);

#define CLENS_CHAT_NOW_LOCAL INT64_MIN

typedef struct clens_chat_render_params {
    int add_generation_prompt;     /* 1 / 0, or -1: the messages object's
                                      "add_generation_prompt" key, default 0 */
    const char *extra_kwargs_json; /* JSON object of more template variables,
                                      e.g. {"enable_thinking": false}, or NULL */
    int64_t now;                   /* what strftime_now() formats: epoch seconds
                                      (UTC), or CLENS_CHAT_NOW_LOCAL (default) */
    size_t max_output;             /* bytes of output, default 64 MiB */
    size_t max_memory;             /* bytes of working memory, default 1 GiB */
    int64_t max_steps;             /* evaluation steps (guards against runaway
                                      templates), default 200000000 */
} clens_chat_render_params;

CLENS_API clens_chat_render_params clens_chat_render_default_params(void);

/* Renders a conversation. messages_json is a JSON list of messages
 * ({"role", "content", ...any other keys: reasoning_content, tool_calls, ...})
 * or an object {"messages": [...], "tools": [...], "documents": [...], ...}
 * whose other keys are template variables too. Template variables, later
 * wins: the special tokens; the object's other keys; extra_kwargs_json; then
 * messages, tools and documents (None when absent) and add_generation_prompt.
 * JSON maps to template values generically (object -> dict in key order,
 * array -> list, integer -> int, real -> float, null -> None).
 * On success *out is a malloc'd NUL-terminated string (the caller frees it)
 * of *out_len bytes. A raise_exception("msg") in the template fails with
 * CLENS_E_ARG and "... raise_exception: msg"; other runtime errors name the
 * template line and column. */
CLENS_API int clens_chat_template_render(const clens_chat_template *t, const char *messages_json,
                               int add_generation_prompt, const char *extra_kwargs_json,
                               char **out, size_t *out_len, clens_error *err);
/* Same with params; when spans is not NULL, *spans receives a malloc'd array
 * of *n_spans (start, end) byte-offset pairs ([2 * n_spans] entries) of the
 * text the top-level {% generation %} blocks produced (transformers'
 * assistant mask), or NULL when there are none. */
CLENS_API int clens_chat_template_render_ex(const clens_chat_template *t, const char *messages_json,
                                  const clens_chat_render_params *params, char **out, size_t *out_len,
                                  size_t **spans, size_t *n_spans, clens_error *err);
/* Encodes rendered text with tok as transformers does: when the text
 * already starts with the template's bos_token, special tokens are off (no
 * double BOS, as apply_chat_template(tokenize=True)); otherwise the
 * tokenizer's default (add_special_tokens=True). *ids is malloc'd (caller
 * frees); *add_special (may be NULL) receives the choice made. */
CLENS_API int clens_chat_template_tokenize(const clens_chat_template *t, const clens_tokenizer *tok, const char *text,
                                 size_t len, int32_t **ids, int *n, int *add_special, clens_error *err);

/* ------------------------------------------------------------------- pairs */

/* (clean, corrupted) prompt pairs: the same solution text cut at the same
 * boundary, except that one verified intermediate arithmetic result is wrong
 * in the corrupted one (docs/pairs.md; docs/rulings.md R5, R6, R13).
 * Pairs are model-independent text: rendering and tokenization happen where
 * pairs are used. Rules and defaults: docs/pairs.md. All offsets are in
 * bytes of the UTF-8 text. */

typedef enum { CLENS_PAIRS_MATH = 0, CLENS_PAIRS_GSM8K = 1 } clens_pairs_format;

typedef enum {
    CLENS_CORRUPT_LAST_DIGIT = 0, /* last digit +1 (9 -> 8): digit count kept */
    CLENS_CORRUPT_PLUS_ONE = 1,   /* number + 1 as Python's str() prints it (the seed's) */
    CLENS_CORRUPT_PLUS_MINUS_ONE = 2, /* +1 or -1 in the last place, seeded, digit count kept (default) */
    CLENS_CORRUPT_PLUS_MINUS_SIG = 3  /* +1 or -1 in the last nonzero digit: trailing zeros kept */
} clens_corrupt_mode;

typedef enum {
    CLENS_CUT_LINE = 0,      /* after the number through the end of its line or sentence (default) */
    CLENS_CUT_CHARS = 1,     /* N characters after the start of the number, both prompts
                                cut at the same text boundary ("chars:N") */
    CLENS_CUT_CHARS_RAW = 2  /* the seed's: each prompt cut N characters after the start
                                of the number in its own text ("chars-raw:N") */
} clens_cut_mode;

typedef enum {
    CLENS_SITE_RANDOM = 0,   /* seeded choice among the problem's sites (default) */
    CLENS_SITE_LAST = 1,     /* the last site before the answer */
    CLENS_SITE_SEED = 2      /* the seed's: the last "= n" match, verified or not (fidelity) */
} clens_site_mode;

/* One candidate ("lhs = n" or GSM8K annotation) as the builder judged it,
 * for auditing (clens pairs --candidates). Pointers are valid during the call. */
typedef struct clens_pairs_candidate {
    const char *id;              /* problem id */
    int64_t line;                /* 1-based dataset line, 0 if unknown */
    const char *text;            /* the text prompts are cut from (MATH solution,
                                    GSM8K answer without annotations) */
    size_t text_len;
    int64_t start, end;          /* the number in text (start == end if not located) */
    int negative;                /* written "-n" (the sign is not part of the site) */
    const char *expr;            /* the lhs as written: expr[0, expr_len) */
    size_t expr_len;
    int reason;                  /* 0: usable site; else clens_pairs_reason_name(reason) */
    const char *lhs_value;       /* exact value of the lhs ("12", "-7/2"), "" if not evaluated */
} clens_pairs_candidate;

typedef void (*clens_pairs_candidate_fn)(void *user, const clens_pairs_candidate *c);

typedef struct clens_pairs_params {
    const char *data_path;       /* JSONL dataset (clens_pairs_build) */
    const char *source_name;     /* recorded as "source"; NULL = data_path */
    clens_pairs_format format;
    uint64_t seed;               /* 0 .. 2^63-1 (written as a JSON integer) */
    long limit;                  /* stop after this many pairs; 0 = no limit */
    clens_cut_mode cut;
    int cut_chars;               /* N of chars:N / chars-raw:N */
    clens_corrupt_mode corrupt;
    clens_site_mode site;
    clens_pairs_candidate_fn on_candidate; /* called for every candidate, or NULL */
    void *on_candidate_user;
} clens_pairs_params;

/* MATH, seed 0, no limit, cut line, corrupt plus-minus-one, site random. */
CLENS_API clens_pairs_params clens_pairs_default_params(void);

typedef struct clens_pair_site {
    int64_t start, end;          /* the clean number is clean_prefix[start, end) */
    char *expr;                  /* the left-hand side as written ("120\cdot30", "16-3-4") */
    char *clean_value;           /* == clean_prefix[start, end), as written ("74,592") */
    char *corrupted_value;       /* == corrupted_prefix[start, start + strlen(corrupted_value)) */
} clens_pair_site;

/* One pair (the keys of docs/rulings.md R5, then ours). Every string is
 * malloc'd, NUL-terminated and owned by the pair array (clens_pairs_free). Outside [start, end) the two
 * prefixes are equal byte for byte (except with chars-raw cuts, where the
 * tails may differ in length). */
typedef struct clens_pair {
    char *id;                    /* problem id ("test/algebra/351.json"; "gsm8k/test.jsonl:17") */
    char *source;                /* dataset path as given */
    char *source_sha256;         /* hex sha256 of the dataset file */
    char *problem;               /* problem / question text */
    char *clean_prefix;          /* solution text from its start through the cut */
    char *corrupted_prefix;
    clens_pair_site site;
    char *cut;                   /* "line", "chars:20", "chars-raw:20" */
    char *corrupt;               /* "last-digit", "plus-one", "plus-minus-one", "plus-minus-sig" */
    uint64_t seed;
    int64_t candidate_index;     /* index of this pair in the file (shards take index mod n) */
    char *format;                /* "math", "gsm8k" */
    char *answer;                /* final answer as written (\boxed{..} / "#### ..") */
    int64_t line;                /* 1-based line of the problem in the dataset */
    int n_sites;                 /* usable sites in the problem */
    int site_index;              /* which of them (0-based, text order) */
    clens_site_mode site_rule;   /* how it was chosen ("site_rule": "random" / "last" / "seed") */
    int site_verified;           /* the site is a verified intermediate step (always, except
                                    with site_rule "seed"); "site_verified" in the JSON */
    char *solution_source;       /* "reference" (the dataset's solution) or "on-policy" */
    char *generator;             /* on-policy: JSON object text (model, settings), else NULL */
} clens_pair;

#define CLENS_PAIRS_MAX_REASONS 32

/* Counters of a build. A candidate is an "lhs = n" ("= n" whose n starts
 * with a digit) or a GSM8K annotation; each is either a site or dropped for
 * exactly one reason (clens_pairs_reason_name), so
 * candidates == sites + sum(drops). */
typedef struct clens_pairs_stats {
    char source_sha256[65];      /* hex sha256 of the dataset (build, build_buffer) */
    long problems;               /* dataset lines read */
    long problems_with_site;     /* problems with >= 1 usable site */
    long candidates;
    long sites;                  /* verified, intermediate, not the final answer */
    long pairs;                  /* pairs made */
    long drops[CLENS_PAIRS_MAX_REASONS]; /* candidates dropped, by reason index */
    long duplicates;             /* pairs dropped: same clean prefix as an earlier pair */
} clens_pairs_stats;

/* Number of reasons and their names ("mismatch", "assignment", ...); index 0
 * is "ok" (not a drop). */
CLENS_API int clens_pairs_reason_count(void);
CLENS_API const char *clens_pairs_reason_name(int i);

/* Parses "line" / "chars:N" / "chars-raw:N", "last-digit" / "plus-one",
 * "random" / "last", "math" / "gsm8k" into params. 0 or CLENS_E_ARG. */
CLENS_API int clens_pairs_parse_cut(clens_pairs_params *p, const char *s, clens_error *err);
CLENS_API int clens_pairs_parse_corrupt(clens_pairs_params *p, const char *s, clens_error *err);
CLENS_API int clens_pairs_parse_site(clens_pairs_params *p, const char *s, clens_error *err);
CLENS_API int clens_pairs_parse_format(clens_pairs_params *p, const char *s, clens_error *err);

/* Builds pairs from params->data_path: one pair per problem that has a usable
 * site, in file order, up to params->limit. On success *pairs (malloc'd, free
 * with clens_pairs_free) holds *n pairs and *stats (may be NULL) the counts.
 * A malformed line is an error naming the file and line number. */
CLENS_API int clens_pairs_build(const clens_pairs_params *params, clens_pair **pairs, size_t *n,
                      clens_pairs_stats *stats, clens_error *err);

/* The same from a JSONL buffer in memory; source_sha256 is the buffer's. */
CLENS_API int clens_pairs_build_buffer(const clens_pairs_params *params, const char *data, size_t len,
                             clens_pair **pairs, size_t *n, clens_pairs_stats *stats,
                             clens_error *err);

/* One pair from one solution text (MATH LaTeX, or GSM8K with its <<..>>
 * annotations; e.g. a generated solution). Returns a status; on CLENS_OK
 * *made is 1 and *out filled (free with clens_pair_clear) if the text has a
 * usable site, 0 if not. stats (may be NULL) is added to. source,
 * source_sha256 and candidate_index are left empty / 0 for the caller. */
CLENS_API int clens_pairs_from_text(const clens_pairs_params *params, const char *id,
                          const char *problem, const char *solution, clens_pair *out, int *made,
                          clens_pairs_stats *stats, clens_error *err);

/* The same for a model-generated solution (on-policy mode): prose with
 * LaTeX math, plain-text steps "12*5 = 60" included (docs/pairs.md);
 * sites equal to the text's own answer or to the dataset's reference answer
 * (reference: the reference solution / answer text, may be NULL) are
 * excluded. solution_source is "on-policy". */
CLENS_API int clens_pairs_from_generation(const clens_pairs_params *params, const char *id,
                                const char *problem, const char *generated,
                                const char *reference, clens_pair *out, int *made,
                                clens_pairs_stats *stats, clens_error *err);

/* The corrupted form of a numeral as written ("74,592", "2.50", "1,\!000"; no
 * sign) under mode into *out (malloc'd, caller frees); CLENS_OK or CLENS_E_NOMEM. */
CLENS_API int clens_pairs_corrupt_value(const char *numeral, clens_corrupt_mode mode, char **out, clens_error *err);

/* One JSON line (no newline) for a pair, keys in docs/pairs.md order, into
 * *out (malloc'd, caller frees); CLENS_E_FORMAT when a string is not UTF-8,
 * CLENS_E_NOMEM when out of memory. */
CLENS_API int clens_pair_to_json(const clens_pair *p, char **out, clens_error *err);

/* Writes pairs as JSONL atomically (temp file + rename). */
CLENS_API int clens_pairs_write_jsonl(const char *path, const clens_pair *pairs, size_t n,
                            clens_error *err);

/* Reads a pairs.jsonl file. Each line must be a JSON object with the keys of docs/pairs.md
 * of the right types and a site consistent with the prefixes; otherwise an
 * error "path:LINE: what". Blank lines are skipped. *pairs: clens_pairs_free. */
CLENS_API int clens_pairs_read_jsonl(const char *path, clens_pair **pairs, size_t *n, clens_error *err);

CLENS_API void clens_pair_clear(clens_pair *p);
CLENS_API void clens_pairs_free(clens_pair *pairs, size_t n);

/* On-policy pairs (docs/pairs.md): the model writes its own greedy solution
 * to each problem (raw prompt by default), and the error is injected into
 * that text (clens_pairs_from_generation's rules). */
typedef struct clens_onpolicy_params {
    const char *generations_path; /* append-only JSONL of the generated texts (resumable) */
    int max_new_tokens;           /* 512 (the seed's) */
    int batch;                    /* problems generated together (16) */
    long pool;                    /* at most this many problems, in file order (0 = all) */
    int prompt_chat;              /* 0: the seed's raw prompt; 1: the model's chat template */
    const char *model_label;      /* recorded in the pairs (default: the model path) */
    /* called after each batch: rows done of rows, texts generated, pairs made */
    void (*progress)(void *user, long done, long total, long generated, long pairs);
    void *progress_user;
} clens_onpolicy_params;

CLENS_API clens_onpolicy_params clens_onpolicy_default_params(void);

/* Builds pairs from the model's own solutions to the problems of
 * pp->data_path (in file order, until pp->limit pairs or op->pool problems).
 * Generations already in op->generations_path (same settings) are reused;
 * the file is refused if its settings differ. Pairs carry solution_source
 * "on-policy" and a generator object (model, settings hash, text hash). */
CLENS_API int clens_pairs_build_on_policy(clens_model *m, const clens_tokenizer *tok,
                                const clens_chat_template *tmpl, const clens_pairs_params *pp,
                                const clens_onpolicy_params *op, clens_pair **pairs,
                                size_t *n, clens_pairs_stats *stats, clens_error *err);

/* ---------------------------------------------------------------- patching */
/* Final-token activation patching (docs/patch-output.md): the clean run's
 * activation at one site, at the last position only, written into the
 * corrupted run, and a metric of the final logits read. Sites are
 * clens_site (hooks section). */

/* A metric of one row of final logits: a built-in from the library's table,
 * or a caller's function (CLENS_METRIC_CALLBACK).
 *   logprob_mass: log of the total softmax probability of ids;
 *   logit_mean:   mean raw logit of ids;
 *   callback:     fn(user, logits, n_vocab); it must not call back into the
 *                 library on the same context, and is called from the thread
 *                 that called the patcher or run engine. */
typedef enum { CLENS_METRIC_LOGPROB_MASS = 0, CLENS_METRIC_LOGIT_MEAN, CLENS_METRIC_CALLBACK,
               CLENS_METRIC_COUNT } clens_metric_kind;

typedef double (*clens_metric_fn)(void *user, const float *logits, int n_vocab);

typedef struct clens_metric {
    clens_metric_kind kind;
    const int32_t *ids;       /* built-ins: the token ids read (copied by the patcher) */
    int n_ids;
    clens_metric_fn fn;       /* CALLBACK only */
    void *user;               /* passed to fn */
} clens_metric;

/* "logprob_mass", "logit_mean", "callback" ("?" otherwise). */
CLENS_API const char *clens_metric_name(clens_metric_kind kind);
/* Parses a built-in metric's name: CLENS_OK, or CLENS_E_ARG naming the word. */
CLENS_API int clens_metric_parse(const char *s, clens_metric_kind *kind, clens_error *err);
/* Value of a metric on one row of logits (vocab entries). */
CLENS_API double clens_metric_value(const clens_metric *mt, const float *logits, int vocab);

typedef enum { CLENS_PATCH_FAST = 0, CLENS_PATCH_RERUN,
               CLENS_PATCH_ATP /* attribution patching: run engine only, built-in metrics
                                   only (docs/dynamics.md) */ } clens_patch_method;

typedef struct clens_patcher clens_patcher;

/* A patcher for prompts of up to max_tokens tokens and a fixed list of sites
 * (each must pass clens_site_check) and metrics (built-ins or callbacks).
 * On success *out owns its inference context; free it with clens_patcher_free. */
CLENS_API int clens_patcher_new(clens_patcher **out, clens_model *m, int max_tokens, const clens_site *sites, int n_sites,
                      const clens_metric *metrics, int n_metrics, clens_error *err);
CLENS_API void clens_patcher_free(clens_patcher *p);

/* Patches the final position of the corrupted prompt with the clean run's
 * activation at every site. clean and corr have T tokens each. out is
 * [n_metrics][2 + n_sites]: metric of the clean run, of the corrupted run,
 * then of the run patched at each site. FAST: the shared prefix is computed
 * once, and every patched variant is an ephemeral one-token row on top of the
 * corrupted run's KV cache, all in one batch. RERUN: one plain full forward
 * of the corrupted prompt per site with one hook writing the final position.
 * *shared_prefix (may be NULL) receives the prefix length computed once. */
CLENS_API int clens_patch_run(clens_patcher *p, const int32_t *clean, const int32_t *corr, int T, clens_patch_method method,
                    double *out, int *shared_prefix, clens_error *err);

/* clens_patch_run in two steps, so that a caller can filter a pair on its
 * clean and corrupted metrics (out columns 0 and 1) before paying for the
 * patched variants: begin runs both prompts, sites the variants of the pair
 * begun last (valid until the next begin); sites fills columns 2.. of the
 * same out array begin filled. */
CLENS_API int clens_patch_begin(clens_patcher *p, const int32_t *clean, const int32_t *corr, int T, clens_patch_method method,
                      double *out, int *shared_prefix, clens_error *err);
CLENS_API int clens_patch_sites(clens_patcher *p, double *out, clens_error *err);

/* Results of a patching run folder. */

/* Aggregate statistics of a patching run (docs/patch-output.md): per-pair
 * recovery with the primary metric, per site mean / population SD / median /
 * ratio of sums / seeded percentile-bootstrap 95% CI, per-layer increments,
 * counts, per-pair values. The first settings.n kept pairs in candidate order
 * are used (a later kept pair never replaces an earlier one, so shards and
 * resumed runs agree). Everything in results.json but "timing" is a
 * deterministic function of the inputs (same bytes on every machine).
 *
 * settings_json: the NUL-terminated text of settings.json; records_jsonl: len
 * bytes of records.jsonl lines (several shards' files may be concatenated,
 * lines in any order). Malformed lines are reported with their line number,
 * a candidate recorded twice is an error. On success *results_json and
 * *results_md (may be NULL if not wanted) are malloc'd texts the caller frees. */
CLENS_API int clens_results_build(const char *settings_json, const char *records_jsonl, size_t len,
                        char **results_json, char **results_md, clens_error *err);

/* Reads DIR/settings.json and DIR/records.jsonl and writes DIR/results.json
 * and DIR/results.md atomically. If results_md is not NULL it receives a
 * malloc'd copy of the markdown (for printing). */
CLENS_API int clens_results_write(const char *dir, char **results_md, clens_error *err);

/* `clens merge`: checks that dirs[0..n_dirs) are all the shards of one study
 * (same settings_hash and settings, same shard count, distinct indices, none
 * missing, same model identity in provenance), then writes into out_dir
 * (created if needed; refused if it is an input or holds another study):
 * settings.json (shard {0, 1}, the lowest shard's provenance), records.jsonl
 * (all records, sorted by candidate, lines verbatim), results.json, results.md,
 * each atomically. *warnings (may be NULL) receives malloc'd text (one line per
 * warning, e.g. a differing provenance.host_cpu) or NULL if none. */
CLENS_API int clens_results_merge(const char *const *dirs, int n_dirs, const char *out_dir,
                        char **warnings, clens_error *err);

/* ============================================================ run engine */
/* A patching run in a folder: the engine behind
 * `clens patch` (and any caller that runs a study per model). It owns the run
 * folder and its schema (docs/patch-output.md): settings.json (settings, their
 * hash, shard, provenance), records.jsonl (one line per candidate, appended
 * and fsync'd), results.json / results.md (clens_results_write). Opening a
 * folder that already holds a run resumes it; a run with other settings or
 * another setup (model, tokenizer, template, kernel path, ...) is refused with
 * the differing key named. */

/* Keep/drop rule on the clean and corrupted logit_mean values, with
 * D = m_clean - m_corr (usually < 0, the seed's sign). DEFAULT keeps
 * -D >= min_diff (a pair with D >= min_diff is "wrong_sign"); SEED keeps
 * |D| >= min_diff. Both: a non-finite value is "non_finite", D == 0 is
 * "too_small", min_diff == 0 keeps every other pair. */
typedef enum { CLENS_FILTER_DEFAULT = 0, CLENS_FILTER_SEED, CLENS_FILTER_COUNT } clens_filter_kind;

/* "default" / "seed"; parse returns 0 or CLENS_E_ARG. */
CLENS_API const char *clens_filter_name(clens_filter_kind f);
CLENS_API int clens_filter_parse(const char *s, clens_filter_kind *f);
/* NULL to keep the pair, else the drop reason (static string): "non_finite",
 * "too_small" or "wrong_sign". */
CLENS_API const char *clens_filter_decide(clens_filter_kind f, double min_diff, double m_clean, double m_corr);

typedef struct clens_run_params {
    const char *pairs_path;              /* pairs.jsonl (candidates in file order); required */
    const clens_hook_point *site_types;  /* patchable points, by short name in settings.site_types;
                                            first = primary; per-head points: every head; required */
    int n_site_types;
    const int *layers;                   /* layers to patch; NULL = all */
    int n_layers;
    clens_metric_kind metric;            /* primary metric (recovery uses it); LOGPROB_MASS */
    clens_metric_fn metric_fn;           /* metric CALLBACK: the function of the final logits */
    void *metric_user;                   /* passed to metric_fn */
    const char *metric_name;             /* metric CALLBACK: its name, required (settings.metric
                                            and the records' key; not a built-in's name). A run
                                            resumes only under the same name: the name stands
                                            for the function */
    const char *const *words;            /* correction strings; NULL = Wait, But, Actually, Hmm */
    int n_words;
    clens_patch_method method;           /* FAST */
    int prompt_chat;                     /* 1 (default): the model's chat template; 0: the seed's raw prompt */
    clens_filter_kind filter;            /* DEFAULT */
    double min_diff;                     /* 3 */
    long n_target;                       /* kept pairs wanted (50) */
    long bootstrap_resamples;            /* 2000 */
    long long bootstrap_seed;            /* 0 */
    int shard_index, shard_count;        /* 0, 1 */
    int max_tokens;                      /* longest prompt; 0 = min(4096, context), lowered to fit memory */
    const char *matmul;                  /* the mode the model was opened with: "default" (NULL),
                                            "portable" or "bf16"; settings.matmul records the effective one */
    const char *fidelity;                /* settings.fidelity: "seed" (the seed's choices, --fidelity seed)
                                            or "clens-default"; NULL: not recorded (docs/study.md) */
} clens_run_params;

CLENS_API clens_run_params clens_run_default_params(void);

/* The state of a run, valid until the next call on it. */
typedef struct clens_run_info {
    long candidates;        /* candidates of this shard in the pairs file */
    long target;            /* params.n_target */
    long done, kept;        /* records in records.jsonl (resumed ones included), kept among them */
    long resumed_done, resumed_kept; /* found when the run was opened */
    long ran;               /* candidates processed by this process */
    double seconds;         /* their total time */
    int max_tokens;         /* the prompt limit used (settings.max_tokens) */
    int max_tokens_from_memory; /* 1 if the memory plan lowered it */
    int n_sites;            /* sites patched per pair */
    const char *last_id;    /* the pair processed last, and its drop reason (NULL: kept) */
    const char *last_reason;
    const char *notes;      /* lines worth showing (a torn last line dropped, provenance
                               differences that are allowed), or NULL */
    int finished;           /* target reached or candidates exhausted */
} clens_run_info;

typedef struct clens_run clens_run;

/* Creates dir (and settings.json, an empty records.jsonl) or resumes the run
 * in it. The model is borrowed (it must outlive the run); the tokenizer and
 * the chat template are read from its folder. A torn last line of
 * records.jsonl (a write cut by a kill or a full disk) is dropped and noted.
 * CLENS_E_STATE if dir holds a run with other settings, shard or setup; the
 * message names the differing key. Free with clens_run_free. */
CLENS_API int clens_run_open(clens_run **out, const char *dir, clens_model *m, const clens_run_params *params,
                   clens_error *err);
CLENS_API const clens_run_info *clens_run_get_info(const clens_run *r);
/* Processes the next candidate and appends its record; *finished = 1 (and
 * nothing done) when the target is reached or no candidate is left. A record
 * is appended whole or not at all (a short write, e.g. on a full disk, is
 * undone and reported with its errno). */
CLENS_API int clens_run_next(clens_run *r, int *finished, clens_error *err);
/* clens_run_next until finished; progress (may be NULL) after every candidate. */
CLENS_API int clens_run_execute(clens_run *r, void (*progress)(void *user, const clens_run_info *info), void *user,
                      clens_error *err);
/* Writes results.json and results.md (clens_results_write); *results_md (may
 * be NULL) receives a malloc'd copy of the markdown. */
CLENS_API int clens_run_finish(clens_run *r, char **results_md, clens_error *err);
CLENS_API void clens_run_free(clens_run *r);

/* ============================================================== comparison */

/* `clens compare` (docs/compare.md):
 * profiles of several patching runs on absolute layer and relative depth
 * (resid_pre numbering), increments with bootstrap CIs, the profile label of
 * docs/compare.md, the critical layer, pairwise differences on a common depth
 * grid, and the reports comparison.md / comparison.json / pairs.csv / *.svg /
 * report.html. */
typedef struct clens_compare_params {
    int resamples;        /* bootstrap resamples (0 = no CIs), default 2000 */
    uint64_t seed;        /* bootstrap seed, default 0 */
    double min_jump;      /* spike threshold on an increment, points, default 10 */
    double mid_lo, mid_hi;/* relative-depth range of a mid spike, default 0.4, 0.8 */
    double critical_pct;  /* critical layer: first reaching this mean, default 50 */
    double grid_step;     /* relative-depth grid of the differences, default 0.1 */
    /* "INPUT=NAME" overrides of the model label / training regime, matched
     * against the input argument as given or its last path component; for the
     * seed fixture "INPUT#k" (k = 1..4) names its k-th model. May be NULL. */
    const char *const *labels;
    int n_labels;
    const char *const *trainings;
    int n_trainings;
    /* Evidence shown beside an input's patching profile, per layer (docs/compare.md,
     * "Probe, steering and AtP beside patching"): "INPUT=PATH", INPUT matched as for
     * labels. probes: a `clens probe` output folder (probe.json); steers: a `clens
     * steer` output folder (steer.json); atps: a `clens patch --method atp` run folder
     * on the same pairs as INPUT (exact and AtP side by side, correlation per site
     * type, disagreeing sites flagged). Each may be NULL. */
    const char *const *probes;
    int n_probes;
    const char *const *steers;
    int n_steers;
    const char *const *atps;
    int n_atps;
} clens_compare_params;

CLENS_API clens_compare_params clens_compare_default_params(void);

/* Reads inputs[0..n_inputs) (run folders, results.json files, the seed
 * fixture), writes the reports into out_dir (created; every file atomically)
 * and, if summary_md is not NULL, returns the comparison.md text (malloc'd,
 * caller frees). Errors name the input file and the problem. */
CLENS_API int clens_compare_write(const char *const *inputs, int n_inputs, const clens_compare_params *params,
                        const char *out_dir, char **summary_md, clens_error *err);
/* ========================================================= model organisms */
/* Small models trained by clens on arithmetic chain-of-thought traces that say
 * "Wait" after an arithmetic error: the trace generator, their vocabulary
 * and the behaviour measurement. Formats and definitions: docs/organisms.md. */

typedef struct clens_traces_params {
    uint64_t seed;
    int n;                 /* traces to write (>= 1) */
    int heldout;           /* 0: training split; 1: held-out split (a problem set
                              disjoint from training by construction) */
    double error_frac;     /* training split: fraction of traces with one wrong
                              intermediate step followed by a correction line;
                              must be 0 for the held-out split (errors are
                              injected there by the pair builder / behaviour) */
    int min_steps, max_steps;  /* steps per trace, 2 <= min <= max <= 4 */
    int max_operand;       /* operands drawn from [1, max_operand] (<= 99) */
    int max_mul;           /* multipliers drawn from [2, max_mul] (<= 99) */
    int max_value;         /* every result in [1, max_value] */
    int annotate;          /* 1: correct steps carry GSM8K <<expr=n>> annotations;
                              0: the text as the model reads it (annotations
                              stripped, what the pair builder's prompts show) */
    int heldout_mod;       /* a problem is held out iff fnv1a64(its key) % heldout_mod == 0 */
} clens_traces_params;

/* seed 1, n 1000, training split, error_frac 0.3, 2..4 steps, operands 1..99,
 * multipliers 2..9, values <= 999, annotate 1, heldout_mod 10. */
CLENS_API clens_traces_params clens_traces_default_params(void);

/* Generates p->n traces as GSM8K JSONL text ({"question", "answer", then
 * metadata keys}, one object a line; docs/organisms.md). Deterministic for the
 * params. *jsonl is malloc'd (caller frees), *len its length. */
CLENS_API int clens_traces_generate(const clens_traces_params *p, char **jsonl, size_t *len, clens_error *err);

/* The problem key of a question written by the generator ("7*8|+15|r-90"):
 * CLENS_OK, or CLENS_E_FORMAT if the question is not in the generator's form
 * (or the key would not fit); used to check that the held-out set is
 * disjoint from training. key gets at most n bytes. */
CLENS_API int clens_traces_problem_key(const char *question, char *key, size_t n);

/* The correction words (Wait, But, Actually, Hmm) that traces write. */
extern const char *const clens_correction_words[4];

/* The organism tokenizer: byte-level BPE (Qwen2 pre-tokenizer regex, single
 * digits) whose vocabulary is the 256 bytes plus every word the trace
 * generator and the raw prompt write, each with and without a leading space,
 * and the correction words in both cases (ignore_merges: a whole word in the
 * vocabulary is one token), plus <|endoftext|> (eos). Writes dir/tokenizer.json
 * and dir/tokenizer_config.json (no chat template) atomically; dir is created. */
CLENS_API int clens_organism_tokenizer_write(const char *dir, clens_error *err);

/* Correction token ids: every single-token form of the correction words, with
 * and without a leading space, as written and lower-cased (the ids of `clens
 * patch`'s logprob_mass metric), deduplicated, in that order. *ids malloc'd. */
CLENS_API int clens_correction_ids(const clens_tokenizer *tok, int32_t **ids, int *n, clens_error *err);

typedef struct clens_behaviour {
    double p_correction_after_error;    /* mean P(correction) right after the corrupted step */
    double p_correction_after_correct;  /* mean P(correction) right after the same step, correct */
    int n_traces;
} clens_behaviour;

/* Behaviour on held-out traces (docs/rulings.md R4): for each of the first n traces of
 * heldout_jsonl (written by clens_traces_generate with heldout = 1), the raw
 * prompt "Solve this math problem step by step:\n\n{question}\n\nSolution: "
 * + the trace's text through the end of its probe step (with the step's
 * result corrupted, last digit +-1, or correct), and P = the softmax mass of
 * the correction ids at the next position. records (may be NULL) receives
 * malloc'd JSONL, one line per trace: index, ids of both prompts, both P. */
CLENS_API int clens_behaviour_measure(clens_model *m, const clens_tokenizer *tok, const char *heldout_jsonl, int n,
                            clens_behaviour *out, char **records, clens_error *err);

/* ================================================================ training */
/* `clens train` (docs/train.md): trains a Qwen2 or OLMo-3 model in fp32 on
 * GSM8K-format traces and writes Hugging Face folders. Deterministic for the
 * settings and a thread count; resumable after kill -9 from the last state. */

typedef struct clens_train_settings {
    const char *data;        /* GSM8K JSONL ("question", "answer") */
    const char *tokenizer;   /* folder or tokenizer.json */
    const char *out;         /* output folder */
    const char *arch;        /* "qwen2" or "olmo3" */
    const char *init;        /* HF folder to start from, or NULL (random init) */
    int layers, hidden, heads, kv_heads, ffn;
    int window;              /* olmo3 sliding window (0 = every layer full) */
    int ctx;                 /* max_position_embeddings */
    int tied;                /* tie lm_head to the embedding */
    int steps, batch, seq, warmup, checkpoints, threads;
    double lr, min_lr_frac, weight_decay, clip, rope_theta;
    long long seed;
    const char *dump_dir;    /* tests: gradients of the first step as .npy, or NULL */
} clens_train_settings;

/* The defaults of `clens train --help`. */
CLENS_API void clens_train_settings_default(clens_train_settings *s);

typedef struct clens_train_progress {
    const char *event;       /* "start", "step", "checkpoint", "done", "finished-already" */
    int step, steps;         /* steps done, total */
    int resumed_from;        /* step the run resumed at (0 = fresh) */
    double loss, lr, grad_norm;
    double tokens_per_s, elapsed_s, eta_s;
    long long n_params;
    int n_examples;
    long long n_targets;     /* loss tokens in the data */
    const char *path;        /* "checkpoint": its folder; "done": the output folder */
} clens_train_progress;

typedef void (*clens_train_progress_fn)(const clens_train_progress *p, void *user);

/* Runs (or resumes, or finds finished) the training of s. A training.json in
 * s->out written with other settings is refused with CLENS_E_STATE naming the
 * first differing key. progress may be NULL. */
CLENS_API int clens_train(const clens_train_settings *s, clens_train_progress_fn progress, void *user, clens_error *err);
/* ======================================================= non-finite values */
/* (docs/reliability.md)
 *
 * clens_forward (and so clens_prefill, clens_generate) checks every row it
 * computes at the embedding (or the given init_resid), attn.hook_z,
 * hook_attn_out, hook_mlp_out, hook_resid_post, ln_final and the logits; the
 * first NaN/Inf stops the pass with CLENS_E_NONFINITE and a message naming
 * the hook point, the layer, the position and the sequence. The scan is one
 * pass over each row (cost O(rows x width), negligible beside the products). */

/* Index of the first NaN or Inf in x[0..n), or -1 if all are finite. */
CLENS_API int64_t clens_first_nonfinite(const float *x, size_t n);

/* Scans every weight tensor of the model (F32, BF16, F16, as stored) for NaN
 * and Inf. Returns CLENS_OK, or CLENS_E_NONFINITE with a message naming the
 * first bad tensor, its file, the flat element index and the value. When
 * n_checked is not NULL it receives the number of elements scanned. */
CLENS_API int clens_model_check_weights(const clens_model *m, int64_t *n_checked, clens_error *err);

/* The times strftime_now() can format (clens_chat_render_params.now): Python's
 * datetime years 1..9999, 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z. A
 * render with a `now` outside fails (CLENS_E_ARG) instead of printing garbage. */
#define CLENS_CHAT_NOW_MIN (-62135596800LL)
#define CLENS_CHAT_NOW_MAX 253402300799LL

/* ======================================================== corruption step */
/* The numeral as written ("3000", "20,000", "0.0625"; no sign) +1 (direction
 * > 0) or -1 in its last place, digits changed in place so the separators and
 * the digit count stay ("3000" -> "2999") into *out (malloc'd, caller frees); *out = NULL when
 * that is impossible ("99" + 1, "10" - 1, "0" - 1). CLENS_OK or CLENS_E_NOMEM. The
 * plus-minus-one corruption draws the direction (docs/pairs.md). */
CLENS_API int clens_pairs_corrupt_step(const char *numeral, int direction, char **out, clens_error *err);

/* ============================================================ study runner */
/* `clens study STUDY.json` (docs/study.md): several
 * models through one patching protocol and a comparison. The study file names
 * the models (label, folder or org/name, training regime, notes), the pair
 * source (a shared pairs file, a shared file built from data, or per-model
 * on-policy pairs), the patching settings and the output folder. The study
 * folder holds settings.json (the study's canonical settings, their hash,
 * provenance), pairs, one run folder per model (runs/<label>/, the run
 * engine's schema), comparison/ (clens_compare_write) and study.md. A rerun
 * continues where the last one stopped; other settings are refused, naming
 * the key. */

typedef struct clens_study clens_study;

typedef struct clens_study_options {
    const char *fidelity;   /* "seed" / "clens-default"; NULL: the file's "fidelity" (default clens-default) */
    const char *out;        /* replaces the file's "out"; NULL: the file's */
    int threads;            /* 0 = all cores (not a setting: results do not depend on it) */
} clens_study_options;

/* Reads and checks the study file (every key, the fidelity preset, labels);
 * errors name the file and the key. Nothing is written. */
CLENS_API int clens_study_load(clens_study **out, const char *path, const clens_study_options *opt,
                               clens_error *err);
/* The canonical settings (JSON text, every default filled in) and their hash;
 * valid as long as the study. */
CLENS_API const char *clens_study_settings_hash(const clens_study *s);
/* The study folder (the file's "out" or the override). */
CLENS_API const char *clens_study_out(const clens_study *s);
/* The canonical settings as indented JSON text into *out (malloc'd); CLENS_OK or CLENS_E_NOMEM. */
CLENS_API int clens_study_settings_text(const clens_study *s, char **out, clens_error *err);
/* The plan as text (models and their folders, the pair source, the runs and
 * their state in the study folder, memory per model from the model folder
 * when present, whether the folder's settings would be refused); *text
 * malloc'd. Reads only. */
CLENS_API int clens_study_plan(const clens_study *s, char **text, clens_error *err);
/* Runs the study: settings.json, pairs, each model's run (resumed where it
 * stopped), comparison/, study.md. progress (may be NULL) receives one line
 * at a time (no newline). *summary_md (may be NULL) receives study.md. */
CLENS_API int clens_study_run(clens_study *s, void (*progress)(void *user, const char *line), void *user,
                              char **summary_md, clens_error *err);
CLENS_API void clens_study_free(clens_study *s);

/* The study as tasks, for a cluster (docs/cluster.md): on-policy pairs (one
 * task per model) first, then one task per (model or checkpoint) x shard
 * (with shards n > 1 each run's candidates are split into n shards, docs/rulings.md
 * R13, into shards/<label>/...; without checkpoints, pairs tasks and steps,
 * task t = model * n + shard), then the probe/steer and AtP steps per model;
 * finalize merges the shards (the unsharded run's results.json, apart from
 * timing), fits each checkpoint series, then compares.
 * clens_study_run = prepare + every task in order + finalize. Shards are not
 * a setting: a study may be run with any shard count. */
CLENS_API int clens_study_set_shards(clens_study *s, int shards, clens_error *err);
CLENS_API int clens_study_task_count(const clens_study *s);
/* 1 if the task's run folder holds results.json (it finished), else 0. */
CLENS_API int clens_study_task_finished(const clens_study *s, int task);
/* settings.json (or the resume check) and the shared pairs: what every task needs. */
CLENS_API int clens_study_prepare(clens_study *s, void (*progress)(void *user, const char *line), void *user,
                                  clens_error *err);
/* Runs (or resumes) one task; the study must have been prepared (by any process). */
CLENS_API int clens_study_run_task(clens_study *s, int task, void (*progress)(void *user, const char *line),
                                   void *user, clens_error *err);
/* Merges (shards > 1), compares, writes study.md. */
CLENS_API int clens_study_finalize(clens_study *s, void (*progress)(void *user, const char *line), void *user,
                                   char **summary_md, clens_error *err);

typedef struct clens_study_slurm_params {
    const char *clens;       /* the clens executable the jobs run (absolute path) */
    const char *workdir;     /* the jobs' working directory (--chdir) */
    int cpus_per_task;       /* threads of each task (>= 1) */
    long mem_mb;             /* memory per task; 0 = from the memory plan of the largest model */
} clens_study_slurm_params;

/* The Slurm job array of the study (docs/cluster.md): *task_script (one
 * array task = one clens_study_run_task), *final_script (finalize), and
 * *array (the indices of the unfinished tasks, "0,2,5", or "" if none), all
 * malloc'd. Reads the model folders for the memory plan; writes nothing. */
CLENS_API int clens_study_slurm_scripts(const clens_study *s, const clens_study_slurm_params *p, char **task_script,
                                        char **final_script, char **array, clens_error *err);
/* ============================================ capture, probes, transfer, lens */
/* (docs/probe.md) */

/* One cached activation: hook (point, layer), width, data [n_pos][width]. */
typedef struct clens_cache_entry {
    char name[96];            /* TransformerLens name */
    clens_hook_point point;
    int layer;                /* -1 for hook_embed / ln_final */
    int width;
    float *data;              /* [n_pos][width], owned by the cache */
} clens_cache_entry;

typedef struct clens_cache {
    clens_cache_entry *entries;
    int n;
    int n_pos;                /* rows of every entry's data after a run */
} clens_cache;

/* Resolves a comma-separated list of hook names into an empty cache (no
 * data yet): TransformerLens names ("blocks.3.hook_resid_pre",
 * "ln_final.hook_normalized"), "blocks.*.NAME" (every layer), a point's
 * short name as `clens patch --sites` spells it ("resid_pre", "attn_out",
 * "z", ...: every layer of it) and "all".
 * A negative block index counts from the end ("blocks.-1.hook_resid_post":
 * the output of the last block); "blocks.{n_layers}.hook_resid_pre" names the
 * same activation as blocks.{n_layers-1}.hook_resid_post and is stored under
 * that name (docs/probe.md). Duplicates are kept once, in order of first
 * mention. Free with clens_cache_free. */
CLENS_API int clens_hooks_resolve(const clens_model *m, const char *list, clens_cache *out, clens_error *err);
/* TransformerLens's run_with_cache: one forward pass of ids[0..T) (a fresh
 * context), filling every entry of cache with the activations at positions
 * [n_pos] (NULL: every position, n_pos = T), in that order. logits (may be
 * NULL) receives [T][vocab]. The cache's arrays are reused across calls. */
CLENS_API int clens_run_with_cache(clens_model *m, const int32_t *ids, int T, const int *positions, int n_pos,
                                   clens_cache *cache, float *logits, clens_error *err);
CLENS_API void clens_cache_free(clens_cache *c);

typedef enum { CLENS_CAPTURE_FINAL = 0, CLENS_CAPTURE_ERROR, CLENS_CAPTURE_ALL } clens_capture_positions;
CLENS_API const char *clens_capture_positions_name(clens_capture_positions p);

typedef struct clens_capture_params {
    const char *pairs_path;   /* pairs.jsonl */
    const char *sites;        /* hook list as clens_hooks_resolve; default
                                 "blocks.*.hook_resid_pre,blocks.-1.hook_resid_post":
                                 the residual stream at every depth (docs/probe.md) */
    clens_capture_positions positions; /* FINAL */
    int prompt_chat;          /* 1 (default): the model's chat template; 0: raw */
    long limit;               /* kept pairs at most (0 = all) */
    int max_tokens;           /* longest prompt (0 = max_position_embeddings) */
} clens_capture_params;

CLENS_API clens_capture_params clens_capture_default_params(void);
/* 1 when out_dir holds a finished capture (index.json, no journal). */
CLENS_API int clens_capture_complete(const char *out_dir);

/* `clens capture`: renders every pair for the model (the patch checks: equal
 * lengths, same final token; drops counted by reason), runs clean and
 * corrupted through clens_run_with_cache and writes out_dir/HOOK.npy
 * (float32 [rows][width], rows = (pair, clean|corrupted, position)),
 * index.json and settings.json (docs/probe.md). Resumable: each pair is
 * committed to a journal in out_dir (capture.partial.jsonl / .f32) as it is
 * done, so a killed capture rerun with the same settings and model continues
 * after the last committed pair and ends with the files an uninterrupted run
 * writes; a finished folder is left as it is. Other settings or another
 * model (provenance) are refused (CLENS_E_STATE). */
CLENS_API int clens_capture_pairs(clens_model *m, const clens_capture_params *p, const char *out_dir,
                                  void (*progress)(void *user, long done, long total, long kept), void *user,
                                  clens_error *err);

typedef struct clens_probe_params {
    int folds;                /* k of the pair-grouped k-fold CV (5) */
    double C;                 /* liblinear inverse regularisation (1) */
    int bootstrap;            /* resamples of the 95% CIs (1000) */
    int permutations;         /* label permutations (within pairs) of the null (20) */
    int random_dirs;          /* random unit directions of the baseline (20) */
    uint64_t seed;            /* folds, bootstrap, permutations, random directions (0) */
    const char *hook_filter;  /* only hooks containing this string, or NULL (all) */
} clens_probe_params;

CLENS_API clens_probe_params clens_probe_default_params(void);

/* `clens probe`: per hook (layer) of a capture folder, the difference-of-
 * means direction and an L2 logistic probe (liblinear), evaluated out of
 * fold with pair-grouped folds; writes out_dir/probe.json, probe.md,
 * auroc.svg, directions/HOOK.dom.npy, directions/HOOK.lr.npy. *table_md
 * (may be NULL) receives the markdown table (malloc'd). */
CLENS_API int clens_probe_run(const char *capture_dir, const clens_probe_params *p, const char *out_dir,
                              char **table_md, clens_error *err);

typedef struct clens_transfer_params {
    const char *map_texts;    /* neutral.jsonl ({"text": ...} a line) for the affine map, or NULL
                                 (required when the widths differ) */
    double ridge;             /* map penalty, relative: lambda = ridge * trace(Xc^T Xc) / p (1e-3) */
    int max_texts;            /* neutral texts used (200) */
    int bootstrap;            /* resamples of the 95% CIs (1000) */
    int random_maps;          /* random maps (or random directions) of the null (20) */
    uint64_t seed;            /* (0) */
} clens_transfer_params;

CLENS_API clens_transfer_params clens_transfer_default_params(void);

/* `clens transfer`: applies the directions and probes of probe_dir (fitted
 * on model A) to the activations of capture_dir (model B); writes
 * transfer.json and transfer.md into out_dir (docs/probe.md). */
CLENS_API int clens_transfer_run(const char *probe_dir, const char *capture_dir, const clens_transfer_params *p,
                                 const char *out_dir, char **table_md, clens_error *err);

typedef struct clens_lens_params {
    int top_k;                /* tokens listed per (layer, position) (5) */
    clens_capture_positions positions; /* FINAL; ERROR for pairs only */
    int prompt_chat;          /* pairs: 1 (default) the chat template, 0 raw */
    long limit;               /* pairs: at most this many (4) */
} clens_lens_params;

CLENS_API clens_lens_params clens_lens_default_params(void);

/* The logit lens of one token sequence at positions [n_pos]: for every
 * layer l in 0..n_layers (resid_pre l; l = n_layers is the residual after
 * the last block) the final norm + unembedding (clens_logits_from_resid_rows,
 * docs/rulings.md R3), the top-k tokens with probabilities and the natural log of
 * the probability mass of corr_ids (the correction-token set of `clens
 * patch`'s logprob_mass). *json: a malloc'd JSON object (docs/probe.md). */
CLENS_API int clens_lens_run(clens_model *m, const clens_tokenizer *tok, const int32_t *ids, int T,
                             const int *positions, int n_pos, const int32_t *corr_ids, int n_corr,
                             const clens_lens_params *p, char **json, clens_error *err);

/* `clens lens`: the logit lens of a text (text != NULL) or of the first
 * p->limit usable pairs of pairs_path (clean and corrupted), written as
 * out_dir/lens.json, lens.md (a table) and lens.svg (a heat map of the
 * correction log-mass, top-1 token in each cell). */
CLENS_API int clens_lens_write(clens_model *m, const clens_lens_params *p, const char *text, const char *pairs_path,
                               const char *out_dir, char **table_md, clens_error *err);
/* ================================================================ steering */
/* (docs/steer.md)
 *
 * Steering edits the residual stream at chosen layers and positions through
 * the forward hook API: `add` adds alpha*v; `ablate` removes alpha times the
 * component along v, x - alpha*(x.u)u with u = v/|v|; `mean-ablate` moves
 * the component to a reference mean instead of zero, x - alpha*(x.u - m)u
 * with m = means[layer] (the mean of x.u over reference activations, e.g.
 * error-free prompts: the model stays on its own distribution). The hook point is
 * blocks.{L}.hook_resid_post (what llama.cpp's control vectors edit: the
 * output of block L) or blocks.{L}.hook_resid_pre. */

typedef enum { CLENS_STEER_ADD = 0, CLENS_STEER_ABLATE = 1, CLENS_STEER_MEAN_ABLATE = 2 } clens_steer_mode;
/* Input positions p of a sequence whose prompt has n tokens: all; prompt
 * (p < n); generated (p >= n: tokens fed back in generation); last (p == n-1,
 * the position whose logits give the next token). */
typedef enum {
    CLENS_STEER_POS_ALL = 0, CLENS_STEER_POS_PROMPT, CLENS_STEER_POS_GENERATED, CLENS_STEER_POS_LAST
} clens_steer_positions;

typedef struct clens_steer {
    clens_steer_mode mode;
    clens_hook_point point;          /* CLENS_HOOK_RESID_POST or CLENS_HOOK_RESID_PRE */
    clens_steer_positions positions;
    float alpha;
    int n_layers;                    /* rows of vecs: the model's n_layers */
    const float *vecs;               /* [n_layers][d_model], read only at active layers */
    const unsigned char *active;     /* [n_layers] 1 = steer this layer; NULL = every layer */
    const float *means;              /* [n_layers] mean-ablate: m per layer (NULL: 0, = ablate) */
} clens_steer;

/* Names: "add"/"ablate"/"mean-ablate", "all"/"prompt"/"generated"/"last"; parse returns CLENS_OK or CLENS_E_ARG. */
CLENS_API const char *clens_steer_mode_name(clens_steer_mode m);
CLENS_API int clens_steer_mode_parse(const char *s, clens_steer_mode *m);
CLENS_API const char *clens_steer_positions_name(clens_steer_positions p);
CLENS_API int clens_steer_positions_parse(const char *s, clens_steer_positions *p);

/* Applies s to one activation row x[C] seen at (pt, layer); no-op elsewhere. */
CLENS_API void clens_steer_apply(const clens_steer *s, clens_hook_point pt, int layer, float *x, int C);
/* 1 if s acts at input position pos of a sequence with a prompt of n tokens. */
CLENS_API int clens_steer_at(const clens_steer *s, int pos, int prompt_len);

/* A hook for clens_forward (clens_forward_args.hook = clens_steer_hook_fn,
 * hook_user = a clens_steer_hook): applies `spec` to every row, or
 * row_spec[batch row] (NULL: none) when row_spec is set, at the rows whose
 * position is selected; prompt_len[row.seq] gives each sequence's prompt. */
typedef struct clens_steer_hook {
    const clens_steer *spec;
    const clens_steer *const *row_spec;
    const int *prompt_len;
} clens_steer_hook;
CLENS_API void clens_steer_hook_fn(void *user, const clens_hook_event *ev);

/* Final-token metrics of a pair under steering. out[i][2*(1+n_specs)] for
 * metric i: (clean, corrupted) unsteered, then (clean, corrupted) per spec.
 * Fast (rerun = 0): the common prefix and each prompt but its last token are
 * prefilled once; every spec acting only at the last position (last,
 * generated) is one ephemeral one-token row on that cache, all in one batch;
 * other specs (all, prompt) are full steered reruns. Rerun (rerun = 1): a
 * plain full forward per prompt and spec with the steering hook. */
CLENS_API int clens_steer_pair(clens_model *m, const int32_t *clean, const int32_t *corr, int T,
                               const clens_steer *specs, int n_specs, const clens_metric *metrics, int n_metrics,
                               int rerun, double *out, int *shared_prefix, clens_error *err);

/* Side effects on a text: mean over positions of KL(unsteered || steered) of
 * the next-token distributions, and the fraction of positions whose argmax
 * agrees. The steered pass treats the whole text as the prompt. */
CLENS_API int clens_steer_kl(clens_model *m, const int32_t *ids, int n, const clens_steer *spec,
                             double *mean_kl, double *top1_agree, clens_error *err);

/* Greedy generation (argmax, lowest id on ties, as clens_generate) of up to
 * max_new tokens per prompt with steering (spec may be NULL) and a ban:
 * the logits of ban[0..n_ban) are -inf at every step. out[i] malloc'd. */
CLENS_API int clens_steer_generate(clens_model *m, const int32_t *const *prompts, const int *plen, int np,
                                   const clens_steer *spec, const int32_t *ban, int n_ban, int max_new,
                                   const int32_t *stop_ids, int n_stop, int32_t **out, int *out_n, clens_error *err);
/* clens_steer_generate with clens_generate's sampling (sp: temperature, top-k,
 * top-p, seed, max_new_tokens, stop ids; one stream per prompt index, so a
 * NULL spec and no ban give clens_generate's tokens for the same seed). */
CLENS_API int clens_steer_generate_sampled(clens_model *m, const int32_t *const *prompts, const int *plen, int np,
                                           const clens_steer *spec, const int32_t *ban, int n_ban,
                                           const clens_sample_params *sp, int32_t **out, int *out_n, clens_error *err);

/* llama.cpp control vectors (GGUF; docs/steer.md): tensors direction.N (F32,
 * 1-D, N >= 1) added to the output of block N (blocks.{N}.hook_resid_post)
 * at every position. A clens_cvec holds the sum of loaded files, each scaled:
 * data[N][n_embd] for N in [0, n_rows), row 0 always zero. */
typedef struct clens_cvec {
    int n_embd, n_rows;
    float *data;
} clens_cvec;
/* Adds scale * the file's directions into cv (cv zeroed = empty), as
 * llama.cpp's common_control_vector_load: a direction.N twice in one file is
 * summed; widths must agree. */
CLENS_API int clens_cvec_load(clens_cvec *cv, const char *path, float scale, clens_error *err);
CLENS_API void clens_cvec_free(clens_cvec *cv);
/* Writes directions rows[1..n_rows) (a row of zeros is skipped) as a control
 * vector: general.architecture = "controlvector", controlvector.model_hint,
 * controlvector.layer_count = the number of tensors written. */
CLENS_API int clens_cvec_save(const char *path, const float *rows, int n_rows, int n_embd, const char *model_hint,
                              clens_error *err);
/* The add spec of a control vector for a model of n_layers: vecs [n_layers][C]
 * (caller's buffer) and active[n_layers], layers [layer_start, layer_end]
 * (inclusive; <= 0 means llama.cpp's defaults 1 and n_layers). The width
 * must be d_model (CLENS_E_ARG otherwise). */
CLENS_API int clens_cvec_steer(const clens_cvec *cv, int n_layers, int d_model, int layer_start, int layer_end, float *vecs,
                               unsigned char *active, clens_steer *out, clens_error *err);

/* A steering direction from a file: .npy (float32/float64, shape [C] = the
 * same vector at every layer, or [n_layers or n_layers+1][C] per layer), a
 * probe.json ("layers": [{"layer": L, "direction_npy": path relative to the
 * file}]), or a .gguf control vector. vecs [n_layers][C] is filled (rows the
 * file lacks stay zero) and has[L] = 1 where the file gives layer L. */
CLENS_API int clens_steer_direction_load(const char *path, int n_layers, int C, float *vecs, unsigned char *has,
                                         clens_error *err);
/* ======================================================= training dynamics */
/* `clens dynamics` (docs/dynamics.md): one patching
 * run per checkpoint of a training series on the same pairs (the run engine,
 * resumable per checkpoint), each checkpoint's profile, label and critical
 * layer (the compare code), optional behaviour, and per layer a linear ramp
 * and a logistic step fitted to recovery vs training step (GSL), compared by
 * BIC, with bootstrap CIs over pairs and a stated verdict. */

typedef struct clens_dynamics_params {
    const char *const *checkpoints;  /* folders or org/name@revision (offline HF cache); required */
    int n_checkpoints;               /* >= 2 */
    const long *steps;               /* (n_checkpoints) given steps, or NULL: read each folder's
                                        training.json "step", else a step-NNNNNN folder name */
    clens_run_params run;            /* the patching sweep of every checkpoint (pairs_path required) */
    const char *behaviour_path;      /* held-out traces for clens_behaviour_measure, or NULL */
    int behaviour_n;                 /* traces used (default 100) */
    int resamples;                   /* bootstrap resamples of the fits (default 200; 0 = no CIs) */
    uint64_t seed;                   /* bootstrap seed (0) */
    double min_delta_bic;            /* logistic preferred if BIC_linear - BIC_logistic >= this (10) */
    double max_window_frac;          /* transition if its 10-90% window <= this x step span (0.25) */
    int min_inside;                  /* checkpoints needed inside the window to decide (3) */
    double min_amplitude;            /* |change| below this (points) is "flat" (10) */
    const char *matmul;              /* model open mode: NULL/"default", "portable", "bf16" */
    int threads;                     /* 0 = default */
} clens_dynamics_params;

CLENS_API clens_dynamics_params clens_dynamics_default_params(void);

/* Runs every checkpoint into out_dir/runs/NN-step-S (skipping finished work),
 * then writes dynamics.json, dynamics.md, heatmap.svg, curves.svg and
 * report.html into out_dir (atomically). progress (may be NULL) receives one
 * line of text per event. *verdict_md (may be NULL) gets dynamics.md. */
CLENS_API int clens_dynamics_run(const clens_dynamics_params *p, const char *out_dir,
                                 void (*progress)(void *user, const char *line), void *user, char **verdict_md,
                                 clens_error *err);

/* ===================================================== fidelity preset (report) */
/* The seed study's choices as data (docs/study.md, "Fidelity"), one table that
 * the commands taking --fidelity seed read: `key` in study-file terms
 * ("pairs.cut" is key cut of the "pairs" object), `flag` the command-line flag
 * that sets it (NULL: no single flag), `value` its text. */
typedef struct clens_fidelity_choice {
    const char *key;
    const char *flag;
    const char *value;
} clens_fidelity_choice;

/* The seed preset's choices (static, never freed); *n gets their count. */
CLENS_API const clens_fidelity_choice *clens_fidelity_seed_choices(int *n);

/* ================================================ study: checkpoints, steps */
/* (section of the study work: docs/study.md "Checkpoints" and "Probe, steering
 * and AtP steps", docs/cluster.md, docs/dynamics.md)
 *
 * clens_dynamics_fit: the statistics and reports of clens_dynamics_run
 * (dynamics.json, dynamics.md, heatmap.svg, curves.svg, report.html) over
 * run folders out_dir/runs/NN-step-S (NN the checkpoint's index, two digits;
 * S its step) that already hold results.json: run by the caller, or merged
 * from shards. The settings are written or checked as clens_dynamics_run
 * does; behaviour_path must be NULL (behaviour is measured while running). */
CLENS_API int clens_dynamics_fit(const clens_dynamics_params *p, const char *out_dir,
                                 void (*progress)(void *user, const char *line), void *user, char **verdict_md,
                                 clens_error *err);
/* The training step of a checkpoint (a folder or org/name@revision), read as
 * `clens dynamics` reads it (docs/dynamics.md "Checkpoints and steps"). */
CLENS_API int clens_dynamics_checkpoint_step(const char *checkpoint, long *step, clens_error *err);
/* The study's tasks of the first Slurm array: the on-policy pair generations
 * not yet finished ("0,1", or "" if none) into *out (malloc'd). The tasks of
 * clens_study_slurm_scripts's *array depend on them (afterok). CLENS_OK or CLENS_E_NOMEM. */
CLENS_API int clens_study_unfinished_pairs_tasks(const clens_study *s, char **out, clens_error *err);
/* What task t does, as text ("pairs Q4", "run O8 step 400 shard 1/3",
 * "probe Q4", "atp Q4") into *out (malloc'd); CLENS_E_ARG for a task outside
 * the plan, CLENS_E_NOMEM. */
CLENS_API int clens_study_task_name(const clens_study *s, int task, char **out, clens_error *err);

/* ==================================================== house: context threads */
/* Every context runs its forward passes with its own thread count: it starts
 * as the model's clens_model_params.n_threads and applies on the calling
 * thread for the length of each clens_forward (and so of every forward pass
 * of clens_prefill, clens_generate and patching), then the caller's OpenMP
 * setting is restored. Opening a model changes no process-wide setting. */

/* n_threads >= 0 (0 = all cores); CLENS_OK or CLENS_E_ARG. */
CLENS_API int clens_ctx_set_threads(clens_ctx *ctx, int n_threads, clens_error *err);
/* The context's thread count (all cores resolved to their number). */
CLENS_API int clens_ctx_get_threads(const clens_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif /* CLENS_H */
