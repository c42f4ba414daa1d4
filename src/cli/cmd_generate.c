/* cmd_generate.c: `clens generate MODEL --ids ...`: greedy or seeded sampling. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: clens generate MODEL (--ids 1,2,3 | --ids-file F.json | --text STR) [options]\n\n"
            "Generates continuations; a batch file [[...],[...]] runs all prompts as one batch.\n"
            "Prints one JSON line per prompt: {\"prompt\": i, \"ids\": [...]} (with --text also \"text\").\n\n"
            "  --ids LIST           comma-separated prompt token ids\n"
            "  --text STR           a text prompt, encoded with the model's tokenizer (special tokens on)\n"
            "  --ids-file F         JSON array of ids, or an array of such arrays\n"
            "  --max-new N          new tokens per prompt (default 32)\n"
            "  --temperature T      0 = greedy (default 0)\n"
            "  --top-k K            sample from the K most likely (default 0 = off)\n"
            "  --top-p P            nucleus sampling (default 1 = off)\n"
            "  --seed S             sampling seed (default 0)\n"
            "  --stop LIST          stop token ids (default: eos_token_id of generation_config.json,\n"
            "                       else of config.json; an int or a list)\n"
            "  --control-vector F[:S]  add llama.cpp control vector F scaled by S (float, default 1) to the output of\n"
            "                       block N (direction.N) at every position; repeatable, summed; greedy or\n"
            "                       sampled as without (the same seed gives the same draws)\n"
            "  --control-vector-layer-range A B  apply control vectors to blocks A..B only (default 1 and n_layers)\n"
            "  --matmul MODE        default | portable | bf16\n"
            "  --threads N          threads (default: all cores)\n\n"
            "example: clens generate ./qwen2-tiny --ids 1,2,3 --max-new 16 --temperature 0.7 --seed 1\n");
}

/* Greedy generation with the sum of control vectors args[i] = FILE[:SCALE]
 * (llama.cpp semantics: src/interp/steer_cvec.c). */
static int generate_cvec(clens_model *m, const char *const *args, int n, const int range[2], int32_t **seqs,
                         const int *lens, int ns, const clens_sample_params *sp, int32_t **out, int *out_n, clens_error *err)
{
    const clens_model_info *in = clens_model_get_info(m);
    clens_cvec cv = {0};
    clens_steer spec;
    int rc = 0;
    float *vecs = calloc((size_t)in->n_layers * in->d_model, sizeof(float));
    unsigned char *act = calloc((size_t)in->n_layers, 1);
    if (!vecs || !act) rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
    for (int i = 0; i < n && !rc; i++) {
        char file[4096];
        snprintf(file, sizeof file, "%s", args[i]);
        char *colon = strrchr(file, ':'), *end = NULL;
        double scale = 1;
        if (colon && colon[1]) {
            scale = strtod(colon + 1, &end);
            if (*end) rc = clens_err(err, CLENS_E_ARG, "--control-vector %s: bad scale", args[i]);
            else *colon = 0;
        }
        if (!rc) rc = clens_cvec_load(&cv, file, (float)scale, err);
    }
    if (!rc) rc = clens_cvec_steer(&cv, in->n_layers, in->d_model, range[0], range[1], vecs, act, &spec, err);
    if (!rc)
        rc = clens_steer_generate_sampled(m, (const int32_t *const *)seqs, lens, ns, &spec, NULL, 0, sp, out, out_n, err);
    clens_cvec_free(&cv);
    free(vecs);
    free(act);
    return rc;
}

