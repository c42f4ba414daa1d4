/*
 * arch.c: the table of supported architectures (one row each, after
 * llama.cpp's llama-arch) and the config.json reader. Differences between
 * architectures live in this table, never in if-chains elsewhere; semantics
 * follow transformers 4.57 as summarised in ../shared/spec/architectures.md.
 * Adding an architecture: docs/adding-an-architecture.md.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/base.h"
#include "model/model.h"

#define L_ "model.layers.%d."
#define COMMON_NAMES                                                              \
    [ROLE_EMBED] = "model.embed_tokens.weight", [ROLE_FINAL_NORM] = "model.norm.weight", \
    [ROLE_LM_HEAD] = "lm_head.weight",                                            \
    [ROLE_Q] = L_ "self_attn.q_proj.weight", [ROLE_K] = L_ "self_attn.k_proj.weight", \
    [ROLE_V] = L_ "self_attn.v_proj.weight", [ROLE_O] = L_ "self_attn.o_proj.weight", \
    [ROLE_Q_BIAS] = L_ "self_attn.q_proj.bias", [ROLE_K_BIAS] = L_ "self_attn.k_proj.bias", \
    [ROLE_V_BIAS] = L_ "self_attn.v_proj.bias", [ROLE_O_BIAS] = L_ "self_attn.o_proj.bias", \
    [ROLE_GATE] = L_ "mlp.gate_proj.weight", [ROLE_UP] = L_ "mlp.up_proj.weight",   \
    [ROLE_DOWN] = L_ "mlp.down_proj.weight"

/* Pre-norm blocks: input_layernorm before attention, and the historically
 * named post_attention_layernorm before the MLP. */
#define PRE_NORM_NAMES \
    [ROLE_ATTN_NORM] = L_ "input_layernorm.weight", [ROLE_MLP_NORM] = L_ "post_attention_layernorm.weight"
/* OLMo post-norm blocks: the same tensor name means the post-attention norm. */
#define POST_NORM_NAMES \
    [ROLE_POST_ATTN_NORM] = L_ "post_attention_layernorm.weight", \
    [ROLE_POST_MLP_NORM] = L_ "post_feedforward_layernorm.weight"
#define QK_NORM_NAMES [ROLE_Q_NORM] = L_ "self_attn.q_norm.weight", [ROLE_K_NORM] = L_ "self_attn.k_norm.weight"

static const arch_desc arch_table[] = {
    {CLENS_ARCH_LLAMA, "llama", NORM_PRE, QKNORM_NONE, QKV_BIAS_CONFIG, SWA_NONE, 0, 1e-6, 0,
     {COMMON_NAMES, PRE_NORM_NAMES}},
    {CLENS_ARCH_QWEN2, "qwen2", NORM_PRE, QKNORM_NONE, QKV_BIAS_ALWAYS, SWA_QWEN, 0, 1e-6, 4096,
     {COMMON_NAMES, PRE_NORM_NAMES}},
    {CLENS_ARCH_QWEN3, "qwen3", NORM_PRE, QKNORM_PER_HEAD, QKV_BIAS_CONFIG, SWA_QWEN, 0, 1e-6, 4096,
     {COMMON_NAMES, PRE_NORM_NAMES, QK_NORM_NAMES}},
    {CLENS_ARCH_OLMO2, "olmo2", NORM_POST, QKNORM_FULL, QKV_BIAS_CONFIG, SWA_NONE, 0, 1e-5, 0,
     {COMMON_NAMES, POST_NORM_NAMES, QK_NORM_NAMES}},
    {CLENS_ARCH_OLMO3, "olmo3", NORM_POST, QKNORM_FULL, QKV_BIAS_CONFIG, SWA_OLMO3, 1, 1e-5, 4096,
     {COMMON_NAMES, POST_NORM_NAMES, QK_NORM_NAMES}},
};

