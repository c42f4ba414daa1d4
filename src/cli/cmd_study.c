/*
 * cmd_study.c: `clens study STUDY.json`: several models through one patching
 * protocol, then the comparison (the study runner, src/interp/study.c). This
 * file reads the flags, prints progress lines on stderr and the plan or the
 * summary on stdout. The study file and the folder: docs/study.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: clens study STUDY.json [options]\n\n"
        "Runs every model of the study file through one patching protocol (pairs built where needed,\n"
        "one run folder per model, resumable), then compares them (comparison/, study.md) in the\n"
        "study folder. A rerun continues where the last one stopped; a changed setting is refused,\n"
        "naming the key. The study file's keys: docs/study.md.\n\n"
        "  STUDY.json          path, required     the study file (JSON)\n"
        "  --out DIR           path, default the file's \"out\"   the study folder\n"
        "  --fidelity F        seed | clens-default, default the file's \"fidelity\" (else clens-default)\n"
        "                      seed: every choice of the seed study at once (on-policy greedy solutions,\n"
        "                      raw prompt, last \"= n\" + 1, chars-raw:20 cut, logit_mean over the seed's 7\n"
        "                      strings, |D| >= 3 either sign, every second layer, resid_post, mean +- SD);\n"
        "                      a study-file key that says otherwise is refused, naming the key\n"
        "  --dry-run           flag               print the plan (models, pair source, runs and their\n"
        "                                         state, memory per model) and exit; writes nothing\n"
        "  --print-settings    flag               print the canonical settings (every default) and exit\n"
        "  --threads N         int, default 0     threads (0 = all cores; results do not depend on it)\n"
        "  --quiet             flag               no progress and no summary\n"
        "  -h, --help          flag               this help\n\n"
        "examples:\n"
        "  clens study examples/seed-study.json --dry-run\n"
        "  clens study examples/seed-study.json --fidelity seed --out studies/seed\n"
        "exit codes: 0 done (or resumed to done), 1 error (bad study file, refused folder, a model's run),\n"
        "2 usage\n");
}

static void show(void *user, const char *line)
{
    if (*(const int *)user) return;
    fprintf(stderr, "study: %s\n", line);
    fflush(stderr);
}

int cmd_study(int argc, char **argv)
{
    const char *file = NULL;
    clens_study_options opt = {0};
    int dry = 0, quiet = 0, print_settings = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) { usage(stdout); return CLI_EXIT_OK; }
        if (strcmp(a, "--dry-run") == 0) { dry = 1; continue; }
        if (strcmp(a, "--quiet") == 0) { quiet = 1; continue; }
        if (strcmp(a, "--print-settings") == 0) { print_settings = 1; continue; }
        if (a[0] != '-') {
            if (file) return cli_usage_error("study", "unexpected argument '%s'", a);
            file = a;
            continue;
        }
        if (!v) return cli_missing_value("study", a, "--out --fidelity --threads");
        if (strcmp(a, "--out") == 0) opt.out = v;
        else if (strcmp(a, "--fidelity") == 0) {
            if (strcmp(v, "seed") && strcmp(v, "clens-default"))
                return cli_usage_error("study", "--fidelity expects seed or clens-default, got '%s'", v);
            opt.fidelity = v;
        } else if (strcmp(a, "--threads") == 0) {
            long t;
            int rc = cli_parse_int("study", a, v, 0, 1024, &t);
            if (rc) return rc;
            opt.threads = (int)t;
        } else {
            return cli_usage_error("study", "unknown option '%s'", a);
        }
        i++;
    }
    if (!file) return cli_usage_error("study", "STUDY.json is required");
    clens_error err = {0};
    clens_study *s = NULL;
    if (clens_study_load(&s, file, &opt, &err)) return cli_fail("study", &err);
    int rc = CLI_EXIT_OK;
    if (print_settings) {
        char *t = clens_study_settings_text(s);
        if (t) printf("%s\n", t);
        else rc = cli_errorf("study", CLI_EXIT_ERR, "out of memory");
        free(t);
    } else if (dry) {
        char *plan = NULL;
        if (clens_study_plan(s, &plan, &err)) rc = cli_fail("study", &err);
        else fputs(plan, stdout);
        free(plan);
    } else {
        char *md = NULL;
        if (clens_study_run(s, show, &quiet, &md, &err)) rc = cli_fail("study", &err);
        else if (!quiet && md) fputs(md, stdout);
        free(md);
    }
    clens_study_free(s);
    return rc;
}
