/* cmd_logits.c: `clens logits MODEL --ids ... --out F.npy`: logits at every position. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "formats/formats.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: clens logits MODEL (--ids 1,2,3 | --ids-file F.json) --out F.npy [options]\n\n"
            "Runs the model on token ids and writes the float32 logits of every position as a\n"
            ".npy array [T, vocab] (a batch file [[...],[...]] of equal lengths gives [B, T, vocab]).\n\n"
            "  --ids LIST        comma-separated token ids\n"
            "  --ids-file F      JSON array of ids, or an array of such arrays (a batch)\n"
            "  --out F           output .npy path (written atomically)\n"
            "  --matmul MODE     default (fp32 activations) | portable (plain C reference) | bf16 (opt-in)\n"
            "  --threads N       threads (default: all cores)\n\n"
            "example: clens logits ./olmo3-tiny --ids 1,2,3 --out logits.npy\n");
}

int cmd_logits(int argc, char **argv)
{
    const char *model = NULL, *ids = NULL, *ids_file = NULL, *out = NULL, *mm = NULL;
    long threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) { usage(stdout); return 0; }
        if (a[0] != '-') {
            if (model) return cli_usage_error("logits", "unexpected argument '%s'", a);
            model = a;
            continue;
        }
        if (!v) return cli_missing_value("logits", a, "--ids --ids-file --out --matmul --threads");
        if (strcmp(a, "--ids") == 0) ids = v;
        else if (strcmp(a, "--ids-file") == 0) ids_file = v;
        else if (strcmp(a, "--out") == 0) out = v;
        else if (strcmp(a, "--matmul") == 0) mm = v;
        else if (strcmp(a, "--threads") == 0) { if (cli_parse_int("logits", a, v, 0, 1024, &threads)) return 2; }
        else return cli_usage_error("logits", "unknown option '%s'", a);
        i++;
    }
    if (!model) return cli_usage_error("logits", "missing MODEL");
    if (!out) return cli_usage_error("logits", "missing --out");
    char mcfg[4200], mst[4200];
    snprintf(mcfg, sizeof mcfg, "%.4096s/config.json", model);
    snprintf(mst, sizeof mst, "%.4096s/model.safetensors", model);
    /* outputs: never over an input, a device, a FIFO or a link (src/base/outpath.c) */
    if (cli_check_out_file("logits", out, (const char *const[]){ids_file, mcfg, mst}, 3)) return CLI_EXIT_ERR;
    int32_t **seqs;
    int *lens, ns;
    int rc = cli_get_ids("logits", ids, ids_file, &seqs, &lens, &ns);
    if (rc) return rc;
    for (int s = 1; s < ns; s++)
        if (lens[s] != lens[0]) {
            int l0 = lens[0], ls = lens[s]; /* read before cli_free_ids frees lens */
            cli_free_ids(seqs, lens, ns);
            return cli_errorf("logits", 1, "%s: batch sequences differ in length (sequence 0 has %d ids, sequence %d has %d)",
                              ids_file, l0, s, ls);
        }
    clens_model *m;
    if ((rc = cli_open_model("logits", model, mm, (int)threads, &m))) { cli_free_ids(seqs, lens, ns); return rc; }
    const clens_model_info *in = clens_model_get_info(m);
    int T = lens[0], V = in->vocab;
    clens_error err = {0};
    clens_ctx *ctx = NULL;
    float *logits = malloc(sizeof(float) * (size_t)ns * T * V);
    if (!logits) { rc = cli_errorf("logits", 1, "out of memory for %d x %d x %d logits", ns, T, V); goto end; }
    if (clens_ctx_new(&ctx, m, 1, T, T < 256 ? T : 256, &err)) { rc = cli_fail("logits", &err); goto end; }
    for (int s = 0; s < ns; s++) {
        clens_ctx_seq_clear(ctx, 0);
        if (clens_prefill(ctx, 0, seqs[s], T, logits + (size_t)s * T * V, NULL, NULL, &err)) {
            rc = cli_fail("logits", &err);
            goto end;
        }
    }
    int64_t shape3[3] = {ns, T, V};
    if (npy_write_f32(out, logits, ns > 1 ? shape3 : shape3 + 1, ns > 1 ? 3 : 2, &err)) rc = cli_fail("logits", &err);
end:
    clens_ctx_free(ctx);
    free(logits);
    clens_model_free(m);
    cli_free_ids(seqs, lens, ns);
    return rc;
}
