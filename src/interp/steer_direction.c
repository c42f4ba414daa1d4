/*
 * steer_direction.c: where a steering direction comes from (docs/steer.md):
 *   - a .npy file (little-endian float32 or float64, C order): shape [C] is
 *     one vector used at every layer; [n_layers][C] gives layer L's vector
 *     in row L; [n_layers+1][C] (a probe over resid_pre 0..n_layers or over
 *     embed + every block) is read as rows 0..n_layers-1 too, the last row
 *     having no block to steer;
 *   - a probe.json of `clens probe`: only "layers": [{"layer": L,
 *     "direction_npy": "path relative to probe.json"}] is read (each file a
 *     1-D [C] .npy), at the entry's "depth" when it has one (clens probe's
 *     resid_pre numbering; null = not on the residual stream, skipped);
 *     other keys are ignored;
 *   - a .gguf control vector: direction.N gives layer N.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/infile.h"
#include "interp/steer_study.h"

/* Reads a 1-D or 2-D float .npy into a malloc'd float array. */
static int npy_read(const char *path, float **out, long *rows, long *cols, int *ndim, clens_error *err)
{
    FILE *f;
    int rc = clens_fopen_regular(path, &f, err);
    if (rc) return rc;
    unsigned char pre[12];
    char *hdr = NULL;
    *out = NULL;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        rc = clens_err(err, CLENS_E_FORMAT, "%s: not a .npy file", path);
        goto end;
    }
    size_t hl = (size_t)pre[8] | (size_t)pre[9] << 8;
    if (pre[6] >= 2) {
        if (fread(pre + 10, 1, 2, f) != 2) { rc = clens_err(err, CLENS_E_FORMAT, "%s: truncated header", path); goto end; }
        hl |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    }
    if (hl > 65536 || !(hdr = calloc(hl + 1, 1)) || fread(hdr, 1, hl, f) != hl) {
        rc = clens_err(err, CLENS_E_FORMAT, "%s: bad or truncated .npy header", path);
        goto end;
    }
    int f8 = strstr(hdr, "'<f8'") != NULL;
    if (!f8 && !strstr(hdr, "'<f4'")) { rc = clens_err(err, CLENS_E_FORMAT, "%s: dtype must be <f4 or <f8", path); goto end; }
    if (strstr(hdr, "'fortran_order': True")) { rc = clens_err(err, CLENS_E_FORMAT, "%s: Fortran order is not supported", path); goto end; }
    char *sh = strstr(hdr, "'shape': (");
    if (!sh) { rc = clens_err(err, CLENS_E_FORMAT, "%s: no shape in the header", path); goto end; }
    sh += 10;
    long d[3] = {0, 0, 0};
    int nd = 0;
    while (*sh && *sh != ')' && nd < 3) {
        char *e;
        long v = strtol(sh, &e, 10);
        if (e == sh) break;
        d[nd++] = v;
        sh = e;
        while (*sh == ',' || *sh == ' ') sh++;
    }
    if (nd < 1 || nd > 2 || *sh != ')' || d[0] < 1 || (nd == 2 && d[1] < 1) || d[0] > (1L << 24) ||
        (nd == 2 && d[1] > (1L << 24) / d[0] * 64)) {
        rc = clens_err(err, CLENS_E_FORMAT, "%s: shape must be (C,) or (layers, C)", path);
        goto end;
    }
    long n = nd == 1 ? d[0] : d[0] * d[1];
    float *v = malloc(sizeof(float) * (size_t)n);
    double *tmp = f8 ? malloc(sizeof(double) * (size_t)n) : NULL;
    if (!v || (f8 && !tmp)) { free(v); free(tmp); rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto end; }
    size_t got = f8 ? fread(tmp, 8, (size_t)n, f) : fread(v, 4, (size_t)n, f);
    if (got != (size_t)n) { free(v); free(tmp); rc = clens_err(err, CLENS_E_FORMAT, "%s: data truncated", path); goto end; }
    if (f8) for (long i = 0; i < n; i++) v[i] = (float)tmp[i];
    free(tmp);
    *out = v;
    *ndim = nd;
    *rows = nd == 1 ? 1 : d[0];
    *cols = nd == 1 ? d[0] : d[1];
end:
    free(hdr);
    fclose(f);
    return rc;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int load_npy(const char *path, int n_layers, int C, float *vecs, unsigned char *has, int only_layer,
                    clens_error *err)
{
    float *v = NULL;
    long r = 0, c = 0;
    int nd = 0, rc = npy_read(path, &v, &r, &c, &nd, err);
    if (rc) return rc;
    if (c != C) { free(v); return clens_err(err, CLENS_E_FORMAT, "%s: width %ld, the model's d_model is %d", path, c, C); }
    if (only_layer >= 0 && nd != 1) { free(v); return clens_err(err, CLENS_E_FORMAT, "%s: a probe direction must be 1-D", path); }
    if (nd == 2 && r != n_layers && r != n_layers + 1) {
        free(v);
        return clens_err(err, CLENS_E_FORMAT, "%s: %ld rows, expected %d or %d (one per layer)", path, r, n_layers, n_layers + 1);
    }
    for (int l = 0; l < n_layers; l++) {
        if (only_layer >= 0 && l != only_layer) continue;
        memcpy(vecs + (size_t)l * C, v + (nd == 1 ? 0 : (size_t)l * C), sizeof(float) * C);
        has[l] = 1;
    }
    free(v);
    return CLENS_OK;
}

