/*
 * test_alloc_fail.c: failure injection (SQLite's malloc tests). For N = 1,
 * 2, ... the N-th allocation of clens_model_open, clens_ctx_new and
 * clens_patcher_new fails (base/alloc.h), until the call succeeds without
 * reaching an N-th allocation. Every failing call must return
 * CLENS_E_NOMEM with a message and leave nothing allocated (the ASan+UBSan
 * rerun of tests/run.sh has LeakSanitizer on, so a leak on any of these
 * paths fails the run); the successful objects must then work. jansson's
 * parser keeps its own allocator: it reports a failed allocation inside a
 * string token as a syntax error, so it cannot be tested this way.
 */
#include "testutil.h"

#include "base/alloc.h"
#include "clens.h"

/* qwen2 and olmo3 (sliding window, post-norm) f32 single files, and a
 * bf16 qwen3 in 2 shards with an index (the index path of the loader) */
static char model_dir[3][4200];
static const char *archs[] = {"qwen2", "olmo3", "qwen3 (bf16, 2 shards)"};

static int setup(void **state)
{
    (void)state;
    if (tu_gen_arch_models("alloc-fail-models", archs, 2, 31, model_dir)) return -1;
    char cmd[9000];
    snprintf(model_dir[2], sizeof model_dir[2], "%.4000s-sharded", model_dir[0]);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tools/gen_model.py --arch qwen3 --dtype bf16 --shards 2 --seed 33 "
             "--quiet --out '%s'", model_dir[2]);
    return system(cmd) != 0;
}

/* Checks one failing call: CLENS_E_NOMEM with a message, the injected failure did happen. */
static void check_nomem(const char *what, long n, int rc, int failed, const clens_error *err)
{
    if (rc != CLENS_E_NOMEM)
        fail_msg("%s with allocation %ld failing: status %d (%s), want CLENS_E_NOMEM", what, n, rc, err->msg);
    if (!err->msg[0]) fail_msg("%s with allocation %ld failing: no message", what, n);
    if (!failed) fail_msg("%s failed (%s) although allocation %ld did not", what, err->msg, n);
}

static void model_open_fails_cleanly(void **state)
{
    (void)state;
    for (int a = 0; a < 3; a++) {
        clens_model_params mp = clens_model_default_params();
        long n = 1;
        for (;; n++) {
            clens_error err = {0};
            clens_model *m = NULL;
            clens_alloc_fail_nth(n);
            int rc = clens_model_open(&m, model_dir[a], &mp, &err);
            int failed = clens_alloc_failed();
            clens_alloc_fail_nth(0);
            if (rc == CLENS_OK) {
                assert_non_null(m);
                clens_model_free(m);
                if (!failed) break; /* the open made fewer than n allocations */
                fail_msg("clens_model_open succeeded although allocation %ld failed", n);
            }
            assert_null(m);
            check_nomem("clens_model_open", n, rc, failed, &err);
        }
        printf("  %s: clens_model_open failed cleanly at each of its %ld allocations\n", archs[a], n - 1);
        assert_true(n > 5);
    }
}

static void ctx_and_patcher_fail_cleanly(void **state)
{
    (void)state;
    clens_model_params mp = clens_model_default_params();
    clens_error err = {0};
    clens_model *m;
    if (clens_model_open(&m, model_dir[0], &mp, &err)) fail_msg("%s", err.msg);
    long n = 1;
    for (;; n++) {
        clens_ctx *ctx = NULL;
        clens_alloc_fail_nth(n);
        int rc = clens_ctx_new(&ctx, m, 2, 16, 8, &err);
        int failed = clens_alloc_failed();
        clens_alloc_fail_nth(0);
        if (rc == CLENS_OK) {
            clens_ctx_free(ctx);
            if (failed) fail_msg("clens_ctx_new succeeded although allocation %ld failed", n);
            break;
        }
        assert_null(ctx);
        check_nomem("clens_ctx_new", n, rc, failed, &err);
    }
    printf("  clens_ctx_new failed cleanly at each of its %ld allocations\n", n - 1);
    assert_true(n > 5);

    int32_t tok[] = {4, 9};
    clens_site sites[3] = {{CLENS_HOOK_RESID_PRE, 1, -1}, {CLENS_HOOK_ATTN_Z, 0, 1}, {CLENS_HOOK_MLP_OUT, 1, -1}};
    clens_metric mt[2] = {{CLENS_METRIC_LOGIT_MEAN, tok, 2, NULL, NULL}, {CLENS_METRIC_LOGPROB_MASS, tok, 1, NULL, NULL}};
    int32_t clean[6] = {1, 5, 9, 3, 7, 2}, corr[6] = {1, 5, 9, 8, 7, 2};
    for (n = 1;; n++) {
        clens_patcher *p = NULL;
        clens_alloc_fail_nth(n);
        int rc = clens_patcher_new(&p, m, 6, sites, 3, mt, 2, &err);
        int failed = clens_alloc_failed();
        clens_alloc_fail_nth(0);
        if (rc == CLENS_OK) {
            if (failed) fail_msg("clens_patcher_new succeeded although allocation %ld failed", n);
            double out[2 * 5];
            assert_int_equal(clens_patch_run(p, clean, corr, 6, CLENS_PATCH_FAST, out, NULL, &err), 0);
            assert_true(out[0] != out[1]); /* the pair really differs */
            clens_patcher_free(p);
            break;
        }
        assert_null(p);
        check_nomem("clens_patcher_new", n, rc, failed, &err);
    }
    printf("  clens_patcher_new failed cleanly at each of its %ld allocations\n", n - 1);
    assert_true(n > 10);
    clens_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(model_open_fails_cleanly),
        cmocka_unit_test(ctx_and_patcher_fail_cleanly),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
