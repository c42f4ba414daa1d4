/*
 * cmd_organism.c: `clens organism <sub>`: the model organisms' data and
 * measurements (docs/organisms.md). Subcommands:
 *   traces     seeded arithmetic chain-of-thought traces as GSM8K JSONL
 *   tokenizer  the organism tokenizer (tokenizer.json + tokenizer_config.json)
 *   behaviour  P(correction | after an error) and after a correct step
 *   recipe     the organisms of a recipe file with their settings hashes,
 *              as shell-readable lines (tools/demo.sh reads them)
 *   summary    one organism's demo block: behaviour, recovery bar, critical layer
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/infile.h"
#include "cli.h"

/* Bumped when the generator's or the vocabulary's output changes: part of
 * every organism's settings hash, so trained organisms are retrained. */
#define ORGANISM_DATA_VERSION 1

static void usage(FILE *f)
{
    fprintf(f,
        "usage: clens organism <traces|tokenizer|behaviour|recipe|summary> [options]\n\n"
        "Model organisms: small models trained by `clens train` on arithmetic traces that say \"Wait\"\n"
        "after an error (docs/organisms.md). `clens organism <sub> --help` for each subcommand.\n\n"
        "  traces     write seeded traces as GSM8K JSONL\n"
        "  tokenizer  write the organism tokenizer folder\n"
        "  behaviour  measure P(correction) after an injected error and after a correct step\n"
        "  recipe     list a recipe file's organisms with their settings hashes\n"
        "  summary    print one organism's demo block from its patch run and behaviour file\n\n"
        "example: clens organism traces --split heldout --seed 2 --n 500 --out heldout.jsonl\n"
        "exit codes: 0 ok, 1 error, 2 usage\n");
}

/* ----------------------------------------------------------------- traces */

static void traces_usage(FILE *f)
{
    clens_traces_params d = clens_traces_default_params();
    fprintf(f,
        "usage: clens organism traces --out FILE [options]\n\n"
        "Writes seeded arithmetic chain-of-thought traces, one GSM8K object a line: question, answer\n"
        "(<<a*b=c>>c annotations, \"#### N\" last), id, organism (metadata). Same options, same bytes.\n\n"
        "  --out FILE          output JSONL (written atomically)\n"
        "  --split S           train (default) | heldout: held-out problems are disjoint from training\n"
        "                      ones by construction, error-free, each with a probe step\n"
        "  --n N               number of traces (int, default %d)\n"
        "  --seed S            random seed (int, default %llu; use a different one for held-out)\n"
        "  --error-frac X      train: fraction of traces with one wrong step + a correction line\n"
        "                      (float, default %.1f; heldout: 0)\n"
        "  --min-steps N       fewest steps (int, default %d, >= 2)\n"
        "  --max-steps N       most steps (int, default %d, <= 4)\n"
        "  --max-operand N     operands in [1, N] (int, default %d, <= 99)\n"
        "  --max-mul N         multipliers in [2, N] (int, default %d)\n"
        "  --max-value N       every result in [1, N] (int, default %d)\n"
        "  --annotate 0|1      1: GSM8K <<expr=n>> annotations on correct steps (default %d); 0: the text\n"
        "                      as the model reads it (the pair builder's prompts strip annotations)\n"
        "  --heldout-mod N     one problem in N is held out (int, default %d)\n\n"
        "example: clens organism traces --split train --seed 1 --n 20000 --error-frac 0.3 --out train.jsonl\n",
        d.n, (unsigned long long)d.seed, d.error_frac, d.min_steps, d.max_steps, d.max_operand, d.max_mul,
        d.max_value, d.annotate, d.heldout_mod);
}

