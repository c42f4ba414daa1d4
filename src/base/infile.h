/*
 * infile.h: opening input files safely. Every loader (config.json,
 * safetensors, tokenizer files, chat templates, id lists, datasets) opens its
 * inputs through these, so a FIFO, device, socket or folder given where a
 * file is expected is a one-line error naming the path instead of a hang or
 * a misleading "out of memory".
 */
#ifndef CLENS_BASE_INFILE_H
#define CLENS_BASE_INFILE_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "clens.h"

/* Opens path read-only without blocking (a FIFO with no writer would block
 * open() forever) and requires a regular file. On success *fd is a blocking
 * descriptor the caller closes and *size (may be NULL) the file size. Errors
 * (CLENS_E_IO): "PATH: No such file or directory", "PATH: is a folder, not a
 * file", "PATH: is a FIFO (named pipe), not a regular file", ... */
int clens_open_regular(const char *path, int *fd, size_t *size, clens_error *err);

/* The same as a stdio stream ("rb"); the caller fcloses *f. */
int clens_fopen_regular(const char *path, FILE **f, clens_error *err);

/* Reads a regular file and parses it as JSON with jansson flags. Returns
 * CLENS_OK with *out owned by the caller; CLENS_E_IO (err names the path) if
 * the file cannot be read; CLENS_E_FORMAT if it is not JSON: then je holds
 * jansson's line, column and text and err holds "PATH:LINE:COL: text". */
int clens_json_load_regular(const char *path, size_t flags, json_t **out, json_error_t *je, clens_error *err);

#endif