const arch_desc *arch_find(const char *model_type)
{
    for (size_t i = 0; i < sizeof arch_table / sizeof arch_table[0]; i++)
        if (strcmp(arch_table[i].model_type, model_type) == 0) return &arch_table[i];
    return NULL;
}

const char *arch_supported_list(void)
{
    return "llama, qwen2, qwen3, olmo2, olmo3";
}

/* --------------------------------------------------------------- config */

/* Keys read by the parser; everything else is listed as unknown (R7). */
static const char *known_keys[] = {
    "model_type", "architectures", "hidden_size", "intermediate_size", "num_hidden_layers",
    "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size", "rms_norm_eps",
    "rope_theta", "rope_scaling", "rope_parameters", "max_position_embeddings",
    "tie_word_embeddings", "attention_bias", "mlp_bias", "sliding_window", "use_sliding_window",
    "max_window_layers", "layer_types", "hidden_act", "torch_dtype", "dtype", "bos_token_id",
    "eos_token_id", "pad_token_id", "partial_rotary_factor", "attention_dropout", "use_cache",
    "transformers_version", "initializer_range", "pretraining_tp", "_name_or_path", NULL};

typedef struct {
    json_t *root;
    const char *path;
    clens_error *err;
} cfgp;

static int get_int(cfgp *p, const char *key, int required, int def, int lo, int hi, int *out)
{
    json_t *v = json_object_get(p->root, key);
    if (!v || json_is_null(v)) {
        if (required) return clens_err(p->err, CLENS_E_FORMAT, "%s: required field \"%s\" is missing", p->path, key);
        *out = def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return clens_err(p->err, CLENS_E_FORMAT, "%s: field \"%s\" must be an integer in [%d, %d]", p->path, key, lo, hi);
    *out = (int)json_integer_value(v);
    return 0;
}

static int get_num(cfgp *p, json_t *obj, const char *key, double def, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) { *out = def; return 0; }
    if (!json_is_number(v))
        return clens_err(p->err, CLENS_E_FORMAT, "%s: field \"%s\" must be a number", p->path, key);
    *out = json_number_value(v);
    return 0;
}

static int get_bool(cfgp *p, const char *key, int def, int *out)
{
    json_t *v = json_object_get(p->root, key);
    if (!v || json_is_null(v)) { *out = def; return 0; }
    if (!json_is_boolean(v))
        return clens_err(p->err, CLENS_E_FORMAT, "%s: field \"%s\" must be true or false", p->path, key);
    *out = json_is_true(v);
    return 0;
}

static int first_id(json_t *v)
{
    if (json_is_integer(v)) return (int)json_integer_value(v);
    if (json_is_array(v) && json_is_integer(json_array_get(v, 0))) return (int)json_integer_value(json_array_get(v, 0));
    return -1;
}

