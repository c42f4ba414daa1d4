/*
 * appendlog.h: reading back an append-only line file (records.jsonl, an
 * on-policy generations file) to resume from it. Lines are appended whole
 * and fsync'd (clens_append_line_durable in base.h), so after a kill or a
 * full disk only the last line can be unfinished: it is cut off the file,
 * and the run writes it again.
 */
#ifndef CLENS_BASE_APPENDLOG_H
#define CLENS_BASE_APPENDLOG_H

#include <jansson.h>
#include <stddef.h>

#include "clens.h"

/* Reads path into a malloc'd, NUL-terminated buffer (*data, caller frees)
 * holding its complete lines (*len bytes, each line ending in '\n'). A last
 * line without its '\n' is truncated off the file and its size returned in
 * *torn (0 when none). An absent file: *data = NULL, *len = *torn = 0,
 * CLENS_OK. Errors (CLENS_E_IO, CLENS_E_NOMEM) name path. */
int clens_appendlog_read(const char *path, char **data, size_t *len, size_t *torn, clens_error *err);

/* The line of data[0..len) that starts at *at (lines as clens_appendlog_read
 * returns them: each ends in '\n') parsed as JSON, or NULL when it is not
 * JSON; *at moves past the line. Walks a log: for (at = 0; at < len;) ... */
json_t *clens_appendlog_next_json(const char *data, size_t len, size_t *at);

#endif
