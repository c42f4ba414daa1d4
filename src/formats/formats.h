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

#endif
