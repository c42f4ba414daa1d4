/*
 * bench_model.c: model-level benchmark of libclens (issue 6 item 4).
 *
 * Opens one model folder, then measures
 *   prefill: T tokens (default 300) into an empty sequence, last-token logits,
 *            one warm-up pass then best of --reps;
 *   decode:  ms per token over --decode steps (default 16) after that prefill,
 *            greedy (argmax) tokens, one warm-up pass (4 steps) then best of
 *            --reps (the sequence is cut back to T tokens before each pass);
 *   memory:  peak RSS (VmHWM), file-backed and anonymous RSS via clens_mem_usage.
 *
 * Counting (docs: bench/model.sh prints the same definitions):
 *   per-block matrix parameters P = C*H*D + 2*C*Hkv*D + H*D*C + 3*C*F;
 *   prefill FLOP = L*(2*P*T + 2*H*D*T*(T+1)) + 2*C*V   (matrix products of every
 *     token, causal attention QK^T and PV, last-token logits; norms, RoPE and
 *     SwiGLU are not counted);
 *   decode bytes per token = (L*P + V*C) * sizeof(weight dtype)  (weights read
 *     once per token; the KV cache read is printed separately).
 *
 * Few-layer models of a deeper shape (--full-layers N > the folder's layers):
 * a hook timestamps every block (blocks.L.hook_resid_pre and ln_final; it is
 * installed on every pass, scaled or not, so all runs do the same work), and
 * every time is scaled per layer: t_full = t_outside_blocks + mean_block * N,
 * with the FLOP and byte counts of the N-layer model. The measured (unscaled)
 * figures are printed too. Peak RSS at N layers is estimated as the measured
 * peak + (N - L) * max(weights + KV cache of a block, resident growth per
 * block in the cold first prefill) (+ open's growth / L when open made over
 * 10% of the weights resident); the true figure needs the full model
 * (bench/model.sh --full-7b-rss, rulings R11).
 *
 * Fractions of peak use the environment (set by bench/run.sh) unless given as
 * flags: PEAK_FMA_GFLOPS (fp32 paths), PEAK_BF16_GFLOPS (the avx512-bf16 path),
 * PEAK_BW_GBS (decode). Unset: printed as n/a.
 *
 * Output: readable lines on stdout, and with --json one final line
 * "BENCH_MODEL_JSON {...}" for bench/model.sh. Exit 0 ok, 1 error, 2 usage.
 * Benchmarks print numbers; they never fail on timing.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "base/base.h"
#include "bench_mem.h"
#include "clens.h"
#include "model/model.h"

#define MAX_LAYERS 1024

typedef struct bench_opts {
    const char *model, *label;
    int tokens, decode, reps, warmup, threads, full_layers, json;
    double budget_s;
    clens_matmul_mode matmul;
    const char *matmul_name;
    double peak_fma, peak_bf16, peak_bw; /* <= 0: unknown */
} bench_opts;

/* Block boundaries of one forward: b[l] / hwm[l] at blocks.l.hook_resid_pre,
 * b[L] / hwm[L] at ln_final.hook_normalized. Peak RSS is read only when
 * want_mem is set (the cold first prefill: how much resident memory each
 * block adds when its weights are first touched). */
typedef struct layer_probe {
    int L, seen, want_mem;
    double b[MAX_LAYERS + 1];
    long long hwm[MAX_LAYERS + 1];
} layer_probe;

static void probe_hook(void *user, const clens_hook_event *ev)
{
    layer_probe *lp = user;
    int i;
    if (ev->point == CLENS_HOOK_RESID_PRE && ev->layer >= 0 && ev->layer < lp->L) i = ev->layer;
    else if (ev->point == CLENS_HOOK_LN_FINAL) i = lp->L;
    else return;
    lp->b[i] = clens_now();
    if (lp->want_mem) lp->hwm[i] = clens_mem_usage().peak;
    lp->seen++;
}

/* One timed pass: total seconds, seconds inside the blocks, and the
 * per-layer-scaled total for full_layers blocks. */
typedef struct pass_time {
    double total, blocks, scaled;
} pass_time;

