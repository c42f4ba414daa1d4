/*
 * model.c: opening a Hugging Face model folder: resolve the argument, read
 * config.json, map the safetensors, and bind every tensor the architecture
 * needs, checking dtype and shape against the config before anything runs
 * (llama.cpp load_arch_tensors). Large matrices stay in the file mapping;
 * only small vectors (norms, biases) are converted to fp32 copies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/base.h"
#include "base/infile.h"
#include "model/model.h"

clens_model_params clens_model_default_params(void)
{
    clens_model_params p = {0};
    p.n_threads = 0;
    p.matmul = CLENS_MATMUL_DEFAULT;
    return p;
}

typedef struct {
    clens_model *m;
    const char *dir;
    clens_error *err;
    unsigned char *used;      /* [n_tensors] */
} binder;

/* Looks up role (layer l) and checks its shape against (d0, d1); d1 = 0 for vectors. */
static const st_tensor *bind_tensor(binder *b, tensor_role role, int l, int64_t d0, int64_t d1, int required)
{
    const arch_desc *a = b->m->cfg.arch;
    char name[256];
    if (!a->names[role]) return NULL;
    snprintf(name, sizeof name, a->names[role], l);
    const st_tensor *t = st_find(&b->m->st, name);
    if (!t) {
        if (required)
            clens_err(b->err, CLENS_E_FORMAT, "%s: tensor '%s' (architecture %s) is missing from the weights", b->dir,
                      name, a->model_type);
        return NULL;
    }
    b->used[t - b->m->st.tensors] = 1;
    int want_nd = d1 ? 2 : 1;
    if (t->ndim != want_nd || t->shape[0] != d0 || (d1 && t->shape[1] != d1)) {
        char got[128] = "";
        for (int i = 0, k = 0; i < t->ndim; i++)
            k += snprintf(got + k, sizeof got - k, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        if (d1)
            clens_err(b->err, CLENS_E_FORMAT, "%s: tensor '%s' has shape [%s], expected [%lld, %lld] from config.json",
                      b->m->st.files[t->file].path, name, got, (long long)d0, (long long)d1);
        else
            clens_err(b->err, CLENS_E_FORMAT, "%s: tensor '%s' has shape [%s], expected [%lld] from config.json",
                      b->m->st.files[t->file].path, name, got, (long long)d0);
        return NULL;
    }
    if (t->dtype == ST_OTHER) {
        clens_err(b->err, CLENS_E_UNSUPPORTED, "%s: tensor '%s' has dtype %s (supported: F32, BF16, F16)",
                  b->m->st.files[t->file].path, name, t->dtype_name);
        return NULL;
    }
    return t;
}

static clens_dtype st_to_dtype(st_dtype d)
{
    return d == ST_F32 ? CLENS_DTYPE_F32 : d == ST_BF16 ? CLENS_DTYPE_BF16 : CLENS_DTYPE_F16;
}

static int bind_matrix(binder *b, kern_weight *w, tensor_role role, int l, int N, int K)
{
    const st_tensor *t = bind_tensor(b, role, l, N, K, 1);
    if (!t) return b->err->code ? b->err->code : CLENS_E_FORMAT;
    w->data = t->data;
    w->dtype = st_to_dtype(t->dtype);
    w->N = N;
    w->K = K;
    return 0;
}

/* fp32 copy of a vector tensor; *out NULL when absent and not required. */
static int bind_vector(binder *b, float **out, tensor_role role, int l, int n, int required)
{
    *out = NULL;
    b->err->code = 0;
    const st_tensor *t = bind_tensor(b, role, l, n, 0, required);
    if (!t) return b->err->code;
    clens_model *m = b->m;
    float *v = clens_malloc(sizeof(float) * n);
    if (!v) return clens_err(b->err, CLENS_E_NOMEM, "out of memory");
    if (m->n_small == m->cap_small) {
        int cap = m->cap_small ? m->cap_small * 2 : 64;
        float **ns = clens_realloc(m->small, sizeof *ns * cap);
        if (!ns) { free(v); return clens_err(b->err, CLENS_E_NOMEM, "out of memory"); }
        m->small = ns;
        m->cap_small = cap;
    }
    m->small[m->n_small++] = v;
    kern_to_f32(v, t->data, st_to_dtype(t->dtype), (size_t)n);
    *out = v;
    return 0;
}

static int bind_all(clens_model *m, const char *dir, clens_error *err)
{
    model_config *c = &m->cfg;
    const arch_desc *a = c->arch;
    int C = c->d_model, H = c->n_heads, Hkv = c->n_kv_heads, D = c->head_dim, F = c->d_ff, V = c->vocab;
    binder b = {m, dir, err, clens_calloc(m->st.n_tensors + 1, 1)};
    int rc = 0;
    if (!b.used) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    const st_tensor *emb = bind_tensor(&b, ROLE_EMBED, 0, V, C, 1);
    if (!emb) { rc = err->code ? err->code : CLENS_E_FORMAT; goto done; }
    m->embed = emb->data;
    m->embed_dtype = st_to_dtype(emb->dtype);
    if (c->tied) {
        m->lm_head = (kern_weight){emb->data, m->embed_dtype, V, C};
        /* Some exports store lm_head.weight even when tied: HF ignores it. */
        const st_tensor *lm = st_find(&m->st, a->names[ROLE_LM_HEAD]);
        if (lm) b.used[lm - m->st.tensors] = 1;
    } else if ((rc = bind_matrix(&b, &m->lm_head, ROLE_LM_HEAD, 0, V, C))) goto done;
    if ((rc = bind_vector(&b, &m->final_norm, ROLE_FINAL_NORM, 0, C, 1))) goto done;
    m->layers = clens_calloc(c->n_layers, sizeof *m->layers);
    if (!m->layers) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    int qn = a->qknorm == QKNORM_PER_HEAD ? D : H * D, kn = a->qknorm == QKNORM_PER_HEAD ? D : Hkv * D;
    for (int l = 0; l < c->n_layers; l++) {
        layer_weights *w = &m->layers[l];
        if ((rc = bind_matrix(&b, &w->q, ROLE_Q, l, H * D, C)) || (rc = bind_matrix(&b, &w->k, ROLE_K, l, Hkv * D, C)) ||
            (rc = bind_matrix(&b, &w->v, ROLE_V, l, Hkv * D, C)) || (rc = bind_matrix(&b, &w->o, ROLE_O, l, C, H * D)) ||
            (rc = bind_matrix(&b, &w->gate, ROLE_GATE, l, F, C)) || (rc = bind_matrix(&b, &w->up, ROLE_UP, l, F, C)) ||
            (rc = bind_matrix(&b, &w->down, ROLE_DOWN, l, C, F)))
            goto done;
        int bias = c->attn_bias;
        int o_bias = c->attn_bias && a->qkv_bias == QKV_BIAS_CONFIG; /* Qwen2: o_proj never has one */
        if ((rc = bind_vector(&b, &w->q_bias, ROLE_Q_BIAS, l, H * D, bias)) ||
            (rc = bind_vector(&b, &w->k_bias, ROLE_K_BIAS, l, Hkv * D, bias)) ||
            (rc = bind_vector(&b, &w->v_bias, ROLE_V_BIAS, l, Hkv * D, bias)) ||
            (rc = bind_vector(&b, &w->o_bias, ROLE_O_BIAS, l, C, o_bias)))
            goto done;
        if (!bias && (w->q_bias || w->k_bias || w->v_bias)) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: layer %d has attention biases but config.json says attention_bias false",
                           dir, l);
            goto done;
        }
        if (!o_bias && w->o_bias) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: layer %d has an o_proj bias, which %s does not use", dir, l,
                           a->model_type);
            goto done;
        }
        int pre = a->norm == NORM_PRE, post = a->norm == NORM_POST, qk = a->qknorm != QKNORM_NONE;
        if ((rc = bind_vector(&b, &w->attn_norm, ROLE_ATTN_NORM, l, C, pre)) ||
            (rc = bind_vector(&b, &w->mlp_norm, ROLE_MLP_NORM, l, C, pre)) ||
            (rc = bind_vector(&b, &w->post_attn_norm, ROLE_POST_ATTN_NORM, l, C, post)) ||
            (rc = bind_vector(&b, &w->post_mlp_norm, ROLE_POST_MLP_NORM, l, C, post)) ||
            (rc = bind_vector(&b, &w->q_norm, ROLE_Q_NORM, l, qn, qk)) ||
            (rc = bind_vector(&b, &w->k_norm, ROLE_K_NORM, l, kn, qk)))
            goto done;
        w->sliding = c->layer_sliding[l];
        w->rope = (a->rope_scaling_full_only && w->sliding) ? &m->rope_default : &m->rope_full;
    }
    /* Unexpected tensors are an error, except stray RoPE buffers of old exports. */
    for (int i = 0; i < m->st.n_tensors; i++) {
        const char *n = m->st.tensors[i].name;
        if (b.used[i] || strstr(n, "rotary_emb.inv_freq")) continue;
        rc = clens_err(err, CLENS_E_FORMAT, "%s: unexpected tensor '%s' for architecture %s (in %s)", dir, n,
                       a->model_type, m->st.files[m->st.tensors[i].file].path);
        goto done;
    }
