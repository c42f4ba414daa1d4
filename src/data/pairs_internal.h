/*
 * pairs_internal.h: what the on-policy builder (onpolicy.c) shares with the
 * pair builder (pairs.c): the dataset rows and the per-row pair maker.
 */
#ifndef CLENS_PAIRS_INTERNAL_H
#define CLENS_PAIRS_INTERNAL_H

#include "clens.h"

/* One dataset line: MATH {id, problem, solution} or GSM8K {question, answer}. */
typedef struct pairs_row {
    char *id;         /* the row's "id", or "<dir>/<file>:<line>" */
    char *problem;
    char *reference;  /* the reference solution (MATH) or answer (GSM8K) */
    int64_t line;     /* 1-based */
} pairs_row;

/* Reads every row of a JSONL dataset (errors name the file and line); sha is
 * the hex sha256 of the data. */
int pairs_read_rows(const clens_pairs_params *params, const char *data, size_t len,
                    pairs_row **rows, size_t *n, char sha[65], clens_error *err);
void pairs_rows_free(pairs_row *rows, size_t n);

/* The pair of a row from its reference solution (generated == NULL) or from
 * a generated solution: 1 (made), 0 (no usable site) or -status. */
int pairs_from_row(const clens_pairs_params *params, const pairs_row *row, const char *generated,
                   clens_pair *out, clens_pairs_stats *stats, clens_error *err);

/* Sets source, source_sha256 and candidate_index of a made pair. 0 or -1. */
int pairs_finish(clens_pair *p, const clens_pairs_params *params, const char *sha, int64_t index);

#endif