static pass_time pass_from_clock(const layer_probe *lc, double t0, double t1, int full_layers, int clocked)
{
    pass_time p = {t1 - t0, t1 - t0, t1 - t0};
    if (!clocked || lc->seen < lc->L + 1) return p;
    p.blocks = lc->b[lc->L] - lc->b[0];
    double outside = p.total - p.blocks;
    p.scaled = outside + p.blocks / lc->L * full_layers;
    return p;
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static double env_num(const char *name)
{
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end;
    double v = strtod(s, &end);
    return end != s && v > 0 ? v : 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_model --model DIR [options]\n"
            "Model-level benchmark: prefill of T tokens and decode per token, GFLOP/s, GB/s, peak RSS.\n"
            "  --model DIR          model folder (path, required). Example: --model /tmp/m/qwen2-0.5b\n"
            "  --tokens N           prefill length (int, default 300). Example: --tokens 32\n"
            "  --decode N           decode steps per pass (int, default 16; 0 = no decode)\n"
            "  --reps N             timed passes after the warm-up, best kept (int, default 3)\n"
            "  --warmup 0|1         untimed warm-up pass first (int, default 1; 0: the first timed\n"
            "                       pass is cold, e.g. for a memory-only run)\n"
            "  --budget-s S         fewer reps if the warm-up says they would take longer\n"
            "                       than S seconds per phase (float, default 0 = no limit)\n"
            "  --matmul MODE        default|bf16|portable (string, default default)\n"
            "  --threads N          threads (int, default 2)\n"
            "  --full-layers N      scale per layer to an N-layer model (int, default: the folder's)\n"
            "  --label S            name printed in the results (string, default: folder name)\n"
            "  --peak-fma X         fp32 FMA peak GFLOP/s (float, default $PEAK_FMA_GFLOPS)\n"
            "  --peak-bf16 X        bf16 dot peak GFLOP/s (float, default $PEAK_BF16_GFLOPS)\n"
            "  --peak-bw X          memory read bandwidth GB/s (float, default $PEAK_BW_GBS)\n"
            "  --json               also print one line 'BENCH_MODEL_JSON {...}' (flag)\n"
            "  --help               this text\n"
            "Example: bench_model --model /tmp/m/q7b-4l --full-layers 28 --matmul bf16 --json\n"
            "Exit codes: 0 ok, 1 error, 2 usage.\n");
}

static int parse_int(const char *s, int lo, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > 1000000) return -1;
    *out = (int)v;
    return 0;
}

static int parse_args(int argc, char **argv, bench_opts *o)
{
    memset(o, 0, sizeof *o);
    o->tokens = 300;
    o->decode = 16;
    o->reps = 3;
    o->warmup = 1;
    o->threads = 2;
    o->matmul = CLENS_MATMUL_DEFAULT;
    o->matmul_name = "default";
    o->peak_fma = env_num("PEAK_FMA_GFLOPS");
    o->peak_bf16 = env_num("PEAK_BF16_GFLOPS");
    o->peak_bw = env_num("PEAK_BW_GBS");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); exit(0); }
        else if (!strcmp(a, "--json")) { o->json = 1; continue; }
        if (!v) { fprintf(stderr, "bench_model: %s needs a value (see --help)\n", a); return 2; }
        i++;
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--label")) o->label = v;
        else if (!strcmp(a, "--tokens")) bad = parse_int(v, 1, &o->tokens);
        else if (!strcmp(a, "--decode")) bad = parse_int(v, 0, &o->decode);
        else if (!strcmp(a, "--reps")) bad = parse_int(v, 1, &o->reps);
        else if (!strcmp(a, "--warmup")) bad = parse_int(v, 0, &o->warmup) || o->warmup > 1;
        else if (!strcmp(a, "--threads")) bad = parse_int(v, 1, &o->threads);
        else if (!strcmp(a, "--full-layers")) bad = parse_int(v, 1, &o->full_layers);
        else if (!strcmp(a, "--budget-s")) o->budget_s = atof(v);
        else if (!strcmp(a, "--peak-fma")) o->peak_fma = atof(v);
        else if (!strcmp(a, "--peak-bf16")) o->peak_bf16 = atof(v);
        else if (!strcmp(a, "--peak-bw")) o->peak_bw = atof(v);
        else if (!strcmp(a, "--matmul")) {
            o->matmul_name = v;
            if (!strcmp(v, "default")) o->matmul = CLENS_MATMUL_DEFAULT;
            else if (!strcmp(v, "bf16")) o->matmul = CLENS_MATMUL_BF16;
            else if (!strcmp(v, "portable")) o->matmul = CLENS_MATMUL_PORTABLE;
            else bad = 1;
        } else {
            fprintf(stderr, "bench_model: unknown option %s (see --help)\n", a);
            return 2;
        }
        if (bad) { fprintf(stderr, "bench_model: bad value %s for %s (see --help)\n", v, a); return 2; }
    }
    if (!o->model) { fprintf(stderr, "bench_model: --model DIR is required (see --help)\n"); return 2; }
    return 0;
}

