/*
 * report.h: internal helpers of the writers in src/report/: a growable text
 * buffer with deterministic JSON emission, and the record set behind
 * results.json (results.c; the public entry points are in include/clens.h).
 *
 * Number format (all report writers): a finite double is printed with the
 * fewest significant digits, 15 to 17, whose "%.*g" text reads back (strtod)
 * to the same double; ".0" is appended when the text has no '.', 'e', so a real
 * stays a real (Python's float repr would agree on the digits for most values);
 * -0 prints as 0.0; a non-finite value prints as null. glibc's printf and
 * strtod are exact, so the text is a deterministic function of the double.
 * Assumes the "C" numeric locale (the CLI never calls setlocale).
 */
#ifndef CLENS_REPORT_H
#define CLENS_REPORT_H

#include <jansson.h>
#include <stddef.h>

#include "base/base.h"

/* ------------------------------------------------------------ text buffer */

typedef struct clens_sb {
    char *p;      /* NUL-terminated when len > 0 */
    size_t len, cap;
    int oom;      /* an allocation failed: contents are incomplete */
} clens_sb;

void clens_sb_put(clens_sb *b, const char *s, size_t n);
void clens_sb_puts(clens_sb *b, const char *s);
void clens_sb_printf(clens_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal: escapes '"', '\\' and control characters; UTF-8 as is. */
void clens_sb_json_str(clens_sb *b, const char *s);
/* A JSON number in the format above (null if not finite). */
void clens_sb_json_num(clens_sb *b, double x);
/* A JSON value with object keys sorted (byte order); objects one key per line at
 * `indent` spaces, arrays of scalars on one line. */
void clens_sb_json_value(clens_sb *b, const json_t *v, int indent);
/* Returns the malloc'd text (caller frees) and resets b; NULL if b->oom. */
char *clens_sb_take(clens_sb *b);
void clens_sb_free(clens_sb *b);

/* Formats x as above into buf (>= 32 bytes); returns buf. */
char *clens_fmt_double(char *buf, size_t n, double x);

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
