/* cmd_info.c: `clens info MODEL`: architecture, sizes, dtype, layers, hooks, memory. */
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: clens info MODEL [--verbose] [--check]\n\n"
            "Describes a Hugging Face model folder (or org/name[@rev] in the offline HF cache):\n"
            "architecture, parameter count, dtype, layer types, hook point names, memory needed.\n"
            "No tokenizer files are needed.\n\n"
            "  --verbose   also list config.json keys clens does not use\n"
            "  --check     also read every weight (F32/BF16/F16) and fail (exit 1) naming the first\n"
            "              NaN or Inf: tensor, file and element index (default: off; reads all weights)\n\n"
            "example: clens info ~/models/DeepSeek-R1-Distill-Qwen-7B --check\n");
}

static const char *dtype_str(clens_dtype d)
{
    return d == CLENS_DTYPE_F32 ? "float32" : d == CLENS_DTYPE_BF16 ? "bfloat16" : "float16";
}

int cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    int verbose = 0, check = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) { usage(stdout); return 0; }
        else if (strcmp(argv[i], "--verbose") == 0) verbose = 1;
        else if (strcmp(argv[i], "--check") == 0) check = 1;
        else if (argv[i][0] == '-') return cli_usage_error("info", "unknown option '%s'", argv[i]);
        else if (!path) path = argv[i];
        else return cli_usage_error("info", "unexpected argument '%s'", argv[i]);
    }
    if (!path) return cli_usage_error("info", "missing MODEL");
    clens_error err = {0};
    clens_model *m;
    clens_model_params mp = clens_model_default_params();
    if (clens_model_open(&m, path, &mp, &err)) return cli_fail("info", &err);
    const clens_model_info *in = clens_model_get_info(m);
    printf("model:        %s\n", in->path);
    printf("architecture: %s\n", in->arch_name);
    printf("parameters:   %lld (%.2f B)\n", (long long)in->n_params, in->n_params / 1e9);
    printf("dtype:        %s\n", dtype_str(in->dtype));
    printf("layers:       %d\n", in->n_layers);
    printf("d_model:      %d\n", in->d_model);
    printf("heads:        %d query, %d key/value, head_dim %d\n", in->n_heads, in->n_kv_heads, in->head_dim);
    printf("d_ff:         %d\n", in->d_ff);
    printf("vocab:        %d\n", in->vocab);
    printf("max_position: %d\n", in->max_pos);
    printf("tied head:    %s\n", in->tied_embeddings ? "yes" : "no");
    printf("layer types:  ");
    for (int l = 0; l < in->n_layers; l++) {
        int w;
        int s = clens_model_layer_sliding(m, l, &w);
        printf("%s%s", l ? " " : "", s ? "S" : "F");
        if (s && l == 0) printf("(window %d)", w);
    }
    printf("   (F full attention, S sliding window)\n");
    printf("kernel path:  %s\n", clens_model_kernel_name(m));
    printf("memory:       weights %.2f GiB (memory-mapped), KV cache %lld bytes per token (fp32),\n"
           "              e.g. %.2f GiB for 2 sequences of 1024 tokens\n",
           in->weight_bytes / 1073741824.0, (long long)in->kv_bytes_per_token,
           2.0 * 1024 * in->kv_bytes_per_token / 1073741824.0);
    int64_t budget = clens_model_kv_budget(m);
    printf("memory plan:  %.2f GiB left for KV caches and scratch (RAM - 2 GiB - weights) = %lld tokens of KV\n",
           budget / 1073741824.0, (long long)(budget / (in->kv_bytes_per_token ? in->kv_bytes_per_token : 1)));
    printf("hook points:  hook_embed, blocks.{0..%d}.{hook_resid_pre, attn.hook_z, hook_attn_out,\n"
           "              hook_mlp_out, hook_resid_post}, ln_final.hook_normalized\n",
           in->n_layers - 1);
    if (verbose) {
        const char *const *u = clens_model_unknown_keys(m);
        printf("unused config keys:");
        for (int i = 0; u && u[i]; i++) printf(" %s", u[i]);
        printf("\n");
    }
    int rc = 0;
    if (check) {
        int64_t n = 0;
        double t0 = clens_now();
        fflush(stdout);
        if (clens_model_check_weights(m, &n, &err)) rc = cli_fail("info", &err);
        else printf("weights check: all %lld values finite (%.1f s)\n", (long long)n, clens_now() - t0);
    }
    clens_model_free(m);
    return rc;
}
