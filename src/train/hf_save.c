/*
 * hf_save.c: trained weights as a Hugging Face model folder, and weights
 * read back from one (--init). config.json carries the fields transformers
 * 4.57 writes for Qwen2ForCausalLM / Olmo3ForCausalLM (as tools/gen_model.py
 * writes them for the test models); model.safetensors is one F32 file in the
 * tensor order of the plan, its header padded with spaces to 8 bytes
 * (docs/adding-an-architecture.md, safetensors layout). Every file is written
 * atomically; a folder being replaced is complete at every instant except
 * that its files may come from two consecutive saves.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "formats/formats.h"
#include "kernels/kernels.h"
#include "train/train.h"

static int write_json(const char *dir, const char *name, json_t *j, clens_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(j);
    if (!s) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) { free(s); return clens_err(err, CLENS_E_NOMEM, "out of memory"); }
    t[n] = '\n';
    t[n + 1] = 0;
    int rc = clens_write_file_atomic(path, t, n + 1, err);
    free(t);
    return rc;
}

static json_t *id_or_null(int id) { return id >= 0 ? json_integer(id) : json_null(); }

static json_t *config_json(const tr_plan *p, int bos, int eos)
{
    const tr_shape *s = &p->s;
    const int olmo = tr_post_norm(s->arch);
    /* Llama / Qwen3 / OLMo-2 folders are written only for the attribution
     * patching tests (tests/unit/test_dynamics.c). */
    static const char *const type[] = {"qwen2", "olmo3", "llama", "qwen3", "olmo2"};
    static const char *const cls[] = {"Qwen2ForCausalLM", "Olmo3ForCausalLM", "LlamaForCausalLM",
                                      "Qwen3ForCausalLM", "Olmo2ForCausalLM"};
    json_t *c = json_object(), *lt = json_array();
    json_object_set_new(c, "architectures", json_pack("[s]", cls[s->arch]));
    if (s->arch != TR_QWEN2) json_object_set_new(c, "attention_bias", json_false());
    if (s->D != s->C / s->H) json_object_set_new(c, "head_dim", json_integer(s->D));
    json_object_set_new(c, "attention_dropout", json_real(0.0));
    json_object_set_new(c, "bos_token_id", id_or_null(bos));
    json_object_set_new(c, "eos_token_id", id_or_null(eos));
    json_object_set_new(c, "hidden_act", json_string("silu"));
    json_object_set_new(c, "hidden_size", json_integer(s->C));
    json_object_set_new(c, "initializer_range", json_real(0.02));
    json_object_set_new(c, "intermediate_size", json_integer(s->F));
    for (int l = 0; l < s->L; l++)
        json_array_append_new(lt, json_string(s->sliding[l] ? "sliding_attention" : "full_attention"));
    json_object_set_new(c, "layer_types", lt);
    json_object_set_new(c, "max_position_embeddings", json_integer(s->ctx));
    if (!olmo) json_object_set_new(c, "max_window_layers", json_integer(s->L));
    json_object_set_new(c, "model_type", json_string(type[s->arch]));
    json_object_set_new(c, "num_attention_heads", json_integer(s->H));
    json_object_set_new(c, "num_hidden_layers", json_integer(s->L));
    json_object_set_new(c, "num_key_value_heads", json_integer(s->Hkv));
    if (olmo) json_object_set_new(c, "pad_token_id", id_or_null(eos));
    json_object_set_new(c, "rms_norm_eps", json_real(s->eps));
    json_object_set_new(c, "rope_scaling", json_null());
    json_object_set_new(c, "rope_theta", json_real(s->theta));
    json_object_set_new(c, "sliding_window", olmo && s->window > 0 ? json_integer(s->window) : json_null());
    json_object_set_new(c, "tie_word_embeddings", json_boolean(s->tied));
    json_object_set_new(c, "torch_dtype", json_string("float32"));
    json_object_set_new(c, "transformers_version", json_string("4.57.1"));
    json_object_set_new(c, "use_cache", json_true());
    if (!olmo) json_object_set_new(c, "use_sliding_window", json_false());
    json_object_set_new(c, "vocab_size", json_integer(s->V));
    return c;
}