static int sub_traces(int argc, char **argv)
{
    clens_traces_params p = clens_traces_default_params();
    const char *out = NULL;
    int err_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) { traces_usage(stdout); return 0; }
        if (!v) return cli_usage_error("organism traces", "%s needs a value", a);
        i++; /* the value */
        long x = 0;
        double f = 0;
        int bad = 0;
        if (strcmp(a, "--out") == 0) out = v;
        else if (strcmp(a, "--split") == 0) {
            if (strcmp(v, "train") == 0) p.heldout = 0;
            else if (strcmp(v, "heldout") == 0) p.heldout = 1;
            else return cli_usage_error("organism traces", "--split expects train or heldout, got '%s'", v);
        }
        else if (strcmp(a, "--n") == 0) { bad = cli_parse_int("organism traces", a, v, 1, 10000000, &x); p.n = (int)x; }
        else if (strcmp(a, "--seed") == 0) { bad = cli_parse_int("organism traces", a, v, 0, 0x7fffffffffffffffL, &x); p.seed = (uint64_t)x; }
        else if (strcmp(a, "--error-frac") == 0) { bad = cli_parse_float("organism traces", a, v, &f); p.error_frac = f; err_set = 1; }
        else if (strcmp(a, "--min-steps") == 0) { bad = cli_parse_int("organism traces", a, v, 2, 4, &x); p.min_steps = (int)x; }
        else if (strcmp(a, "--max-steps") == 0) { bad = cli_parse_int("organism traces", a, v, 2, 4, &x); p.max_steps = (int)x; }
        else if (strcmp(a, "--max-operand") == 0) { bad = cli_parse_int("organism traces", a, v, 3, 99, &x); p.max_operand = (int)x; }
        else if (strcmp(a, "--max-mul") == 0) { bad = cli_parse_int("organism traces", a, v, 2, 99, &x); p.max_mul = (int)x; }
        else if (strcmp(a, "--max-value") == 0) { bad = cli_parse_int("organism traces", a, v, 6, 1000000, &x); p.max_value = (int)x; }
        else if (strcmp(a, "--annotate") == 0) { bad = cli_parse_int("organism traces", a, v, 0, 1, &x); p.annotate = (int)x; }
        else if (strcmp(a, "--heldout-mod") == 0) { bad = cli_parse_int("organism traces", a, v, 2, 1000000, &x); p.heldout_mod = (int)x; }
        else return cli_usage_error("organism traces", "unknown option '%s'", a);
        if (bad) return bad;
    }
    if (!out) return cli_usage_error("organism traces", "missing --out");
    /* outputs: never over an input, a device, a FIFO or a link (src/base/outpath.c) */
    if (cli_check_out_file("organism traces", out, NULL, 0)) return CLI_EXIT_ERR;
    if (p.heldout && !err_set) p.error_frac = 0;
    clens_error err = {0};
    char *text = NULL;
    size_t len = 0;
    if (clens_traces_generate(&p, &text, &len, &err)) return cli_fail("organism traces", &err);
    int rc = clens_write_file_atomic(out, text, len, &err);
    free(text);
    if (rc) return cli_fail("organism traces", &err);
    fprintf(stderr, "organism traces: %d %s traces -> %s\n", p.n, p.heldout ? "held-out" : "training", out);
    return 0;
}

/* -------------------------------------------------------------- tokenizer */

static int sub_tokenizer(int argc, char **argv)
{
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            printf("usage: clens organism tokenizer --out DIR\n\n"
                   "Writes DIR/tokenizer.json (byte-level BPE: the 256 bytes, every word of the traces and the raw\n"
                   "prompt with and without a leading space, the correction words Wait/But/Actually/Hmm in both\n"
                   "cases as single tokens, single digits, <|endoftext|>) and DIR/tokenizer_config.json (eos, no\n"
                   "chat template).\n\n"
                   "  --out DIR    output folder (created)\n\n"
                   "example: clens organism tokenizer --out build/organisms/tokenizer\n");
            return 0;
        }
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) { out = argv[++i]; continue; }
        return cli_usage_error("organism tokenizer", "unknown option '%s'", argv[i]);
    }
    if (!out) return cli_usage_error("organism tokenizer", "missing --out");
    if (cli_check_out_dir("organism tokenizer", out, NULL, 0)) return CLI_EXIT_ERR;
    clens_error err = {0};
    if (clens_organism_tokenizer_write(out, &err)) return cli_fail("organism tokenizer", &err);
    fprintf(stderr, "organism tokenizer: %s/tokenizer.json, %s/tokenizer_config.json\n", out, out);
    return 0;
}