/* Reps that fit the budget, given the warm-up pass took `warm` seconds. */
static int reps_for_budget(const bench_opts *o, double warm)
{
    if (o->budget_s <= 0 || warm <= 0) return o->reps;
    int r = (int)(o->budget_s / warm);
    if (r < 1) r = 1;
    return r < o->reps ? r : o->reps;
}

static double frac(double x, double peak) { return peak > 0 ? x / peak : NAN; }

static void print_frac(const char *what, double f)
{
    if (isnan(f)) printf("  %s n/a", what);
    else printf("  %s %.1f%%", what, 100 * f);
}

static json_t *jnum(double x) { return isnan(x) || isinf(x) ? json_null() : json_real(x); }

/* The bytes of one weight matrix in place in its mapped file. */
static bench_span weight_span(const kern_weight *w)
{
    size_t esz = w->dtype == CLENS_DTYPE_F32 ? 4 : 2;
    return (bench_span){w->data, (size_t)w->N * w->K * esz};
}

/* The bytes one decode token reads after a T-token prompt: every layer's
 * matrices and the unembedding (spans of the mapped tensors), then the T
 * cached keys and values of each layer and kv head (sequence 0). sp holds
 * 8 * layers + 1 + 2 * layers * kv heads spans. */
static int decode_spans(const clens_model *m, const clens_ctx *ctx, int T, bench_span *sp)
{
    const model_config *c = &m->cfg;
    int n = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const layer_weights *w = &m->layers[l];
        const kern_weight *ws[] = {&w->q, &w->k, &w->v, &w->o, &w->gate, &w->up, &w->down};
        for (int j = 0; j < 7; j++) sp[n++] = weight_span(ws[j]);
    }
    sp[n++] = weight_span(&m->lm_head);
    size_t kv_bytes = (size_t)T * c->head_dim * sizeof(float);
    for (int l = 0; l < c->n_layers; l++)
        for (int g = 0; g < c->n_kv_heads; g++) {
            size_t at = ctx_kv_offset(ctx, 0, l, g, 0);
            sp[n++] = (bench_span){(const char *)(ctx->k_cache + at), kv_bytes};
            sp[n++] = (bench_span){(const char *)(ctx->v_cache + at), kv_bytes};
        }
    return n;
}

static double spans_bytes(const bench_span *sp, int n)
{
    double b = 0;
    for (int i = 0; i < n; i++) b += (double)sp[i].n;
    return b;
}