int clens_steer_direction_load(const char *path, int n_layers, int C, float *vecs, unsigned char *has, clens_error *err)
{
    return steer_direction_load_at(path, CLENS_HOOK_RESID_PRE, n_layers, C, vecs, has, err);
}

/* A residual at depth d (resid_pre numbering) is the input of block d and the
 * output of block d-1 (the final residual, depth n_layers, is the output of
 * the last block). */
long steer_block_at_depth(clens_hook_point point, long depth)
{
    return point == CLENS_HOOK_RESID_POST ? depth - 1 : depth;
}

/* The same, for steering at `point`: a probe.json entry at depth d steers the
 * block whose `point` is that residual (steer_block_at_depth). */
int steer_direction_load_at(const char *path, clens_hook_point point, int n_layers, int C, float *vecs,
                            unsigned char *has, clens_error *err)
{
    memset(vecs, 0, sizeof(float) * (size_t)n_layers * C);
    memset(has, 0, (size_t)n_layers);
    if (ends_with(path, ".gguf")) {
        clens_cvec cv = {0};
        int rc = clens_cvec_load(&cv, path, 1.0f, err);
        if (rc) return rc;
        if (cv.n_embd != C) {
            clens_cvec_free(&cv);
            return clens_err(err, CLENS_E_FORMAT, "%s: control vector of width %d, the model's d_model is %d", path, cv.n_embd, C);
        }
        for (int l = 1; l < n_layers && l < cv.n_rows; l++) {
            memcpy(vecs + (size_t)l * C, cv.data + (size_t)l * C, sizeof(float) * C);
            for (int c = 0; c < C; c++) has[l] |= vecs[(size_t)l * C + c] != 0;
        }
        clens_cvec_free(&cv);
        return CLENS_OK;
    }
    if (!ends_with(path, ".json")) return load_npy(path, n_layers, C, vecs, has, -1, err);
    json_t *root;
    json_error_t je;
    int rc = clens_json_load_regular(path, 0, &root, &je, err);
    if (rc) return rc;
    json_t *layers = json_object_get(root, "layers");
    if (!json_is_array(layers)) { json_decref(root); return clens_err(err, CLENS_E_FORMAT, "%s: no \"layers\" array", path); }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) slash[1] = 0; else dir[0] = 0;
    size_t i;
    json_t *e;
    int found = 0;
    json_array_foreach(layers, i, e) {
        json_t *jl = json_object_get(e, "layer"), *jp = json_object_get(e, "direction_npy");
        /* clens probe's entries carry "depth" (resid_pre numbering, docs/probe.md): the
         * final residual blocks.{L-1}.hook_resid_post has layer L-1 but is resid_pre L, and
         * must not replace resid_pre L-1's direction; hooks off the residual stream have
         * depth null and no resid_pre layer to steer */
        int by_depth = 0;
        if (json_object_get(e, "depth")) {
            jl = json_object_get(e, "depth");
            if (!json_is_integer(jl)) continue;
            by_depth = 1;
        }
        /* `clens probe` writes the clens-probe/1 schema (docs/probe.md): the unit-norm
         * difference-of-means direction is "diff_of_means": {"file": ...}; read it when
         * there is no "direction_npy", so its probe.json can be given as it is. */
        if (!jp) jp = json_object_get(json_object_get(e, "diff_of_means"), "file");
        if (!json_is_integer(jl) || !json_is_string(jp)) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: layers[%zu] needs an integer \"layer\" and a string \"direction_npy\" (or \"diff_of_means\": {\"file\"} of clens probe)", path, i);
            break;
        }
        long long l = by_depth ? steer_block_at_depth(point, (long)json_integer_value(jl)) : json_integer_value(jl);
        if (l < 0 || l >= n_layers) continue; /* no block to steer at this depth and point */
        const char *rel = json_string_value(jp);
        char full[8192];
        snprintf(full, sizeof full, "%s%s", rel[0] == '/' ? "" : dir, rel);
        if ((rc = load_npy(full, n_layers, C, vecs, has, (int)l, err))) break;
        found++;
    }
    json_decref(root);
    if (!rc && !found) rc = clens_err(err, CLENS_E_FORMAT, "%s: no direction for any of the model's layers 0..%d", path, n_layers - 1);
    return rc;
}
