/*
 * test_patch.c: the patching engine on generated models of every
 * architecture: the fast method (shared prefix + batched ephemeral rows on the
 * corrupted KV cache) equals the rerun reference for every site type (incl.
 * an OLMo-3 model whose sliding window is shorter than the prompt, and a
 * prompt pair with no shared prefix), the site after the last block gives
 * exactly the clean metric, resid_post L equals resid_pre L+1, and resid_pre 0
 * changes nothing when both prompts end in the same token.
 */
#include "testutil.h"

#include <math.h>

#include "clens.h"
#include "kernels/kernels.h"

static const char *archs[] = {"qwen2", "llama", "qwen3", "olmo2", "olmo3"};
#define N_ARCH (sizeof archs / sizeof archs[0])
#define T 14
static char model_dir[N_ARCH][4200];
static int g_path_ran[KERN_PATH_COUNT]; /* kernel paths the models ran on */

static int setup(void **state)
{
    (void)state;
    return tu_gen_arch_models("patch-models", archs, N_ARCH, 11, model_dir);
}

typedef struct {
    clens_site *sites;
    int n, idx_resid_pre[64], idx_resid_post[64];
} site_list;

static void all_sites(const clens_model_info *in, site_list *sl)
{
    int L = in->n_layers, H = in->n_heads, k = 0;
    sl->sites = malloc(sizeof(clens_site) * (size_t)(L + 1 + 3 * L + L * H));
    for (int l = 0; l <= L; l++) { sl->idx_resid_pre[l] = k; sl->sites[k++] = (clens_site){CLENS_HOOK_RESID_PRE, l, -1}; }
    for (int l = 0; l < L; l++) {
        sl->idx_resid_post[l] = k;
        sl->sites[k++] = (clens_site){CLENS_HOOK_RESID_POST, l, -1};
        sl->sites[k++] = (clens_site){CLENS_HOOK_ATTN_OUT, l, -1};
        sl->sites[k++] = (clens_site){CLENS_HOOK_MLP_OUT, l, -1};
        for (int h = 0; h < H; h++) sl->sites[k++] = (clens_site){CLENS_HOOK_ATTN_Z, l, h};
    }
    sl->n = k;
}

static void run_case(size_t a, clens_matmul_mode mode, const int32_t *clean, const int32_t *corr, int expect_prefix)
{
    clens_model_params mp = clens_model_default_params();
    clens_error err = {0};
    clens_model *m;
    mp.matmul = mode;
    if (clens_model_open(&m, model_dir[a], &mp, &err)) fail_msg("%s", err.msg);
    const clens_model_info *in = clens_model_get_info(m);
    site_list sl;
    all_sites(in, &sl);
    int32_t ids1[] = {3, 5, 7}, ids2[] = {3, 5, 7, 11};
    clens_metric mt[2] = {{CLENS_METRIC_LOGPROB_MASS, ids1, 3, NULL, NULL}, {CLENS_METRIC_LOGIT_MEAN, ids2, 4, NULL, NULL}};
    clens_patcher *p;
    if (clens_patcher_new(&p, m, T, sl.sites, sl.n, mt, 2, &err)) fail_msg("%s", err.msg);
    size_t W = 2 + (size_t)sl.n;
    double *fast = malloc(sizeof(double) * 2 * W), *rerun = malloc(sizeof(double) * 2 * W);
    int P = -1;
    assert_int_equal(clens_patch_run(p, clean, corr, T, CLENS_PATCH_FAST, fast, &P, &err), 0);
    assert_int_equal(P, expect_prefix);
    assert_int_equal(clens_patch_run(p, clean, corr, T, CLENS_PATCH_RERUN, rerun, NULL, &err), 0);
    double md = 0;
    for (size_t i = 0; i < 2 * W; i++) md = fmax(md, fabs(fast[i] - rerun[i]));
    for (int k = 0; k < KERN_PATH_COUNT; k++)
        if (strcmp(clens_model_kernel_name(m), kern_path_name(k)) == 0) g_path_ran[k] = 1;
    printf("  %-6s %-8s %d sites, shared prefix %d: fast vs rerun max |diff| = %.3g (D = %.4f)\n", archs[a],
           mode == CLENS_MATMUL_PORTABLE ? "portable" : clens_model_kernel_name(m), sl.n, P, md, fast[0] - fast[1]);
    assert_true(md <= 1e-5);
    assert_true(fabs(fast[0] - fast[1]) > 1e-6); /* the pair really differs */
    for (int k = 0; k < 2; k++) {
        double *o = fast + k * W;
        /* after the last block: exactly the clean metric (100%) */
        assert_true(o[2 + sl.idx_resid_pre[in->n_layers]] == o[0]);
        double *r = rerun + k * W;
        assert_true(r[2 + sl.idx_resid_pre[in->n_layers]] == r[0]);
        /* resid_post L == resid_pre L+1 */
        for (int l = 0; l < in->n_layers; l++)
            assert_true(fabs(o[2 + sl.idx_resid_post[l]] - o[2 + sl.idx_resid_pre[l + 1]]) <= 1e-6);
        /* same final token: patching resid_pre 0 changes nothing */
        if (clean[T - 1] == corr[T - 1]) assert_true(fabs(o[2 + sl.idx_resid_pre[0]] - o[1]) <= 1e-6);
    }
    free(fast);
    free(rerun);
    free(sl.sites);
    clens_patcher_free(p);
    clens_model_free(m);
}

