/*
 * safetensors.c: memory-mapped, validated reader of the safetensors format
 * (https://github.com/huggingface/safetensors, "Format"): an 8-byte
 * little-endian header length N, N bytes of UTF-8 JSON mapping tensor names to
 * {dtype, shape, data_offsets:[begin,end]} (plus an optional __metadata__
 * object), then the data section; offsets are relative to its start.
 *
 * Files are untrusted: every field is checked before a pointer into the
 * mapping is formed, and errors name the file and the tensor.
 */
#include "base/alloc.h"
#include "formats/formats.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "base/infile.h"

#define ST_MAX_HEADER (100u << 20) /* as the reference implementation */

static const struct { const char *name; st_dtype dt; int size; } dtypes[] = {
    {"F32", ST_F32, 4}, {"BF16", ST_BF16, 2}, {"F16", ST_F16, 2},
    {"F64", ST_OTHER, 8}, {"I64", ST_OTHER, 8}, {"U64", ST_OTHER, 8},
    {"I32", ST_OTHER, 4}, {"U32", ST_OTHER, 4}, {"I16", ST_OTHER, 2},
    {"U16", ST_OTHER, 2}, {"I8", ST_OTHER, 1}, {"U8", ST_OTHER, 1},
    {"BOOL", ST_OTHER, 1}, {"F8_E4M3", ST_OTHER, 1}, {"F8_E5M2", ST_OTHER, 1},
};

int64_t st_numel(const st_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

typedef struct { size_t begin, end; int idx; } span;

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

static void free_tensors(st_tensor *t, int n)
{
    for (int i = 0; i < n; i++) free(t[i].name);
    free(t);
}

int st_parse_header(const char *json, size_t json_len, size_t data_size, const char *path,
                    st_tensor **out, int *n_out, clens_error *err)
{
    json_error_t je;
    json_t *root = json_loadb(json, json_len, JSON_REJECT_DUPLICATES, &je);
    st_tensor *ts = NULL;
    span *spans = NULL;
    int n = 0, rc = CLENS_OK;
    if (!root)
        return clens_err(err, CLENS_E_FORMAT, "%s: safetensors header is not valid JSON (%s at byte %d)",
                         path, je.text, je.position);
    if (!json_is_object(root)) {
        rc = clens_err(err, CLENS_E_FORMAT, "%s: safetensors header is not a JSON object", path);
        goto fail;
    }
    size_t cap = json_object_size(root);
    ts = clens_calloc(cap ? cap : 1, sizeof *ts);
    spans = clens_calloc(cap ? cap : 1, sizeof *spans);
    if (!ts || !spans) { rc = clens_err(err, CLENS_E_NOMEM, "%s: out of memory", path); goto fail; }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(v)) {
                rc = clens_err(err, CLENS_E_FORMAT, "%s: __metadata__ is not an object", path);
                goto fail;
            }
            continue;
        }
        json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
               *jo = json_object_get(v, "data_offsets");
        if (!json_is_object(v) || !json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) ||
            json_array_size(jo) != 2) {
            rc = clens_err(err, CLENS_E_FORMAT,
                           "%s: tensor '%s': expected {dtype, shape, data_offsets:[begin,end]}", path, key);
            goto fail;
        }
        st_tensor *t = &ts[n];
        int esize = 0;
        const char *dn = json_string_value(jd);
        for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
            if (strcmp(dn, dtypes[i].name) == 0) { t->dtype = dtypes[i].dt; esize = dtypes[i].size; }
        if (!esize) {
            rc = clens_err(err, CLENS_E_UNSUPPORTED, "%s: tensor '%s': unknown dtype '%.16s'", path, key, dn);
            goto fail;
        }
        snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dn);
        if (json_array_size(js) > ST_MAX_DIMS) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: tensor '%s': more than %d dimensions", path, key, ST_MAX_DIMS);
            goto fail;
        }
        t->ndim = (int)json_array_size(js);
        uint64_t numel = 1;
        for (int i = 0; i < t->ndim; i++) {
            json_t *d = json_array_get(js, i);
            if (!json_is_integer(d) || json_integer_value(d) < 0 || json_integer_value(d) > (1LL << 40)) {
                rc = clens_err(err, CLENS_E_FORMAT, "%s: tensor '%s': bad shape entry %d", path, key, i);
                goto fail;
            }
            t->shape[i] = json_integer_value(d);
            /* checked: [2^32, 2^32, 4] must not wrap to 0 elements ("needs 0 bytes") */
            if (__builtin_mul_overflow(numel, (uint64_t)t->shape[i], &numel) || numel > (1ULL << 40)) {
                rc = clens_err(err, CLENS_E_FORMAT, "%s: tensor '%s': shape has more than 2^40 elements", path, key);
                goto fail;
            }
        }
        json_t *b = json_array_get(jo, 0), *e = json_array_get(jo, 1);
        if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
            json_integer_value(e) < json_integer_value(b)) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: tensor '%s': bad data_offsets", path, key);
            goto fail;
        }
        uint64_t beg = (uint64_t)json_integer_value(b), end = (uint64_t)json_integer_value(e);
        if (end > data_size) {
            rc = clens_err(err, CLENS_E_FORMAT,
                           "%s: tensor '%s': data_offsets [%llu, %llu] beyond the data section (%zu bytes; file truncated?)",
                           path, key, (unsigned long long)beg, (unsigned long long)end, data_size);
            goto fail;
        }
        if (end - beg != numel * (uint64_t)esize) {
            rc = clens_err(err, CLENS_E_FORMAT,
                           "%s: tensor '%s': %s x shape needs %llu bytes but data_offsets span %llu",
                           path, key, dn, (unsigned long long)(numel * esize), (unsigned long long)(end - beg));
            goto fail;
        }
        t->name = clens_strdup(key);
        if (!t->name) { rc = clens_err(err, CLENS_E_NOMEM, "%s: out of memory", path); goto fail; }
        t->nbytes = (size_t)(end - beg);
        t->data = (const void *)(uintptr_t)beg; /* offset for now; rebased by the caller */
        spans[n] = (span){(size_t)beg, (size_t)end, n};
        n++;
    }
    qsort(spans, n, sizeof *spans, cmp_span);
    for (int i = 1; i < n; i++)
        if (spans[i].begin < spans[i - 1].end && spans[i].end > spans[i].begin &&
            spans[i - 1].end > spans[i - 1].begin) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: tensors '%s' and '%s' overlap", path,
                           ts[spans[i - 1].idx].name, ts[spans[i].idx].name);
            goto fail;
        }
    free(spans);
    json_decref(root);
    *out = ts;
    *n_out = n;
    return CLENS_OK;
