/*
 * cmd_merge.c: `clens merge SHARD_DIR... --out DIR`: combine the output
 * folders of sharded `clens patch` runs (rulings R13) into one folder whose
 * results.json equals, byte for byte except "timing", an unsharded run's.
 * The work is clens_results_merge (src/report/merge.c).
 */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cli.h"

static void help(void)
{
    printf("usage: clens merge SHARD_DIR [SHARD_DIR ...] --out DIR\n\n"
           "Merges the output folders of a sharded `clens patch` run (--shard i/n) into DIR:\n"
           "settings.json (shard 0/1), records.jsonl (all shards' records sorted by candidate),\n"
           "results.json and results.md (the first settings.n kept pairs in candidate order, as\n"
           "one unsharded run would keep). All shards must have the same settings_hash and\n"
           "shard count, and every shard index 0..n-1 must be given exactly once.\n\n"
           "arguments:\n"
           "  SHARD_DIR      path, one or more   a `clens patch --out` folder with settings.json\n"
           "                                     and records.jsonl\n"
           "options:\n"
           "  --out DIR      path, required      output folder (created if missing; must not be a\n"
           "                                     shard, nor hold another study's settings.json)\n"
           "  -q, --quiet    flag, default off   do not print the results table\n"
           "  -h, --help     flag                this help\n\n"
           "example:\n"
           "  clens merge runs/s0 runs/s1 runs/s2 --out runs/all\n\n"
           "exit codes: 0 merged, 1 error (missing shard, mixed studies, bad records), 2 usage\n");
}

int cmd_merge(int argc, char **argv)
{
    const char *out = NULL;
    int quiet = 0;
    const char **dirs = calloc((size_t)(argc > 0 ? argc : 1), sizeof *dirs);
    int n = 0;
    if (!dirs) return cli_errorf("merge", CLI_EXIT_ERR, "out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) { help(); free(dirs); return CLI_EXIT_OK; }
        if (strcmp(a, "--out") == 0 || strcmp(a, "-o") == 0) {
            if (i + 1 >= argc) { free(dirs); return cli_usage_error("merge", "--out needs a directory"); }
            out = argv[++i];
        } else if (strncmp(a, "--out=", 6) == 0) {
            out = a + 6;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            quiet = 1;
        } else if (a[0] == '-' && a[1]) {
            free(dirs);
            return cli_usage_error("merge", "unknown option '%s'", a);
        } else {
            dirs[n++] = a;
        }
    }
    if (!out || !*out) { free(dirs); return cli_usage_error("merge", "--out DIR is required"); }
    if (n == 0) { free(dirs); return cli_usage_error("merge", "give at least one shard directory"); }
    /* outputs: never over an input, a device, a FIFO or a link (src/base/outpath.c) */
    if (cli_check_out_dir("merge", out, dirs, (size_t)n)) { free(dirs); return CLI_EXIT_ERR; }

    clens_error err = {0};
    char *warnings = NULL;
    int rc = clens_results_merge(dirs, n, out, &warnings, &err);
    free(dirs);
    if (rc) return cli_fail("merge", &err);
    if (warnings) {
        for (char *line = strtok(warnings, "\n"); line; line = strtok(NULL, "\n"))
            fprintf(stderr, "clens merge: warning: %s\n", line);
        free(warnings);
    }
    if (!quiet) {
        size_t len = strlen(out) + 16;
        char *p = malloc(len);
        char *md = NULL;
        size_t mdn = 0;
        if (p) {
            snprintf(p, len, "%s/results.md", out);
            clens_error e2 = {0};
            if (clens_read_file(p, &md, &mdn, &e2) == 0) fwrite(md, 1, mdn, stdout);
        }
        free(md);
        free(p);
    }
    fprintf(stderr, "clens merge: merged %d shard%s into %s\n", n, n == 1 ? "" : "s", out);
    return CLI_EXIT_OK;
}