static void fast_equals_rerun(void **state)
{
    (void)state;
    int32_t clean[T] = {1, 5, 9, 3, 7, 2, 8, 11, 4, 6, 10, 12, 13, 2};
    int32_t corr[T];
    memcpy(corr, clean, sizeof corr);
    corr[9] = 17; /* the "error" */
    for (size_t a = 0; a < N_ARCH; a++) {
        run_case(a, CLENS_MATMUL_PORTABLE, clean, corr, 9);
        run_case(a, CLENS_MATMUL_DEFAULT, clean, corr, 9);
    }
}

static void empty_shared_prefix(void **state)
{
    (void)state;
    int32_t clean[T] = {1, 5, 9, 3, 7, 2, 8, 11, 4, 6, 10, 12, 13, 2};
    int32_t corr[T];
    memcpy(corr, clean, sizeof corr);
    corr[0] = 20;
    corr[6] = 21;
    for (size_t a = 0; a < N_ARCH; a++) run_case(a, CLENS_MATMUL_PORTABLE, clean, corr, 0);
}

static void identical_prompts(void **state)
{
    (void)state;
    clens_model_params mp = clens_model_default_params();
    clens_error err = {0};
    clens_model *m;
    if (clens_model_open(&m, model_dir[4], &mp, &err)) fail_msg("%s", err.msg);
    int32_t ids[T] = {1, 5, 9, 3, 7, 2, 8, 11, 4, 6, 10, 12, 13, 2}, tok[] = {4};
    clens_site s[2] = {{CLENS_HOOK_RESID_PRE, 1, -1}, {CLENS_HOOK_ATTN_OUT, 0, -1}};
    clens_metric mt = {CLENS_METRIC_LOGIT_MEAN, tok, 1, NULL, NULL};
    clens_patcher *p;
    assert_int_equal(clens_patcher_new(&p, m, T, s, 2, &mt, 1, &err), 0);
    double o[4];
    assert_int_equal(clens_patch_run(p, ids, ids, T, CLENS_PATCH_FAST, o, NULL, &err), 0);
    assert_true(o[0] == o[1]); /* D = 0: recovery is undefined, reported as such by the statistics */
    /* bad requests */
    assert_int_equal(clens_patch_run(p, ids, ids, T + 1, CLENS_PATCH_FAST, o, NULL, &err), CLENS_E_ARG);
    clens_patcher_free(p);
    clens_site bad = {CLENS_HOOK_ATTN_OUT, 99, -1};
    assert_int_equal(clens_patcher_new(&p, m, T, &bad, 1, &mt, 1, &err), CLENS_E_ARG);
    assert_non_null(strstr(err.msg, "out of range"));
    clens_model_free(m);
}

/* The site vocabulary: every hook name and every site name printed by the
 * library parses back to the same value, short names round-trip, and
 * malformed names are refused with a message naming them. */
