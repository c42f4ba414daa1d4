/*
 * gguf.c: reader and writer of GGUF files (ggml's docs/gguf.md, copied in
 * docs/steer.md), written from the specification for llama.cpp's control
 * vectors but general: header (magic "GGUF", version 2 or 3, tensor and
 * key/value counts), typed key/values (scalars, strings, arrays, nested
 * arrays), tensor infos (name, dims, ggml type, offset), padding to
 * general.alignment (default 32), tensor data. Little-endian only: a
 * big-endian file shows up as an unknown version and is refused.
 *
 * The reader treats the file as hostile: every count and length is checked
 * against the bytes that remain before anything is allocated, sizes are
 * computed with overflow checks, every tensor must lie inside the data
 * section at an aligned offset without overlapping another, and names and
 * keys must be unique. The whole file is read into memory (control vectors
 * are small); gguf_parse works on a buffer, which is the fuzzing entry point.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "base/infile.h"
#include "formats/formats.h"

enum { GGUF_MAX_DIMS = 4, GGUF_MAX_DEPTH = 3 };

/* ggml types: block size (elements) and bytes per block; 0 = unknown. */
static const struct { int blck, bytes; const char *name; } ggml_types[] = {
    [0] = {1, 4, "F32"},      [1] = {1, 2, "F16"},      [2] = {32, 18, "Q4_0"},  [3] = {32, 20, "Q4_1"},
    [6] = {32, 22, "Q5_0"},   [7] = {32, 24, "Q5_1"},   [8] = {32, 34, "Q8_0"},  [9] = {32, 36, "Q8_1"},
    [10] = {256, 84, "Q2_K"}, [11] = {256, 110, "Q3_K"}, [12] = {256, 144, "Q4_K"}, [13] = {256, 176, "Q5_K"},
    [14] = {256, 210, "Q6_K"}, [15] = {256, 292, "Q8_K"}, [24] = {1, 1, "I8"},    [25] = {1, 2, "I16"},
    [26] = {1, 4, "I32"},     [27] = {1, 8, "I64"},     [28] = {1, 8, "F64"},    [30] = {1, 2, "BF16"},
};
#define N_GGML_TYPES (sizeof ggml_types / sizeof ggml_types[0])

const char *gguf_type_name(uint32_t t)
{
    return t < N_GGML_TYPES && ggml_types[t].name ? ggml_types[t].name : "?";
}