static int parse_rope(cfgp *p, json_t *rs, rope_config *r)
{
    if (!rs || json_is_null(rs)) return 0;
    if (!json_is_object(rs))
        return clens_err(p->err, CLENS_E_FORMAT, "%s: field \"rope_scaling\" must be an object or null", p->path);
    json_t *t = json_object_get(rs, "rope_type");
    if (!t) t = json_object_get(rs, "type");
    const char *ty = json_string_value(t);
    if (!ty) return clens_err(p->err, CLENS_E_FORMAT, "%s: rope_scaling has no \"rope_type\"", p->path);
    if (json_object_get(rs, "rope_theta")) /* transformers 5 rope_parameters */
        if (get_num(p, rs, "rope_theta", r->theta, &r->theta)) return p->err->code;
    if (strcmp(ty, "default") == 0) r->type = ROPE_DEFAULT;
    else if (strcmp(ty, "linear") == 0) r->type = ROPE_LINEAR;
    else if (strcmp(ty, "llama3") == 0) r->type = ROPE_LLAMA3;
    else if (strcmp(ty, "yarn") == 0) r->type = ROPE_YARN;
    else
        return clens_err(p->err, CLENS_E_UNSUPPORTED,
                         "%s: rope_scaling.rope_type \"%s\" is not supported (supported: default, linear, llama3, yarn)",
                         p->path, ty);
    if (r->type == ROPE_DEFAULT) return 0;
    if (get_num(p, rs, "factor", -1, &r->factor)) return p->err->code;
    if (r->factor <= 0)
        return clens_err(p->err, CLENS_E_FORMAT, "%s: rope_scaling.factor must be a positive number", p->path);
    if (get_num(p, rs, "original_max_position_embeddings", -1, &r->orig_max_pos)) return p->err->code;
    if (get_num(p, rs, "low_freq_factor", 1, &r->low_freq_factor)) return p->err->code;
    if (get_num(p, rs, "high_freq_factor", 4, &r->high_freq_factor)) return p->err->code;
    if (get_num(p, rs, "beta_fast", 32, &r->beta_fast)) return p->err->code;
    if (get_num(p, rs, "beta_slow", 1, &r->beta_slow)) return p->err->code;
    if (get_num(p, rs, "attention_factor", -1, &r->attention_factor)) return p->err->code;
    if (get_num(p, rs, "mscale", 0, &r->mscale)) return p->err->code;
    if (get_num(p, rs, "mscale_all_dim", 0, &r->mscale_all_dim)) return p->err->code;
    json_t *tr = json_object_get(rs, "truncate");
    r->truncate = tr && json_is_boolean(tr) ? json_is_true(tr) : 1;
    if (r->type == ROPE_LLAMA3 && r->orig_max_pos <= 0)
        return clens_err(p->err, CLENS_E_FORMAT,
                         "%s: rope_scaling (llama3) needs original_max_position_embeddings", p->path);
    if (r->type == ROPE_LLAMA3 && r->high_freq_factor == r->low_freq_factor)
        return clens_err(p->err, CLENS_E_FORMAT, "%s: rope_scaling: high_freq_factor equals low_freq_factor", p->path);
    return 0;
}