static void site_names(void **state)
{
    (void)state;
    char buf[128];
    clens_error err = {0};
    int n_sites = 0;
    for (int p = 0; p < CLENS_HOOK_COUNT; p++) {
        clens_hook_point q;
        assert_int_equal(clens_hook_short_parse(clens_hook_short_name(p), &q, &err), CLENS_OK);
        assert_int_equal(q, p);
        for (int l = clens_hook_max_layer(p, 12) < 0 ? -1 : 0; l <= clens_hook_max_layer(p, 12); l++) {
            int layer;
            assert_int_equal(clens_hook_parse(clens_hook_name(p, l, buf, sizeof buf), &q, &layer, &err), CLENS_OK);
            assert_true(q == (clens_hook_point)p && layer == l);
            if (!clens_hook_patchable(p)) continue;
            for (int h = -1; h < (clens_hook_per_head(p) ? 16 : 0); h++) {
                clens_site s = {p, l, h}, back = {CLENS_HOOK_EMBED, -7, -7};
                clens_site_name(&s, buf, sizeof buf);
                if (clens_site_parse(buf, &back, &err)) fail_msg("%s: %s", buf, err.msg);
                assert_true(back.point == s.point && back.layer == s.layer && back.head == s.head);
                n_sites++;
            }
        }
    }
    /* 13 resid_pre, 12 each of resid_post / attn_out / mlp_out, 12 x (16 heads + all) z */
    assert_int_equal(n_sites, 13 + 3 * 12 + 12 * 17);
    clens_site s;
    assert_string_equal(clens_site_name(&(clens_site){CLENS_HOOK_ATTN_Z, 3, 5}, buf, sizeof buf),
                        "blocks.3.attn.hook_z[5]");
    assert_int_equal(clens_site_parse("blocks.3.attn.hook_z[5]", &s, &err), CLENS_OK);
    assert_true(s.point == CLENS_HOOK_ATTN_Z && s.layer == 3 && s.head == 5);
    static const struct { const char *name, *says; } bad[] = {
        {"", "expected blocks.LAYER"},
        {"blocks.3.hook_z", "expected blocks.LAYER"},
        {"blocks.03.hook_resid_pre", "expected blocks.LAYER"},
        {"blocks.-1.hook_resid_pre", "expected blocks.LAYER"},
        {"blocks.3.hook_resid_pre ", "expected blocks.LAYER"},
        {"blocks.3.attn.hook_z[", "a head is written [H]"},
        {"blocks.3.attn.hook_z[x]", "a head is written [H]"},
        {"blocks.3.attn.hook_z[1]x", "a head is written [H]"},
        {"blocks.3.attn.hook_z[-1]", "a head is written [H]"},
        {"blocks.3.hook_attn_out[2]", "has no heads"},
        {"hook_embed", "not a patching site"},
        {"ln_final.hook_normalized", "not a patching site"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = 0;
        assert_int_equal(clens_site_parse(bad[i].name, &s, &err), CLENS_E_ARG);
        assert_int_equal(err.code, CLENS_E_ARG);
        if (!strstr(err.msg, bad[i].says) || !strstr(err.msg, bad[i].name))
            fail_msg("'%s': message '%s' does not say '%s'", bad[i].name, err.msg, bad[i].says);
    }
    clens_hook_point q;
    int layer;
    assert_int_equal(clens_hook_short_parse("zz", &q, &err), CLENS_E_ARG);
    assert_non_null(strstr(err.msg, "'zz'"));
    assert_int_equal(clens_hook_parse("blocks.1.hook_nothing", &q, &layer, &err), CLENS_E_ARG);
    assert_non_null(strstr(err.msg, "blocks.1.hook_nothing"));
    clens_metric_kind k;
    assert_int_equal(clens_metric_parse(clens_metric_name(CLENS_METRIC_LOGIT_MEAN), &k, &err), CLENS_OK);
    assert_int_equal(k, CLENS_METRIC_LOGIT_MEAN);
    assert_int_equal(clens_metric_parse("callback", &k, &err), CLENS_E_ARG); /* not a built-in */
}

/* A caller's metric: the same arithmetic as the built-in logprob_mass, so the
 * patcher's values through the callback must equal the built-in's bit for
 * bit, with FAST and RERUN, at every site. */
typedef struct { const int32_t *ids; int n; long calls; } mass_user;

static double mass_callback(void *user, const float *logits, int V)
{
    mass_user *u = user;
    double mx = -INFINITY, mxs = -INFINITY, all = 0, sel = 0;
    for (int v = 0; v < V; v++) mx = fmax(mx, logits[v]);
    for (int i = 0; i < u->n; i++) mxs = fmax(mxs, logits[u->ids[i]]);
    for (int v = 0; v < V; v++) all += exp(logits[v] - mx);
    for (int i = 0; i < u->n; i++) sel += exp(logits[u->ids[i]] - mxs);
    u->calls++;
    return (mxs + log(sel)) - (mx + log(all));
}

static void callback_metric(void **state)
{
    (void)state;
    clens_model_params mp = clens_model_default_params();
    clens_error err = {0};
    clens_model *m;
    if (clens_model_open(&m, model_dir[3], &mp, &err)) fail_msg("%s", err.msg);
    site_list sl;
    all_sites(clens_model_get_info(m), &sl);
    int32_t ids[] = {3, 5, 7, 40};
    mass_user u = {ids, 4, 0};
    clens_metric mt[2] = {{CLENS_METRIC_LOGPROB_MASS, ids, 4, NULL, NULL},
                          {CLENS_METRIC_CALLBACK, NULL, 0, mass_callback, &u}};
    clens_patcher *p;
    if (clens_patcher_new(&p, m, T, sl.sites, sl.n, mt, 2, &err)) fail_msg("%s", err.msg);
    int32_t clean[T] = {1, 5, 9, 3, 7, 2, 8, 11, 4, 6, 10, 12, 13, 2}, corr[T];
    memcpy(corr, clean, sizeof corr);
    corr[6] = 9;
    size_t W = 2 + (size_t)sl.n;
    double *o = malloc(sizeof(double) * 2 * W);
    for (int method = CLENS_PATCH_FAST; method <= CLENS_PATCH_RERUN; method++) {
        u.calls = 0;
        assert_int_equal(clens_patch_run(p, clean, corr, T, method, o, NULL, &err), 0);
        assert_int_equal(u.calls, (long)W);
        for (size_t i = 0; i < W; i++)
            if (memcmp(&o[i], &o[W + i], sizeof(double)))
                fail_msg("method %d column %zu: built-in %.17g, callback %.17g", method, i, o[i], o[W + i]);
        assert_true(o[0] != o[1]);
    }
    clens_patcher_free(p);
    /* a callback without its function is refused */
    mt[1].fn = NULL;
    assert_int_equal(clens_patcher_new(&p, m, T, sl.sites, sl.n, mt, 2, &err), CLENS_E_ARG);
    assert_non_null(strstr(err.msg, "callback"));
    free(o);
    free(sl.sites);
    clens_model_free(m);
}

/* Runs last: the kernel paths the models ran on, in one line; a path the CPU
 * lacks must not be among them (the model would have run the portable
 * fallback while reporting the other name). */
static void paths_reported(void **state)
{
    (void)state;
    char ran[256] = "", lacks[256] = "", other[256] = "";
    for (int p = 0; p < KERN_PATH_COUNT; p++) {
        char *list = g_path_ran[p] ? ran : !kern_path_available(p) ? lacks : other;
        snprintf(list + strlen(list), 256 - strlen(list), "%s%s", *list ? ", " : "", kern_path_name(p));
        if (g_path_ran[p] && !kern_path_available(p))
            fail_msg("the models report kernel path %s, which this CPU lacks", kern_path_name(p));
    }
    assert_true(g_path_ran[KERN_PATH_PORTABLE]);
    assert_true(g_path_ran[kern_path_default()]);
    printf("  kernel paths run: %s; not run (CPU lacks): %s; not run (not the default here): %s\n", ran,
           *lacks ? lacks : "none", *other ? other : "none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fast_equals_rerun),
        cmocka_unit_test(empty_shared_prefix),
        cmocka_unit_test(identical_prompts),
        cmocka_unit_test(site_names),
        cmocka_unit_test(callback_metric),
        cmocka_unit_test(paths_reported),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
