/*
 * cli.h: shared helpers of the `clens` subcommands. The CLI is a thin client
 * of libclens: parse flags, call the library, print. It is the only code that
 * exits. Exit codes: 0 ok, 1 runtime error (bad input file, model, ...),
 * 2 usage error.
 */
#ifndef CLENS_CLI_H
#define CLENS_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "clens.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_ERR 1
#define CLI_EXIT_USAGE 2

typedef int (*cli_cmd_fn)(int argc, char **argv);

/* Prints "clens CMD: message" to stderr and returns CLI_EXIT_ERR. */
int cli_fail(const char *cmd, const clens_error *err);
/* Prints "clens CMD: fmt..." to stderr and returns code. */
int cli_errorf(const char *cmd, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Usage error: message plus "see 'clens CMD --help'", returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parses "1,2,3" into a malloc'd array. Returns 0 on success. */
int cli_parse_ids(const char *s, int32_t **ids, int *n);
/* Reads a flat JSON array of ints from a file (rulings R5). A batch
 * [[...],[...]] is returned as n_seq > 1 sequences. Returns 0 on success. */
int cli_read_ids_file(const char *path, int32_t ***seqs, int **lens, int *n_seq,
                      clens_error *err);
/* Parses an int / float flag value with range check. */
int cli_parse_int(const char *cmd, const char *flag, const char *v, long lo, long hi, long *out);
int cli_parse_float(const char *cmd, const char *flag, const char *v, double *out);
/* A flag given last without its value: "FLAG needs a value" if FLAG is one of
 * the space-separated known flags, else "unknown option 'FLAG'". Returns
 * CLI_EXIT_USAGE. */
int cli_missing_value(const char *cmd, const char *flag, const char *known);

/* Before a command writes (src/base/outpath.c): an output file must be absent
 * or a regular file, an output folder absent or a folder with only regular
 * files and folders in it; neither may be one of inputs[0, n) (NULL entries
 * skipped). Prints "clens CMD: ..." and returns CLI_EXIT_ERR, or 0. */
int cli_check_out_file(const char *cmd, const char *out, const char *const *inputs, size_t n);
int cli_check_out_dir(const char *cmd, const char *dir, const char *const *inputs, size_t n);

/* 1 if argv[i] equals -h or --help. */
int cli_is_help(const char *a);



/* Opens a model with the common flags: kernel ("default", "portable", "bf16"
 * or NULL) and threads (0 = all). Prints the error and returns non-zero on failure. */
int cli_open_model(const char *cmd, const char *path, const char *kernel, int threads, clens_model **m);

/* Token ids from --ids or --ids-file (exactly one must be given). */
int cli_get_ids(const char *cmd, const char *ids, const char *ids_file, int32_t ***seqs, int **lens, int *n_seq);
void cli_free_ids(int32_t **seqs, int *lens, int n_seq);

#endif
