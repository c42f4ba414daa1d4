/*
 * steer_cvec.c: llama.cpp control vectors (docs/steer.md). A control vector
 * is a GGUF file whose tensors are named direction.N (F32, 1-D of the model
 * width, N >= 1); llama.cpp (common/common.cpp, common_control_vector_load;
 * src/llama-adapter.cpp, llama_adapter_cvec) stores direction.N at row N-1
 * of its buffer, copies row il-1 into the tensor of layer il for il in
 * [1, n_layer), and adds that tensor to the output of block il (0-based) at
 * every token when layer_start <= il <= layer_end. So direction.N is added
 * at clens's blocks.{N}.hook_resid_post; direction.0 is refused, as is a
 * name that is not "direction.<int>"; N >= n_layer is ignored. Several files
 * are summed, each scaled by its strength; the layer range defaults to
 * [1, n_layer] (common_init_from_params).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "formats/formats.h"

void clens_cvec_free(clens_cvec *cv)
{
    if (!cv) return;
    free(cv->data);
    memset(cv, 0, sizeof *cv);
}

/* Parses "direction.N" as llama.cpp does (std::stoi of what follows the
 * first '.': leading digits, optional sign); -1 if not a direction. */
static long direction_index(const char *name)
{
    const char *dot = strchr(name, '.');
    if (!dot || dot - name != 9 || strncmp(name, "direction", 9) != 0) return -1;
    char *end;
    const char *s = dot + 1;
    if (!*s) return -1;
    long v = strtol(s, &end, 10);
    if (end == s || v < 0 || v > INT_MAX / 2) return -1;
    return v;
}

int clens_cvec_load(clens_cvec *cv, const char *path, float scale, clens_error *err)
{
    gguf_file g;
    int rc = gguf_read_file(&g, path, err);
    if (rc) return rc;
    int n_embd = cv->n_embd, n_rows = cv->n_rows;
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const gguf_tensor *t = &g.tensors[i];
        long li = direction_index(t->name);
        if (li < 0) { rc = clens_err(err, CLENS_E_FORMAT, "%s: tensor '%s' is not direction.<layer>", path, t->name); goto end; }
        if (li == 0) { rc = clens_err(err, CLENS_E_FORMAT, "%s: direction.0 is invalid (layer indices start at 1)", path); goto end; }
        if (t->type != 0) { rc = clens_err(err, CLENS_E_FORMAT, "%s: %s is %s, not F32", path, t->name, gguf_type_name(t->type)); goto end; }
        if (t->n_dims != 1) { rc = clens_err(err, CLENS_E_FORMAT, "%s: %s is not 1-D", path, t->name); goto end; }
        if (t->numel > (1u << 24)) { rc = clens_err(err, CLENS_E_FORMAT, "%s: %s is too wide", path, t->name); goto end; }
        if (n_embd == 0) n_embd = (int)t->numel;
        else if ((int)t->numel != n_embd) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: %s has %llu values, the control vector has %d", path, t->name,
                           (unsigned long long)t->numel, n_embd);
            goto end;
        }
        if (li + 1 > n_rows) n_rows = (int)li + 1;
    }
    if (n_rows > cv->n_rows || n_embd != cv->n_embd) {
        float *d = calloc((size_t)n_rows * n_embd, sizeof(float));
        if (!d) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto end; }
        if (cv->data) memcpy(d, cv->data, sizeof(float) * (size_t)cv->n_rows * cv->n_embd);
        free(cv->data);
        cv->data = d;
        cv->n_rows = n_rows;
        cv->n_embd = n_embd;
    }
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const gguf_tensor *t = &g.tensors[i];
        float *row = cv->data + (size_t)direction_index(t->name) * n_embd;
        const unsigned char *b = t->data;
        for (int c = 0; c < n_embd; c++) {
            uint32_t u = (uint32_t)b[4 * c] | (uint32_t)b[4 * c + 1] << 8 | (uint32_t)b[4 * c + 2] << 16 |
                         (uint32_t)b[4 * c + 3] << 24;
            float f;
            memcpy(&f, &u, 4);
            row[c] += scale * f;
        }
    }
end:
    gguf_free(&g);
    return rc;
}

int clens_cvec_save(const char *path, const float *rows, int n_rows, int n_embd, const char *model_hint, clens_error *err)
{
    if (n_rows < 1 || n_embd < 1) return clens_err(err, CLENS_E_ARG, "control vector: nothing to write");
    gguf_wtensor *t = calloc(n_rows, sizeof *t);
    char (*names)[32] = calloc(n_rows, sizeof *names);
    if (!t || !names) { free(t); free(names); return clens_err(err, CLENS_E_NOMEM, "out of memory"); }
    int nt = 0;
    for (int l = 1; l < n_rows; l++) {
        const float *r = rows + (size_t)l * n_embd;
        int nz = 0;
        for (int c = 0; c < n_embd && !nz; c++) nz = r[c] != 0;
        if (!nz) continue;
        snprintf(names[nt], sizeof names[nt], "direction.%d", l);
        t[nt] = (gguf_wtensor){names[nt], r, n_embd};
        nt++;
    }
    gguf_wkv kv[3] = {
        {"general.architecture", GGUF_STRING, 0, 0, "controlvector"},
        {"controlvector.model_hint", GGUF_STRING, 0, 0, model_hint ? model_hint : ""},
        {"controlvector.layer_count", GGUF_UINT32, (uint64_t)nt, 0, NULL},
    };
    int rc = gguf_write(path, kv, 3, t, nt, err);
    free(t);
    free(names);
    return rc;
}

int clens_cvec_steer(const clens_cvec *cv, int n_layers, int d_model, int layer_start, int layer_end, float *vecs,
                     unsigned char *active, clens_steer *out, clens_error *err)
{
    if (layer_start <= 0) layer_start = 1;
    if (layer_end <= 0) layer_end = n_layers;
    memset(active, 0, (size_t)n_layers);
    memset(out, 0, sizeof *out);
    out->mode = CLENS_STEER_ADD;
    out->point = CLENS_HOOK_RESID_POST;
    out->positions = CLENS_STEER_POS_ALL;
    out->alpha = 1.0f;
    out->n_layers = n_layers;
    out->vecs = vecs;
    out->active = active;
    if (!cv->data) return CLENS_OK;
    if (cv->n_embd != d_model)
        return clens_err(err, CLENS_E_ARG, "control vector of width %d, the model's is %d", cv->n_embd, d_model);
    for (int l = 1; l < n_layers && l < cv->n_rows; l++) {
        memcpy(vecs + (size_t)l * cv->n_embd, cv->data + (size_t)l * cv->n_embd, sizeof(float) * cv->n_embd);
        active[l] = l >= layer_start && l <= layer_end;
    }
    return CLENS_OK;
}
