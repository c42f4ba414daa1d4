/* cmd_probe.c: `clens probe CAPTURE_DIR --out DIR`: difference-of-means and logistic probes per layer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: clens probe CAPTURE_DIR --out DIR [options]\n\n"
            "Per hook (layer) of a `clens capture` folder: a difference-of-means direction (corrupted -\n"
            "clean) and an L2 logistic-regression probe (liblinear), scored out of fold by k-fold\n"
            "cross-validation with folds grouped by pair (both rows of a pair always in the same fold);\n"
            "AUROC and accuracy with bootstrap 95%% CIs over pairs, a permutation null (labels swapped\n"
            "within random pairs, CV rerun) and a random-direction baseline. Writes probe.json, probe.md,\n"
            "auroc.svg, directions/HOOK.dom.npy (unit norm; the raw norm is in probe.json) and\n"
            "directions/HOOK.lr.npy (weights, bias last). Schema: docs/probe.md.\n\n"
            "  --out DIR         output folder (required)\n"
            "  --folds K         folds of the CV (int >= 2, default 5)\n"
            "  --C X             liblinear inverse regularisation (float > 0, default 1)\n"
            "  --bootstrap N     bootstrap resamples (int, default 1000)\n"
            "  --permutations N  permutations of the null (int, default 20)\n"
            "  --random-dirs N   random directions of the baseline (int, default 20)\n"
            "  --seed N          seed of folds, bootstrap, nulls (int, default 0)\n"
            "  --hooks S         only hooks whose name contains S (string, default all)\n\n"
            "example: clens probe cap/ --out probe/ --folds 5 --C 1\n");
}

int cmd_probe(int argc, char **argv)
{
    const char *cap = NULL, *out = NULL;
    clens_probe_params p = clens_probe_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x;
        if (cli_is_help(a)) { usage(stdout); return 0; }
        if (a[0] != '-') {
            if (cap) return cli_usage_error("probe", "unexpected argument '%s'", a);
            cap = a;
            continue;
        }
        if (!v) return cli_missing_value("probe", a, "--out --folds --C --bootstrap --permutations --random-dirs --seed --hooks");
        if (strcmp(a, "--out") == 0) out = v;
        else if (strcmp(a, "--hooks") == 0) p.hook_filter = v;
        else if (strcmp(a, "--C") == 0) { if (cli_parse_float("probe", a, v, &p.C)) return 2; }
        else if (strcmp(a, "--folds") == 0) { if (cli_parse_int("probe", a, v, 2, 1000, &x)) return 2; p.folds = (int)x; }
        else if (strcmp(a, "--bootstrap") == 0) { if (cli_parse_int("probe", a, v, 0, 1000000, &x)) return 2; p.bootstrap = (int)x; }
        else if (strcmp(a, "--permutations") == 0) { if (cli_parse_int("probe", a, v, 0, 100000, &x)) return 2; p.permutations = (int)x; }
        else if (strcmp(a, "--random-dirs") == 0) { if (cli_parse_int("probe", a, v, 0, 100000, &x)) return 2; p.random_dirs = (int)x; }
        else if (strcmp(a, "--seed") == 0) { if (cli_parse_int("probe", a, v, 0, (long)(~0UL >> 1), &x)) return 2; p.seed = (uint64_t)x; }
        else return cli_usage_error("probe", "unknown option '%s'", a);
        i++;
    }
    if (!cap) return cli_usage_error("probe", "missing CAPTURE_DIR");
    if (!out) return cli_usage_error("probe", "missing --out");
    /* outputs: never over an input, a device, a FIFO or a link (src/base/outpath.c) */
    if (cli_check_out_dir("probe", out, (const char *const[]){cap}, 1)) return CLI_EXIT_ERR;
    if (!(p.C > 0)) return cli_usage_error("probe", "--C must be > 0");
    clens_error err = {0};
    char *md = NULL;
    if (clens_probe_run(cap, &p, out, &md, &err)) return cli_fail("probe", &err);
    fputs(md, stdout);
    free(md);
    return 0;
}
