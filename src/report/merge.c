/*
 * merge.c: `clens merge` of a sharded patching run. The shards must belong to
 * one study (same settings_hash and settings, the same shard count, distinct
 * indices, none missing, identity provenance equal); their records are
 * sorted by candidate and the first settings.n kept pairs are used, exactly
 * as one unsharded run would (docs/rulings.md R13), so the merged folder's
 * results.json has the same bytes as that run's.
 */
#include "report/results_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/outdir.h"
#include "base/path.h"

typedef struct shard_in {
    const char *dir;
    char *settings_path;
    char *settings_text;
    json_t *root;
    int index, count;
} shard_in;

static int same_file(const char *a, const char *b)
{
    struct stat x, y;
    if (stat(a, &x) || stat(b, &y)) return 0;
    return x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

int clens_results_merge(const char *const *dirs, int n_dirs, const char *out_dir, char **warnings,
                        clens_error *err)
{
    if (warnings) *warnings = NULL;
    if (n_dirs < 1) return clens_err(err, CLENS_E_ARG, "no shard directories given");
    shard_in *sh = calloc((size_t)n_dirs, sizeof *sh);
    if (!sh) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    clens_sb warn = {0}, missing = {0};
    clens_results_input *in = NULL;
    char *merged_settings = NULL, *recs_text = NULL, *js = NULL, *md = NULL;
    size_t recs_len = 0;
    int *order = NULL;
    int rc = CLENS_OK;

    for (int i = 0; i < n_dirs && !rc; i++) {
        sh[i].dir = dirs[i];
        size_t len;
        rc = results_read_in(dirs[i], "settings.json", &sh[i].settings_text, &len, &sh[i].settings_path, err);
        if (rc) break;
        json_error_t je;
        sh[i].root = json_loads(sh[i].settings_text, JSON_REJECT_DUPLICATES, &je);
        if (!sh[i].root) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s:%d:%d: %s", sh[i].settings_path, je.line, je.column, je.text);
            break;
        }
        json_t *shard = json_object_get(sh[i].root, "shard");
        long long x, y;
        if (!json_is_object(shard) || results_get_int(shard, "count", 1, 1000000, &y) || results_get_int(shard, "index", 0, y - 1, &x)) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: \"shard\": expected {\"index\": i, \"count\": n} with 0 <= i < n",
                           sh[i].settings_path);
            break;
        }
        sh[i].index = (int)x;
        sh[i].count = (int)y;
        if (!json_is_string(json_object_get(sh[i].root, "settings_hash")) ||
            !json_is_object(json_object_get(sh[i].root, "settings"))) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: expected \"settings_hash\" and \"settings\"", sh[i].settings_path);
            break;
        }
    }
    if (rc) goto done;

    /* One study: same settings_hash, same settings, same shard count, distinct indices, none missing. */
    const char *h0 = json_string_value(json_object_get(sh[0].root, "settings_hash"));
    for (int i = 1; i < n_dirs; i++) {
        const char *h = json_string_value(json_object_get(sh[i].root, "settings_hash"));
        if (strcmp(h, h0) || !json_equal(json_object_get(sh[i].root, "settings"), json_object_get(sh[0].root, "settings"))) {
            const json_t *s0 = json_object_get(sh[0].root, "settings"), *si = json_object_get(sh[i].root, "settings");
            const char *key = clens_json_first_difference(s0, si);
            char *a = key ? clens_json_brief(json_object_get(s0, key)) : NULL;
            char *c = key ? clens_json_brief(json_object_get(si, key)) : NULL;
            rc = clens_err(err, CLENS_E_STATE,
                           "%s and %s belong to different studies (settings_hash %.12s vs %.12s)%s%s%s%s%s%s",
                           sh[0].settings_path, sh[i].settings_path, h0, h, key ? ": settings." : "",
                           key ? key : "", key ? " is " : "", a ? a : "", key ? " vs " : "", c ? c : "");
            free(a);
            free(c);
            goto done;
        }
        if (sh[i].count != sh[0].count) {
            rc = clens_err(err, CLENS_E_STATE, "%s is shard %d of %d but %s is shard %d of %d",
                           sh[0].settings_path, sh[0].index, sh[0].count, sh[i].settings_path, sh[i].index, sh[i].count);
            goto done;
        }
    }
    const int count = sh[0].count;
    order = malloc(sizeof(int) * (size_t)count);
    if (!order) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    for (int k = 0; k < count; k++) order[k] = -1;
    for (int i = 0; i < n_dirs; i++) {
        if (order[sh[i].index] >= 0) {
            rc = clens_err(err, CLENS_E_STATE, "%s and %s are both shard %d of %d", sh[order[sh[i].index]].dir,
                           sh[i].dir, sh[i].index, count);
            goto done;
        }
        order[sh[i].index] = i;
    }
    int n_missing = 0;
    for (int k = 0; k < count; k++)
        if (order[k] < 0) clens_sb_printf(&missing, "%s%d", n_missing++ ? ", " : "", k);
    if (n_missing) {
        rc = clens_err(err, CLENS_E_STATE, "shard%s %s of %d missing (got %d director%s)", n_missing > 1 ? "s" : "",
                       missing.p ? missing.p : "?", count, n_dirs, n_dirs == 1 ? "y" : "ies");
        goto done;
    }

    /* Provenance: identity keys must agree; other differences are reported. */
    const shard_in *s0 = &sh[order[0]];
    json_t *p0 = json_object_get(s0->root, "provenance");
    for (int k = 1; k < count; k++) {
        const shard_in *s = &sh[order[k]];
        json_t *p = json_object_get(s->root, "provenance");
        if (!json_is_object(p0) || !json_is_object(p)) {
            if (!json_equal(p0, p) && (p0 || p)) {
                rc = clens_err(err, CLENS_E_STATE, "%s and %s: provenance missing in one", s0->settings_path,
                               s->settings_path);
                goto done;
            }
            continue;
        }
        const char *key;
        json_t *v;
        json_object_foreach(p0, key, v) {
            json_t *w = json_object_get(p, key);
            if (w && json_equal(v, w)) continue;
            if (clens_provenance_key_is_identity(key)) {
                rc = clens_err(err, CLENS_E_STATE, "shard %d (%s) and shard %d (%s) ran different setups: provenance.%s differs",
                               s0->index, s0->dir, s->index, s->dir, key);
                goto done;
            }
            clens_sb_printf(&warn, "shard %d (%s): provenance.%s differs from shard 0's; results.json keeps shard 0's\n",
                            s->index, s->dir, key);
        }
        json_object_foreach(p, key, v) {
            if (json_object_get(p0, key)) continue;
            if (clens_provenance_key_is_identity(key)) {
                rc = clens_err(err, CLENS_E_STATE, "shard %d (%s) and shard %d (%s) ran different setups: provenance.%s differs",
                               s0->index, s0->dir, s->index, s->dir, key);
                goto done;
            }
            clens_sb_printf(&warn, "shard %d (%s): provenance.%s is absent in shard 0\n", s->index, s->dir, key);
        }
    }

    /* Output dir: create it; never one of the inputs; never another study's. */
    if (mkdir(out_dir, 0777) && errno != EEXIST) {
        rc = clens_err(err, CLENS_E_IO, "%s: cannot create directory: %s", out_dir, strerror(errno));
        goto done;
    }
    for (int i = 0; i < n_dirs; i++)
        if (same_file(out_dir, sh[i].dir)) {
            rc = clens_err(err, CLENS_E_ARG, "the output directory %s is also an input shard", out_dir);
            goto done;
        }
    {
        char *op = clens_path_join(out_dir, "settings.json");
        if (!op) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
        json_t *old = json_load_file(op, 0, NULL);
        int other = old && (!json_is_string(json_object_get(old, "settings_hash")) ||
                            strcmp(json_string_value(json_object_get(old, "settings_hash")), h0));
        json_decref(old);
        if (other) {
            rc = clens_err(err, CLENS_E_STATE, "%s: holds a different study (settings_hash differs); refusing to overwrite", op);
            free(op);
            goto done;
        }
        free(op);
    }

    /* Merged settings: shard 0's, with shard {0, 1}. */
    {
        json_t *m = json_deep_copy(s0->root);
        json_t *shard = json_pack("{s:i,s:i}", "index", 0, "count", 1);
        if (!m || !shard || json_object_set_new(m, "shard", shard)) {
            json_decref(m);
            rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
            goto done;
        }
        clens_sb t = {0};
        clens_sb_json_value_ordered(&t, m, 0); /* shard 0's key order */
        clens_sb_puts(&t, "\n");
        json_decref(m);
        merged_settings = clens_sb_take(&t);
        if (!merged_settings) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    }
    rc = clens_results_input_new(&in, merged_settings, "merged settings.json", err);
    for (int k = 0; k < count && !rc; k++) {
        const shard_in *s = &sh[order[k]];
        char *data = NULL, *path = NULL;
        size_t len = 0;
        rc = results_read_in(s->dir, "records.jsonl", &data, &len, &path, err);
        if (!rc) rc = clens_results_input_add(in, data, len, path, s->index, s->count, err);
        free(data);
        free(path);
    }
    if (!rc) rc = clens_results_input_records_text(in, &recs_text, &recs_len, err);
    if (!rc) rc = clens_results_input_render(in, &js, &md, err);
    if (!rc) rc = results_write_out(out_dir, "settings.json", merged_settings, strlen(merged_settings), err);
    if (!rc) rc = results_write_out(out_dir, "records.jsonl", recs_text, recs_len, err);
    if (!rc) rc = results_write_out(out_dir, "results.json", js, strlen(js), err);
    if (!rc) rc = results_write_out(out_dir, "results.md", md, strlen(md), err);

done:
    if (!rc && warnings && warn.len) *warnings = clens_sb_take(&warn);
    clens_sb_free(&warn);
    clens_sb_free(&missing);
    clens_results_input_free(in);
    for (int i = 0; i < n_dirs; i++) {
        free(sh[i].settings_path);
        free(sh[i].settings_text);
        json_decref(sh[i].root);
    }
    free(sh);
    free(order);
    free(merged_settings);
    free(recs_text);
    free(js);
    free(md);
    return rc;
}
