/* cmd_steer.c: `clens steer MODEL --direction D ...`: steering / ablation of a
 * direction with controls (docs/steer.md); the work is in src/interp/steer_study.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "interp/steer_study.h"

enum { MAX_CVEC = 16, MAX_LIST = 256 };

static void usage(FILE *f)
{
    fprintf(f,
            "usage: clens steer MODEL (--direction D | --control-vector FILE[:SCALE]...) --out DIR [options]\n\n"
            "Adds alpha*v to, or ablates the component along v from, the residual stream at chosen layers and\n"
            "positions, for every alpha and for random directions of the same norm; measures the final-token\n"
            "correction metric of pairs (cached prefix, one batch per pair), the correction-word rate of greedy\n"
            "continuations (with a token-ban baseline) and the KL / top-1 agreement on neutral text.\n"
            "Writes DIR/settings.json, DIR/steer.json, DIR/steer_pairs.svg, DIR/steer_generation.svg (docs/steer.md)\n"
            "and prints a table.\n\n"
            "  --direction D        .npy ([C] or [n_layers(+1)][C] float32/64), probe.json (\"layers\": [{\"layer\": L,\n"
            "                       \"direction_npy\": PATH}]) or a .gguf control vector\n"
            "  --control-vector F[:S]  llama.cpp control vector scaled by S (float, default 1); repeatable, summed;\n"
            "                       implies add at every position of blocks.N.hook_resid_post (llama.cpp semantics)\n"
            "  --control-vector-layer-range A B  layers A..B inclusive (ints, default 1 and n_layers)\n"
            "  --layers LIST        layers to steer, e.g. 1,2 (default: every layer the direction gives)\n"
            "  --alpha LIST         scales, e.g. 0,0.5,1 (default 1)\n"
            "  --mode add|ablate|mean-ablate  add alpha*v; or x - alpha*(x.u)u with u = v/|v|; or\n"
            "                       x - alpha*(x.u - m)u, m the layer's mean of x.u over the clean prompts\n"
            "                       of --pairs (else the \"correct\" --prompts) at the steered positions\n"
            "                       (last / generated: the final prompt token) (default add)\n"
            "  --hook resid_post|resid_pre  hook point blocks.L.hook_* (default resid_post, llama.cpp's)\n"
            "  --positions P        all | prompt | generated | last (default last; control vectors: all)\n"
            "  --pairs FILE         pairs.jsonl (clens pairs): metric on pairs, and generation prompts\n"
            "  --prompts FILE       JSONL {\"prompt\": TEXT, \"kind\": \"error\"|\"correct\"} for generation (else the pairs')\n"
            "  --neutral FILE       neutral texts, one per line (or JSONL {\"text\": ...}): KL and top-1 agreement\n"
            "  --prompt raw|chat    how pairs are rendered (default raw)\n"
            "  --random N           random control directions (int, default 3)\n"
            "  --seed S             seed of the random directions (int, default 0)\n"
            "  --max-new N          generated tokens per prompt (int, default 16)\n"
            "  --k K                correction words counted within the first K tokens (int, default 8)\n"
            "  --samples N          sample texts per condition (int, default 4)\n"
            "  --limit N            pairs / prompts / neutral texts used (int, default 0 = all)\n"
            "  --method fast|rerun  pair metric from the cached prefix, or full reruns with a hook (default fast)\n"
            "  --out DIR            output folder (required)\n"
            "  --matmul MODE        default | portable | bf16\n"
            "  --threads N          threads (default: all cores)\n"
            "  --quiet              no progress on stderr\n\n"
            "example: clens steer ./organism --direction probe/probe.json --layers 2 --mode ablate --alpha 0,0.5,1 \\\n"
            "           --pairs pairs.jsonl --neutral neutral.txt --out steer-l2\n");
}

static int parse_list(const char *v, double *out, int *n)
{
    char *end;
    *n = 0;
    for (const char *s = v; *s;) {
        if (*n == MAX_LIST) return -1;
        double x = strtod(s, &end);
        if (end == s || !isfinite(x)) return -1;
        out[(*n)++] = x;
        s = end;
        if (*s == ',') s++;
        else if (*s) return -1;
    }
    return *n ? 0 : -1;
}

int cmd_steer(int argc, char **argv)
{
    const char *model = NULL, *mm = NULL;
    long threads = 0, lv;
    steer_study s = {0};
    const char *cv_files[MAX_CVEC];
    float cv_scales[MAX_CVEC];
    char *cv_buf[MAX_CVEC] = {0};
    double alphas[MAX_LIST] = {1}, layersd[MAX_LIST];
    int layers[MAX_LIST], positions_set = 0, rc = 0;
    s.n_alpha = 1;
    s.alphas = alphas;
    s.mode = CLENS_STEER_ADD;
    s.point = CLENS_HOOK_RESID_POST;
    s.positions = CLENS_STEER_POS_LAST;
    s.n_random = 3;
    s.max_new = 16;
    s.k_window = 8;
    s.n_samples = 4;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) { usage(stdout); rc = 0; goto done; }
        if (a[0] != '-') {
            if (model) { rc = cli_usage_error("steer", "unexpected argument '%s'", a); goto done; }
            model = a;
            continue;
        }
        if (strcmp(a, "--quiet") == 0) { s.quiet = 1; continue; }
        if (!v) {
            rc = cli_missing_value("steer", a, "--direction --control-vector --control-vector-layer-range --layers --alpha --mode "
                                               "--hook --positions --pairs --prompts --neutral --prompt --random --seed --max-new "
                                               "--k --samples --limit --method --out --matmul --threads");
            goto done;
        }
        int bad = 0;
        if (strcmp(a, "--direction") == 0) s.direction = v;
        else if (strcmp(a, "--control-vector") == 0) {
            if (s.n_cvec == MAX_CVEC) { rc = cli_usage_error("steer", "at most %d --control-vector", MAX_CVEC); goto done; }
            char *f = cv_buf[s.n_cvec] = strdup(v);
            char *colon = f ? strrchr(f, ':') : NULL;
            double sc = 1;
            if (colon && colon[1]) {
                char *e;
                sc = strtod(colon + 1, &e);
                if (*e || !isfinite(sc)) { rc = cli_usage_error("steer", "--control-vector FILE:SCALE: bad scale in '%s'", v); goto done; }
                *colon = 0;
            }
            cv_files[s.n_cvec] = f;
            cv_scales[s.n_cvec++] = (float)sc;
        } else if (strcmp(a, "--control-vector-layer-range") == 0) {
            if (i + 2 >= argc) { rc = cli_usage_error("steer", "--control-vector-layer-range expects two layers A B"); goto done; }
            long x, y;
            if ((bad = cli_parse_int("steer", a, v, -1, 1 << 20, &x)) || (bad = cli_parse_int("steer", a, argv[i + 2], -1, 1 << 20, &y))) { rc = bad; goto done; }
            s.cv_start = (int)x;
            s.cv_end = (int)y;
            i++;
        } else if (strcmp(a, "--layers") == 0) {
            if (parse_list(v, layersd, &s.n_layers_sel)) { rc = cli_usage_error("steer", "--layers expects ints like 1,2"); goto done; }
            for (int k = 0; k < s.n_layers_sel; k++) {
                if (layersd[k] != floor(layersd[k]) || layersd[k] < 0 || layersd[k] > 1e6) { rc = cli_usage_error("steer", "--layers expects ints >= 0"); goto done; }
                layers[k] = (int)layersd[k];
            }
            s.layers = layers;
        } else if (strcmp(a, "--alpha") == 0) {
            if (parse_list(v, alphas, &s.n_alpha)) { rc = cli_usage_error("steer", "--alpha expects numbers like 0,0.5,1"); goto done; }
        } else if (strcmp(a, "--mode") == 0) {
            if (clens_steer_mode_parse(v, &s.mode)) { rc = cli_usage_error("steer", "--mode is add, ablate or mean-ablate, got '%s'", v); goto done; }
        } else if (strcmp(a, "--positions") == 0) {
            if (clens_steer_positions_parse(v, &s.positions)) { rc = cli_usage_error("steer", "--positions is all, prompt, generated or last, got '%s'", v); goto done; }
            positions_set = 1;
        } else if (strcmp(a, "--hook") == 0) {
            if (strcmp(v, "resid_post") == 0) s.point = CLENS_HOOK_RESID_POST;
            else if (strcmp(v, "resid_pre") == 0) s.point = CLENS_HOOK_RESID_PRE;
            else { rc = cli_usage_error("steer", "--hook is resid_post or resid_pre, got '%s'", v); goto done; }
        } else if (strcmp(a, "--prompt") == 0) {
            if (strcmp(v, "raw") && strcmp(v, "chat")) { rc = cli_usage_error("steer", "--prompt is raw or chat"); goto done; }
            s.prompt_chat = strcmp(v, "chat") == 0;
        } else if (strcmp(a, "--method") == 0) {
            if (strcmp(v, "fast") && strcmp(v, "rerun")) { rc = cli_usage_error("steer", "--method is fast or rerun"); goto done; }
            s.rerun = strcmp(v, "rerun") == 0;
        } else if (strcmp(a, "--pairs") == 0) s.pairs = v;
        else if (strcmp(a, "--prompts") == 0) s.prompts = v;
        else if (strcmp(a, "--neutral") == 0) s.neutral = v;
        else if (strcmp(a, "--out") == 0) s.out_dir = v;
        else if (strcmp(a, "--matmul") == 0) mm = v;
        else if (strcmp(a, "--threads") == 0) bad = cli_parse_int("steer", a, v, 0, 1024, &threads);
        else if (strcmp(a, "--random") == 0) { bad = cli_parse_int("steer", a, v, 0, 64, &lv); s.n_random = (int)lv; }
        else if (strcmp(a, "--seed") == 0) { bad = cli_parse_int("steer", a, v, 0, 0x7fffffffffffffffL, &lv); s.seed = (uint64_t)lv; }
        else if (strcmp(a, "--max-new") == 0) { bad = cli_parse_int("steer", a, v, 1, 1 << 16, &lv); s.max_new = (int)lv; }
        else if (strcmp(a, "--k") == 0) { bad = cli_parse_int("steer", a, v, 1, 1 << 16, &lv); s.k_window = (int)lv; }
        else if (strcmp(a, "--samples") == 0) { bad = cli_parse_int("steer", a, v, 0, 1 << 16, &lv); s.n_samples = (int)lv; }
        else if (strcmp(a, "--limit") == 0) { bad = cli_parse_int("steer", a, v, 0, 1L << 40, &s.limit); }
        else { rc = cli_usage_error("steer", "unknown option '%s'", a); goto done; }
        if (bad) { rc = bad; goto done; }
        i++;
    }
    if (!model) { rc = cli_usage_error("steer", "missing MODEL"); goto done; }
    if (!s.out_dir) { rc = cli_usage_error("steer", "missing --out DIR"); goto done; }
    /* outputs: never over an input, a device, a FIFO or a link (src/base/outpath.c) */
    if (cli_check_out_dir("steer", s.out_dir, (const char *const[]){model, s.direction, s.pairs, s.prompts, s.neutral}, 5) ||
        cli_check_out_dir("steer", s.out_dir, cv_files, (size_t)s.n_cvec)) {
        rc = CLI_EXIT_ERR;
        goto done;
    }
    if (!s.direction == !s.n_cvec) { rc = cli_usage_error("steer", "give one of --direction and --control-vector"); goto done; }
    if (!s.pairs && !s.prompts && !s.neutral) { rc = cli_usage_error("steer", "nothing to measure: give --pairs, --prompts or --neutral"); goto done; }
    if (s.n_cvec && !positions_set) s.positions = CLENS_STEER_POS_ALL;
    s.model_arg = model;
    s.cvec_files = cv_files;
    s.cvec_scales = cv_scales;
    clens_model *m;
    if ((rc = cli_open_model("steer", model, mm, (int)threads, &m))) goto done;
    clens_error err = {0};
    json_t *res = NULL;
    if (steer_study_run(m, &s, &res, &err)) rc = cli_fail("steer", &err);
    else {
        json_t *p = json_object_get(res, "pairs"), *g = json_object_get(res, "generation"), *n = json_object_get(res, "neutral");
#define AT(o, a, b, i) (json_is_number(json_array_get(json_object_get(json_object_get(o, a), b), i)) \
                            ? json_number_value(json_array_get(json_object_get(json_object_get(o, a), b), i)) : NAN)
        printf("mode %s at %s, positions %s, layers", json_string_value(json_object_get(res, "mode")),
               json_string_value(json_object_get(res, "hook")), json_string_value(json_object_get(res, "positions")));
        size_t k;
        json_t *x;
        json_array_foreach(json_object_get(res, "layers"), k, x) printf("%s%lld", k ? "," : " ", (long long)json_integer_value(x));
        printf("\n");
        if (p)
            printf("pairs: %lld, unsteered metric clean %.4f corrupted %.4f\n", (long long)json_integer_value(json_object_get(p, "n_pairs")),
                   json_number_value(json_object_get(json_object_get(p, "unsteered"), "clean")),
                   json_number_value(json_object_get(json_object_get(p, "unsteered"), "corrupted")));
        if (g)
            printf("generation: correction rate after error / correct: unsteered %.3f / %.3f, token ban %.3f / %.3f\n",
                   json_number_value(json_object_get(json_object_get(g, "unsteered"), "error")),
                   json_number_value(json_object_get(json_object_get(g, "unsteered"), "correct")),
                   json_number_value(json_object_get(json_object_get(g, "ban"), "error")),
                   json_number_value(json_object_get(json_object_get(g, "ban"), "correct")));
        printf("%8s  %12s %12s %12s  %10s %10s  %10s %10s  %8s\n", "alpha", "clean_metric", "corr_metric", "random", "rate_err",
               "random", "kl", "random", "top1");
        for (int a = 0; a < s.n_alpha; a++)
            printf("%8g  %12.4f %12.4f %12.4f  %10.3f %10.3f  %10.5f %10.5f  %8.3f\n", alphas[a], AT(p, "direction", "clean", a),
                   AT(p, "direction", "corrupted", a),
                   AT(p, "random", "corrupted", a), AT(g, "direction", "error", a), AT(g, "random", "error", a),
                   AT(n, "direction", "mean_kl", a), AT(n, "random", "mean_kl", a), AT(n, "direction", "top1_agree", a));
#undef AT
        json_decref(res);
    }
    clens_model_free(m);
done:
    for (int i = 0; i < MAX_CVEC; i++) free(cv_buf[i]);
    return rc;
}