done:
    free(b.used);
    return rc;
}

static void fill_info(clens_model *m)
{
    model_config *c = &m->cfg;
    clens_model_info *i = &m->info;
    i->arch = c->arch->arch;
    i->arch_name = c->arch->model_type;
    i->dtype = m->layers[0].q.dtype;
    i->n_layers = c->n_layers;
    i->d_model = c->d_model;
    i->n_heads = c->n_heads;
    i->n_kv_heads = c->n_kv_heads;
    i->head_dim = c->head_dim;
    i->d_ff = c->d_ff;
    i->vocab = c->vocab;
    i->max_pos = c->max_pos;
    i->tied_embeddings = c->tied;
    i->n_params = 0;
    i->weight_bytes = 0;
    for (int t = 0; t < m->st.n_tensors; t++) {
        if (c->tied && strcmp(m->st.tensors[t].name, "lm_head.weight") == 0) continue;
        i->n_params += st_numel(&m->st.tensors[t]);
        i->weight_bytes += (int64_t)m->st.tensors[t].nbytes;
    }
    i->kv_bytes_per_token = (int64_t)2 * c->n_layers * c->n_kv_heads * c->head_dim * (int64_t)sizeof(float);
    i->path = m->path;
    i->bos_id = c->bos_id;
    i->eos_id = c->eos_id;
}

