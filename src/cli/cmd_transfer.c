/* cmd_transfer.c: `clens transfer --from PROBE_DIR --to CAPTURE_DIR --out DIR [--map neutral.jsonl]`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: clens transfer --from PROBE_DIR --to CAPTURE_DIR --out DIR [--map neutral.jsonl] [options]\n\n"
            "Applies the directions and probes of a `clens probe` folder (model A) to the activations of\n"
            "a `clens capture` folder (model B). Same width without --map: AUROC with CIs of A's\n"
            "directions on every B layer of the same hook type, cosine between A's and B's directions,\n"
            "the best B layer per A layer. With --map (required when widths differ): an affine map\n"
            "A -> B per layer pair (relative depth) by ridge regression on both models' activations of\n"
            "the neutral texts (every 5th held out for R^2; positions aligned by token index when both\n"
            "tokenizations agree, else the final position), then A's direction pushed through the map\n"
            "and scored on B against random maps. Writes transfer.json, transfer.md (docs/probe.md).\n\n"
            "  --from DIR        probe folder of model A (required)\n"
            "  --to DIR          capture folder of model B (required)\n"
            "  --out DIR         output folder (required)\n"
            "  --map FILE        neutral texts, JSONL {\"text\": ...}, disjoint from the probe pairs\n"
            "  --ridge X         relative ridge penalty (float, default 1e-3; lambda = X * trace(Xc'Xc) / p)\n"
            "  --max-texts N     neutral texts used (int, default 200)\n"
            "  --bootstrap N     bootstrap resamples (int, default 1000)\n"
            "  --random-maps N   random maps / directions of the null (int, default 20)\n"
            "  --seed N          (int, default 0)\n\n"
            "example: clens transfer --from probeA/ --to capB/ --map neutral.jsonl --out tr/\n");
}

int cmd_transfer(int argc, char **argv)
{
    const char *from = NULL, *to = NULL, *out = NULL;
    clens_transfer_params p = clens_transfer_default_params();
    for (int i = 1; i < argc; i += 2) { /* every argument is a flag with a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x;
        if (cli_is_help(a)) { usage(stdout); return 0; }
        if (a[0] != '-') return cli_usage_error("transfer", "unexpected argument '%s'", a);
        if (!v) return cli_missing_value("transfer", a, "--from --to --out --map --ridge --max-texts --bootstrap --random-maps --seed");
        if (strcmp(a, "--from") == 0) from = v;
        else if (strcmp(a, "--to") == 0) to = v;
        else if (strcmp(a, "--out") == 0) out = v;
        else if (strcmp(a, "--map") == 0) p.map_texts = v;
        else if (strcmp(a, "--ridge") == 0) { if (cli_parse_float("transfer", a, v, &p.ridge)) return 2; }
        else if (strcmp(a, "--max-texts") == 0) { if (cli_parse_int("transfer", a, v, 5, 10000000, &x)) return 2; p.max_texts = (int)x; }
        else if (strcmp(a, "--bootstrap") == 0) { if (cli_parse_int("transfer", a, v, 0, 1000000, &x)) return 2; p.bootstrap = (int)x; }
        else if (strcmp(a, "--random-maps") == 0) { if (cli_parse_int("transfer", a, v, 0, 100000, &x)) return 2; p.random_maps = (int)x; }
        else if (strcmp(a, "--seed") == 0) { if (cli_parse_int("transfer", a, v, 0, (long)(~0UL >> 1), &x)) return 2; p.seed = (uint64_t)x; }
        else return cli_usage_error("transfer", "unknown option '%s'", a);
    }
    if (!from || !to || !out) return cli_usage_error("transfer", "--from, --to and --out are required");
    /* outputs: never over an input, a device, a FIFO or a link (src/base/outpath.c) */
    if (cli_check_out_dir("transfer", out, (const char *const[]){from, to, p.map_texts}, 3)) return CLI_EXIT_ERR;
    if (!(p.ridge > 0)) return cli_usage_error("transfer", "--ridge must be > 0");
    clens_error err = {0};
    char *md = NULL;
    if (clens_transfer_run(from, to, &p, out, &md, &err)) return cli_fail("transfer", &err);
    fputs(md, stdout);
    free(md);
    return 0;
}