/* -------------------------------------------------------------- behaviour */

static int sub_behaviour(int argc, char **argv)
{
    const char *model = NULL, *data = NULL, *out = NULL, *records = NULL, *mm = NULL;
    long n = 500, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) {
            printf("usage: clens organism behaviour MODEL --data HELDOUT.jsonl [options]\n\n"
                   "For each held-out trace: the raw prompt through the probe step, once with the step's result\n"
                   "corrupted (last digit +-1) and once correct; P = softmax mass of the correction tokens (Wait,\n"
                   "But, Actually, Hmm; with and without a leading space; as written and lower-cased; single\n"
                   "tokens only) at the next position. Prints {\"behaviour\": {p_correction_after_error,\n"
                   "p_correction_after_correct, n_traces}} (rulings R4).\n\n"
                   "  --data F       held-out traces from `clens organism traces --split heldout`\n"
                   "  --n N          first N traces (int, default 500; R17 wants >= 500)\n"
                   "  --out F        also write the JSON to F (atomically)\n"
                   "  --records F    per-trace JSONL: ids of both prompts and both P (for checks)\n"
                   "  --matmul MODE  default | portable | bf16      --threads N (default 0: all)\n\n"
                   "example: clens organism behaviour build/organisms/models/qwen2-a --data heldout.jsonl --n 500\n");
            return 0;
        }
        if (a[0] != '-') {
            if (model) return cli_usage_error("organism behaviour", "unexpected argument '%s'", a);
            model = a;
            continue;
        }
        if (!v) return cli_usage_error("organism behaviour", "%s needs a value", a);
        i++; /* the value */
        int bad = 0;
        if (strcmp(a, "--data") == 0) data = v;
        else if (strcmp(a, "--out") == 0) out = v;
        else if (strcmp(a, "--records") == 0) records = v;
        else if (strcmp(a, "--matmul") == 0) mm = v;
        else if (strcmp(a, "--n") == 0) bad = cli_parse_int("organism behaviour", a, v, 1, 10000000, &n);
        else if (strcmp(a, "--threads") == 0) bad = cli_parse_int("organism behaviour", a, v, 0, 1024, &threads);
        else return cli_usage_error("organism behaviour", "unknown option '%s'", a);
        if (bad) return bad;
    }
    if (!model) return cli_usage_error("organism behaviour", "missing MODEL");
    if (!data) return cli_usage_error("organism behaviour", "missing --data");
    /* outputs: never over an input, a device, a FIFO or a link (src/base/outpath.c) */
    if ((out && cli_check_out_file("organism behaviour", out, (const char *const[]){data, records}, 2)) ||
        (records && cli_check_out_file("organism behaviour", records, (const char *const[]){data, out}, 2)))
        return CLI_EXIT_ERR;
    clens_model *m = NULL;
    int rc = cli_open_model("organism behaviour", model, mm, (int)threads, &m);
    if (rc) return rc;
    clens_error err = {0};
    clens_tokenizer *tok = NULL;
    clens_behaviour b;
    char *rec = NULL, *js = NULL;
    if (clens_tokenizer_open(&tok, model, &err) ||
        clens_behaviour_measure(m, tok, data, (int)n, &b, records ? &rec : NULL, &err)) {
        rc = cli_fail("organism behaviour", &err);
        goto end;
    }
    if (b.n_traces < n)
        fprintf(stderr, "organism behaviour: warning: %s has only %d traces (asked for %ld)\n", data, b.n_traces, n);
    json_t *o = json_object(), *bo = json_object();
    json_object_set_new(bo, "p_correction_after_error", json_real(b.p_correction_after_error));
    json_object_set_new(bo, "p_correction_after_correct", json_real(b.p_correction_after_correct));
    json_object_set_new(bo, "n_traces", json_integer(b.n_traces));
    json_object_set_new(o, "behaviour", bo);
    json_object_set_new(o, "model", json_string(model));
    json_object_set_new(o, "data", json_string(data));
    js = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (!js) { rc = cli_errorf("organism behaviour", 1, "out of memory"); goto end; }
    printf("%s\n", js);
    size_t jl = strlen(js);
    js[jl] = '\n';  /* json_dumps' terminator becomes the file's final newline */
    if (out && clens_write_file_atomic(out, js, jl + 1, &err)) { rc = cli_fail("organism behaviour", &err); goto end; }
    if (records && clens_write_file_atomic(records, rec, strlen(rec), &err)) { rc = cli_fail("organism behaviour", &err); goto end; }
