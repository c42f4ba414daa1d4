/*
 * test_steer.c: steering on every architecture's f32 test model
 * (tools/gen_model.py): the cached fast pair metric equals a plain rerun
 * with the steering hook at 1e-5 (rulings R3) for add, ablate and mean-ablate at the
 * last position, the unsteered columns equal a plain forward, a control
 * vector steers exactly as the equivalent add spec in generation (greedy
 * and sampled; unsteered sampled == clens_generate's draws), zero
 * steering has KL 0 and full top-1 agreement, and unsteered steered
 * generation equals clens_generate.
 */
#include "testutil.h"

#include <math.h>

#include "clens.h"

static const char *const archs[] = {"qwen2", "qwen3", "llama", "olmo2", "olmo3"};
enum { N_ARCH = 5, T = 12 };
static char dirs[N_ARCH][4200];

static int setup(void **state)
{
    (void)state;
    return tu_gen_arch_models("steer_models", archs, N_ARCH, 40, dirs);
}

static void fill_random(float *v, int n, uint32_t seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = ((seed >> 8) / 16777216.0f - 0.5f) * 2.0f;
    }
}

static void test_fast_equals_rerun(void **state)
{
    (void)state;
    for (int a = 0; a < N_ARCH; a++) {
        clens_model *m;
        clens_error err = {0};
        clens_model_params mp = clens_model_default_params();
        mp.n_threads = 1;
        assert_int_equal(clens_model_open(&m, dirs[a], &mp, &err), 0);
        const clens_model_info *in = clens_model_get_info(m);
        int L = in->n_layers, C = in->d_model;
        int32_t clean[T], corr[T];
        for (int i = 0; i < T; i++) clean[i] = corr[i] = (int32_t)((i * 37 + 11) % in->vocab);
        corr[6] = (corr[6] + 5) % in->vocab;
        float *v = calloc((size_t)L * C, sizeof(float));
        unsigned char *act = calloc(L, 1);
        fill_random(v, L * C, 7u + (uint32_t)a);
        act[1] = 1;
        act[L - 1] = 1;
        float *means = malloc(sizeof(float) * (size_t)L);
        for (int l = 0; l < L; l++) means[l] = 0.3f * (float)(l + 1);
        clens_steer specs[7] = {
            {CLENS_STEER_ABLATE, CLENS_HOOK_RESID_POST, CLENS_STEER_POS_LAST, 1.0f, L, v, act, NULL},
            {CLENS_STEER_ADD, CLENS_HOOK_RESID_POST, CLENS_STEER_POS_LAST, 3.0f, L, v, act, NULL},
            {CLENS_STEER_ADD, CLENS_HOOK_RESID_PRE, CLENS_STEER_POS_LAST, -2.0f, L, v, act, NULL},
            {CLENS_STEER_ADD, CLENS_HOOK_RESID_POST, CLENS_STEER_POS_ALL, 1.5f, L, v, act, NULL},
            {CLENS_STEER_ABLATE, CLENS_HOOK_RESID_POST, CLENS_STEER_POS_PROMPT, 0.5f, L, v, act, NULL},
            {CLENS_STEER_ADD, CLENS_HOOK_RESID_POST, CLENS_STEER_POS_GENERATED, 4.0f, L, v, act, NULL},
            {CLENS_STEER_MEAN_ABLATE, CLENS_HOOK_RESID_POST, CLENS_STEER_POS_LAST, 1.0f, L, v, act, means},
        };
        int32_t ids[3] = {1, 2, 3};
        clens_metric met[2] = {{CLENS_METRIC_LOGPROB_MASS, ids, 3, NULL, NULL}, {CLENS_METRIC_LOGIT_MEAN, ids, 3, NULL, NULL}};
        enum { W = 2 * 8 };
        double fast[2 * W], rerun[2 * W];
        int P = -1;
        assert_int_equal(clens_steer_pair(m, clean, corr, T, specs, 7, met, 2, 0, fast, &P, &err), 0);
        assert_int_equal(P, 6);
        assert_int_equal(clens_steer_pair(m, clean, corr, T, specs, 7, met, 2, 1, rerun, NULL, &err), 0);
        double md = 0, moved = 0;
        for (int i = 0; i < 2 * W; i++) md = fmax(md, fabs(fast[i] - rerun[i]));
        for (int j = 1; j <= 3; j++) moved = fmax(moved, fabs(fast[2 * j + 1] - fast[1]));
        if (md > 1e-5) fail_msg("%s: fast vs rerun differ by %g", archs[a], md);
        if (moved < 1e-3) fail_msg("%s: steering at the last position changed nothing", archs[a]);
        /* generated positions do not exist in a pair: equal to unsteered */
        assert_true(fabs(fast[2 * 6] - fast[0]) < 1e-6 && fabs(fast[2 * 6 + 1] - fast[1]) < 1e-6);
        /* unsteered = a plain forward */
        clens_ctx *ctx;
        float *lg = malloc(sizeof(float) * in->vocab);
        assert_int_equal(clens_ctx_new(&ctx, m, 1, T, 16, &err), 0);
        assert_int_equal(clens_prefill(ctx, 0, corr, T, NULL, lg, NULL, &err), 0);
        assert_true(fabs(clens_metric_value(&met[0], lg, in->vocab) - fast[1]) < 1e-5);
        clens_ctx_free(ctx);
        free(lg);
        /* zero steering: KL 0, full agreement; a real one: KL > 0 */
        double kl, ag;
        clens_steer zero = specs[1];
        zero.alpha = 0;
        assert_int_equal(clens_steer_kl(m, clean, T, &zero, &kl, &ag, &err), 0);
        assert_true(fabs(kl) < 1e-9 && ag == 1.0);
        assert_int_equal(clens_steer_kl(m, clean, T, &specs[3], &kl, &ag, &err), 0);
        assert_true(kl > 1e-4);
        {   /* reference: two separate prefills (plain, and with the hook), KL and argmax in the test */
            int V = in->vocab, plen = T;
            float *p = malloc(sizeof(float) * (size_t)T * V), *q = malloc(sizeof(float) * (size_t)T * V);
            clens_ctx *c2;
            assert_int_equal(clens_ctx_new(&c2, m, 1, T, T, &err), 0);
            assert_int_equal(clens_prefill(c2, 0, clean, T, p, NULL, NULL, &err), 0);
            clens_ctx_seq_clear(c2, 0);
            clens_steer_hook h = {&specs[3], NULL, &plen};
            clens_forward_args fa = {0};
            fa.hook = clens_steer_hook_fn;
            fa.hook_user = &h;
            assert_int_equal(clens_prefill(c2, 0, clean, T, q, NULL, &fa, &err), 0);
            double rk = 0;
            int same = 0;
            for (int t = 0; t < T; t++) {
                const float *a = p + (size_t)t * V, *b = q + (size_t)t * V;
                double ma = a[0], mb = b[0], za = 0, zb = 0;
                int ia = 0, ib = 0;
                for (int v = 0; v < V; v++) { if (a[v] > ma) { ma = a[v]; ia = v; } if (b[v] > mb) { mb = b[v]; ib = v; } }
                for (int v = 0; v < V; v++) { za += exp(a[v] - ma); zb += exp(b[v] - mb); }
                for (int v = 0; v < V; v++) {
                    double pa = exp(a[v] - ma) / za;
                    rk += pa * ((a[v] - ma - log(za)) - (b[v] - mb - log(zb)));
                }
                same += ia == ib;
            }
            rk /= T;
            if (fabs(rk - kl) > 1e-6 * (1 + rk)) fail_msg("%s: KL %g, reference %g", archs[a], kl, rk);
            assert_true(fabs(ag - (double)same / T) < 1e-12);
            clens_ctx_free(c2);
            free(p);
            free(q);
        }
        free(v);
        free(means);
        free(act);
        clens_model_free(m);
    }
}

