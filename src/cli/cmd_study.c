/*
 * cmd_study.c: `clens study STUDY.json`: several models through one patching
 * protocol, then the comparison (the study runner, src/interp/study.c). This
 * file reads the flags, prints progress lines on stderr and the plan or the
 * summary on stdout. The study file and the folder: docs/study.md.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: clens study STUDY.json [options]\n\n"
        "Runs every model of the study file through one patching protocol (pairs built where needed,\n"
        "one run folder per model, resumable), then compares them (comparison/, study.md) in the\n"
        "study folder. A model with \"checkpoints\" gets one run per checkpoint and the training-\n"
        "dynamics fits (dynamics/<label>/); \"probe\", \"steer\" and \"atp\" add those steps per model\n"
        "(captures/, probes/, steer/, atp/). A rerun continues where the last one stopped; a changed\n"
        "setting is refused, naming the key. The study file's keys: docs/study.md.\n\n"
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
        "  --threads N         int, default 0     threads (0 = all cores; results do not depend on it);\n"
        "                                         with --slurm: cpus per task (default 1)\n"
        "  --shards N          int, default 1     split each run (model or checkpoint) into N shards (R13);\n"
        "                                         tasks: on-policy pairs per model, then run x shard, then the\n"
        "                                         probe/steer and AtP steps per model; --dry-run lists them\n"
        "  --task T            int                run only task T (what a Slurm array task runs)\n"
        "  --finalize          flag               only merge the shards, fit the dynamics, compare, write study.md\n"
        "  --slurm             flag               submit the unfinished tasks as Slurm job arrays (on-policy\n"
        "                                         pairs first, the rest --dependency=afterok on them) plus a\n"
        "                                         final job --dependency=afterok that finalizes; scripts in\n"
        "                                         OUT/slurm/ (docs/cluster.md). With --dry-run: print the\n"
        "                                         scripts and the sbatch commands\n"
        "  --slurm-args S      string, default \"\"  extra sbatch options, e.g. \"--partition=gpu --time=4:00:00\"\n"
        "  --slurm-mem MB      int, default from the memory plan (largest model + KV + 1 GiB)\n"
        "  --quiet             flag               no progress and no summary\n"
        "  -h, --help          flag               this help\n\n"
        "examples:\n"
        "  clens study examples/seed-study.json --dry-run\n"
        "  clens study examples/seed-study.json --fidelity seed --out studies/seed\n"
        "  clens study my-study.json --shards 8 --slurm --slurm-args \"--partition=cpu --time=2:00:00\"\n"
        "  clens study examples/organism-study.json      # checkpoints, probe, steer, atp (after make demo)\n"
        "exit codes: 0 done (or resumed to done), 1 error (bad study file, refused folder, a model's run),\n"
        "2 usage\n");
}

/* sbatch --parsable ARGS; the job id, or -1 (message printed). */
static long sbatch(const char *opts, const char *extra, const char *script)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "sbatch --parsable %s %s '%s'", opts, extra ? extra : "", script);
    FILE *f = popen(cmd, "r");
    if (!f) { cli_errorf("study", CLI_EXIT_ERR, "cannot run sbatch"); return -1; }
    char line[256] = "";
    char *got = fgets(line, sizeof line, f);
    int st = pclose(f);
    long id = got ? strtol(line, NULL, 10) : 0;
    if (st != 0 || id <= 0) {
        cli_errorf("study", CLI_EXIT_ERR, "sbatch failed (exit status %d): %s", st, cmd);
        return -1;
    }
    return id;
}

static int write_script(const char *dir, const char *name, const char *text, char *path, size_t n)
{
    clens_error err = {0};
    snprintf(path, n, "%s/%s", dir, name);
    if (clens_mkdir_p(dir, &err) || clens_write_file_atomic(path, text, strlen(text), &err)) return cli_fail("study", &err);
    return 0;
}

