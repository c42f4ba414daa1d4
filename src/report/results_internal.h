/*
 * results_internal.h: the record set behind results.json, shared by its
 * parser (results_input.c), the statistics driver and renderers (results.c)
 * and `clens merge` (merge.c). Schemas: docs/patch-output.md.
 */
#ifndef CLENS_REPORT_RESULTS_INTERNAL_H
#define CLENS_REPORT_RESULTS_INTERNAL_H

#include <jansson.h>
#include <stdint.h>

#include "report/report.h"

typedef struct site_type {
    char *name;
    int is_z;      /* per-head sites: name "z", sites keyed "L.H" */
    int n_layers;
    int *layers;   /* settings.layers[name], in settings order */
    int n_sites;   /* n_layers, or n_layers * n_heads for z */
    int off;       /* index of the first site in the flat site list */
} site_type;

typedef struct rec {
    long long candidate;
    int kept;
    int src;       /* index into in->sources */
    int line;      /* 1-based line number in that source */
    json_t *j;     /* the parsed record */
    char *text;    /* the original line (no '\n' / '\r') */
} rec;

struct clens_results_input {
    json_t *root;         /* settings.json */
    const json_t *settings;
    char *settings_src;
    const char *metric;
    const char *model;
    site_type *types;
    int n_types;
    int n_sites;
    int n_heads;
    int n_target;
    int boot_resamples;
    uint64_t boot_seed;
    int shard_index, shard_count;
    char **sources;
    int n_sources;
    rec *recs;
    int n_recs, cap_recs;
    int sorted;
};

/* Integer field of an object, in [lo, hi]. Returns 0 if ok. */
int results_get_int(const json_t *obj, const char *key, long long lo, long long hi, long long *out);

/* Sorts the records by candidate and rejects duplicates. */
int results_sort_records(clens_results_input *in, clens_error *err);

/* Reads DIR/NAME into a malloc'd buffer; *path (malloc'd) names the file. */
int results_read_in(const char *dir, const char *name, char **data, size_t *len, char **path, clens_error *err);

/* Writes DIR/NAME atomically. */
int results_write_out(const char *dir, const char *name, const char *data, size_t len, clens_error *err);

#endif