/* Bytes of one value of a scalar kv type, 0 for string/array/unknown. */
static size_t scalar_size(uint32_t t)
{
    switch (t) {
    case GGUF_UINT8: case GGUF_INT8: case GGUF_BOOL: return 1;
    case GGUF_UINT16: case GGUF_INT16: return 2;
    case GGUF_UINT32: case GGUF_INT32: case GGUF_FLOAT32: return 4;
    case GGUF_UINT64: case GGUF_INT64: case GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

typedef struct {
    const unsigned char *p;
    size_t n, off;
    const char *path;
    clens_error *err;
} cursor;

static int need(cursor *c, size_t k, const char *what)
{
    if (k > c->n - c->off)
        return clens_err(c->err, CLENS_E_FORMAT, "%s: truncated at byte %zu reading %s (%zu bytes needed, %zu left)",
                         c->path, c->off, what, k, c->n - c->off);
    return 0;
}

static uint64_t le(const unsigned char *p, int k)
{
    uint64_t v = 0;
    for (int i = k - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what)
{
    if (need(c, 4, what)) return CLENS_E_FORMAT;
    *v = (uint32_t)le(c->p + c->off, 4);
    c->off += 4;
    return 0;
}

static int rd_u64(cursor *c, uint64_t *v, const char *what)
{
    if (need(c, 8, what)) return CLENS_E_FORMAT;
    *v = le(c->p + c->off, 8);
    c->off += 8;
    return 0;
}

/* A gguf_string: u64 length + bytes; *s gets a NUL-terminated copy (or NULL
 * when s is NULL: skipped). Strings with a NUL inside are refused for names
 * (no_nul). */
static int rd_str(cursor *c, char **s, int no_nul, const char *what)
{
    uint64_t len;
    if (rd_u64(c, &len, what)) return CLENS_E_FORMAT;
    if (len > c->n - c->off)
        return clens_err(c->err, CLENS_E_FORMAT, "%s: %s of %llu bytes at byte %zu runs past the end (%zu left)",
                         c->path, what, (unsigned long long)len, c->off - 8, c->n - c->off);
    const unsigned char *b = c->p + c->off;
    if (no_nul && memchr(b, 0, len))
        return clens_err(c->err, CLENS_E_FORMAT, "%s: %s at byte %zu contains a NUL byte", c->path, what, c->off - 8);
    if (s) {
        *s = malloc(len + 1);
        if (!*s) return clens_err(c->err, CLENS_E_NOMEM, "out of memory");
        memcpy(*s, b, len);
        (*s)[len] = 0;
    }
    c->off += len;
    return 0;
}

/* Skips (or reads, for a top-level scalar or string) one value of type t. */
static int rd_value(cursor *c, uint32_t t, gguf_kv *kv, int depth, const char *key)
{
    size_t sz = scalar_size(t);
    if (sz) {
        if (need(c, sz, "a value")) return CLENS_E_FORMAT;
        if (kv) {
            const unsigned char *b = c->p + c->off;
            uint64_t u = le(b, (int)sz);
            kv->u = u;
            switch (t) {
            case GGUF_INT8: kv->i = (int8_t)u; break;
            case GGUF_INT16: kv->i = (int16_t)u; break;
            case GGUF_INT32: kv->i = (int32_t)u; break;
            case GGUF_INT64: kv->i = (int64_t)u; break;
            default: kv->i = u > INT64_MAX ? INT64_MAX : (int64_t)u; break;
            }
            if (t == GGUF_FLOAT32) { uint32_t w = (uint32_t)u; float f; memcpy(&f, &w, 4); kv->f = f; }
            else if (t == GGUF_FLOAT64) { double d; memcpy(&d, &u, 8); kv->f = d; }
            else kv->f = t == GGUF_INT8 || t == GGUF_INT16 || t == GGUF_INT32 || t == GGUF_INT64 ? (double)kv->i : (double)u;
            if (t == GGUF_BOOL && u > 1)
                return clens_err(c->err, CLENS_E_FORMAT, "%s: key '%s': bool value %llu is not 0 or 1", c->path, key,
                                 (unsigned long long)u);
        }
        c->off += sz;
        return 0;
    }
    if (t == GGUF_STRING) return rd_str(c, kv ? &kv->str : NULL, 0, "a string value");
    if (t != GGUF_ARRAY)
        return clens_err(c->err, CLENS_E_FORMAT, "%s: key '%s': unknown value type %u at byte %zu", c->path, key, t,
                         c->off - 4);
    if (depth >= GGUF_MAX_DEPTH)
        return clens_err(c->err, CLENS_E_UNSUPPORTED, "%s: key '%s': arrays nested deeper than %d", c->path, key,
                         GGUF_MAX_DEPTH);
    uint32_t et;
    uint64_t cnt;
    if (rd_u32(c, &et, "an array type") || rd_u64(c, &cnt, "an array length")) return CLENS_E_FORMAT;
    /* Every element takes at least one byte (strings and arrays 8+): a count
     * larger than what remains is refused before any work. */
    size_t esz = scalar_size(et);
    size_t min = esz ? esz : et == GGUF_STRING ? 8 : et == GGUF_ARRAY ? 12 : 1;
    if (cnt > (c->n - c->off) / min)
        return clens_err(c->err, CLENS_E_FORMAT, "%s: key '%s': array of %llu elements cannot fit in the %zu bytes left",
                         c->path, key, (unsigned long long)cnt, c->n - c->off);
    if (kv) { kv->arr_type = et; kv->arr_n = cnt; kv->arr_data = c->p + c->off; }
    if (esz) { c->off += (size_t)cnt * esz; return 0; }
    for (uint64_t k = 0; k < cnt; k++) {
        int rc = rd_value(c, et, NULL, depth + 1, key);
        if (rc) return rc;
    }
    return 0;
}

void gguf_free(gguf_file *g)
{
    if (!g) return;
    for (uint64_t i = 0; g->kv && i < g->n_kv; i++) { free(g->kv[i].key); free(g->kv[i].str); }
    for (uint64_t i = 0; g->tensors && i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    free(g->buf);
    memset(g, 0, sizeof *g);
}

const gguf_kv *gguf_find_kv(const gguf_file *g, const char *key)
{
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name)
{
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0) return &g->tensors[i];
    return NULL;
}

static int cmp_offset(const void *a, const void *b)
{
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

int gguf_parse(gguf_file *g, const void *buf, size_t size, const char *path, clens_error *err)
{
    memset(g, 0, sizeof *g);
    cursor c = {buf, size, 0, path, err};
    int rc;
    if (need(&c, 4, "the magic")) return CLENS_E_FORMAT;
    if (memcmp(c.p, "GGUF", 4) != 0)
        return clens_err(err, CLENS_E_FORMAT, "%s: not a GGUF file (magic %02x %02x %02x %02x, expected \"GGUF\")", path,
                         c.p[0], c.p[1], c.p[2], c.p[3]);
    c.off = 4;
    uint64_t nt, nkv;
    if (rd_u32(&c, &g->version, "the version")) return CLENS_E_FORMAT;
    if (g->version != 2 && g->version != 3)
        return clens_err(err, CLENS_E_UNSUPPORTED,
                         "%s: GGUF version %u is not supported (2 or 3, little-endian; a big-endian file reads as a huge version)",
                         path, g->version);
    if (rd_u64(&c, &nt, "the tensor count") || rd_u64(&c, &nkv, "the key/value count")) return CLENS_E_FORMAT;
    /* A key/value takes >= 8 + 4 + 1 bytes, a tensor info >= 8 + 4 + 4 + 8. */
    if (nkv > (size - c.off) / 13 || nt > (size - c.off) / 24)
        return clens_err(err, CLENS_E_FORMAT, "%s: %llu tensors and %llu key/values cannot fit in a file of %zu bytes", path,
                         (unsigned long long)nt, (unsigned long long)nkv, size);
    g->alignment = 32;
    g->kv = calloc(nkv ? nkv : 1, sizeof *g->kv);
    g->tensors = calloc(nt ? nt : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto fail; }
    for (uint64_t i = 0; i < nkv; i++) {
        gguf_kv *kv = &g->kv[i];
        if ((rc = rd_str(&c, &kv->key, 1, "a key"))) goto fail;
        g->n_kv = i + 1;
        if ((rc = rd_u32(&c, &kv->type, "a value type"))) goto fail;
        for (uint64_t j = 0; j < i; j++)
            if (strcmp(g->kv[j].key, kv->key) == 0) {
                rc = clens_err(err, CLENS_E_FORMAT, "%s: key '%s' appears twice", path, kv->key);
                goto fail;
            }
        if ((rc = rd_value(&c, kv->type, kv, 0, kv->key))) goto fail;
        if (strcmp(kv->key, "general.alignment") == 0) {
            if (kv->type != GGUF_UINT32 || kv->u == 0 || (kv->u & (kv->u - 1)) || kv->u > (1u << 20)) {
                rc = clens_err(err, CLENS_E_FORMAT, "%s: general.alignment must be a uint32 power of two <= 2^20", path);
                goto fail;
            }
            g->alignment = (uint32_t)kv->u;
        }
    }
    for (uint64_t i = 0; i < nt; i++) {
        gguf_tensor *t = &g->tensors[i];
        if ((rc = rd_str(&c, &t->name, 1, "a tensor name"))) goto fail;
        g->n_tensors = i + 1;
        uint32_t nd;
        if ((rc = rd_u32(&c, &nd, "n_dimensions"))) goto fail;
        if (nd < 1 || nd > GGUF_MAX_DIMS) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: tensor '%s' has %u dimensions (1..%d)", path, t->name, nd, GGUF_MAX_DIMS);
            goto fail;
        }
        t->n_dims = (int)nd;
        uint64_t numel = 1;
        for (uint32_t d = 0; d < nd; d++) {
            if ((rc = rd_u64(&c, &t->dims[d], "a dimension"))) goto fail;
            if (t->dims[d] == 0 || t->dims[d] > (uint64_t)INT64_MAX / numel) {
                rc = clens_err(err, CLENS_E_FORMAT, "%s: tensor '%s': dimension %u is %llu (zero or overflowing)", path,
                               t->name, d, (unsigned long long)t->dims[d]);
                goto fail;
            }
            numel *= t->dims[d];
        }
        if ((rc = rd_u32(&c, &t->type, "a tensor type")) || (rc = rd_u64(&c, &t->offset, "a tensor offset"))) goto fail;
        if (t->type >= N_GGML_TYPES || !ggml_types[t->type].blck) {
            rc = clens_err(err, CLENS_E_UNSUPPORTED, "%s: tensor '%s' has unknown ggml type %u", path, t->name, t->type);
            goto fail;
        }
        uint64_t blck = (uint64_t)ggml_types[t->type].blck;
        if (t->dims[0] % blck) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: tensor '%s': first dimension %llu is not a multiple of %s's block %llu",
                           path, t->name, (unsigned long long)t->dims[0], gguf_type_name(t->type), (unsigned long long)blck);
            goto fail;
        }
        uint64_t nb = numel / blck;
        if (nb > (uint64_t)SIZE_MAX / (uint64_t)ggml_types[t->type].bytes) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: tensor '%s' is too large", path, t->name);
            goto fail;
        }
        t->numel = numel;
        t->nbytes = (size_t)(nb * (uint64_t)ggml_types[t->type].bytes);
        if (t->offset % g->alignment) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: tensor '%s': offset %llu is not a multiple of the alignment %u", path,
                           t->name, (unsigned long long)t->offset, g->alignment);
            goto fail;
        }
        for (uint64_t j = 0; j < i; j++)
            if (strcmp(g->tensors[j].name, t->name) == 0) {
                rc = clens_err(err, CLENS_E_FORMAT, "%s: tensor '%s' appears twice", path, t->name);
                goto fail;
            }
    }
    size_t data = c.off + (g->alignment - c.off % g->alignment) % g->alignment;
    if (data > size) data = size; /* no data section: only zero tensors can fit */
    g->data_offset = data;
    const gguf_tensor **by_off = malloc(sizeof *by_off * (nt ? nt : 1));
    if (!by_off) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto fail; }
    for (uint64_t i = 0; i < nt; i++) {
        gguf_tensor *t = &g->tensors[i];
        size_t room = size - data;
        if (t->offset > room || t->nbytes > room - t->offset) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: tensor '%s': bytes [%llu, +%zu) of the data section run past its %zu bytes",
                           path, t->name, (unsigned long long)t->offset, t->nbytes, room);
            free(by_off);
            goto fail;
        }
        t->data = c.p + data + t->offset;
        by_off[i] = t;
    }
    qsort(by_off, nt, sizeof *by_off, cmp_offset);
    for (uint64_t i = 1; i < nt; i++)
        if (by_off[i - 1]->offset + by_off[i - 1]->nbytes > by_off[i]->offset) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: tensors '%s' and '%s' overlap", path, by_off[i - 1]->name,
                           by_off[i]->name);
            free(by_off);
            goto fail;
        }
    free(by_off);
    return CLENS_OK;
