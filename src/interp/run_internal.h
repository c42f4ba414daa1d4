/*
 * run_internal.h: the pieces of the run engine (include/clens.h, "run
 * engine") shared between its files: the correction-token sets
 * (run_tokens.c), the records file (run_records.c), settings and provenance
 * (run_settings.c). The schema of every file: docs/patch-output.md.
 */
#ifndef CLENS_RUN_INTERNAL_H
#define CLENS_RUN_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/outdir.h"
#include "clens.h"

/* ---------------------------------------------------- correction tokens */

/* One metric's token ids and the strings they came from (settings.metrics). */
typedef struct run_token_set {
    int32_t *ids;
    json_t *strs;   /* array of strings, parallel to ids */
    int n;
} run_token_set;

/* logprob_mass: the single-token forms of each word, with and without a
 * leading space, as given and lower-cased; logit_mean: the first sub-token of
 * each string, no leading space (the seed's seven strings when words is NULL:
 * Wait, But, Actually, Hmm, wait, but, actually). */
int run_token_sets_build(const clens_tokenizer *tok, const char *const *words, int n_words,
                         run_token_set *mass, run_token_set *mean, clens_error *err);
void run_token_set_clear(run_token_set *ts);
/* {"ids": [...], "tokens": [...]} (new reference). */
json_t *run_token_set_json(const run_token_set *ts);

/* ------------------------------------------------------------- records */

/* One finished candidate, as records.jsonl holds it. */
typedef struct run_record {
    long candidate;
    const char *id;
    const char *reason;          /* NULL: kept */
    long n_tokens;
    int shared_prefix;
    int ran_model;               /* metrics present */
    const double *vals;          /* [n_metrics][width]: clean, corr, patched per site */
    size_t width;                /* 2 + n_sites */
    const clens_site *sites;     /* grouped by point in types order, per-head points by layer then head */
    int n_sites;
    const clens_hook_point *types;
    int n_types;
    double seconds;
    /* final_tokens (docs/patch-output.md): the last RUN_FINAL_TOKENS tokens of
     * the clean and corrupted prompts, each id decoded alone; tok NULL: none. */
    const clens_tokenizer *tok;
    const int32_t *ids_c, *ids_r; /* the prompts' ids (NULL: not tokenized) */
    size_t n_c, n_r;
    const char *const *metric_names; /* [n_metrics]: the keys of the record's "metrics" */
    int n_metrics;
} run_record;

/* How many final prompt tokens a record keeps per prompt. */
#define RUN_FINAL_TOKENS 8

/* The JSON line of a record (no newline), malloc'd; NULL when out of memory.
 * Non-finite numbers are written as null; patched values only for kept pairs. */
char *run_record_line(const run_record *r);

/* Appends line + '\n' to path and fsyncs. A write that fails part way (a full
 * disk: ENOSPC, a file size limit: EFBIG) is undone by truncating the file to
 * its length before the append, so records.jsonl never keeps a torn line; the
 * error names the file and the errno of the failing call. */
int run_record_append(const char *path, const char *line, clens_error *err);

/* What records.jsonl already holds (resume). */
typedef struct run_records_scan {
    unsigned char *done;   /* [n_candidates]: 1 if recorded */
    long n_done, n_kept;
    size_t torn_bytes;     /* an unfinished last line that was dropped (0: none) */
} run_records_scan;

/* Reads path (absent = empty). A last line without its '\n' was cut by a
 * kill or a full disk: it is removed from the file (truncate) and counted in
 * torn_bytes. Any other line that is not a record object with an integer
 * candidate in [0, n_candidates) of this shard is an error "path:LINE: ...". */
int run_records_scan_file(const char *path, size_t n_candidates, int shard_index, int shard_count,
                          run_records_scan *out, clens_error *err);

/* ---------------------------------------------------- settings, setup */

/* The output-folder helpers of base/outdir.h under the names this layer uses. */
static inline const char *run_json_first_difference(const json_t *a, const json_t *b)
{
    return clens_json_first_difference(a, b);
}
static inline char *run_json_brief(const json_t *v) { return clens_json_brief(v); }
static inline int run_provenance_key_is_identity(const char *key) { return clens_provenance_key_is_identity(key); }

/* The provenance object of settings.json for model m (docs/patch-output.md). */
json_t *run_provenance_json(const clens_model *m, const clens_tokenizer *tok, const clens_chat_template *tmpl);

#endif