static void test_cvec_generation_equals_add(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("steer_cvec");
    clens_model *m;
    clens_error err = {0};
    clens_model_params mp = clens_model_default_params();
    mp.n_threads = 1;
    assert_int_equal(clens_model_open(&m, dirs[0], &mp, &err), 0);
    const clens_model_info *in = clens_model_get_info(m);
    int L = in->n_layers, C = in->d_model;
    float *rows = calloc((size_t)(L + 2) * C, sizeof(float));
    fill_random(rows + (size_t)2 * C, C, 99); /* direction.2 (and one past the last block: ignored) */
    fill_random(rows + (size_t)(L + 1) * C, C, 98);
    char path[4300];
    snprintf(path, sizeof path, "%s/cv.gguf", d);
    assert_int_equal(clens_cvec_save(path, rows, L + 2, C, "qwen2", &err), 0);
    clens_cvec cv = {0};
    assert_int_equal(clens_cvec_load(&cv, path, 2.5f, &err), 0);
    float *vecs = calloc((size_t)L * C, sizeof(float));
    unsigned char *act = calloc(L, 1);
    clens_steer cs;
    assert_int_equal(clens_cvec_steer(&cv, L, C, 0, 0, vecs, act, &cs, &err), 0);
    for (int l = 0; l < L; l++) assert_int_equal(act[l], l >= 1);
    /* the equivalent add: rows[2] * 2.5 at blocks.2.hook_resid_post, every position */
    unsigned char only2[8] = {0};
    only2[2] = 1;
    float *v2 = calloc((size_t)L * C, sizeof(float));
    memcpy(v2 + (size_t)2 * C, rows + (size_t)2 * C, sizeof(float) * C);
    clens_steer add = {CLENS_STEER_ADD, CLENS_HOOK_RESID_POST, CLENS_STEER_POS_ALL, 2.5f, L, v2, only2, NULL};
    int32_t p0[5] = {3, 1, 4, 1, 5}, p1[3] = {9, 2, 6};
    const int32_t *pr[2] = {p0, p1};
    int pl[2] = {5, 3};
    int32_t *o1[2], *o2[2], *o3[2];
    int n1[2], n2[2], n3[2];
    assert_int_equal(clens_steer_generate(m, pr, pl, 2, &cs, NULL, 0, 8, NULL, 0, o1, n1, &err), 0);
    assert_int_equal(clens_steer_generate(m, pr, pl, 2, &add, NULL, 0, 8, NULL, 0, o2, n2, &err), 0);
    assert_int_equal(clens_steer_generate(m, pr, pl, 2, NULL, NULL, 0, 8, NULL, 0, o3, n3, &err), 0);
    int differs = 0;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(n1[i], n2[i]);
        assert_memory_equal(o1[i], o2[i], sizeof(int32_t) * n1[i]);
        differs |= n1[i] != n3[i] || memcmp(o1[i], o3[i], sizeof(int32_t) * n1[i]);
    }
    assert_true(differs); /* the control vector does steer */
    /* unsteered == clens_generate (greedy) */
    clens_sample_params sp = clens_sample_default_params();
    sp.max_new_tokens = 8;
    int32_t *o4[2];
    int n4[2];
    assert_int_equal(clens_generate(m, pr, pl, 2, &sp, o4, n4, &err), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(n3[i], n4[i]);
        assert_memory_equal(o3[i], o4[i], sizeof(int32_t) * n3[i]);
        free(o1[i]); free(o2[i]); free(o3[i]); free(o4[i]);
    }
    /* sampled (temperature 1.5, top-k 40, seed 7): unsteered == clens_generate draw for draw;
     * the control vector == its add spec; and steering changes the draws */
    sp.temperature = 1.5f;
    sp.top_k = 40;
    sp.seed = 7;
    assert_int_equal(clens_generate(m, pr, pl, 2, &sp, o4, n4, &err), 0);
    assert_int_equal(clens_steer_generate_sampled(m, pr, pl, 2, NULL, NULL, 0, &sp, o3, n3, &err), 0);
    assert_int_equal(clens_steer_generate_sampled(m, pr, pl, 2, &cs, NULL, 0, &sp, o1, n1, &err), 0);
    assert_int_equal(clens_steer_generate_sampled(m, pr, pl, 2, &add, NULL, 0, &sp, o2, n2, &err), 0);
    differs = 0;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(n3[i], n4[i]);
        assert_memory_equal(o3[i], o4[i], sizeof(int32_t) * n3[i]);
        assert_int_equal(n1[i], n2[i]);
        assert_memory_equal(o1[i], o2[i], sizeof(int32_t) * n1[i]);
        differs |= n1[i] != n3[i] || memcmp(o1[i], o3[i], sizeof(int32_t) * n1[i]);
        free(o1[i]); free(o2[i]); free(o3[i]); free(o4[i]);
    }
    assert_true(differs);
    sp.temperature = 0; /* greedy again: the sampled entry point is the greedy one */
    assert_int_equal(clens_steer_generate_sampled(m, pr, pl, 2, &cs, NULL, 0, &sp, o3, n3, &err), 0);
    assert_int_equal(clens_steer_generate(m, pr, pl, 2, &cs, NULL, 0, 8, NULL, 0, o4, n4, &err), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(n3[i], n4[i]);
        assert_memory_equal(o3[i], o4[i], sizeof(int32_t) * n3[i]);
        free(o3[i]); free(o4[i]);
    }
    clens_cvec_free(&cv);
    free(rows); free(vecs); free(act); free(v2);
    clens_model_free(m);
}

static void test_ban(void **state)
{
    (void)state;
    clens_model *m;
    clens_error err = {0};
    clens_model_params mp = clens_model_default_params();
    mp.n_threads = 1;
    assert_int_equal(clens_model_open(&m, dirs[1], &mp, &err), 0);
    int32_t p0[4] = {5, 6, 7, 8};
    const int32_t *pr[1] = {p0};
    int pl[1] = {4};
    int32_t *o[1], *ob[1];
    int n[1], nb[1];
    assert_int_equal(clens_steer_generate(m, pr, pl, 1, NULL, NULL, 0, 6, NULL, 0, o, n, &err), 0);
    int32_t ban[6];
    for (int k = 0; k < n[0]; k++) ban[k] = o[0][k];
    assert_int_equal(clens_steer_generate(m, pr, pl, 1, NULL, ban, n[0], 6, NULL, 0, ob, nb, &err), 0);
    for (int k = 0; k < nb[0]; k++)
        for (int j = 0; j < n[0]; j++) assert_int_not_equal(ob[0][k], ban[j]);
    free(o[0]);
    free(ob[0]);
    clens_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_equals_rerun),
        cmocka_unit_test(test_cvec_generation_equals_add),
        cmocka_unit_test(test_ban),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
