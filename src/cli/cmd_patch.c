/*
 * cmd_patch.c: `clens patch MODEL --pairs pairs.jsonl --out DIR`: the study's
 * final-token activation-patching sweep, resumable and shardable. The run
 * itself is the library's run engine (clens_run_*, src/interp/run.c); this
 * file reads the flags, shows progress and prints the table. Output files
 * and their schema: docs/patch-output.md.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: clens patch MODEL --pairs pairs.jsonl --out DIR [options]\n\n"
        "For each (clean, corrupted) pair: run the corrupted prompt, replace the final token's activation\n"
        "at each site with the clean run's, and record how much of the clean-vs-corrupted preference for\n"
        "correction tokens comes back. Resumable (rerun the same command), shardable, crash-safe.\n"
        "Writes DIR/settings.json, DIR/records.jsonl (one line per pair), DIR/results.json, DIR/results.md.\n\n"
        "  --pairs F          pairs.jsonl from `clens pairs` (candidates in file order)\n"
        "  --out DIR          output folder (created; a rerun with other settings is refused)\n"
        "  --sites LIST       site types, first = primary: resid_pre (default), resid_post, attn_out,\n"
        "                     mlp_out, z (every head)\n"
        "  --layers LIST      layers to patch, e.g. 0,2,4 (default: all; resid_pre also has n_layers,\n"
        "                     after the last block)\n"
        "  --metric M         logprob_mass (default: log total probability of the correction tokens)\n"
        "                     | logit_mean (the seed's: mean raw logit of the first sub-tokens)\n"
        "  --tokens LIST      correction strings (default Wait,But,Actually,Hmm; logprob_mass also\n"
        "                     uses ' '+word and lower-case, single-token forms only)\n"
        "  --method M         fast (default: batched one-token rows on the corrupted KV cache)\n"
        "                     | rerun (one full forward per site, as peers do)\n"
        "                     | atp (attribution patching: gradient x (clean - corrupted) activation, one\n"
        "                     forward + one backward per metric; every architecture; docs/dynamics.md)\n"
        "  --prompt P         chat (default: the model's chat template, the problem as the user turn,\n"
        "                     the prefix continuing the assistant's turn) | raw (the seed's plain prompt)\n"
        "  --filter F         default (keep if m_corr - m_clean >= min-diff in logit_mean) | seed (|D| >= min-diff);\n"
        "                     pairs with NaN/Inf metrics are dropped as non_finite\n"
        "  --min-diff X       threshold, finite >= 0 (default 3; 0 keeps every pair with a non-zero difference)\n"
        "  --n N              target kept pairs (default 50)\n"
        "  --shard i/n        process candidates with index mod n == i (merge with `clens merge`)\n"
        "  --bootstrap B      bootstrap resamples for the 95%% CI (default 2000)\n"
        "  --seed S           bootstrap seed (default 0)\n"
        "  --max-tokens T     longest prompt accepted, 2..max_position_embeddings (default min(4096,\n"
        "                     max_position_embeddings), lowered to fit memory; recorded in the settings)\n"
        "  --matmul MODE      default | portable | bf16      --threads N\n"
        "  --fidelity F       seed | clens-default (default: not recorded). seed sets every seed choice\n"
        "                     at once: --prompt raw --metric logit_mean (the seed's 7 strings) --filter seed\n"
        "                     --min-diff 3 --sites resid_post --layers 0,2,4,... (every second layer); a flag\n"
        "                     that says otherwise is refused. Pairs to match: clens pairs --on-policy MODEL\n"
        "                     --site seed --corrupt plus-one --cut chars-raw:20. Recorded as settings.fidelity\n"
        "  --quiet            no progress and no table on stdout\n\n"
        "example: clens patch ~/models/DeepSeek-R1-Distill-Qwen-7B --pairs pairs.jsonl --out runs/ds --n 50\n"
        "exit codes: 0 done (or resumed to done), 1 error, 2 usage\n");
}

static int parse_layers(const char *s, int **out, int *n)
{
    int32_t *v;
    if (cli_parse_ids(s, &v, n)) return -1;
    *out = malloc(sizeof(int) * (size_t)(*n > 0 ? *n : 1));
    if (!*out) { free(v); return -1; }
    for (int i = 0; i < *n; i++) (*out)[i] = v[i];
    free(v);
    return 0;
}

typedef struct progress {
    int quiet, tty;
} progress;

static void show_progress(void *user, const clens_run_info *ri)
{
    const progress *pg = user;
    if (pg->quiet) return;
    double per_pair = ri->ran ? ri->seconds / (double)ri->ran : 0;
    long left = ri->target - ri->kept > 0 ? ri->target - ri->kept : 0;
    double eta = per_pair * (double)left * (ri->kept > 0 ? (double)ri->done / (double)ri->kept : 1.0);
    if (ri->candidates < ri->done) eta = 0;
    fprintf(stderr, "%spatch: %ld/%ld kept, %ld/%ld candidates done, %.1f s/pair, ETA %.0fs%s", pg->tty ? "\r" : "",
            ri->kept, ri->target, ri->done, ri->candidates, per_pair, eta, pg->tty ? "   " : "\n");
    fflush(stderr);
}

/* Prints each line of notes as "patch: LINE". */
static void print_notes(const char *notes)
{
    for (const char *p = notes; p && *p;) {
        const char *nl = strchr(p, '\n');
        int n = nl ? (int)(nl - p) : (int)strlen(p);
        fprintf(stderr, "patch: %.*s\n", n, p);
        p += n + (nl ? 1 : 0);
    }
}

