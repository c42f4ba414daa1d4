/*
 * bench_train.c: training throughput of clens (issue 15 item 6): tokens per
 * second of full optimizer steps (forward, cross-entropy, backward, global-norm
 * clipping, AdamW) of a randomly initialised Qwen2 or OLMo-3 model on random
 * token batches in which every position is a target, the same work
 * tools/bench_torch_train.py times in PyTorch. bench/train.sh runs both on one
 * shape and prints the ratio.
 *
 * usage: bench_train [--arch qwen2|olmo3] [--layers 4] [--hidden 128] [--heads 4]
 *                    [--kv-heads 2] [--ffn 384] [--vocab 512] [--window 0] [--batch 32]
 *                    [--seq 128] [--steps 10] [--warmup-steps 2] [--threads 2]
 * Prints a readable line and "BENCH_TRAIN_JSON {...}". Exit 0 ok, 1 error, 2 usage.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "kernels/kernels.h"
#include "train/train.h"

int main(int argc, char **argv)
{
    const char *arch = "qwen2";
    int L = 4, C = 128, H = 4, Hkv = 2, F = 384, V = 512, W = 0, B = 32, T = 128, steps = 10, warm = 2, threads = 2;
    for (int i = 1; i < argc; i += 2) { /* option, value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) { fprintf(stderr, "bench_train: %s needs a value\n", a); return 2; }
        if (strcmp(a, "--arch") == 0) arch = v;
        else if (strcmp(a, "--layers") == 0) L = atoi(v);
        else if (strcmp(a, "--hidden") == 0) C = atoi(v);
        else if (strcmp(a, "--heads") == 0) H = atoi(v);
        else if (strcmp(a, "--kv-heads") == 0) Hkv = atoi(v);
        else if (strcmp(a, "--ffn") == 0) F = atoi(v);
        else if (strcmp(a, "--vocab") == 0) V = atoi(v);
        else if (strcmp(a, "--window") == 0) W = atoi(v);
        else if (strcmp(a, "--batch") == 0) B = atoi(v);
        else if (strcmp(a, "--seq") == 0) T = atoi(v);
        else if (strcmp(a, "--steps") == 0) steps = atoi(v);
        else if (strcmp(a, "--warmup-steps") == 0) warm = atoi(v);
        else if (strcmp(a, "--threads") == 0) threads = atoi(v);
        else { fprintf(stderr, "bench_train: unknown option %s\n", a); return 2; }
    }
    if (steps < 1 || B < 1 || T < 2) { fprintf(stderr, "bench_train: bad --steps/--batch/--seq\n"); return 2; }
    kern_set_threads(threads);
    openblas_set_num_threads(1);
    tr_shape s;
    memset(&s, 0, sizeof s);
    s.arch = strcmp(arch, "olmo3") == 0 ? TR_OLMO3 : TR_QWEN2;
    s.L = L; s.C = C; s.H = H; s.Hkv = Hkv; s.F = F; s.V = V; s.ctx = T; s.eps = 1e-6; s.theta = 10000;
    if (s.arch == TR_OLMO3 && W > 0) {
        s.window = W;
        for (int l = 0; l < L; l++) s.sliding[l] = !((l + 1) % 4 == 0 || l == L - 1);
    }
    tr_plan p;
    clens_error err;
    if (tr_plan_init(&p, &s, &err)) { fprintf(stderr, "bench_train: %s\n", err.msg); return 1; }
    size_t n = p.n_params;
    float *x = malloc(4 * n), *g = malloc(4 * n), *m = calloc(n, 4), *v = calloc(n, 4);
    int32_t *ids = malloc(sizeof(int32_t) * B * T);
    uint8_t *mask = malloc((size_t)B * T);
    tr_work_f32 *w = tr_work_new_f32(&p, B, T);
    if (!x || !g || !m || !v || !ids || !mask || !w) { fprintf(stderr, "bench_train: out of memory\n"); return 1; }
    tr_plan_init_params(&p, x, 1);
    tr_rng r = {7, 0, 0};
    for (int i = 0; i < B * T; i++) { ids[i] = (int32_t)(tr_rng_u64(&r) % (uint64_t)V); mask[i] = 1; }
    tr_adamw opt = {0.9, 0.95, 1e-8, 0.1};
    double t0 = 0, loss = 0;
    for (int it = 0; it < warm + steps; it++) {
        if (it == warm) t0 = clens_now();
        loss = tr_loss_grad_f32(w, x, g, ids, mask, B, T, NULL);
        double gn = tr_grad_norm(g, n);
        tr_clip(g, n, gn, 1.0);
        tr_adamw_step(&p, &opt, x, g, m, v, it + 1, 1e-3);
    }
    double dt = clens_now() - t0, tps = (double)B * T * steps / dt;
    printf("clens train: %s L=%d C=%d H=%d/%d F=%d V=%d window=%d, batch %d x %d, %d threads: "
           "%.1f ms/step, %.0f tokens/s (loss %.3f, %zu parameters)\n",
           arch, L, C, H, Hkv, F, V, W, B, T, threads, 1e3 * dt / steps, tps, loss, n);
    printf("BENCH_TRAIN_JSON {\"impl\": \"clens\", \"arch\": \"%s\", \"layers\": %d, \"hidden\": %d, \"heads\": %d, "
           "\"kv_heads\": %d, \"ffn\": %d, \"vocab\": %d, \"window\": %d, \"batch\": %d, \"seq\": %d, \"threads\": %d, "
           "\"steps\": %d, \"ms_per_step\": %.3f, \"tokens_per_s\": %.1f, \"params\": %zu}\n",
           arch, L, C, H, Hkv, F, V, W, B, T, threads, steps, 1e3 * dt / steps, tps, n);
    tr_work_free_f32(w);
    tr_plan_free(&p);
    free(x); free(g); free(m); free(v); free(ids); free(mask);
    return 0;
}
