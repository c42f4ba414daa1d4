/*
 * outdir.c: the output-folder check (contract and wording in outdir.h).
 * Keys are compared in the order of the old file's "settings" object, then
 * any key only the new one has, so the key named is the first one a reader
 * of settings.json would find changed.
 */
#include "base/outdir.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base.h"
#include "base/infile.h"
#include "base/path.h"

const char *clens_json_first_difference(const json_t *a, const json_t *b)
{
    const char *key;
    json_t *v;
    if (json_is_object(a))
        json_object_foreach((json_t *)a, key, v) {
            json_t *w = json_object_get(b, key);
            if (!w || !json_equal(v, w)) return key;
        }
    if (json_is_object(b))
        json_object_foreach((json_t *)b, key, v)
            if (!json_object_get(a, key)) return key;
    return NULL;
}

char *clens_json_brief(const json_t *v)
{
    if (!v) return strdup("(absent)");
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    if (s && strlen(s) > 120) strcpy(s + 110, "...");
    return s ? s : strdup("?");
}

int clens_provenance_key_is_identity(const char *key)
{
    static const char *const may_differ[] = {"host_cpu"};
    for (size_t i = 0; i < sizeof may_differ / sizeof may_differ[0]; i++)
        if (strcmp(key, may_differ[i]) == 0) return 0;
    return 1;
}

int clens_outdir_refuse_text(clens_error *err, const char *dir, const char *kind, const char *what, const char *was,
                             const char *now)
{
    return clens_err(err, CLENS_E_STATE,
                     "%s holds a %s with other settings: %s is %s there but %s now; use another output folder, "
                     "or the same settings to resume",
                     dir, kind, what, was ? was : "?", now ? now : "?");
}

int clens_outdir_refuse(clens_error *err, const char *dir, const char *kind, const char *what, const json_t *was,
                        const json_t *now)
{
    char *a = clens_json_brief(was), *b = clens_json_brief(now);
    int rc = clens_outdir_refuse_text(err, dir, kind, what, a, b);
    free(a);
    free(b);
    return rc;
}

int clens_outdir_check(const char *dir, const char *kind, const json_t *settings, const char *hash,
                       const json_t *provenance, int *found, clens_error *err)
{
    *found = 0;
    char *path = clens_path_join(dir, "settings.json");
    if (!path) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    struct stat st;
    if (lstat(path, &st) != 0) { free(path); return CLENS_OK; }
    json_t *old = NULL;
    json_error_t je;
    int rc = clens_json_load_regular(path, 0, &old, &je, err);
    if (rc) { free(path); return rc; }
    char what[300];
    const json_t *os = json_object_get(old, "settings");
    if (!json_is_object(os)) {
        rc = clens_err(err, CLENS_E_FORMAT, "%s: no \"settings\" object: not a clens output folder", path);
        goto done;
    }
    const char *key = clens_json_first_difference(os, settings);
    if (key) {
        snprintf(what, sizeof what, "settings.%s", key);
        rc = clens_outdir_refuse(err, dir, kind, what, json_object_get(os, key), json_object_get(settings, key));
        goto done;
    }
    if (hash) {
        json_t *oh = json_object_get(old, "settings_hash");
        if (!json_is_string(oh) || strcmp(json_string_value(oh), hash) != 0) {
            json_t *nh = json_string(hash);
            rc = clens_outdir_refuse(err, dir, kind, "settings_hash", oh, nh);
            json_decref(nh);
            goto done;
        }
    }
    if (provenance) {
        const json_t *op = json_object_get(old, "provenance");
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)provenance, k, v) {
            json_t *w = json_object_get(op, k);
            if (clens_provenance_key_is_identity(k) && (!w || !json_equal(v, w))) {
                snprintf(what, sizeof what, "provenance.%s", k);
                rc = clens_outdir_refuse(err, dir, kind, what, w, v);
                goto done;
            }
        }
    }
    *found = 1;
done:
    json_decref(old);
    free(path);
    return rc;
}