int cmd_generate(int argc, char **argv)
{
    const char *model = NULL, *ids = NULL, *ids_file = NULL, *mm = NULL, *stop = NULL, *text = NULL;
    long threads = 0, max_new = 32, top_k = 0, seed = 0;
    double temp = 0, top_p = 1;
    const char *cv_arg[16];
    int n_cv = 0, cv_range[2] = {0, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) { usage(stdout); return 0; }
        if (a[0] != '-') {
            if (model) return cli_usage_error("generate", "unexpected argument '%s'", a);
            model = a;
            continue;
        }
        if (!v)
            return cli_missing_value("generate", a,
                                     "--ids --text --ids-file --matmul --stop --threads --max-new --top-k --seed "
                                     "--temperature --top-p");
        int bad = 0;
        if (strcmp(a, "--control-vector") == 0) {
            if (n_cv == 16) return cli_usage_error("generate", "at most 16 --control-vector");
            cv_arg[n_cv++] = v;
        } else if (strcmp(a, "--control-vector-layer-range") == 0) {
            long x, y;
            if (i + 2 >= argc) return cli_usage_error("generate", "--control-vector-layer-range expects two layers A B");
            if ((bad = cli_parse_int("generate", a, v, -1, 1 << 20, &x)) ||
                (bad = cli_parse_int("generate", a, argv[i + 2], -1, 1 << 20, &y)))
                return bad;
            cv_range[0] = (int)x;
            cv_range[1] = (int)y;
            i++;
        } else if (strcmp(a, "--ids") == 0) ids = v;
        else if (strcmp(a, "--text") == 0) text = v;
        else if (strcmp(a, "--ids-file") == 0) ids_file = v;
        else if (strcmp(a, "--matmul") == 0) mm = v;
        else if (strcmp(a, "--stop") == 0) stop = v;
        else if (strcmp(a, "--threads") == 0) bad = cli_parse_int("generate", a, v, 0, 1024, &threads);
        else if (strcmp(a, "--max-new") == 0) bad = cli_parse_int("generate", a, v, 1, 1 << 20, &max_new);
        else if (strcmp(a, "--top-k") == 0) bad = cli_parse_int("generate", a, v, 0, 1 << 24, &top_k);
        else if (strcmp(a, "--seed") == 0) bad = cli_parse_int("generate", a, v, 0, 0x7fffffffffffffffL, &seed);
        else if (strcmp(a, "--temperature") == 0) bad = cli_parse_float("generate", a, v, &temp);
        else if (strcmp(a, "--top-p") == 0) bad = cli_parse_float("generate", a, v, &top_p);
        else return cli_usage_error("generate", "unknown option '%s'", a);
        if (bad) return bad;
        i++;
    }
    if (!model) return cli_usage_error("generate", "missing MODEL");
    if (temp < 0 || top_p <= 0 || top_p > 1)
        return cli_usage_error("generate", "--temperature must be >= 0 and --top-p in (0, 1]");
    int32_t **seqs = NULL;
    int *lens = NULL, ns = 0, rc;
    clens_tokenizer *tok = NULL;
    clens_error terr = {0};
    if (text && (ids || ids_file)) return cli_usage_error("generate", "give one of --ids, --ids-file and --text");
    if (!text && (rc = cli_get_ids("generate", ids, ids_file, &seqs, &lens, &ns))) return rc;
    clens_model *m;
    if ((rc = cli_open_model("generate", model, mm, (int)threads, &m))) { cli_free_ids(seqs, lens, ns); return rc; }
    if (text) {
        int n = 0;
        seqs = calloc(1, sizeof *seqs);
        lens = calloc(1, sizeof *lens);
        ns = 1;
        if (!seqs || !lens || clens_tokenizer_open(&tok, clens_model_get_info(m)->path, &terr) ||
            clens_tokenize(tok, text, strlen(text), 1, &seqs[0], &n, NULL, &terr)) {
            rc = terr.msg[0] ? cli_fail("generate", &terr) : cli_errorf("generate", 1, "out of memory");
            clens_tokenizer_free(tok);
            clens_model_free(m);
            cli_free_ids(seqs, lens, ns);
            return rc;
        }
        lens[0] = n;
    }
    int32_t *stops = NULL;
    int nstop = 0;
    if (stop && cli_parse_ids(stop, &stops, &nstop)) {
        rc = cli_usage_error("generate", "--stop expects comma-separated ids");
        goto end;
    }
    if (!stop) clens_model_stop_ids(m, &stops, &nstop);
    clens_sample_params sp = clens_sample_default_params();
    sp.temperature = (float)temp;
    sp.top_k = (int)top_k;
    sp.top_p = (float)top_p;
    sp.seed = (uint64_t)seed;
    sp.max_new_tokens = (int)max_new;
    sp.stop_ids = stops;
    sp.n_stop = nstop;
    int32_t **out = calloc(ns, sizeof *out);
    int *out_n = calloc(ns, sizeof *out_n);
    clens_error err = {0};
    double t0 = clens_now();
    if (!out || !out_n) rc = cli_errorf("generate", 1, "out of memory");
    else if (n_cv ? generate_cvec(m, cv_arg, n_cv, cv_range, seqs, lens, ns, &sp, out, out_n, &err)
                  : clens_generate(m, (const int32_t *const *)seqs, lens, ns, &sp, out, out_n, &err))
        rc = cli_fail("generate", &err);
    else
        for (int i = 0; i < ns; i++) {
            printf("{\"prompt\": %d, \"ids\": [", i);
            for (int k = 0; k < out_n[i]; k++) printf("%s%d", k ? ", " : "", out[i][k]);
            printf("]");
            char *dec = NULL;
            size_t dl = 0;
            if (tok && clens_detokenize(tok, out[i], out_n[i], 0, &dec, &dl, &terr) == 0) {
                json_t *jt = json_stringn_nocheck(dec, dl);
                char *js = jt ? json_dumps(jt, JSON_ENCODE_ANY) : NULL;
                printf(", \"text\": %s", js ? js : "null");
                free(js);
                json_decref(jt);
            }
            free(dec);
            printf("}\n");
        }
    /* The ids are the result: a lost stdout (disk full, closed pipe) is an error. */
    if (!rc && (fflush(stdout) != 0 || ferror(stdout)))
        rc = cli_errorf("generate", CLI_EXIT_ERR, "cannot write the output: %s", strerror(errno));
    if (!rc) {
        long long n_new = 0;
        for (int i = 0; i < ns; i++) n_new += out_n[i];
        clens_mem mem = clens_mem_usage();
        fprintf(stderr, "generate: %lld new tokens in %.2f s, kernel %s; peak RSS %.2f GiB (now file-backed %.2f GiB, "
                        "anonymous %.2f GiB)\n",
                n_new, clens_now() - t0, clens_model_kernel_name(m), mem.peak / 1073741824.0, mem.file / 1073741824.0,
                mem.anon / 1073741824.0);
    }
    for (int i = 0; out && i < ns; i++) free(out[i]);
    free(out);
    free(out_n);
end:
    free(stops);
    clens_tokenizer_free(tok);
    clens_model_free(m);
    cli_free_ids(seqs, lens, ns);
    return rc;
}