int clens_model_open(clens_model **out, const char *arg, const clens_model_params *params, clens_error *err)
{
    clens_model *m = clens_calloc(1, sizeof *m);
    char cfgpath[4200];
    int rc;
    *out = NULL;
    if (!m) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    m->params = params ? *params : clens_model_default_params();
    if ((rc = hf_resolve_model(arg, &m->path, err))) goto fail;
    snprintf(cfgpath, sizeof cfgpath, "%s/config.json", m->path);
    if ((rc = config_load(&m->cfg, cfgpath, err))) goto fail;
    if ((rc = st_open_folder(&m->st, m->path, err))) goto fail;
    rope_config def = m->cfg.rope;
    def.type = ROPE_DEFAULT;
    if ((rc = rope_init(&m->rope_full, &m->cfg.rope, m->cfg.head_dim, m->cfg.max_pos, err)) ||
        (rc = rope_init(&m->rope_default, &def, m->cfg.head_dim, m->cfg.max_pos, err)))
        goto fail;
    if ((rc = bind_all(m, m->path, err))) goto fail;
    fill_info(m);
    m->path_kind = m->params.matmul == CLENS_MATMUL_PORTABLE ? KERN_PATH_PORTABLE
                 : m->params.matmul == CLENS_MATMUL_BF16 && kern_path_available(KERN_PATH_AVX512_BF16)
                     ? KERN_PATH_AVX512_BF16
                     : kern_path_default();
    *out = m;
    return CLENS_OK;
fail:
    clens_model_free(m);
    return rc;
}

void clens_model_free(clens_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_small; i++) free(m->small[i]);
    free(m->small);
    free(m->layers);
    rope_free(&m->rope_full);
    rope_free(&m->rope_default);
    st_close(&m->st);
    config_free(&m->cfg);
    free(m->path);
    free(m);
}

const clens_model_info *clens_model_get_info(const clens_model *m) { return &m->info; }

const char *const *clens_model_unknown_keys(const clens_model *m)
{
    return (const char *const *)m->cfg.unknown_keys;
}

const char *clens_model_kernel_name(const clens_model *m) { return kern_path_name(m->path_kind); }

int clens_model_layer_sliding(const clens_model *m, int l, int *window)
{
    if (l < 0 || l >= m->cfg.n_layers) return 0;
    if (window) *window = m->layers[l].sliding ? m->cfg.window : 0;
    return m->layers[l].sliding;
}

int64_t clens_model_kv_budget(const clens_model *m)
{
    FILE *f = fopen("/proc/meminfo", "r");
    long long kb = 0;
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemTotal: %lld", &kb) == 1) break;
    if (f) fclose(f);
    int64_t total = kb > 0 ? (int64_t)kb * 1024 : (int64_t)8 << 30;
    int64_t left = total - ((int64_t)2 << 30) - m->info.weight_bytes;
    return left > 0 ? left : 0;
}

int clens_model_plan_seqs(const clens_model *m, int n_ctx)
{
    int64_t per = (int64_t)n_ctx * m->info.kv_bytes_per_token;
    int64_t n = per > 0 ? clens_model_kv_budget(m) / per : 1;
    return n < 1 ? 1 : n > (1 << 20) ? (1 << 20) : (int)n;
}

/* sha256 of dir/name into hex, or "" when it cannot be read. */
static void file_sha_hex(const char *dir, const char *name, char hex[65])
{
    char p[4096];
    clens_error e = {0};
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (clens_sha256_file_hex(p, hex, &e)) hex[0] = 0;
}

/* A single-file model has no index: its safetensors header (names, dtypes,
 * shapes, offsets) identifies the layout without hashing gigabytes. */
static void header_sha_hex(const char *dir, char hex[65])
{
    char p[4096];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    st_header_sha256_hex(p, hex);
}

void clens_model_fingerprint(const clens_model *m, char config_sha[65], char weights_sha[65])
{
    const char *dir = clens_model_get_info(m)->path;
    file_sha_hex(dir, "config.json", config_sha);
    file_sha_hex(dir, "model.safetensors.index.json", weights_sha);
    if (!weights_sha[0]) header_sha_hex(dir, weights_sha);
}