fail:
    free(spans);
    if (ts) free_tensors(ts, n);
    json_decref(root);
    return rc;
}

int st_open_file(st_archive *a, const char *path, clens_error *err)
{
    int fd;
    size_t size;
    void *map = MAP_FAILED;
    st_tensor *ts = NULL;
    int n = 0, rc = clens_open_regular(path, &fd, &size, err); /* a FIFO must not block */
    if (rc) return rc;
    if (size < 8) {
        close(fd);
        return clens_err(err, CLENS_E_FORMAT, "%s: file is %zu bytes, too short for a safetensors header", path, size);
    }
    map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return clens_err(err, CLENS_E_IO, "%s: mmap failed: %s", path, strerror(errno));
    uint64_t hlen = 0;
    const unsigned char *p = map;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | p[i];
    if (hlen > ST_MAX_HEADER || hlen > size - 8) {
        rc = clens_err(err, CLENS_E_FORMAT,
                       "%s: header length %llu exceeds the file size (%zu bytes) or the 100 MB limit",
                       path, (unsigned long long)hlen, size);
        goto fail;
    }
    size_t data_off = 8 + (size_t)hlen;
    rc = st_parse_header((const char *)p + 8, (size_t)hlen, size - data_off, path, &ts, &n, err);
    if (rc) goto fail;
    for (int i = 0; i < n; i++) {
        size_t off = data_off + (size_t)(uintptr_t)ts[i].data;
        int align = ts[i].dtype == ST_F32 ? 4 : ts[i].dtype == ST_OTHER ? 1 : 2;
        if (off % (size_t)align) {
            rc = clens_err(err, CLENS_E_UNSUPPORTED, "%s: tensor '%s': data not aligned to %d bytes", path,
                           ts[i].name, align);
            goto fail;
        }
        ts[i].data = p + off;
        ts[i].file = a->n_files;
    }
    st_file *nf = clens_realloc(a->files, sizeof *nf * (a->n_files + 1));
    if (!nf) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto fail; }
    a->files = nf;
    st_tensor *nt = clens_realloc(a->tensors, sizeof *nt * (a->n_tensors + n + 1));
    if (!nt) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto fail; }
    a->tensors = nt;
    char *path_copy = clens_strdup(path);
    if (!path_copy) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto fail; }
    a->files[a->n_files] = (st_file){path_copy, map, size};
    a->n_files++;
    memcpy(a->tensors + a->n_tensors, ts, sizeof *ts * n);
    a->n_tensors += n;
    free(ts);
    qsort(a->tensors, a->n_tensors, sizeof *a->tensors, cmp_name);
    for (int i = 1; i < a->n_tensors; i++)
        if (strcmp(a->tensors[i].name, a->tensors[i - 1].name) == 0)
            return clens_err(err, CLENS_E_FORMAT, "%s: tensor '%s' appears in two files (%s and %s)", path,
                             a->tensors[i].name, a->files[a->tensors[i - 1].file].path,
                             a->files[a->tensors[i].file].path);
    return CLENS_OK;