end:
    free(js);
    free(rec);
    clens_tokenizer_free(tok);
    clens_model_free(m);
    return rc;
}

/* ----------------------------------------------------------------- recipe */

/* Prints obj as shell flags: {"layers": 4, "lr": 0.003, "quiet": true} ->
 * " --layers 4 --lr 0.003 --quiet" (false omits the flag). */
static void print_flags(json_t *obj)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        if (json_is_integer(v)) printf(" --%s %lld", k, (long long)json_integer_value(v));
        else if (json_is_real(v)) printf(" --%s %.10g", k, json_real_value(v));
        else if (json_is_string(v)) printf(" --%s %s", k, json_string_value(v));
        else if (json_is_true(v)) printf(" --%s", k); /* a flag without value; false: omitted */
    }
}

static json_t *find_organism(json_t *orgs, const char *name)
{
    size_t i;
    json_t *o;
    json_array_foreach(orgs, i, o) {
        const char *nm = json_string_value(json_object_get(o, "name"));
        if (nm && strcmp(nm, name) == 0) return o;
    }
    return NULL;
}

/* The settings hash of an organism: sha256 of the canonical JSON (sorted
 * keys, compact) of its entry, its traces' settings, the data version, the
 * clens version and its base organism's hash. */
static int organism_hash(const char *file, json_t *root, json_t *org, char hex[65], int depth)
{
    json_t *traces = json_object_get(root, "traces"), *orgs = json_object_get(root, "organisms");
    const char *name = json_string_value(json_object_get(org, "name"));
    const char *data = json_string_value(json_object_get(org, "data"));
    const char *init = json_string_value(json_object_get(org, "init"));
    if (!name || !data || !json_object_get(traces, data) || !json_is_object(json_object_get(org, "train")))
        return cli_errorf("organism recipe", 1, "%s: organism %s needs name, data (a key of traces) and train {...}",
                          file, name ? name : "?");
    char base[65] = "";
    if (init) {
        json_t *b = find_organism(orgs, init);
        if (!b || depth > 8) return cli_errorf("organism recipe", 1, "%s: %s: init '%s' is not an organism of the file", file, name, init);
        if (organism_hash(file, root, b, base, depth + 1)) return 1;
    }
    json_t *h = json_object();
    json_object_set(h, "organism", org);
    json_object_set(h, "traces", json_object_get(traces, data));
    json_object_set(h, "heldout", json_object_get(traces, "heldout") ? json_object_get(traces, "heldout") : json_null());
    json_object_set_new(h, "data_version", json_integer(ORGANISM_DATA_VERSION));
    json_object_set_new(h, "clens_version", json_string(CLENS_VERSION));
    json_object_set_new(h, "base_hash", json_string(base));
    char *s = json_dumps(h, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(h);
    if (!s) return cli_errorf("organism recipe", 1, "out of memory");
    clens_sha256_hex(s, strlen(s), hex);
    free(s);
    return 0;
}

static int sub_recipe(int argc, char **argv)
{
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            printf("usage: clens organism recipe FILE\n\n"
                   "Reads a recipe file (data/organisms.json; docs/organisms.md) and prints shell-readable lines:\n"
                   "  traces NAME <flags of clens organism traces>\n"
                   "  organism NAME HASH DATA INIT|- SHOW LABEL...   (HASH: settings hash, 64 hex)\n"
                   "  train NAME <flags of clens train>\n"
                   "  patch <flags of clens patch>\n\n"
                   "example: clens organism recipe data/organisms.json\n");
            return 0;
        }
        if (argv[i][0] == '-') return cli_usage_error("organism recipe", "unknown option '%s'", argv[i]);
        file = argv[i];
    }
    if (!file) return cli_usage_error("organism recipe", "missing FILE");
    json_error_t je;
    clens_error e = {0};
    json_t *root = NULL;
    if (clens_json_load_regular(file, 0, &root, &je, &e)) return cli_fail("organism recipe", &e);
    int rc = 0;
    json_t *traces = json_object_get(root, "traces"), *orgs = json_object_get(root, "organisms");
    if (!json_is_object(traces) || !json_is_array(orgs)) {
        rc = cli_errorf("organism recipe", 1, "%s: needs \"traces\" {name: settings} and \"organisms\" [...]", file);
        goto end;
    }
    const char *k;
    json_t *v;
    json_object_foreach(traces, k, v) {
        printf("traces %s", k);
        print_flags(v);
        printf("\n");
    }
    size_t i;
    json_t *o;
    json_array_foreach(orgs, i, o) {
        char hex[65];
        if ((rc = organism_hash(file, root, o, hex, 0))) goto end;
        const char *init = json_string_value(json_object_get(o, "init"));
        const char *label = json_string_value(json_object_get(o, "label"));
        json_t *show = json_object_get(o, "show");
        printf("organism %s %s %s %s %d %s\n", json_string_value(json_object_get(o, "name")), hex,
               json_string_value(json_object_get(o, "data")), init ? init : "-", show ? json_is_true(show) : 1,
               label ? label : "");
        printf("train %s", json_string_value(json_object_get(o, "name")));
        print_flags(json_object_get(o, "train"));
        printf("\n");
    }
    if (json_is_object(json_object_get(root, "patch"))) {
        printf("patch");
        print_flags(json_object_get(root, "patch"));
        printf("\n");
    }
