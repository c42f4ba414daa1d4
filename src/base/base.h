/*
 * base.h: the lowest layer of libclens: error reporting, whole-file reads,
 * atomic and durable writes, SHA-256. Everything else may include it.
 */
#ifndef CLENS_BASE_H
#define CLENS_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "clens.h"

/* Fills err (if not NULL) with code and a formatted one-line message; returns code. */
int clens_err(clens_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reads a whole file into a malloc'd, NUL-terminated buffer. */
int clens_read_file(const char *path, char **data, size_t *len, clens_error *err);

/* Writes len bytes to path atomically: path.tmp.PID, fsync, rename, fsync dir. */
int clens_write_file_atomic(const char *path, const void *data, size_t len, clens_error *err);

/* Before writing an output: path must be absent (in an existing folder) or a
 * regular file (not a directory, device, FIFO, socket or symbolic link, which
 * the temp+rename write would replace), and not the same file (st_dev,
 * st_ino) as any of inputs[0, n_inputs) (NULL entries and missing inputs are
 * skipped; pass earlier outputs too). CLENS_OK, CLENS_E_IO or CLENS_E_ARG
 * with a message naming path. src/base/outpath.c. */
int clens_output_check(const char *path, const char *const *inputs, size_t n_inputs,
                       clens_error *err);

/* Before writing into an output folder: dir must be absent, a folder or a
 * symbolic link to one; not the same folder as any of inputs (a file input
 * that is a folder, e.g. a model); and every entry already in it a regular
 * file or a folder (not a FIFO, device, socket or symbolic link, which an
 * append would block on or a rename would replace). src/base/outpath.c. */
int clens_output_dir_check(const char *dir, const char *const *inputs, size_t n_inputs, clens_error *err);

/* Appends one line (a '\n' is added) and fsyncs, so a killed run loses at most
 * the line in flight. */
int clens_append_line_durable(const char *path, const char *line, clens_error *err);

typedef struct clens_sha256 {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    size_t nbuf;
} clens_sha256;
void clens_sha256_init(clens_sha256 *s);
void clens_sha256_update(clens_sha256 *s, const void *data, size_t n);
void clens_sha256_final(clens_sha256 *s, uint8_t out[32]);
/* Hex digest (65 bytes incl. NUL) of a buffer / of a file's contents. */
void clens_sha256_hex(const void *data, size_t n, char hex[65]);
int clens_sha256_file_hex(const char *path, char hex[65], clens_error *err);

/* Creates dir and its missing parents (mkdir -p). */
int clens_mkdir_p(const char *dir, clens_error *err);

/* Monotonic seconds. */
double clens_now(void);



/* Memory of this process from /proc/self/status, in bytes (0 if unknown):
 * peak resident (VmHWM), current file-backed (RssFile) and anonymous (RssAnon). */
typedef struct clens_mem { long long peak, file, anon; } clens_mem;
clens_mem clens_mem_usage(void);

#endif