fail:
    g->buf = NULL;
    gguf_free(g);
    return rc;
}

int gguf_read_file(gguf_file *g, const char *path, clens_error *err)
{
    memset(g, 0, sizeof *g);
    int fd;
    size_t size;
    int rc = clens_open_regular(path, &fd, &size, err);
    if (rc) return rc;
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf) { close(fd); return clens_err(err, CLENS_E_NOMEM, "%s: out of memory reading %zu bytes", path, size); }
    size_t got = 0;
    while (got < size) {
        ssize_t k = read(fd, buf + got, size - got);
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd);
    if (got != size) { free(buf); return clens_err(err, CLENS_E_IO, "%s: short read (%zu of %zu bytes)", path, got, size); }
    if ((rc = gguf_parse(g, buf, size, path, err))) { free(buf); return rc; }
    g->buf = buf;
    return CLENS_OK;
}

/* ----------------------------------------------------------------- writer */

typedef struct { unsigned char *p; size_t n, cap; int oom; } wbuf;

static void put(wbuf *w, const void *src, size_t k)
{
    if (w->oom) return;
    if (w->n + k > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->n + k) cap *= 2;
        unsigned char *p = realloc(w->p, cap);
        if (!p) { w->oom = 1; return; }
        w->p = p;
        w->cap = cap;
    }
    memcpy(w->p + w->n, src, k);
    w->n += k;
}