end:
    json_decref(root);
    return rc;
}

/* ---------------------------------------------------------------- summary */

static int sub_summary(int argc, char **argv)
{
    const char *name = NULL, *label = "", *run = NULL, *beh = NULL, *jout = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) {
            printf("usage: clens organism summary --name NAME --run DIR --behaviour FILE [--label TEXT] [--json F]\n\n"
                   "Prints one organism's block of the demo screen: the behaviour rates (FILE from `clens organism\n"
                   "behaviour --out`), the resid_pre recovery profile of the patch run DIR (results.json) as an\n"
                   "ASCII bar line, and the critical layer (the first layer whose mean recovery reaches 50%%).\n"
                   "--json F also writes {name, label, behaviour, profile {site_type, layers, mean_recovery},\n"
                   "critical_layer, run} to F (atomically).\n\n"
                   "example: clens organism summary --name qwen2-a --run build/organisms/runs/qwen2-a \\\n"
                   "         --behaviour build/organisms/runs/qwen2-a/behaviour.json\n");
            return 0;
        }
        if (!v) return cli_usage_error("organism summary", "%s needs a value", a);
        i++; /* the value */
        if (strcmp(a, "--name") == 0) name = v;
        else if (strcmp(a, "--label") == 0) label = v;
        else if (strcmp(a, "--run") == 0) run = v;
        else if (strcmp(a, "--behaviour") == 0) beh = v;
        else if (strcmp(a, "--json") == 0) jout = v;
        else return cli_usage_error("organism summary", "unknown option '%s'", a);
    }
    if (!name || !run || !beh) return cli_usage_error("organism summary", "needs --name, --run and --behaviour");
    char path[4096];
    snprintf(path, sizeof path, "%s/results.json", run);
    /* outputs: never over an input, a device, a FIFO or a link (src/base/outpath.c) */
    if (jout && cli_check_out_file("organism summary", jout, (const char *const[]){path, beh}, 2)) return CLI_EXIT_ERR;
    json_error_t je;
    json_t *res = NULL, *bj = NULL;
    clens_error lerr = {0};
    int rc = 0;
    /* regular files only: a FIFO given as --behaviour would block json_load_file forever */
    if (clens_json_load_regular(path, 0, &res, &je, &lerr) || clens_json_load_regular(beh, 0, &bj, &je, &lerr)) {
        rc = cli_fail("organism summary", &lerr);
        goto end;
    }
    json_t *b = json_object_get(bj, "behaviour"), *ls = json_object_get(res, "layer_stats");
    printf("%s  %s\n", name, label);
    printf("  behaviour      P(correction | after error) %.3f   P(correction | after correct step) %.3f   (%lld held-out traces)\n",
           json_real_value(json_object_get(b, "p_correction_after_error")),
           json_real_value(json_object_get(b, "p_correction_after_correct")),
           (long long)json_integer_value(json_object_get(b, "n_traces")));
    /* layers in numeric order */
    int maxl = -1;
    const char *k;
    json_t *v;
    json_object_foreach(ls, k, v) if (atoi(k) > maxl) maxl = atoi(k);
    static const char ramp[] = " .:-=+*#%@";
    char bar[1024] = "";
    int crit = -1, nb = 0;
    json_t *prof = json_array(), *players = json_array();
    printf("  recovery (%%)  ");
    for (int l = 0; l <= maxl && l < 1000; l++) {
        char key[16];
        snprintf(key, sizeof key, "%d", l);
        json_t *e = json_object_get(ls, key);
        json_t *mr = json_object_get(e, "mean_recovery");
        if (!e || !json_is_number(mr)) { bar[nb++] = '?'; printf(" L%d ?", l); continue; }
        double r = json_number_value(mr);
        json_array_append_new(players, json_integer(l));
        json_array_append_new(prof, json_real(r));
        int idx = r <= 0 ? 0 : r >= 100 ? 9 : (int)(r / 100.0 * 9.0 + 0.5);
        bar[nb++] = ramp[idx];
        printf(" L%d %.0f", l, r);
        if (crit < 0 && r >= 50) crit = l;
    }
    bar[nb] = 0;
    printf("\n  profile        |%s|  (resid_pre L0..L%d, ' '=0%% .. '@'=100%%)\n", bar, maxl);
    if (crit >= 0) printf("  critical layer L%d (first resid_pre layer with mean recovery >= 50%%)\n", crit);
    else printf("  critical layer none (no layer reaches 50%%)\n");
    printf("  results        %s/results.json, %s\n", run, beh);
    if (jout) {
        json_t *o = json_object(), *p = json_object();
        json_object_set_new(o, "name", json_string(name));
        json_object_set_new(o, "label", json_string(label));
        json_object_set(o, "behaviour", b);
        json_object_set_new(p, "site_type", json_string("resid_pre"));
        json_object_set(p, "layers", players);
        json_object_set(p, "mean_recovery", prof);
        json_object_set_new(o, "profile", p);
        json_object_set_new(o, "critical_layer", crit >= 0 ? json_integer(crit) : json_null());
        json_object_set_new(o, "run", json_string(run));
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
        json_decref(o);
        clens_error err = {0};
        if (!s) rc = cli_errorf("organism summary", 1, "out of memory");
        else if (clens_write_file_atomic(jout, s, strlen(s), &err)) rc = cli_fail("organism summary", &err);
        free(s);
    }
    json_decref(prof);
    json_decref(players);
end:
    json_decref(res);
    json_decref(bj);
    return rc;
}

int cmd_organism(int argc, char **argv)
{
    if (argc < 2) { usage(stderr); return CLI_EXIT_USAGE; }
    if (cli_is_help(argv[1])) { usage(stdout); return 0; }
    const char *sub = argv[1];
    if (strcmp(sub, "traces") == 0) return sub_traces(argc - 1, argv + 1);
    if (strcmp(sub, "tokenizer") == 0) return sub_tokenizer(argc - 1, argv + 1);
    if (strcmp(sub, "behaviour") == 0 || strcmp(sub, "behavior") == 0) return sub_behaviour(argc - 1, argv + 1);
    if (strcmp(sub, "recipe") == 0) return sub_recipe(argc - 1, argv + 1);
    if (strcmp(sub, "summary") == 0) return sub_summary(argc - 1, argv + 1);
    return cli_usage_error("organism", "unknown subcommand '%s' (traces, tokenizer, behaviour, recipe, summary)", sub);
}