static int write_safetensors(const char *dir, const tr_plan *p, const float *params, clens_error *err)
{
    json_t *h = json_object();
    json_object_set_new(h, "__metadata__", json_pack("{s:s}", "format", "pt"));
    size_t off = 0;
    for (int i = 0; i < p->n_t; i++) {
        const tr_tensor *t = &p->t[i];
        json_t *shape = t->ndim == 2 ? json_pack("[I,I]", (json_int_t)t->rows, (json_int_t)t->cols)
                                     : json_pack("[I]", (json_int_t)t->rows);
        json_object_set_new(h, t->name,
                            json_pack("{s:s,s:o,s:[I,I]}", "dtype", "F32", "shape", shape, "data_offsets",
                                      (json_int_t)off, (json_int_t)(off + t->n * 4)));
        off += t->n * 4;
    }
    char *hs = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    if (!hs) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    size_t hl = strlen(hs), hp = (hl + 7) / 8 * 8, total = 8 + hp + off;
    unsigned char *buf = malloc(total);
    if (!buf) { free(hs); return clens_err(err, CLENS_E_NOMEM, "out of memory"); }
    uint64_t le = hp;
    memcpy(buf, &le, 8);
    memcpy(buf + 8, hs, hl);
    memset(buf + 8 + hl, ' ', hp - hl);
    free(hs);
    off = 0;
    for (int i = 0; i < p->n_t; i++) {
        memcpy(buf + 8 + hp + off, params + p->t[i].off, p->t[i].n * 4);
        off += p->t[i].n * 4;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = clens_write_file_atomic(path, buf, total, err);
    free(buf);
    return rc;
}

static int copy_if_exists(const char *src_dir, const char *dst_dir, const char *name, clens_error *err)
{
    char src[4096], dst[4096];
    snprintf(src, sizeof src, "%s/%s", src_dir, name);
    snprintf(dst, sizeof dst, "%s/%s", dst_dir, name);
    char *data;
    size_t len;
    clens_error e2;
    if (clens_read_file(src, &data, &len, &e2)) return CLENS_OK; /* absent */
    int rc = clens_write_file_atomic(dst, data, len, err);
    free(data);
    return rc;
}

int tr_hf_save(const char *dir, const tr_plan *p, const float *params, int bos_id, int eos_id, const char *tok_dir,
               const char *training_json, clens_error *err)
{
    int rc = clens_mkdir_p(dir, err);
    if (rc) return rc;
    if ((rc = write_safetensors(dir, p, params, err))) return rc;
    if ((rc = write_json(dir, "config.json", config_json(p, bos_id, eos_id), err))) return rc;
    json_t *g = json_object();
    json_object_set_new(g, "_from_model_config", json_true());
    json_object_set_new(g, "bos_token_id", id_or_null(bos_id));
    json_object_set_new(g, "eos_token_id", id_or_null(eos_id));
    json_object_set_new(g, "transformers_version", json_string("4.57.1"));
    if ((rc = write_json(dir, "generation_config.json", g, err))) return rc;
    static const char *tok_files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                      "vocab.json", "merges.txt", "added_tokens.json"};
    for (size_t i = 0; i < sizeof tok_files / sizeof *tok_files; i++)
        if ((rc = copy_if_exists(tok_dir, dir, tok_files[i], err))) return rc;
    char path[4096];
    snprintf(path, sizeof path, "%s/training.json", dir);
    return clens_write_file_atomic(path, training_json, strlen(training_json), err);
}

int tr_hf_load(const char *dir, const tr_plan *p, float *params, clens_error *err)
{
    st_archive a;
    memset(&a, 0, sizeof a);
    int rc = st_open_folder(&a, dir, err);
    if (rc) return rc;
    for (int i = 0; i < p->n_t && !rc; i++) {
        const tr_tensor *t = &p->t[i];
        const st_tensor *s = st_find(&a, t->name);
        if (!s) { rc = clens_err(err, CLENS_E_FORMAT, "%s: tensor %s is missing", dir, t->name); break; }
        int ok = s->ndim == t->ndim && s->shape[0] == t->rows && (t->ndim == 1 || s->shape[1] == t->cols);
        if (!ok) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: tensor %s has another shape than the model being trained", dir,
                           t->name);
            break;
        }
        if (s->dtype == ST_OTHER) {
            rc = clens_err(err, CLENS_E_UNSUPPORTED, "%s: tensor %s has dtype %s", dir, t->name, s->dtype_name);
            break;
        }
        clens_dtype dt = s->dtype == ST_F32 ? CLENS_DTYPE_F32 : s->dtype == ST_BF16 ? CLENS_DTYPE_BF16 : CLENS_DTYPE_F16;
        kern_to_f32(params + t->off, s->data, dt, t->n);
    }
    st_close(&a);
    return rc;
}
