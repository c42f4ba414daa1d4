/*
 * formats.h: file formats read and written by libclens (internal API):
 * safetensors (memory-mapped, validated), Hugging Face model folders and the
 * offline HF cache, and .npy output.
 */
#ifndef CLENS_FORMATS_H
#define CLENS_FORMATS_H

#include <stddef.h>
#include <stdint.h>

#include "clens.h"

/* ------------------------------------------------------------ safetensors */

#define ST_MAX_DIMS 8

typedef enum { ST_F32 = 0, ST_BF16, ST_F16, ST_OTHER } st_dtype;

typedef struct st_tensor {
    char *name;
    st_dtype dtype;
    char dtype_name[12];       /* as written in the header ("BF16", "I64", ...) */
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;          /* inside the file mapping */
    size_t nbytes;
    int file;                  /* index into st_archive.files */
} st_tensor;

typedef struct st_file {
    char *path;
    void *map;
    size_t size;
} st_file;

typedef struct st_archive {
    st_file *files;
    int n_files;
    st_tensor *tensors;        /* sorted by name */
    int n_tensors;
} st_archive;

/* Opens a model folder's weights: model.safetensors.index.json (its weight_map
 * decides which file holds which tensor) or else model.safetensors. Every file
 * is memory-mapped and its header validated: header length vs file size,
 * JSON, dtype x shape = byte length, offsets inside the data section, no
 * overlaps, alignment; duplicate names across shards. Errors name the file
 * and the tensor. */
int st_open_folder(st_archive *a, const char *dir, clens_error *err);
/* Opens one .safetensors file (appends its tensors to a). */
int st_open_file(st_archive *a, const char *path, clens_error *err);
/* Validates a header buffer (the JSON after the 8-byte length) against a
 * data-section size, without a file: the fuzzing entry point. */
int st_parse_header(const char *json, size_t json_len, size_t data_size, const char *path,
                    st_tensor **tensors, int *n_tensors, clens_error *err);
const st_tensor *st_find(const st_archive *a, const char *name);
void st_close(st_archive *a);
int64_t st_numel(const st_tensor *t);
/* Hex sha256 of a .safetensors file's header (its 8-byte length and the JSON:
 * names, dtypes, shapes, offsets), which identifies a single-file model's
 * layout without hashing gigabytes; "" when the file cannot be read or the
 * header is over 100 MiB. */
void st_header_sha256_hex(const char *path, char hex[65]);

/* ------------------------------------------------------------- HF folders */

/* Resolves a model argument: an existing folder, or `org/name[@revision]` in
 * the offline Hugging Face cache ($HF_HUB_CACHE, else $HF_HOME/hub, else
 * ~/.cache/huggingface/hub; models--org--name/snapshots/<commit>, the commit
 * taken from refs/<revision> or given directly). out gets a malloc'd path. */
int hf_resolve_model(const char *arg, char **out, clens_error *err);

/* ------------------------------------------------------------------- npy */

/* Writes a float32 C-order .npy file atomically. */
int npy_write_f32(const char *path, const float *data, const int64_t *shape, int ndim,
                  clens_error *err);

/* ------------------------------------------------------------------ gguf */

/* GGUF key/value types (ggml docs/gguf.md). */
enum {
    GGUF_UINT8 = 0, GGUF_INT8 = 1, GGUF_UINT16 = 2, GGUF_INT16 = 3, GGUF_UINT32 = 4, GGUF_INT32 = 5,
    GGUF_FLOAT32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_UINT64 = 10, GGUF_INT64 = 11,
    GGUF_FLOAT64 = 12
};

typedef struct gguf_kv {
    char *key;
    uint32_t type;
    uint64_t u;                /* scalar: raw bits (unsigned) */
    int64_t i;                 /* scalar: as a signed integer */
    double f;                  /* scalar: as a number */
    char *str;                 /* string value (NUL-terminated copy), else NULL */
    uint32_t arr_type;         /* array: element type, count, first byte */
    uint64_t arr_n;
    const void *arr_data;
} gguf_kv;

typedef struct gguf_tensor {
    char *name;
    int n_dims;
    uint64_t dims[4];          /* ne[0] first (ggml order: fastest-varying first) */
    uint32_t type;             /* ggml type: 0 = F32, 1 = F16, 30 = BF16, ... */
    uint64_t offset;           /* in the data section */
    uint64_t numel;
    size_t nbytes;
    const void *data;          /* inside the buffer (little-endian) */
} gguf_tensor;

typedef struct gguf_file {
    uint32_t version, alignment;
    gguf_kv *kv;
    uint64_t n_kv;
    gguf_tensor *tensors;
    uint64_t n_tensors;
    size_t data_offset;
    unsigned char *buf;        /* owned file bytes (gguf_read_file), or NULL */
} gguf_file;

/* Parses and validates a GGUF buffer (kept by the caller while g is used):
 * magic, version 2/3, counts bounded by the bytes left, key and string
 * lengths, value types, nested arrays (depth <= 3), unique keys and tensor
 * names, 1..4 dims without overflow, known ggml types, aligned offsets,
 * tensors inside the data section without overlap. Errors name path. */
int gguf_parse(gguf_file *g, const void *buf, size_t size, const char *path, clens_error *err);
/* Reads a regular file into memory and parses it (g owns the bytes). */
int gguf_read_file(gguf_file *g, const char *path, clens_error *err);
void gguf_free(gguf_file *g);
const gguf_kv *gguf_find_kv(const gguf_file *g, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name);
const char *gguf_type_name(uint32_t ggml_type);

/* Writer: key/values of type STRING, UINT32, INT32, UINT64, INT64, FLOAT32,
 * and 1-D F32 tensors, version 3, alignment general.alignment if given
 * (else 32), written atomically. */
typedef struct gguf_wkv { const char *key; uint32_t type; uint64_t u; double f; const char *str; } gguf_wkv;
typedef struct gguf_wtensor { const char *name; const float *data; int64_t n; } gguf_wtensor;
int gguf_write(const char *path, const gguf_wkv *kv, int n_kv, const gguf_wtensor *t, int n_t, clens_error *err);

#endif
