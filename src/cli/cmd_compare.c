/*
 * cmd_compare.c: `clens compare RUN_OR_RESULTS... --out DIR`: compare the
 * recovery profiles of patching runs, results.json files and the seed's
 * published tables (data/seed_results.json). Flags, one call to
 * clens_compare_write (src/report/compare.c), print comparison.md.
 * docs/compare.md describes the analysis and the output files.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void help(void)
{
    printf("usage: clens compare INPUT [INPUT ...] --out DIR [options]\n\n"
           "Compares recovery profiles on absolute layer and relative depth (resid_pre numbering), with\n"
           "bootstrap CIs of every increment, the profile label of docs/compare.md, the critical layer,\n"
           "and pairwise differences; writes comparison.md, comparison.json, pairs.csv, *.svg and a\n"
           "self-contained report.html into DIR (each file atomically).\n\n"
           "arguments:\n"
           "  INPUT                path, one or more  a `clens patch` run folder (settings.json +\n"
           "                                          records.jsonl: per-pair CIs), a results.json, or\n"
           "                                          the seed fixture data/seed_results.json\n"
           "options:\n"
           "  --out DIR            path, required     output folder (created if missing)\n"
           "  --label INPUT=NAME   string, repeatable model label (default: settings.label or the model\n"
           "                                          folder name; fixture models: INPUT#k=NAME)\n"
           "  --training INPUT=R   string, repeatable distilled | RL | SFT | RL-after-SFT | other\n"
           "                                          (default: settings.training, else unspecified)\n"
           "  --probe INPUT=DIR    path, repeatable   a `clens probe` folder (probe.json) of INPUT's model on\n"
           "                                          the same pairs: AUROC per layer beside recovery\n"
           "  --steer INPUT=DIR    path, repeatable   a `clens steer --pairs` folder (steer.json) steering ONE\n"
           "                                          layer: its effect vs the random control at that layer\n"
           "                                          (repeat for every steered layer)\n"
           "  --atp INPUT=RUNDIR   path, repeatable   a `clens patch --method atp` run on the same pairs file,\n"
           "                                          prompt and metric as INPUT (else refused, naming the key):\n"
           "                                          AtP vs exact per site, correlations, flagged sites\n"
           "  --resamples B        int, default 2000  bootstrap resamples (0 = no CIs)\n"
           "  --seed S             int, default 0     bootstrap seed\n"
           "  --min-jump X         float, default 10  spike threshold on an increment (points)\n"
           "  --mid LO,HI          floats, default 0.4,0.8  relative-depth range of a mid spike\n"
           "  --critical X         float, default 50  critical layer: first mean >= X %%\n"
           "  --grid-step X        float, default 0.1 relative-depth grid of the differences\n"
           "  -q, --quiet          flag, default off  print nothing (errors only)\n"
           "  -h, --help           flag               this help\n\n"
           "examples:\n"
           "  clens compare data/seed_results.json --out cmp-seed\n"
           "  clens compare runs/qwen runs/olmo data/seed_results.json --out cmp \\\n"
           "      --label runs/qwen=Qwen-0.5B --training runs/qwen=SFT\n"
           "  clens compare runs/qwen --out cmp --probe qwen=probe-qwen --steer qwen=steer-L2 \\\n"
           "      --steer qwen=steer-L3 --atp qwen=runs/qwen-atp\n\n"
           "exit codes: 0 written, 1 error (unreadable or malformed input, I/O), 2 usage\n");
}

static const char *const regimes[] = {"distilled", "RL", "SFT", "RL-after-SFT", "other"};

int cmd_compare(int argc, char **argv)
{
    const char *out = NULL;
    int quiet = 0, n = 0, nl = 0, nt = 0;
    size_t cap = (size_t)(argc > 0 ? argc : 1);
    const char **inputs = calloc(cap, sizeof *inputs), **labels = calloc(cap, sizeof *labels);
    const char **trainings = calloc(cap, sizeof *trainings);
    const char **probes = calloc(cap, sizeof *probes), **steers = calloc(cap, sizeof *steers);
    const char **atps = calloc(cap, sizeof *atps);
    int np = 0, ns = 0, na = 0;
    clens_compare_params p = clens_compare_default_params();
    int rc = CLI_EXIT_OK;
    if (!inputs || !labels || !trainings || !probes || !steers || !atps) { rc = cli_errorf("compare", CLI_EXIT_ERR, "out of memory"); goto done; }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long lv;
        if (cli_is_help(a)) { help(); goto done; }
        if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) { quiet = 1; continue; }
        if (a[0] != '-' || !a[1]) { inputs[n++] = a; continue; }
        if (!v) { rc = cli_usage_error("compare", "%s needs a value", a); goto done; }
        i++;
        if (strcmp(a, "--out") == 0 || strcmp(a, "-o") == 0) out = v;
        else if (strcmp(a, "--label") == 0 || strcmp(a, "--training") == 0) {
            const char *eq = strrchr(v, '=');
            if (!eq || eq == v || !eq[1]) { rc = cli_usage_error("compare", "%s wants INPUT=VALUE, got '%s'", a, v); goto done; }
            if (a[2] == 'l') labels[nl++] = v;
            else {
                int ok = 0;
                for (size_t k = 0; k < sizeof regimes / sizeof *regimes; k++) ok |= strcmp(eq + 1, regimes[k]) == 0;
                if (!ok) { rc = cli_usage_error("compare", "--training: '%s' is not distilled, RL, SFT, RL-after-SFT or other", eq + 1); goto done; }
                trainings[nt++] = v;
            }
        } else if (strcmp(a, "--probe") == 0 || strcmp(a, "--steer") == 0 || strcmp(a, "--atp") == 0) {
            const char *eq = strrchr(v, '=');
            if (!eq || eq == v || !eq[1]) { rc = cli_usage_error("compare", "%s wants INPUT=PATH, got '%s'", a, v); goto done; }
            if (a[2] == 'p') probes[np++] = v;
            else if (a[2] == 's') steers[ns++] = v;
            else atps[na++] = v;
        } else if (strcmp(a, "--resamples") == 0) {
            if ((rc = cli_parse_int("compare", a, v, 0, 1000000, &lv))) goto done;
            p.resamples = (int)lv;
        } else if (strcmp(a, "--seed") == 0) {
            if ((rc = cli_parse_int("compare", a, v, 0, 0x7fffffffL, &lv))) goto done;
            p.seed = (uint64_t)lv;
        } else if (strcmp(a, "--min-jump") == 0) {
            if ((rc = cli_parse_float("compare", a, v, &p.min_jump))) goto done;
        } else if (strcmp(a, "--critical") == 0) {
            if ((rc = cli_parse_float("compare", a, v, &p.critical_pct))) goto done;
        } else if (strcmp(a, "--grid-step") == 0) {
            if ((rc = cli_parse_float("compare", a, v, &p.grid_step))) goto done;
            if (!(p.grid_step > 0 && p.grid_step <= 1)) { rc = cli_usage_error("compare", "--grid-step must be in (0, 1]"); goto done; }
        } else if (strcmp(a, "--mid") == 0) {
            char *end;
            p.mid_lo = strtod(v, &end);
            if (*end != ',') { rc = cli_usage_error("compare", "--mid wants LO,HI, got '%s'", v); goto done; }
            p.mid_hi = strtod(end + 1, &end);
            if (*end || p.mid_lo > p.mid_hi) { rc = cli_usage_error("compare", "--mid wants LO,HI with LO <= HI, got '%s'", v); goto done; }
        } else { rc = cli_usage_error("compare", "unknown option '%s'", a); goto done; }
    }
    if (!out || !*out) { rc = cli_usage_error("compare", "--out DIR is required"); goto done; }
    /* outputs: never over an input, a device, a FIFO or a link (src/base/outpath.c) */
    if (cli_check_out_dir("compare", out, inputs, (size_t)n)) { rc = CLI_EXIT_ERR; goto done; }
    if (n == 0) { rc = cli_usage_error("compare", "give at least one run folder, results.json or the seed fixture"); goto done; }
    p.labels = labels;
    p.n_labels = nl;
    p.trainings = trainings;
    p.n_trainings = nt;
    p.probes = probes;
    p.n_probes = np;
    p.steers = steers;
    p.n_steers = ns;
    p.atps = atps;
    p.n_atps = na;
    clens_error err = {0};
    char *md = NULL;
    if (clens_compare_write(inputs, n, &p, out, quiet ? NULL : &md, &err)) { rc = cli_fail("compare", &err); goto done; }
    if (md) fputs(md, stdout);
    free(md);
    if (!quiet)
        fprintf(stderr, "clens compare: %d input%s compared into %s (comparison.md, comparison.json, pairs.csv, *.svg, report.html)\n",
                n, n == 1 ? "" : "s", out);
done:
    free(inputs); free(labels); free(trainings); free(probes); free(steers); free(atps);
    return rc;
}