/* --slurm: prepare, write the scripts, submit the unfinished tasks and the final job. */
static int submit(clens_study *s, const char *out, int dry, int threads, long mem, const char *extra)
{
    clens_error err = {0};
    char exe[PATH_MAX], cwd[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0 || !getcwd(cwd, sizeof cwd)) return cli_errorf("study", CLI_EXIT_ERR, "cannot find the clens executable or the working directory");
    exe[n] = 0;
    clens_study_slurm_params sp = {exe, cwd, threads > 0 ? threads : 1, mem};
    if (!dry && clens_study_prepare(s, NULL, NULL, &err)) return cli_fail("study", &err);
    char *task = NULL, *fin = NULL, *array = NULL, *pairs = NULL;
    if (clens_study_slurm_scripts(s, &sp, &task, &fin, &array, &err)) return cli_fail("study", &err);
    int rc = clens_study_unfinished_pairs_tasks(s, &pairs, &err) ? cli_fail("study", &err) : CLI_EXIT_OK;
    char dir[PATH_MAX], tpath[PATH_MAX], fpath[PATH_MAX], opts[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/slurm", out);
    if (rc) {
    } else if (dry) {
        const char *x = extra ? extra : "";
        printf("# %s/slurm/task.sh\n%s\n# %s/slurm/final.sh\n%s\n", out, task, out, fin);
        if (pairs[0]) printf("sbatch --parsable --array=%s %s %s/slurm/task.sh\n", pairs, x, out);
        if (array[0])
            printf("sbatch --parsable --array=%s%s %s %s/slurm/task.sh\n", array,
                   pairs[0] ? " --dependency=afterok:<pairs array job id>" : "", x, out);
        if (array[0] || pairs[0])
            printf("sbatch --parsable --dependency=afterok:<%s job id> %s %s/slurm/final.sh\n",
                   array[0] ? "array" : "pairs array", x, out);
        else printf("(every task has finished)\nsbatch --parsable %s %s/slurm/final.sh\n", x, out);
    } else if (!(rc = write_script(dir, "task.sh", task, tpath, sizeof tpath)) &&
               !(rc = write_script(dir, "final.sh", fin, fpath, sizeof fpath))) {
        /* pairs array -> work array (afterok) -> final job (afterok) */
        long pid = 0, jid = 0, fid;
        if (pairs[0]) {
            snprintf(opts, sizeof opts, "--array=%s", pairs);
            pid = sbatch(opts, extra, tpath);
        }
        if (pid >= 0 && array[0]) {
            if (pid) snprintf(opts, sizeof opts, "--array=%s --dependency=afterok:%ld", array, pid);
            else snprintf(opts, sizeof opts, "--array=%s", array);
            jid = sbatch(opts, extra, tpath);
        }
        long dep = jid ? jid : pid;
        if (pid < 0 || jid < 0) rc = CLI_EXIT_ERR;
        else {
            if (dep) snprintf(opts, sizeof opts, "--dependency=afterok:%ld", dep);
            else opts[0] = 0;
            fid = sbatch(opts, extra, fpath);
            if (fid < 0) rc = CLI_EXIT_ERR;
            else {
                if (pid) printf("submitted pairs array %ld (tasks %s); ", pid, pairs);
                if (jid) printf("submitted job array %ld (tasks %s of %d) and final job %ld (afterok)\n", jid, array,
                                clens_study_task_count(s), fid);
                else if (pid) printf("final job %ld (afterok)\n", fid);
                else printf("every task has finished; submitted final job %ld\n", fid);
            }
        }
    }
    free(pairs);
    free(task);
    free(fin);
    free(array);
    return rc;
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
    int dry = 0, quiet = 0, print_settings = 0, finalize = 0, slurm = 0;
    long shards = 1, task = -1, mem = 0;
    const char *slurm_args = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) { usage(stdout); return CLI_EXIT_OK; }
        if (strcmp(a, "--dry-run") == 0) { dry = 1; continue; }
        if (strcmp(a, "--quiet") == 0) { quiet = 1; continue; }
        if (strcmp(a, "--print-settings") == 0) { print_settings = 1; continue; }
        if (strcmp(a, "--finalize") == 0) { finalize = 1; continue; }
        if (strcmp(a, "--slurm") == 0) { slurm = 1; continue; }
        if (a[0] != '-') {
            if (file) return cli_usage_error("study", "unexpected argument '%s'", a);
            file = a;
            continue;
        }
        if (!v) return cli_missing_value("study", a, "--out --fidelity --threads --shards --task --slurm-args --slurm-mem");
        int bad = 0;
        if (strcmp(a, "--out") == 0) opt.out = v;
        else if (strcmp(a, "--shards") == 0) bad = cli_parse_int("study", a, v, 1, 100000, &shards);
        else if (strcmp(a, "--task") == 0) bad = cli_parse_int("study", a, v, 0, 100000000, &task);
        else if (strcmp(a, "--slurm-mem") == 0) bad = cli_parse_int("study", a, v, 1, 1L << 40, &mem);
        else if (strcmp(a, "--slurm-args") == 0) slurm_args = v;
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
        if (bad) return bad;
        i++;
    }
    if (!file) return cli_usage_error("study", "STUDY.json is required");
    if ((task >= 0) + finalize + slurm + print_settings > 1)
        return cli_usage_error("study", "give at most one of --task, --finalize, --slurm, --print-settings");
    if (dry && (task >= 0 || finalize)) return cli_usage_error("study", "--dry-run goes with a whole study or --slurm");
    clens_error err = {0};
    clens_study *s = NULL;
    if (clens_study_load(&s, file, &opt, &err)) return cli_fail("study", &err);
    int rc = CLI_EXIT_OK;
    /* outputs: never over an input, a device, a FIFO or a link (src/base/outpath.c) */
    if (cli_check_out_dir("study", clens_study_out(s), (const char *const[]){file}, 1)) {
        rc = CLI_EXIT_ERR;
    } else if (clens_study_set_shards(s, (int)shards, &err)) {
        rc = cli_fail("study", &err);
    } else if (slurm) {
        rc = submit(s, clens_study_out(s), dry, opt.threads, mem, slurm_args);
    } else if (task >= 0) {
        if (clens_study_run_task(s, (int)task, show, &quiet, &err)) rc = cli_fail("study", &err);
    } else if (finalize) {
        char *md = NULL;
        if (clens_study_finalize(s, show, &quiet, &md, &err)) rc = cli_fail("study", &err);
        else if (!quiet && md) fputs(md, stdout);
        free(md);
    } else if (print_settings) {
        char *t = NULL;
        if (clens_study_settings_text(s, &t, &err)) rc = cli_fail("study", &err);
        else printf("%s\n", t);
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