fail:
    if (ts) free_tensors(ts, n);
    munmap(map, size);
    return rc;
}

const st_tensor *st_find(const st_archive *a, const char *name)
{
    st_tensor key = {0};
    key.name = (char *)name;
    return bsearch(&key, a->tensors, a->n_tensors, sizeof *a->tensors, cmp_name);
}

void st_close(st_archive *a)
{
    for (int i = 0; i < a->n_files; i++) {
        munmap(a->files[i].map, a->files[i].size);
        free(a->files[i].path);
    }
    free(a->files);
    if (a->tensors) free_tensors(a->tensors, a->n_tensors);
    memset(a, 0, sizeof *a);
}

static int exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int st_open_folder(st_archive *a, const char *dir, clens_error *err)
{
    char path[4096];
    memset(a, 0, sizeof *a);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (!exists(path)) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        if (!exists(path))
            return clens_err(err, CLENS_E_IO,
                             "%s: no model.safetensors or model.safetensors.index.json in the model folder", dir);
        int rc = st_open_file(a, path, err);
        if (rc) st_close(a);
        return rc;
    }
    json_error_t je;
    json_t *root, *wm;
    int jrc = clens_json_load_regular(path, JSON_REJECT_DUPLICATES, &root, &je, err);
    if (jrc) return jrc;
    wm = json_object_get(root, "weight_map");
    if (!json_is_object(wm) || json_object_size(wm) == 0) {
        json_decref(root);
        return clens_err(err, CLENS_E_FORMAT, "%s: missing or empty \"weight_map\" object", path);
    }
    /* Unique shard names, sorted, each opened once. */
    size_t nw = json_object_size(wm), nu = 0;
    const char **names = clens_calloc(nw, sizeof *names);
    const char *key;
    json_t *v;
    int rc = CLENS_OK;
    if (!names) { json_decref(root); return clens_err(err, CLENS_E_NOMEM, "out of memory"); }
    json_object_foreach(wm, key, v) {
        const char *f = json_string_value(v);
        if (!f || !*f || strchr(f, '/') || strcmp(f, "..") == 0) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: weight_map entry '%s' is not a plain file name", path, key);
            goto done;
        }
        names[nu++] = f;
    }
    qsort(names, nu, sizeof *names, cmp_str);
    for (size_t i = 0; i < nu; i++) {
        if (i && strcmp(names[i], names[i - 1]) == 0) continue;
        char fp[4096];
        snprintf(fp, sizeof fp, "%s/%s", dir, names[i]);
        if ((rc = st_open_file(a, fp, err))) goto done;
    }
    json_object_foreach(wm, key, v) {
        const st_tensor *t = st_find(a, key);
        if (!t) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: tensor '%s' listed in weight_map is missing from %s", path, key,
                           json_string_value(v));
            goto done;
        }
        const char *base = strrchr(a->files[t->file].path, '/');
        if (strcmp(base ? base + 1 : a->files[t->file].path, json_string_value(v)) != 0) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: tensor '%s' is in %s, not in %s as weight_map says", path, key,
                           a->files[t->file].path, json_string_value(v));
            goto done;
        }
    }
done:
    free(names);
    json_decref(root);
    if (rc) st_close(a);
    return rc;
}

void st_header_sha256_hex(const char *path, char hex[65])
{
    unsigned char len8[8];
    uint64_t n = 0;
    char *buf = NULL;
    hex[0] = 0;
    FILE *f;
    if (clens_fopen_regular(path, &f, NULL)) return;
    if (fread(len8, 1, 8, f) == 8) {
        for (int i = 7; i >= 0; i--) n = n << 8 | len8[i];
        if (n < (100u << 20) && (buf = clens_malloc(n + 8)) && fread(buf + 8, 1, n, f) == n) {
            memcpy(buf, len8, 8);
            clens_sha256_hex(buf, n + 8, hex);
        }
    }
    free(buf);
    fclose(f);
}
