/*
 * bench_patch.c: the patching benchmark (issue 7, rulings R14): on one real
 * pair (raw prompt), the time of a full resid_pre sweep with the fast method
 * against one plain forward pass of the corrupted prompt, and against
 * --method rerun (one full forward per site).
 * usage: bench_patch MODEL PAIRS.jsonl [pair_index] [--no-rerun]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "clens.h"
#include "interp/patch.h"
#include "interp/prompts.h"

static int die(const char *what, const clens_error *e)
{
    fprintf(stderr, "bench_patch: %s: %s\n", what, e->msg);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: bench_patch MODEL PAIRS.jsonl [pair_index] [--no-rerun]\n"); return 2; }
    int idx = argc > 3 && argv[3][0] != '-' ? atoi(argv[3]) : 0, rerun = 1;
    for (int i = 3; i < argc; i++) rerun &= strcmp(argv[i], "--no-rerun") != 0;
    clens_error err = {0};
    clens_model *m;
    clens_tokenizer *tok;
    clens_pair *pairs;
    size_t np;
    if (clens_model_open(&m, argv[1], NULL, &err)) return die("model", &err);
    if (clens_tokenizer_open(&tok, argv[1], &err)) return die("tokenizer", &err);
    if (clens_pairs_read_jsonl(argv[2], &pairs, &np, &err)) return die("pairs", &err);
    const clens_model_info *in = clens_model_get_info(m);
    int32_t *c = NULL, *r = NULL;
    size_t nc, nr;
    size_t k = (size_t)idx;
    for (; k < np; k++) {
        free(c); free(r);
        if (clens_prompt_ids(tok, NULL, CLENS_PROMPT_RAW, pairs[k].problem, pairs[k].clean_prefix, &c, &nc, &err) ||
            clens_prompt_ids(tok, NULL, CLENS_PROMPT_RAW, pairs[k].problem, pairs[k].corrupted_prefix, &r, &nr, &err))
            return die("prompt", &err);
        if (nc == nr && c[nc - 1] == r[nr - 1]) break;
    }
    if (k == np) { fprintf(stderr, "bench_patch: no usable pair\n"); return 1; }
    int T = (int)nc, L = in->n_layers, P = 0;
    clens_site *sites = malloc(sizeof *sites * (L + 1));
    for (int l = 0; l <= L; l++) sites[l] = (clens_site){CLENS_HOOK_RESID_PRE, l, -1};
    int32_t ids[] = {0, 1, 2};
    clens_metric mt = {CLENS_METRIC_LOGPROB_MASS, ids, 3, NULL, NULL};
    clens_patcher *p;
    if (clens_patcher_new(&p, m, T, sites, L + 1, &mt, 1, &err)) return die("patcher", &err);
    double *out = malloc(sizeof(double) * (L + 3));
    /* warm-up (page in the weights) */
    if (clens_patch_run(p, c, r, T, CLENS_PATCH_FAST, out, &P, &err)) return die("warm-up", &err);

    clens_ctx *ctx;
    float *logits = malloc(sizeof(float) * in->vocab);
    if (clens_ctx_new(&ctx, m, 1, T, 256, &err)) return die("ctx", &err);
    double best_fwd = 1e30, best_fast = 1e30, best_begin = 1e30, best_sites = 1e30, t;
    double ph[PATCH_PH_COUNT], best_ph[PATCH_PH_COUNT], best_split = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        clens_ctx_seq_clear(ctx, 0);
        t = clens_now();
        if (clens_prefill(ctx, 0, r, T, NULL, logits, NULL, &err)) return die("forward", &err);
        t = clens_now() - t;
        if (t < best_fwd) best_fwd = t;
        t = clens_now();
        if (clens_patch_run(p, c, r, T, CLENS_PATCH_FAST, out, &P, &err)) return die("fast", &err);
        t = clens_now() - t;
        if (t < best_fast) best_fast = t;
        /* the same in its two phases: shared prefix + both suffixes, then the sites */
        t = clens_now();
        if (clens_patch_begin(p, c, r, T, CLENS_PATCH_FAST, out, &P, &err)) return die("begin", &err);
        double t1 = clens_now();
        if (clens_patch_sites(p, out, &err)) return die("sites", &err);
        double t2 = clens_now();
        if (t1 - t < best_begin) best_begin = t1 - t;
        if (t2 - t1 < best_sites) best_sites = t2 - t1;
        patch_phase_times(p, ph); /* the phases of the fastest split pass */
        if (t2 - t < best_split) {
            best_split = t2 - t;
            memcpy(best_ph, ph, sizeof ph);
        }
    }
    /* The work floor, in multiply-adds of the matrix products (attention's
     * own products left out: a lower bound): the prefix once, both suffixes,
     * each resid_pre site's row from its block on (site L runs n_layers - L
     * blocks), and one unembedding per metric row (2 + sites: each site's
     * metric reads the whole vocabulary), against T rows of blocks and one
     * unembedding for one forward. */
    double C = in->d_model, HD = (double)in->n_heads * in->head_dim, KV = (double)in->n_kv_heads * in->head_dim;
    double row_block = L * (C * HD + 2 * C * KV + HD * C + 3 * C * in->d_ff), row_unembed = (double)in->vocab * C;
    double site_rows = 0;
    for (int l = 0; l <= L; l++) site_rows += (double)(L - l) / L;
    double rows = P + 2.0 * (T - P) + site_rows;
    double fwd_work = T * row_block + row_unembed;
    double floor_x = (rows * row_block + (2.0 + L + 1) * row_unembed) / fwd_work;
    double t_rerun = 0;
    if (rerun) {
        t = clens_now();
        if (clens_patch_run(p, c, r, T, CLENS_PATCH_RERUN, out, NULL, &err)) return die("rerun", &err);
        t_rerun = clens_now() - t;
    }
    clens_mem mem = clens_mem_usage();
    printf("patch bench: model %s (%s, %d layers, kernel %s), pair %zu (%s)\n", in->path, in->arch_name, L,
           clens_model_kernel_name(m), k, pairs[k].id);
    printf("  prompt %d tokens, shared prefix %d tokens, %d resid_pre sites\n", T, P, L + 1);
    printf("  one forward of the corrupted prompt: %8.3f s (best of 3)\n", best_fwd);
    printf("  fast sweep (all sites):              %8.3f s (best of 3)  = %.2fx one forward (target <= 1.2x)\n",
           best_fast, best_fast / best_fwd);
    printf("    of which prefix + both suffixes    %8.3f s, the %d site rows %.3f s\n", best_begin, L + 1,
           best_sites);
    printf("    work floor: %.1f token-rows of blocks + %d unembedding rows vs %d + 1 for one forward = %.3fx\n",
           rows, L + 3, T, floor_x);
    /* issue 24 item 4: each phase in forwards beside its own floor (its
     * multiply-adds / one forward's), so the gap is visible where it is */
    static const char *phn[PATCH_PH_COUNT] = {"prefix", "cache copy", "suffix batch", "site rows", "unembedding"};
    double phfloor[PATCH_PH_COUNT] = {P * row_block / fwd_work, 0, 2.0 * (T - P) * row_block / fwd_work,
                                      site_rows * row_block / fwd_work, (2.0 + L + 1) * row_unembed / fwd_work};
    printf("    phases of the fastest split pass (%.3f s = %.2fx one forward), in forwards [floor]:\n", best_split,
           best_split / best_fwd);
    for (int i = 0; i < PATCH_PH_COUNT; i++)
        printf("      %-13s %8.4f s  %6.3fx [%6.3fx]%s\n", phn[i], best_ph[i], best_ph[i] / best_fwd, phfloor[i],
               phfloor[i] > 0 && best_ph[i] / best_fwd > 1.1 * phfloor[i] ? "  <- above its floor" : "");
    printf("  fast sweep vs its work floor: %.2fx one forward / %.3fx floor = %.2fx (target <= 1.1x)\n",
           best_fast / best_fwd, floor_x, best_fast / best_fwd / floor_x);
    if (rerun)
        printf("  rerun sweep (one forward per site):  %8.3f s             = %.1fx the fast sweep (target >= 20x)\n",
               t_rerun, t_rerun / best_fast);
    printf("  peak RSS %.2f GiB\n", mem.peak / 1073741824.0);
    free(out); free(logits); free(sites); free(c); free(r);
    clens_ctx_free(ctx);
    clens_patcher_free(p);
    clens_pairs_free(pairs, np);
    clens_tokenizer_free(tok);
    clens_model_free(m);
    return 0;
}
