/*
 * cmd_dynamics.c: `clens dynamics CHECKPOINT... --pairs P --out DIR`: the
 * patching sweep on every checkpoint of a training series and the statistics
 * of recovery vs step (gradual or transition). Flags, one call to
 * clens_dynamics_run (src/interp/dynamics.c), print dynamics.md.
 * docs/dynamics.md describes the analysis, the rule and the output files.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: clens dynamics CHECKPOINT [CHECKPOINT ...] --pairs pairs.jsonl --out DIR [options]\n\n"
        "Runs the patching sweep of `clens patch` on the same pairs at every checkpoint of a training series\n"
        "(one resumable run folder per checkpoint, DIR/runs/NN-step-S), then fits recovery vs training step per\n"
        "resid_pre layer as a straight line and as a logistic step, compares them by BIC, gives the step's\n"
        "location and width with bootstrap CIs over pairs, and says gradual / transition / too sparse by the\n"
        "rule of docs/dynamics.md. Writes DIR/settings.json, dynamics.json, dynamics.md, heatmap.svg,\n"
        "curves.svg and a self-contained report.html.\n\n"
        "  CHECKPOINT         path or org/name@revision (offline HF cache), two or more, in training order;\n"
        "                     step from its training.json \"step\" (clens train), else step-NNN in its name\n"
        "  --pairs F          path, required     pairs.jsonl from `clens pairs`\n"
        "  --out DIR          path, required     output folder (a rerun with other settings is refused)\n"
        "  --steps LIST       ints, default read the steps of the checkpoints, e.g. 0,500,1000\n"
        "  --sites LIST       string, default resid_pre   site types, first = primary (the profile uses\n"
        "                                        resid_pre, else resid_post)\n"
        "  --layers LIST      ints, default all  layers to patch\n"
        "  --metric M         string, default logprob_mass | logit_mean\n"
        "  --prompt P         string, default chat | raw\n"
        "  --filter F         string, default default | seed\n"
        "  --min-diff X       float, default 3   filter threshold (0 keeps every pair with a difference)\n"
        "  --n N              int, default 50    kept pairs wanted per checkpoint\n"
        "  --method M         string, default fast | rerun | atp (attribution patching; docs/dynamics.md)\n"
        "  --behaviour F      path, default none held-out traces: also measure the behaviour (docs/organisms.md)\n"
        "  --behaviour-n N    int, default 100   traces used for the behaviour\n"
        "  --resamples B      int, default 200   bootstrap resamples of the fits (0 = no CIs)\n"
        "  --seed S           int, default 0     bootstrap seed\n"
        "  --min-delta-bic X  float, default 10  logistic preferred when BIC(lin) - BIC(logistic) >= X\n"
        "  --max-window X     float, default 0.25  transition: 10-90%% window <= X of the step span\n"
        "  --min-inside N     int, default 3     checkpoints needed inside that window to decide\n"
        "  --min-amplitude X  float, default 10  a layer changing less (points) is flat\n"
        "  --matmul MODE      string, default default | portable | bf16      --threads N (int, default 0 = all)\n"
        "  --quiet            flag               no progress and no summary\n\n"
        "example: clens dynamics runs/org-a/checkpoints/step-* --pairs pairs.jsonl --prompt raw --out dyn-a\n"
        "exit codes: 0 done, 1 error (a checkpoint, the pairs, I/O, other settings in DIR), 2 usage\n");
}

static void show(void *user, const char *line)
{
    if (!*(int *)user) fprintf(stderr, "%s\n", line);
}

int cmd_dynamics(int argc, char **argv)
{
    const char *pairs_path = NULL, *out = NULL, *sites_s = "resid_pre", *layers_s = NULL, *steps_s = NULL;
    const char *metric_s = "logprob_mass", *prompt_s = "chat", *filter_s = "default", *method_s = "fast";
    const char *beh = NULL, *mm = NULL;
    double min_diff = 3.0, mdb = 10, mwin = 0.25, mamp = 10;
    long n_target = 50, beh_n = 100, resamples = 200, seed = 0, min_inside = 3, threads = 0;
    int quiet = 0, n_ck = 0;
    const char **cks = calloc((size_t)(argc > 0 ? argc : 1), sizeof *cks);
    if (!cks) return cli_errorf("dynamics", 1, "out of memory");
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (cli_is_help(a)) { usage(stdout); free(cks); return 0; }
        if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) { quiet = 1; continue; }
        if (a[0] != '-') { cks[n_ck++] = a; continue; }
        if (!v) { free(cks); return cli_usage_error("dynamics", "%s needs a value", a); }
        if (strcmp(a, "--pairs") == 0) pairs_path = v;
        else if (strcmp(a, "--out") == 0) out = v;
        else if (strcmp(a, "--sites") == 0) sites_s = v;
        else if (strcmp(a, "--layers") == 0) layers_s = v;
        else if (strcmp(a, "--steps") == 0) steps_s = v;
        else if (strcmp(a, "--metric") == 0) metric_s = v;
        else if (strcmp(a, "--prompt") == 0) prompt_s = v;
        else if (strcmp(a, "--filter") == 0) filter_s = v;
        else if (strcmp(a, "--method") == 0) method_s = v;
        else if (strcmp(a, "--behaviour") == 0) beh = v;
        else if (strcmp(a, "--matmul") == 0) mm = v;
        else if (strcmp(a, "--min-diff") == 0) bad = cli_parse_float("dynamics", a, v, &min_diff);
        else if (strcmp(a, "--min-delta-bic") == 0) bad = cli_parse_float("dynamics", a, v, &mdb);
        else if (strcmp(a, "--max-window") == 0) bad = cli_parse_float("dynamics", a, v, &mwin);
        else if (strcmp(a, "--min-amplitude") == 0) bad = cli_parse_float("dynamics", a, v, &mamp);
        else if (strcmp(a, "--n") == 0) bad = cli_parse_int("dynamics", a, v, 1, 1 << 30, &n_target);
        else if (strcmp(a, "--behaviour-n") == 0) bad = cli_parse_int("dynamics", a, v, 1, 1 << 24, &beh_n);
        else if (strcmp(a, "--resamples") == 0) bad = cli_parse_int("dynamics", a, v, 0, 1000000, &resamples);
        else if (strcmp(a, "--seed") == 0) bad = cli_parse_int("dynamics", a, v, 0, 0x7fffffffffffffffL, &seed);
        else if (strcmp(a, "--min-inside") == 0) bad = cli_parse_int("dynamics", a, v, 1, 1000000, &min_inside);
        else if (strcmp(a, "--threads") == 0) bad = cli_parse_int("dynamics", a, v, 0, 1024, &threads);
        else { free(cks); return cli_usage_error("dynamics", "unknown option '%s'", a); }
        if (bad) { free(cks); return bad; }
        i++;
    }
    clens_dynamics_params p = clens_dynamics_default_params();
    clens_run_params *rp = &p.run;
    long *steps = NULL;
    int *layers = NULL;
    clens_hook_point types[CLENS_HOOK_COUNT];
    int n_types = 0;
    char *list = NULL, *md = NULL;
    clens_error err = {0};
    if (n_ck < 2 || !pairs_path || !out) {
        rc = cli_usage_error("dynamics", "two or more CHECKPOINTs, --pairs and --out are required");
        goto done;
    }
    /* outputs: never over an input, a device, a FIFO or a link (src/base/outpath.c) */
    if (cli_check_out_dir("dynamics", out, (const char *const[]){pairs_path, beh}, 2) ||
        cli_check_out_dir("dynamics", out, cks, (size_t)n_ck)) {
        rc = CLI_EXIT_ERR;
        goto done;
    }
    if (clens_metric_parse(metric_s, &rp->metric, NULL)) { rc = cli_usage_error("dynamics", "--metric expects logprob_mass or logit_mean"); goto done; }
    if (strcmp(prompt_s, "chat") == 0) rp->prompt_chat = 1;
    else if (strcmp(prompt_s, "raw") == 0) rp->prompt_chat = 0;
    else { rc = cli_usage_error("dynamics", "--prompt expects raw or chat"); goto done; }
    if (strcmp(method_s, "fast") == 0) rp->method = CLENS_PATCH_FAST;
    else if (strcmp(method_s, "rerun") == 0) rp->method = CLENS_PATCH_RERUN;
    else if (strcmp(method_s, "atp") == 0) rp->method = CLENS_PATCH_ATP;
    else { rc = cli_usage_error("dynamics", "--method expects fast, rerun or atp"); goto done; }
    if (clens_filter_parse(filter_s, &rp->filter)) { rc = cli_usage_error("dynamics", "--filter expects default or seed"); goto done; }
    if (!isfinite(min_diff) || min_diff < 0) { rc = cli_usage_error("dynamics", "--min-diff must be a finite number >= 0"); goto done; }
    if (!(mwin > 0 && mwin <= 1) || !isfinite(mdb) || !(mamp >= 0 && isfinite(mamp))) {
        rc = cli_usage_error("dynamics", "--max-window must be in (0, 1], --min-delta-bic finite, --min-amplitude >= 0");
        goto done;
    }
    rp->pairs_path = pairs_path;
    rp->min_diff = min_diff;
    rp->n_target = n_target;
    rp->bootstrap_resamples = resamples > 0 ? resamples : 1;
    rp->bootstrap_seed = seed;
    list = strdup(sites_s);
    if (!list) { rc = cli_errorf("dynamics", 1, "out of memory"); goto done; }
    for (char *t = strtok(list, ","); t; t = strtok(NULL, ",")) {
        clens_hook_point st;
        if (clens_hook_short_parse(t, &st, NULL) || !clens_hook_patchable(st)) { rc = cli_usage_error("dynamics", "unknown site type '%s'", t); goto done; }
        int dup = 0;
        for (int k = 0; k < n_types; k++) dup |= types[k] == st;
        if (!dup) types[n_types++] = st;
    }
    if (!n_types) { rc = cli_usage_error("dynamics", "--sites is empty"); goto done; }
    rp->site_types = types;
    rp->n_site_types = n_types;
    if (layers_s) {
        int32_t *v;
        int n;
        if (cli_parse_ids(layers_s, &v, &n)) { rc = cli_usage_error("dynamics", "--layers expects comma-separated layer numbers"); goto done; }
        layers = malloc(sizeof *layers * (size_t)(n ? n : 1));
        if (!layers) { free(v); rc = cli_errorf("dynamics", 1, "out of memory"); goto done; }
        for (int i = 0; i < n; i++) layers[i] = v[i];
        free(v);
        rp->layers = layers;
        rp->n_layers = n;
    }
    if (steps_s) {
        steps = malloc(sizeof *steps * (size_t)n_ck);
        if (!steps) { rc = cli_errorf("dynamics", 1, "out of memory"); goto done; }
        int n = 0;
        const char *q = steps_s;
        while (*q) {
            char *e;
            long v = strtol(q, &e, 10);
            if (e == q || v < 0 || n >= n_ck || (*e && *e != ',')) { n = -1; break; }
            steps[n++] = v;
            q = *e ? e + 1 : e;
        }
        if (n != n_ck) { rc = cli_usage_error("dynamics", "--steps expects %d comma-separated steps >= 0, got '%s'", n_ck, steps_s); goto done; }
        p.steps = steps;
    }
    p.checkpoints = cks;
    p.n_checkpoints = n_ck;
    p.behaviour_path = beh;
    p.behaviour_n = (int)beh_n;
    p.resamples = (int)resamples;
    p.seed = (uint64_t)seed;
    p.min_delta_bic = mdb;
    p.max_window_frac = mwin;
    p.min_inside = (int)min_inside;
    p.min_amplitude = mamp;
    p.matmul = mm;
    p.threads = (int)threads;
    if (mm && strcmp(mm, "default") && strcmp(mm, "portable") && strcmp(mm, "bf16")) {
        rc = cli_usage_error("dynamics", "--matmul expects default, portable or bf16, got '%s'", mm);
        goto done;
    }
    if (clens_dynamics_run(&p, out, show, &quiet, &md, &err)) { rc = cli_fail("dynamics", &err); goto done; }
    if (!quiet && md) fputs(md, stdout);
done:
    free(md);
    free(list);
    free(layers);
    free(steps);
    free(cks);
    return rc;
}
