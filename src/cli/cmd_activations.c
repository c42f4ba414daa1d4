/* cmd_activations.c: `clens activations MODEL --ids ... --out DIR`: dump hook points as .npy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base.h"
#include "cli.h"
#include "formats/formats.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: clens activations MODEL (--ids 1,2,3 | --ids-file F.json) --out DIR [options]\n\n"
            "Runs the model on one token sequence and writes, into DIR, logits.npy [T, vocab] and one\n"
            "float32 .npy [T, width] per requested hook point, named by its TransformerLens name\n"
            "(e.g. DIR/blocks.3.hook_resid_pre.npy).\n\n"
            "  --ids LIST        comma-separated token ids\n"
            "  --ids-file F      JSON array of ids\n"
            "  --out DIR         output folder (created)\n"
            "  --hooks LIST      'all' (default) or comma-separated names; 'blocks.*.NAME' or a short name\n"
            "                    (resid_pre, attn_out, ...) means every layer,\n"
            "                    e.g. blocks.*.hook_resid_pre,ln_final.hook_normalized or resid_pre,ln_final\n"
            "  --matmul MODE     default | portable | bf16\n"
            "  --threads N       threads (default: all cores)\n\n"
            "example: clens activations ./qwen2-tiny --ids 5,6,7 --hooks blocks.*.hook_resid_post --out acts/\n");
}

int cmd_activations(int argc, char **argv)
{
    const char *model = NULL, *ids = NULL, *ids_file = NULL, *out = NULL, *mm = NULL, *hooks = "all";
    long threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) { usage(stdout); return 0; }
        if (a[0] != '-') {
            if (model) return cli_usage_error("activations", "unexpected argument '%s'", a);
            model = a;
            continue;
        }
        if (!v) return cli_missing_value("activations", a, "--ids --ids-file --out --hooks --matmul --threads");
        if (strcmp(a, "--ids") == 0) ids = v;
        else if (strcmp(a, "--ids-file") == 0) ids_file = v;
        else if (strcmp(a, "--out") == 0) out = v;
        else if (strcmp(a, "--hooks") == 0) hooks = v;
        else if (strcmp(a, "--matmul") == 0) mm = v;
        else if (strcmp(a, "--threads") == 0) { if (cli_parse_int("activations", a, v, 0, 1024, &threads)) return 2; }
        else return cli_usage_error("activations", "unknown option '%s'", a);
        i++;
    }
    if (!model) return cli_usage_error("activations", "missing MODEL");
    if (!out) return cli_usage_error("activations", "missing --out");
    /* outputs: never over an input, a device, a FIFO or a link (src/base/outpath.c) */
    if (cli_check_out_dir("activations", out, (const char *const[]){model, ids_file}, 2)) return CLI_EXIT_ERR;
    int32_t **seqs;
    int *lens, ns;
    int rc = cli_get_ids("activations", ids, ids_file, &seqs, &lens, &ns);
    if (rc) return rc;
    if (ns != 1) { cli_free_ids(seqs, lens, ns); return cli_errorf("activations", 1, "one sequence only"); }
    clens_model *m;
    if ((rc = cli_open_model("activations", model, mm, (int)threads, &m))) { cli_free_ids(seqs, lens, ns); return rc; }
    const clens_model_info *in = clens_model_get_info(m);
    int T = lens[0], V = in->vocab;
    /* one capture call (src/interp/capture.c), every position */
    clens_cache cache = {0};
    float *logits = malloc(sizeof(float) * (size_t)T * V);
    clens_error err = {0};
    if (!logits) { rc = cli_errorf("activations", 1, "out of memory"); goto end; }
    if (clens_hooks_resolve(m, hooks, &cache, &err)) { rc = err.code == CLENS_E_ARG ? cli_usage_error("activations", "%s", err.msg) : cli_fail("activations", &err); goto end; }
    if (clens_run_with_cache(m, seqs[0], T, NULL, T, &cache, logits, &err)) { rc = cli_fail("activations", &err); goto end; }
    if (clens_mkdir_p(out, &err)) { rc = cli_fail("activations", &err); goto end; }
    char path[4096];
    int64_t shape[2] = {T, V};
    snprintf(path, sizeof path, "%s/logits.npy", out);
    if (npy_write_f32(path, logits, shape, 2, &err)) { rc = cli_fail("activations", &err); goto end; }
    for (int e = 0; e < cache.n; e++) {
        snprintf(path, sizeof path, "%s/%s.npy", out, cache.entries[e].name);
        shape[1] = cache.entries[e].width;
        if (npy_write_f32(path, cache.entries[e].data, shape, 2, &err)) { rc = cli_fail("activations", &err); goto end; }
    }
end:
    clens_cache_free(&cache);
    free(logits);
    clens_model_free(m);
    cli_free_ids(seqs, lens, ns);
    return rc;
}