int config_parse(model_config *c, const char *json, size_t len, const char *path, clens_error *err)
{
    json_error_t je;
    memset(c, 0, sizeof *c);
    json_t *root = json_loadb(json, len, 0, &je);
    /* jansson fails without a message only when an allocation fails */
    if (!root && (json_error_code(&je) == json_error_out_of_memory || !je.text[0]))
        return clens_err(err, CLENS_E_NOMEM, "%s: out of memory while parsing", path);
    if (!root) return clens_err(err, CLENS_E_FORMAT, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    cfgp p = {root, path, err};
    int rc = 0;
    if (!json_is_object(root)) { rc = clens_err(err, CLENS_E_FORMAT, "%s: not a JSON object", path); goto fail; }
    const char *mt = json_string_value(json_object_get(root, "model_type"));
    if (!mt) { rc = clens_err(err, CLENS_E_FORMAT, "%s: required field \"model_type\" is missing", path); goto fail; }
    c->arch = arch_find(mt);
    if (!c->arch) {
        rc = clens_err(err, CLENS_E_UNSUPPORTED, "%s: model_type \"%s\" is not supported (supported: %s)", path, mt,
                       arch_supported_list());
        goto fail;
    }
    const int BIG = 1 << 24;
    if ((rc = get_int(&p, "hidden_size", 1, 0, 1, BIG, &c->d_model)) ||
        (rc = get_int(&p, "intermediate_size", 1, 0, 1, BIG, &c->d_ff)) ||
        (rc = get_int(&p, "num_hidden_layers", 1, 0, 1, 4096, &c->n_layers)) ||
        (rc = get_int(&p, "num_attention_heads", 1, 0, 1, 4096, &c->n_heads)) ||
        (rc = get_int(&p, "num_key_value_heads", 0, c->n_heads, 1, 4096, &c->n_kv_heads)) ||
        (rc = get_int(&p, "vocab_size", 1, 0, 1, BIG, &c->vocab)) ||
        (rc = get_int(&p, "max_position_embeddings", 0, 2048, 1, 1 << 30, &c->max_pos)))
        goto fail;
    if (c->d_model % c->n_heads && !json_object_get(root, "head_dim")) {
        rc = clens_err(err, CLENS_E_FORMAT, "%s: hidden_size %d is not divisible by num_attention_heads %d", path,
                       c->d_model, c->n_heads);
        goto fail;
    }
    if ((rc = get_int(&p, "head_dim", 0, c->d_model / c->n_heads, 2, 65536, &c->head_dim))) goto fail;
    if (c->head_dim % 2) { rc = clens_err(err, CLENS_E_UNSUPPORTED, "%s: head_dim %d is odd", path, c->head_dim); goto fail; }
    if (c->n_heads % c->n_kv_heads) {
        rc = clens_err(err, CLENS_E_FORMAT, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                       path, c->n_heads, c->n_kv_heads);
        goto fail;
    }
    if ((rc = get_num(&p, root, "rms_norm_eps", c->arch->default_rms_eps, &c->rms_eps))) goto fail;
    if (c->rms_eps < 0) { rc = clens_err(err, CLENS_E_FORMAT, "%s: rms_norm_eps must be >= 0", path); goto fail; }
    if ((rc = get_bool(&p, "tie_word_embeddings", 0, &c->tied)) ||
        (rc = get_bool(&p, "attention_bias", 0, &c->attn_bias)))
        goto fail;
    int mlp_bias;
    if ((rc = get_bool(&p, "mlp_bias", 0, &mlp_bias))) goto fail;
    if (mlp_bias) { rc = clens_err(err, CLENS_E_UNSUPPORTED, "%s: mlp_bias true is not supported", path); goto fail; }
    if (c->arch->qkv_bias == QKV_BIAS_ALWAYS) c->attn_bias = 1;
    const char *act = json_string_value(json_object_get(root, "hidden_act"));
    if (json_object_get(root, "hidden_act") && !json_is_null(json_object_get(root, "hidden_act")) &&
        (!act || strcmp(act, "silu") != 0)) {
        rc = clens_err(err, CLENS_E_UNSUPPORTED, "%s: hidden_act \"%s\" is not supported (only silu)", path,
                       act ? act : "?");
        goto fail;
    }
    double prf;
    if ((rc = get_num(&p, root, "partial_rotary_factor", 1.0, &prf))) goto fail;
    if (prf != 1.0) {
        rc = clens_err(err, CLENS_E_UNSUPPORTED, "%s: partial_rotary_factor %g is not supported (only 1.0)", path, prf);
        goto fail;
    }
    /* RoPE: rope_theta + rope_scaling (4.x), or rope_parameters (5.x). */
    c->rope.type = ROPE_DEFAULT;
    c->rope.truncate = 1;
    c->rope.attention_factor = -1;
    if ((rc = get_num(&p, root, "rope_theta", 10000.0, &c->rope.theta))) goto fail;
    json_t *rs = json_object_get(root, "rope_scaling");
    json_t *rp = json_object_get(root, "rope_parameters");
    if ((!rs || json_is_null(rs)) && json_is_object(rp)) {
        json_t *full = json_object_get(rp, "full_attention");
        rs = json_is_object(full) ? full : rp;
    }
    if ((rc = parse_rope(&p, rs, &c->rope))) goto fail;
    if (c->rope.theta <= 0) { rc = clens_err(err, CLENS_E_FORMAT, "%s: rope_theta must be positive", path); goto fail; }

    /* Sliding window: which layers, and W. */
    c->layer_sliding = clens_calloc(c->n_layers, sizeof *c->layer_sliding);
    if (!c->layer_sliding) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto fail; }
    json_t *sw = json_object_get(root, "sliding_window"), *lt = json_object_get(root, "layer_types");
    int window = json_is_integer(sw) ? (int)json_integer_value(sw) : sw ? 0 : c->arch->default_window;
    if (sw && !json_is_null(sw) && (!json_is_integer(sw) || window < 1)) {
        rc = clens_err(err, CLENS_E_FORMAT, "%s: sliding_window must be a positive integer or null", path);
        goto fail;
    }
    if (lt && !json_is_null(lt)) {
        if (!json_is_array(lt) || (int)json_array_size(lt) != c->n_layers) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: layer_types must list %d entries", path, c->n_layers);
            goto fail;
        }
        for (int i = 0; i < c->n_layers; i++) {
            const char *s = json_string_value(json_array_get(lt, i));
            if (s && strcmp(s, "sliding_attention") == 0) c->layer_sliding[i] = 1;
            else if (!s || strcmp(s, "full_attention") != 0) {
                rc = clens_err(err, CLENS_E_UNSUPPORTED, "%s: layer_types[%d] \"%s\" is not supported", path, i,
                               s ? s : "?");
                goto fail;
            }
        }
    }
    int use_sw = 0, mwl = c->n_layers;
    switch (c->arch->sliding) {
    case SWA_NONE:
        memset(c->layer_sliding, 0, sizeof *c->layer_sliding * c->n_layers);
        break;
    case SWA_QWEN:
        /* The window exists only with use_sliding_window (R7). */
        if ((rc = get_bool(&p, "use_sliding_window", 0, &use_sw)) ||
            (rc = get_int(&p, "max_window_layers", 0, 28, 0, 1 << 20, &mwl)))
            goto fail;
        if (!use_sw || !window) memset(c->layer_sliding, 0, sizeof *c->layer_sliding * c->n_layers);
        else if (!lt || json_is_null(lt))
            for (int i = 0; i < c->n_layers; i++) c->layer_sliding[i] = i >= mwl;
        break;
    case SWA_OLMO3:
        if (!lt || json_is_null(lt))
            for (int i = 0; i < c->n_layers; i++) c->layer_sliding[i] = (i + 1) % 4 != 0;
        break;
    }
    for (int i = 0; i < c->n_layers; i++)
        if (c->layer_sliding[i] && !window) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: layer %d is sliding_attention but sliding_window is not set",
                           path, i);
            goto fail;
        }
    c->window = window;

    const char *dt = json_string_value(json_object_get(root, "torch_dtype"));
    if (!dt) dt = json_string_value(json_object_get(root, "dtype"));
    c->dtype = dt && strcmp(dt, "float32") == 0 ? CLENS_DTYPE_F32
             : dt && strcmp(dt, "float16") == 0 ? CLENS_DTYPE_F16 : CLENS_DTYPE_BF16;
    c->bos_id = first_id(json_object_get(root, "bos_token_id"));
    c->eos_id = first_id(json_object_get(root, "eos_token_id"));

    /* Unknown keys, for `info --verbose`. */
    size_t nk = 0;
    const char *key;
    json_t *v;
    c->unknown_keys = clens_calloc(json_object_size(root) + 1, sizeof *c->unknown_keys);
    if (!c->unknown_keys) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto fail; }
    json_object_foreach(root, key, v) {
        int known = 0;
        for (int i = 0; known_keys[i]; i++) known |= strcmp(known_keys[i], key) == 0;
        if (!known) c->unknown_keys[nk++] = clens_strdup(key);
    }
    json_decref(root);
    return 0;
fail:
    json_decref(root);
    config_free(c);
    return rc ? rc : CLENS_E_FORMAT;
}

int config_load(model_config *c, const char *path, clens_error *err)
{
    char *data;
    size_t len;
    int rc = clens_read_file(path, &data, &len, err);
    if (rc) return rc;
    rc = config_parse(c, data, len, path, err);
    free(data);
    return rc;
}

void config_free(model_config *c)
{
    free(c->layer_sliding);
    if (c->unknown_keys)
        for (int i = 0; c->unknown_keys[i]; i++) free(c->unknown_keys[i]);
    free(c->unknown_keys);
    c->layer_sliding = NULL;
    c->unknown_keys = NULL;
}