int cmd_patch(int argc, char **argv)
{
    const char *model = NULL, *pairs_path = NULL, *out = NULL, *sites_s = "resid_pre", *layers_s = NULL;
    const char *metric_s = "logprob_mass", *tokens_s = NULL, *method_s = "fast", *prompt_s = "chat";
    const char *filter_s = "default", *shard_s = NULL, *mm = NULL, *fidelity = NULL;
    int given_prompt = 0, given_metric = 0, given_filter = 0, given_sites = 0, given_min_diff = 0;
    double min_diff = 3.0;
    long n_target = 50, boot = 2000, seed = 0, threads = 0, max_tokens = 0;
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) { usage(stdout); return 0; }
        if (strcmp(a, "--quiet") == 0) { quiet = 1; continue; }
        if (a[0] != '-') {
            if (model) return cli_usage_error("patch", "unexpected argument '%s'", a);
            model = a;
            continue;
        }
        if (!v)
            return cli_missing_value("patch", a,
                                     "--pairs --out --sites --layers --metric --tokens --method --prompt --filter "
                                     "--shard --matmul --min-diff --n --bootstrap --seed --threads --max-tokens");
        int bad = 0;
        if (strcmp(a, "--pairs") == 0) pairs_path = v;
        else if (strcmp(a, "--out") == 0) out = v;
        else if (strcmp(a, "--sites") == 0) sites_s = v;
        else if (strcmp(a, "--layers") == 0) layers_s = v;
        else if (strcmp(a, "--metric") == 0) metric_s = v;
        else if (strcmp(a, "--tokens") == 0) tokens_s = v;
        else if (strcmp(a, "--method") == 0) method_s = v;
        else if (strcmp(a, "--prompt") == 0) prompt_s = v;
        else if (strcmp(a, "--filter") == 0) filter_s = v;
        else if (strcmp(a, "--shard") == 0) shard_s = v;
        else if (strcmp(a, "--matmul") == 0) mm = v;
        else if (strcmp(a, "--fidelity") == 0) fidelity = v;
        else if (strcmp(a, "--min-diff") == 0) bad = cli_parse_float("patch", a, v, &min_diff);
        else if (strcmp(a, "--n") == 0) bad = cli_parse_int("patch", a, v, 1, 1 << 30, &n_target);
        else if (strcmp(a, "--bootstrap") == 0) bad = cli_parse_int("patch", a, v, 1, 1 << 24, &boot);
        else if (strcmp(a, "--seed") == 0) bad = cli_parse_int("patch", a, v, 0, 0x7fffffffffffffffL, &seed);
        else if (strcmp(a, "--threads") == 0) bad = cli_parse_int("patch", a, v, 0, 1024, &threads);
        else if (strcmp(a, "--max-tokens") == 0) bad = cli_parse_int("patch", a, v, 2, 1 << 20, &max_tokens);
        else return cli_usage_error("patch", "unknown option '%s'", a);
        if (bad) return bad;
        given_prompt |= strcmp(a, "--prompt") == 0;
        given_metric |= strcmp(a, "--metric") == 0;
        given_filter |= strcmp(a, "--filter") == 0;
        given_sites |= strcmp(a, "--sites") == 0;
        given_min_diff |= strcmp(a, "--min-diff") == 0;
        i++;
    }
    int seed_fidelity = 0;
    if (fidelity) {
        if (strcmp(fidelity, "seed") && strcmp(fidelity, "clens-default"))
            return cli_usage_error("patch", "--fidelity expects seed or clens-default, got '%s'", fidelity);
        seed_fidelity = strcmp(fidelity, "seed") == 0;
    }
    if (seed_fidelity) {
        /* the seed's choices, from the one table every --fidelity reads (src/data/fidelity.c);
         * a flag saying otherwise is refused. The "pairs." rows are clens pairs --fidelity's;
         * every second layer is resolved once the model is open (below). */
        struct { const char *flag; const char **val; int given; } fl[] = {
            {"--prompt", &prompt_s, given_prompt}, {"--metric", &metric_s, given_metric},
            {"--filter", &filter_s, given_filter}, {"--sites", &sites_s, given_sites},
            {"--tokens", &tokens_s, tokens_s != NULL}, {"--layers", &layers_s, layers_s != NULL},
        };
        int n;
        const clens_fidelity_choice *ch = clens_fidelity_seed_choices(&n);
        for (int k = 0; k < n; k++) {
            const clens_fidelity_choice *c = &ch[k];
            if (strncmp(c->key, "pairs.", 6) == 0 || !c->flag) continue;
            const char *want = c->value ? c->value : "(the seed's tokens)";
            if (strcmp(c->flag, "--min-diff") == 0) {
                double v = strtod(c->value, NULL);
                if (given_min_diff && min_diff != v)
                    return cli_usage_error("patch", "--fidelity seed sets --min-diff %s, but --min-diff %g was given; "
                                                    "drop the flag that says otherwise", c->value, min_diff);
                min_diff = v;
                continue;
            }
            for (size_t q = 0; q < sizeof fl / sizeof *fl; q++) {
                if (strcmp(fl[q].flag, c->flag) != 0) continue;
                const int layers = strcmp(c->flag, "--layers") == 0;
                if (fl[q].given && (layers || !c->value || strcmp(*fl[q].val, c->value) != 0))
                    return cli_usage_error("patch", "--fidelity seed sets %s %s, but %s %s was given; drop the flag "
                                                    "that says otherwise", c->flag, want, c->flag, *fl[q].val);
                if (!layers && c->value) *fl[q].val = c->value;
            }
        }
    }
    if (!model || !pairs_path || !out) return cli_usage_error("patch", "MODEL, --pairs and --out are required");
    /* outputs: never over an input, a device, a FIFO or a link (src/base/outpath.c) */
    if (cli_check_out_dir("patch", out, (const char *const[]){model, pairs_path}, 2)) return CLI_EXIT_ERR;
    clens_run_params rp = clens_run_default_params();
    rp.pairs_path = pairs_path;
    rp.n_target = n_target;
    rp.bootstrap_resamples = boot;
    rp.bootstrap_seed = seed;
    rp.max_tokens = (int)max_tokens;
    rp.matmul = mm;
    rp.fidelity = fidelity;
    if (clens_metric_parse(metric_s, &rp.metric, NULL)) return cli_usage_error("patch", "--metric expects logprob_mass or logit_mean");
    if (strcmp(method_s, "fast") == 0) rp.method = CLENS_PATCH_FAST;
    else if (strcmp(method_s, "rerun") == 0) rp.method = CLENS_PATCH_RERUN;
    else if (strcmp(method_s, "atp") == 0) rp.method = CLENS_PATCH_ATP;
    else return cli_usage_error("patch", "--method expects fast, rerun or atp");
    if (strcmp(prompt_s, "chat") == 0) rp.prompt_chat = 1;
    else if (strcmp(prompt_s, "raw") == 0) rp.prompt_chat = 0;
    else return cli_usage_error("patch", "--prompt expects raw or chat");
    if (clens_filter_parse(filter_s, &rp.filter)) return cli_usage_error("patch", "--filter expects default or seed");
    if (!isfinite(min_diff) || min_diff < 0) return cli_usage_error("patch", "--min-diff must be a finite number >= 0");
    rp.min_diff = min_diff;
    if (shard_s) {
        char tail;
        long si, sn;
        if (sscanf(shard_s, "%ld/%ld%c", &si, &sn, &tail) != 2 || sn < 1 || sn > 1000000 || si < 0 || si >= sn)
            return cli_usage_error("patch", "--shard expects i/n with 0 <= i < n <= 1000000, got '%s'", shard_s);
        rp.shard_index = (int)si;
        rp.shard_count = (int)sn;
    }

    clens_hook_point types[CLENS_HOOK_COUNT];
    int n_types = 0;
    char *list = strdup(sites_s);
    if (!list) return cli_errorf("patch", 1, "out of memory");
    for (char *t = strtok(list, ","); t; t = strtok(NULL, ",")) {
        clens_hook_point st;
        if (clens_hook_short_parse(t, &st, NULL) || !clens_hook_patchable(st)) {
            int r = cli_usage_error("patch", "unknown site type '%s'", t);
            free(list);
            return r;
        }
        int dup = 0;
        for (int k = 0; k < n_types; k++) dup |= types[k] == st;
        if (!dup) types[n_types++] = st;
    }
    free(list);
    if (!n_types) return cli_usage_error("patch", "--sites is empty");
    rp.site_types = types;
    rp.n_site_types = n_types;
    int *layer_list = NULL, n_layer_list = 0;
    if (layers_s && parse_layers(layers_s, &layer_list, &n_layer_list))
        return cli_usage_error("patch", "--layers expects comma-separated layer numbers");
    rp.layers = layer_list;
    rp.n_layers = n_layer_list;
    char *tokens_copy = NULL;
    const char *words[64];
    if (tokens_s) {
        tokens_copy = strdup(tokens_s);
        int nw = 0;
        for (char *t = tokens_copy ? strtok(tokens_copy, ",") : NULL; t && nw < 64; t = strtok(NULL, ",")) words[nw++] = t;
        if (!nw) { free(tokens_copy); free(layer_list); return cli_usage_error("patch", "--tokens is empty"); }
        rp.words = words;
        rp.n_words = nw;
    }

    int rc = 0;
    clens_error err = {0};
    clens_model *m = NULL;
    clens_run *run = NULL;
    char *md = NULL;
    if ((rc = cli_open_model("patch", model, mm, (int)threads, &m))) goto end;
    const clens_model_info *in = clens_model_get_info(m);
    if (rp.max_tokens > in->max_pos) {
        rc = cli_usage_error("patch", "--max-tokens %d exceeds the model's context (max_position_embeddings %d)",
                             rp.max_tokens, in->max_pos);
        goto end;
    }
    if (seed_fidelity) { /* every second layer of resid_post: 0, 2, ..., < n_layers */
        layer_list = malloc(sizeof(int) * (size_t)(in->n_layers / 2 + 1));
        if (!layer_list) { rc = cli_errorf("patch", 1, "out of memory"); goto end; }
        for (int l = 0; l < in->n_layers; l += 2) layer_list[n_layer_list++] = l;
        rp.layers = layer_list;
        rp.n_layers = n_layer_list;
    }
    for (int q = 0; q < n_layer_list; q++)
        if (layer_list[q] < 0 || layer_list[q] > in->n_layers) {
            rc = cli_usage_error("patch", "--layers: %d is outside 0..%d", layer_list[q], in->n_layers);
            goto end;
        }
    if (clens_run_open(&run, out, m, &rp, &err)) { rc = cli_fail("patch", &err); goto end; }
    const clens_run_info *ri = clens_run_get_info(run);
    print_notes(ri->notes); /* also with --quiet: a dropped line or a changed host is worth a line */
    if (!quiet) {
        fprintf(stderr, "patch: memory plan: weights %.2f GiB, KV %.2f MiB/token x 3 caches x %d tokens%s = %.2f GiB, "
                        "%d sites per batch\n",
                in->weight_bytes / 1073741824.0, in->kv_bytes_per_token / 1048576.0, ri->max_tokens,
                ri->max_tokens_from_memory ? " (lowered to fit memory)" : "",
                3.0 * ri->max_tokens * in->kv_bytes_per_token / 1073741824.0, ri->n_sites);
        if (ri->resumed_done)
            fprintf(stderr, "patch: resuming %s: %ld pairs recorded, %ld kept\n", out, ri->resumed_done,
                    ri->resumed_kept);
    }
    progress pg = {quiet, isatty(2)};
    if (clens_run_execute(run, show_progress, &pg, &err)) {
        if (!quiet && pg.tty && ri->ran) fputc('\n', stderr);
        rc = cli_fail("patch", &err);
        goto end;
    }
    if (!quiet && pg.tty && ri->ran) fputc('\n', stderr);
    if (ri->kept < ri->target && !quiet)
        fprintf(stderr, "patch: candidates exhausted with %ld of %ld pairs kept\n", ri->kept, ri->target);
    if (clens_run_finish(run, &md, &err)) { rc = cli_fail("patch", &err); goto end; }
    if (!quiet && md) fputs(md, stdout);
end:
    free(md);
    free(tokens_copy);
    free(layer_list);
    clens_run_free(run);
    clens_model_free(m);
    return rc;
}