int main(int argc, char **argv)
{
    bench_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc;
    const char *label = o.label;
    if (!label) {
        label = strrchr(o.model, '/');
        label = label && label[1] ? label + 1 : o.model;
    }

    clens_error err = {0};
    clens_model *m = NULL;
    clens_ctx *ctx = NULL;
    float *logits = NULL;
    int32_t *ids = NULL;
    bench_span *spans = NULL;
    int status = 1;

    clens_mem mem0 = clens_mem_usage();
    clens_model_params mp = clens_model_default_params();
    mp.n_threads = o.threads;
    mp.matmul = o.matmul;
    double t_open = clens_now();
    if (clens_model_open(&m, o.model, &mp, &err)) {
        fprintf(stderr, "bench_model: %s\n", err.msg);
        return 1;
    }
    t_open = clens_now() - t_open;
    clens_mem mem_open = clens_mem_usage();
    const clens_model_info *in = clens_model_get_info(m);
    const char *kernel = clens_model_kernel_name(m);
    const int L = in->n_layers, C = in->d_model, H = in->n_heads, Hkv = in->n_kv_heads, D = in->head_dim;
    const int F = in->d_ff, V = in->vocab, T = o.tokens;
    const int Lf = o.full_layers > 0 ? o.full_layers : L;
    const int scaled = Lf != L;
    if (L > MAX_LAYERS) {
        fprintf(stderr, "bench_model: %d layers, at most %d supported\n", L, MAX_LAYERS);
        goto done;
    }
    if (T + o.decode + 8 > in->max_pos) {
        fprintf(stderr, "bench_model: %d + %d tokens exceed max_position_embeddings %d\n", T, o.decode, in->max_pos);
        goto done;
    }
    const int is_bf16_path = strcmp(kernel, "avx512-bf16") == 0;
    const double peak_flops = is_bf16_path ? o.peak_bf16 : o.peak_fma;
    const double esz = in->dtype == CLENS_DTYPE_F32 ? 4.0 : 2.0;
    const double P = (double)C * H * D + 2.0 * C * Hkv * D + (double)H * D * C + 3.0 * C * F;
    const double attn_flops = 2.0 * H * D * (double)T * (T + 1);
    const double head_flops = 2.0 * C * V;
    const double flops_meas = L * (2 * P * T + attn_flops) + head_flops;
    const double flops_full = Lf * (2 * P * T + attn_flops) + head_flops;
    const double bytes_meas = (L * P + (double)V * C) * esz;
    const double bytes_full = (Lf * P + (double)V * C) * esz;
    /* KV cache read per decode token at position ~T (fp32 K and V). */
    const double kv_read_full = (double)Lf * 2.0 * Hkv * D * 4.0 * (T + o.decode / 2.0);

    printf("bench_model: %s (%s, %s weights, %d layers%s, C=%d H=%d/%d D=%d F=%d V=%d, %.2f GB) kernel %s "
           "(--matmul %s), %d threads, open %.2f s\n",
           label, in->arch_name, in->dtype == CLENS_DTYPE_BF16 ? "bf16" : in->dtype == CLENS_DTYPE_F16 ? "f16" : "f32",
           L, scaled ? " scaled per layer" : "", C, H, Hkv, D, F, V, in->weight_bytes / 1e9, kernel, o.matmul_name,
           o.threads, t_open);
    if (scaled) printf("  scaled to %d layers: %.2f GFLOP per prefill, %.2f GB weights per decode token\n", Lf,
                       flops_full / 1e9, bytes_full / 1e9);
    if (o.matmul == CLENS_MATMUL_BF16 && !is_bf16_path)
        printf("  note: --matmul bf16 asked, but this CPU has no avx512_bf16: the %s path ran\n", kernel);

    int n_ctx = T + o.decode + 8;
    if (clens_ctx_new(&ctx, m, 1, n_ctx, T, &err)) {
        fprintf(stderr, "bench_model: %s\n", err.msg);
        goto done;
    }
    logits = malloc(sizeof(float) * (size_t)V);
    ids = malloc(sizeof(int32_t) * (size_t)T);
    if (!logits || !ids) { fprintf(stderr, "bench_model: out of memory\n"); goto done; }
    uint64_t s = 0x9E3779B97F4A7C15ull;
    int id_range = V < 100000 ? V : 100000;
    for (int i = 0; i < T; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((s >> 33) % (uint64_t)id_range);
    }

    layer_probe lc = {.L = L}, mem_cold = {0};
    clens_forward_args hooks = {0};
    hooks.hook = probe_hook;
    hooks.hook_user = &lc;

    /* ---- prefill: a cold first pass (untimed warm-up unless --warmup 0), then
     * best of reps; the last pass leaves T tokens cached. */
    pass_time best_p = {INFINITY, 0, INFINITY};
    double warm_prefill = 0;
    int reps_p = o.reps;
    for (int r = o.warmup ? -1 : 0; r < reps_p; r++) {
        clens_ctx_seq_clear(ctx, 0);
        lc.seen = 0;
        lc.want_mem = r == (o.warmup ? -1 : 0);
        double t0 = clens_now();
        /* The hook runs on every pass so that all passes do the same work. */
        if (clens_prefill(ctx, 0, ids, T, NULL, logits, &hooks, &err)) goto fail;
        double t1 = clens_now();
        if (lc.want_mem) {
            mem_cold = lc;
            warm_prefill = t1 - t0;
            reps_p = reps_for_budget(&o, warm_prefill);
        }
        if (r < 0) continue;
        pass_time p = pass_from_clock(&lc, t0, t1, Lf, scaled);
        if (p.total < best_p.total) best_p = p;
    }
    lc.want_mem = 0;

    /* ---- decode: warm-up pass (unless --warmup 0), then best of reps, each
     * cut back to T tokens */
    pass_time best_d = {NAN, NAN, NAN};
    int reps_d = o.reps;
    double warm_decode = 0;
    int first_tok = argmax(logits, V);
    /* issue 24 item 5: after each timed decode pass the bandwidth loop reads
     * the same bytes, weights and KV cache (the better of 1 and 16 streams
     * per thread); the pass's GB/s over the loop's, paired in time, because
     * this VM's bandwidth drifts by up to 2x within minutes. */
    spans = malloc((8 * (size_t)L + 1 + 2 * (size_t)L * m->cfg.n_kv_heads) * sizeof *spans);
    if (!spans) {
        fprintf(stderr, "bench_model: out of memory\n");
        goto done;
    }
    int n_spans = decode_spans(m, ctx, T, spans);
    double pair_frac[64];
    int n_pair = 0;
    if (o.decode > 0) {
        best_d = (pass_time){INFINITY, 0, INFINITY};
        for (int r = o.warmup ? -1 : 0; r < reps_d; r++) {
            if (clens_ctx_seq_copy(ctx, 0, 0, T, &err)) goto fail;
            int tok = first_tok;
            pass_time sum = {0, 0, 0};
            /* The warm-up pass is short: 4 steps touch every weight as well. */
            int steps = r < 0 && o.decode > 4 ? 4 : o.decode;
            double tr = clens_now();
            for (int k = 0; k < steps; k++) {
                clens_row row = {0, T + k, tok, 0, 1, 1};
                clens_forward_args a = hooks;
                a.out_logits = logits;
                lc.seen = 0;
                double t0 = clens_now();
                if (clens_forward(ctx, &row, 1, &a, &err)) goto fail;
                double t1 = clens_now();
                pass_time p = pass_from_clock(&lc, t0, t1, Lf, scaled);
                sum.total += p.total;
                sum.blocks += p.blocks;
                sum.scaled += p.scaled;
                tok = argmax(logits, V);
            }
            if (r == (o.warmup ? -1 : 0)) {
                warm_decode = (clens_now() - tr) * o.decode / steps; /* a full pass, estimated */
                reps_d = reps_for_budget(&o, warm_decode);
            }
            if (r < 0) continue;
            double t_one = bench_read_spans_s(spans, n_spans, o.threads, 1);
            double t_str = bench_read_spans_s(spans, n_spans, o.threads, BENCH_BW_STREAMS);
            if (n_pair < 64) pair_frac[n_pair++] = (t_one < t_str ? t_one : t_str) / (sum.total / o.decode);
            if (sum.total < best_d.total * o.decode)
                best_d = (pass_time){sum.total / o.decode, sum.blocks / o.decode, sum.scaled / o.decode};
        }
    }
    clens_mem mem_end = clens_mem_usage();

    /* ---- figures */
    double pre_t = scaled ? best_p.scaled : best_p.total;
    double pre_gflops = flops_full / pre_t / 1e9;
    double pre_gflops_meas = flops_meas / best_p.total / 1e9;
    double dec_t = scaled ? best_d.scaled : best_d.total;
    double dec_gbs = bytes_full / dec_t / 1e9;
    double dec_gbs_meas = bytes_meas / best_d.total / 1e9;
    /* Bandwidth again, now (after the memory figures: the buffer must not
     * count in the peak RSS): the fraction is against the larger of this and
     * the run's start value, since this VM's bandwidth drifts within minutes. */
    double bw_now = 0;
    if (o.decode > 0) {
        size_t nbuf = (size_t)1 << 27; /* 512 MiB */
        float *buf = aligned_alloc(64, nbuf * 4);
        if (buf) {
            for (size_t i = 0; i < nbuf; i++) buf[i] = 1.0f;
            bw_now = bench_read_gbs(buf, nbuf, o.threads, 3);
            free(buf);
        }
    }
    double bw_ref = bw_now > o.peak_bw ? bw_now : o.peak_bw;
    double pre_frac = frac(pre_gflops, peak_flops), dec_frac = frac(dec_gbs, bw_ref);
    /* median over passes of decode / the loop on the same bytes */
    double dec_pair = n_pair ? bench_median(pair_frac, n_pair) : NAN;
    /* Memory. The embedding matrix is resident only in the rows used, so the
     * peak may stay below the weights' size. For a few-layer model the peak at
     * full depth is estimated per block: max(weights + KV cache of a block,
     * resident growth per block measured in the cold prefill), plus the growth
     * at open spread over the blocks when open made more than 10% of the
     * weights resident (e.g. packed copies made up front). */
    double excess = (double)mem_end.peak - (double)in->weight_bytes;
    double layer_w = P * esz, kv_layer = (double)n_ctx * 2.0 * Hkv * D * 4.0;
    double growth = NAN;
    if (mem_cold.seen >= L + 1) {
        int l0 = L >= 2 ? 1 : 0; /* block 0 also touches the scratch buffers first */
        growth = (double)(mem_cold.hwm[L] - mem_cold.hwm[l0]) / (L - l0);
    }
    double open_growth = (double)(mem_open.peak - mem0.peak);
    double per_block = layer_w + kv_layer;
    if (growth > per_block) per_block = growth;
    if (open_growth > 0.1 * in->weight_bytes) per_block += open_growth / L;
    double weights_full = in->weight_bytes + (double)(Lf - L) * layer_w;
    double peak_full = (double)mem_end.peak + (double)(Lf - L) * per_block;
    double excess_full = peak_full - weights_full;

    printf("  prefill %d tokens: %.3f s%s  %.1f GFLOP/s", T, pre_t, scaled ? " (scaled)" : "", pre_gflops);
    print_frac(is_bf16_path ? "of bf16 peak" : "of fp32 FMA peak", pre_frac);
    printf("  [%s %.3f s, best of %d", o.warmup ? "warm-up" : "cold first pass", warm_prefill, reps_p);
    if (scaled) printf("; measured %d layers %.3f s = %.1f GFLOP/s, %.1f ms/block", L, best_p.total,
                       pre_gflops_meas, 1e3 * best_p.blocks / L);
    printf("]\n");
    if (o.decode > 0) {
        printf("  decode after %d: %.2f ms/token%s  %.1f GB/s of weights", T, 1e3 * dec_t, scaled ? " (scaled)" : "",
               dec_gbs);
        print_frac("of bandwidth", dec_frac);
        printf("  [bandwidth %.1f GB/s at the run's start, %.1f now; %d steps, best of %d, KV read %.1f MB/token",
               o.peak_bw, bw_now, o.decode, reps_d, kv_read_full / 1e6);
        if (scaled) printf("; measured %.2f ms/token = %.1f GB/s, %.2f ms/block", 1e3 * best_d.total, dec_gbs_meas,
                           1e3 * best_d.blocks / L);
        printf("]\n");
        if (n_pair)
            printf("    decode vs the bandwidth loop reading the same %.2f GB of weights and KV cache right after each "
                   "pass: %.1f%% (median of %d pass%s)\n", spans_bytes(spans, n_spans) / 1e9, 100 * dec_pair, n_pair,
                   n_pair > 1 ? "es" : "");
    }
    printf("  memory: peak RSS %.2f GB (weights %.2f GB, excess %+.2f GB), now file %.2f GB anon %.2f GB; "
           "open added %.2f GB, cold prefill %.1f MB per block (weights %.1f MB per block)\n",
           mem_end.peak / 1e9, in->weight_bytes / 1e9, excess / 1e9, mem_end.file / 1e9, mem_end.anon / 1e9,
           open_growth / 1e9, growth / 1e6, layer_w / 1e6);
    /* major page faults: weights read again from disk (page-cache eviction
     * of the mapping under memory pressure would show here, issue 24 item 3) */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("  major page faults %ld (weights re-read from disk; 0 = the mapping stayed resident)\n", ru.ru_majflt);
    if (scaled)
        printf("  memory estimated at %d layers: peak %.2f GB for %.2f GB of weights (excess %+.2f GB; %.1f MB per "
               "added block)\n",
               Lf, peak_full / 1e9, weights_full / 1e9, excess_full / 1e9, per_block / 1e6);

    if (o.json) {
        json_t *j = json_object();
        json_object_set_new(j, "label", json_string(label));
        json_object_set_new(j, "model", json_string(in->path));
        json_object_set_new(j, "arch", json_string(in->arch_name));
        json_object_set_new(j, "kernel", json_string(kernel));
        json_object_set_new(j, "matmul", json_string(o.matmul_name));
        json_object_set_new(j, "threads", json_integer(o.threads));
        json_object_set_new(j, "layers", json_integer(L));
        json_object_set_new(j, "full_layers", json_integer(Lf));
        json_object_set_new(j, "tokens", json_integer(T));
        json_object_set_new(j, "decode_steps", json_integer(o.decode));
        json_object_set_new(j, "open_s", jnum(t_open));
        json_object_set_new(j, "prefill_warmup_s", jnum(warm_prefill));
        json_object_set_new(j, "prefill_reps", json_integer(reps_p));
        json_object_set_new(j, "prefill_s", jnum(pre_t));
        json_object_set_new(j, "prefill_measured_s", jnum(best_p.total));
        json_object_set_new(j, "prefill_gflop", jnum(flops_full / 1e9));
        json_object_set_new(j, "prefill_gflops", jnum(pre_gflops));
        json_object_set_new(j, "prefill_peak_gflops", peak_flops > 0 ? json_real(peak_flops) : json_null());
        json_object_set_new(j, "prefill_frac_peak", jnum(pre_frac));
        json_object_set_new(j, "decode_reps", json_integer(reps_d));
        json_object_set_new(j, "decode_ms", jnum(1e3 * dec_t));
        json_object_set_new(j, "decode_measured_ms", jnum(1e3 * best_d.total));
        json_object_set_new(j, "decode_gb_per_token", jnum(bytes_full / 1e9));
        json_object_set_new(j, "decode_gbs", jnum(dec_gbs));
        json_object_set_new(j, "decode_peak_gbs", bw_ref > 0 ? json_real(bw_ref) : json_null());
        json_object_set_new(j, "bandwidth_now_gbs", bw_now > 0 ? json_real(bw_now) : json_null());
        json_object_set_new(j, "decode_frac_bw", jnum(dec_frac));
        json_object_set_new(j, "decode_frac_loop_paired", jnum(dec_pair));
        json_object_set_new(j, "kv_read_mb_per_token", jnum(kv_read_full / 1e6));
        json_object_set_new(j, "weight_bytes", json_integer(in->weight_bytes));
        json_object_set_new(j, "major_faults", json_integer(ru.ru_majflt));
        json_object_set_new(j, "weight_bytes_full", jnum(weights_full));
        json_object_set_new(j, "rss_peak", json_integer(mem_end.peak));
        json_object_set_new(j, "rss_file", json_integer(mem_end.file));
        json_object_set_new(j, "rss_anon", json_integer(mem_end.anon));
        json_object_set_new(j, "rss_before_open", json_integer(mem0.peak));
        json_object_set_new(j, "rss_excess", jnum(excess));
        json_object_set_new(j, "rss_open_growth", jnum(open_growth));
        json_object_set_new(j, "rss_growth_per_block", jnum(growth));
        json_object_set_new(j, "rss_peak_full_est", jnum(peak_full));
        json_object_set_new(j, "rss_excess_full_est", jnum(excess_full));
        char *txt = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
        if (txt) printf("BENCH_MODEL_JSON %s\n", txt);
        free(txt);
        json_decref(j);
    }
    status = 0;
    goto done;
fail:
    fprintf(stderr, "bench_model: %s\n", err.msg);
done:
    free(spans);
    free(ids);
    free(logits);
    clens_ctx_free(ctx);
    clens_model_free(m);
    return status;
}
