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
            "  --hooks LIST      'all' (default) or comma-separated names; 'blocks.*.NAME' means every layer,\n"
            "                    e.g. blocks.*.hook_resid_pre,ln_final.hook_normalized\n"
            "  --matmul MODE     default | portable | bf16\n"
            "  --threads N       threads (default: all cores)\n\n"
            "example: clens activations ./qwen2-tiny --ids 5,6,7 --hooks blocks.*.hook_resid_post --out acts/\n");
}

typedef struct {
    int n_layers, T;
    float *buf[CLENS_HOOK_COUNT][1 + 4096]; /* [point][layer+1] -> [T][width] */
    int width[CLENS_HOOK_COUNT];
} capture;

static void on_hook(void *user, const clens_hook_event *ev)
{
    capture *c = user;
    float *dst = c->buf[ev->point][ev->layer + 1];
    if (!dst) return;
    for (int i = 0; i < ev->n_rows; i++) {
        const clens_row *r = &ev->batch[ev->rows[i]];
        memcpy(dst + (size_t)r->pos * ev->width, ev->data + (size_t)i * ev->width, sizeof(float) * ev->width);
    }
}

static int want(capture *c, clens_hook_point p, int layer)
{
    float **slot = &c->buf[p][layer + 1];
    if (*slot) return 0;
    *slot = calloc((size_t)c->T * c->width[p], sizeof(float));
    return *slot ? 0 : -1;
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
    int32_t **seqs;
    int *lens, ns;
    int rc = cli_get_ids("activations", ids, ids_file, &seqs, &lens, &ns);
    if (rc) return rc;
    if (ns != 1) { cli_free_ids(seqs, lens, ns); return cli_errorf("activations", 1, "one sequence only"); }
    clens_model *m;
    if ((rc = cli_open_model("activations", model, mm, (int)threads, &m))) { cli_free_ids(seqs, lens, ns); return rc; }
    const clens_model_info *in = clens_model_get_info(m);
    int T = lens[0], V = in->vocab, L = in->n_layers;
    capture *cap = calloc(1, sizeof *cap);
    float *logits = malloc(sizeof(float) * (size_t)T * V);
    clens_ctx *ctx = NULL;
    clens_error err = {0};
    char *list = strdup(hooks);
    if (!cap || !logits || !list) { rc = cli_errorf("activations", 1, "out of memory"); goto end; }
    if (L > 4095) { rc = cli_errorf("activations", 1, "too many layers"); goto end; }
    cap->n_layers = L;
    cap->T = T;
    for (int p = 0; p < CLENS_HOOK_COUNT; p++) cap->width[p] = clens_hook_width(m, p);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        clens_hook_point p;
        int layer, bad = 0;
        if (strcmp(tok, "all") == 0) {
            for (int q = 0; q < CLENS_HOOK_COUNT; q++)
                for (int l = (q == CLENS_HOOK_EMBED || q == CLENS_HOOK_LN_FINAL) ? -1 : 0;
                     l < ((q == CLENS_HOOK_EMBED || q == CLENS_HOOK_LN_FINAL) ? 0 : L); l++)
                    bad |= want(cap, q, l);
        } else if (strncmp(tok, "blocks.*.", 9) == 0) {
            char name[256];
            snprintf(name, sizeof name, "blocks.0.%s", tok + 9);
            if (clens_hook_parse(name, &p, &layer)) { rc = cli_usage_error("activations", "unknown hook '%s'", tok); goto end; }
            for (int l = 0; l < L; l++) bad |= want(cap, p, l);
        } else {
            if (clens_hook_parse(tok, &p, &layer) || layer >= L) {
                rc = cli_usage_error("activations", "unknown hook '%s' (layers 0..%d)", tok, L - 1);
                goto end;
            }
            bad |= want(cap, p, layer);
        }
        if (bad) { rc = cli_errorf("activations", 1, "out of memory for the captured activations"); goto end; }
    }
    if (clens_ctx_new(&ctx, m, 1, T, T < 256 ? T : 256, &err)) { rc = cli_fail("activations", &err); goto end; }
    clens_forward_args hk = {0};
    hk.hook = on_hook;
    hk.hook_user = cap;
    if (clens_prefill(ctx, 0, seqs[0], T, logits, NULL, &hk, &err)) { rc = cli_fail("activations", &err); goto end; }
    if (clens_mkdir_p(out, &err)) { rc = cli_fail("activations", &err); goto end; }
    char path[4096];
    int64_t shape[2] = {T, V};
    snprintf(path, sizeof path, "%s/logits.npy", out);
    if (npy_write_f32(path, logits, shape, 2, &err)) { rc = cli_fail("activations", &err); goto end; }
    for (int p = 0; p < CLENS_HOOK_COUNT; p++)
        for (int l = -1; l < L; l++) {
            if (!cap->buf[p][l + 1]) continue;
            char name[256];
            clens_hook_name(p, l, name, sizeof name);
            snprintf(path, sizeof path, "%s/%s.npy", out, name);
            shape[1] = cap->width[p];
            if (npy_write_f32(path, cap->buf[p][l + 1], shape, 2, &err)) { rc = cli_fail("activations", &err); goto end; }
        }
end:
    if (cap)
        for (int p = 0; p < CLENS_HOOK_COUNT; p++)
            for (int l = 0; l <= L && l <= 4096; l++) free(cap->buf[p][l]);
    free(cap);
    free(list);
    free(logits);
    clens_ctx_free(ctx);
    clens_model_free(m);
    cli_free_ids(seqs, lens, ns);
    return rc;
}