static void put_le(wbuf *w, uint64_t v, int k)
{
    unsigned char b[8];
    for (int i = 0; i < k; i++) b[i] = (unsigned char)(v >> (8 * i));
    put(w, b, (size_t)k);
}

static void put_str(wbuf *w, const char *s)
{
    size_t n = strlen(s);
    put_le(w, n, 8);
    put(w, s, n);
}

int gguf_write(const char *path, const gguf_wkv *kv, int n_kv, const gguf_wtensor *t, int n_t, clens_error *err)
{
    wbuf w = {0};
    uint32_t align = 32;
    for (int i = 0; i < n_kv; i++)
        if (strcmp(kv[i].key, "general.alignment") == 0) align = (uint32_t)kv[i].u;
    if (align == 0 || (align & (align - 1))) return clens_err(err, CLENS_E_ARG, "gguf: alignment %u is not a power of two", align);
    put(&w, "GGUF", 4);
    put_le(&w, 3, 4);
    put_le(&w, (uint64_t)n_t, 8);
    put_le(&w, (uint64_t)n_kv, 8);
    for (int i = 0; i < n_kv; i++) {
        put_str(&w, kv[i].key);
        put_le(&w, kv[i].type, 4);
        switch (kv[i].type) {
        case GGUF_STRING: put_str(&w, kv[i].str); break;
        case GGUF_UINT32: case GGUF_INT32: put_le(&w, kv[i].u, 4); break;
        case GGUF_UINT64: case GGUF_INT64: put_le(&w, kv[i].u, 8); break;
        case GGUF_FLOAT32: { float f = (float)kv[i].f; uint32_t b; memcpy(&b, &f, 4); put_le(&w, b, 4); break; }
        default: free(w.p); return clens_err(err, CLENS_E_ARG, "gguf: writer does not support value type %u", kv[i].type);
        }
    }
    uint64_t off = 0;
    for (int i = 0; i < n_t; i++) {
        put_str(&w, t[i].name);
        put_le(&w, 1, 4);
        put_le(&w, (uint64_t)t[i].n, 8);
        put_le(&w, 0, 4); /* F32 */
        put_le(&w, off, 8);
        off += ((uint64_t)t[i].n * 4 + align - 1) / align * align;
    }
    static const unsigned char zero[64] = {0};
    while (w.n % align) put(&w, zero, 1);
    for (int i = 0; i < n_t; i++) {
        for (int64_t k = 0; k < t[i].n; k++) {
            uint32_t b;
            memcpy(&b, &t[i].data[k], 4);
            put_le(&w, b, 4);
        }
        while (w.n % align) put(&w, zero, 1);
    }
    if (w.oom) { free(w.p); return clens_err(err, CLENS_E_NOMEM, "out of memory"); }
    int rc = clens_write_file_atomic(path, w.p, w.n, err);
    free(w.p);
    return rc;
}
