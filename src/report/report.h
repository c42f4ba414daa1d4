/*
 * report.h: internal helpers of the writers in src/report/: the
 * deterministic JSON writer (json_out.c) over the text buffer of
 * base/strbuf.h, and the record set behind results.json (results.c;
 * the public entry points are in include/clens.h). Numbers and strings are
 * written in the formats stated in base/strbuf.h.
 */
#ifndef CLENS_REPORT_H
#define CLENS_REPORT_H

#include <jansson.h>
#include <stddef.h>

#include "base/base.h"
#include "base/strbuf.h"

/* ------------------------------------------------------------ JSON writer */

/* A JSON value with object keys sorted (byte order); objects one key per line at
 * `indent` spaces, arrays of scalars on one line. */
void clens_sb_json_value(clens_sb *b, const json_t *v, int indent);
/* The same, keeping each object's own key order. */
void clens_sb_json_value_ordered(clens_sb *b, const json_t *v, int indent);
/* `indent` spaces. */
void clens_sb_indent(clens_sb *b, int indent);
/* Writes doc to path as clens_sb_json_value text plus a final newline,
 * atomically (temp file + rename). */
int clens_json_write_atomic(const char *path, const json_t *doc, clens_error *err);

/* --------------------------------------------------------- results input */

/* A patching run's settings plus the records read so far. */
typedef struct clens_results_input clens_results_input;

/* Parses settings.json text; `source` names it in error messages. */
int clens_results_input_new(clens_results_input **out, const char *settings_json,
                            const char *source, clens_error *err);
void clens_results_input_free(clens_results_input *in);
/* Adds the records of one records.jsonl text (`source` names it in messages,
 * lines are numbered from 1). Each record's candidate must satisfy
 * candidate mod shard_count == shard_index (pass 0, 1 to accept all). */
int clens_results_input_add(clens_results_input *in, const char *text, size_t len,
                            const char *source, int shard_index, int shard_count,
                            clens_error *err);
/* Renders results.json and results.md (malloc'd, caller frees; md may be NULL). */
int clens_results_input_render(clens_results_input *in, char **results_json, char **results_md,
                               clens_error *err);
/* All records (not only the ones used), sorted by candidate, as the original
 * lines joined by '\n' with a final '\n' (malloc'd). Fails on duplicates. */
int clens_results_input_records_text(clens_results_input *in, char **text, size_t *len,
                                     clens_error *err);

#endif
