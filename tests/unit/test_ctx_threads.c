/*
 * test_ctx_threads.c: the thread count is per context (issue 23 item 11).
 *  - opening a model with n_threads = 1 leaves the process's OpenMP default
 *    unchanged (it used to set it process-wide);
 *  - a context starts with the model's count, can be changed, and rejects a
 *    negative one;
 *  - a forward pass leaves the caller's OpenMP default as it was;
 *  - one context at 1 thread and one at 2 give the same logits on the
 *    portable path (whose results do not depend on the thread count).
 */
#include "testutil.h"

#include <math.h>
#include <omp.h>

#include "clens.h"

static char model_dir[1][4200];

static int setup(void **state)
{
    (void)state;
    static const char *const archs[] = {"qwen2"};
    return tu_gen_arch_models("ctx-threads", archs, 1, 11, model_dir);
}

static void last_logits(clens_ctx *ctx, const int32_t *ids, int n, float *out)
{
    clens_error err = {0};
    clens_ctx_seq_clear(ctx, 0);
    if (clens_prefill(ctx, 0, ids, n, NULL, out, NULL, &err)) fail_msg("prefill: %s", err.msg);
}

static void test_threads_per_context(void **state)
{
    (void)state;
    omp_set_num_threads(2);
    int before = omp_get_max_threads();
    clens_model_params p = clens_model_default_params();
    p.n_threads = 1;
    p.matmul = CLENS_MATMUL_PORTABLE;
    clens_model *m = NULL;
    clens_error err = {0};
    if (clens_model_open(&m, model_dir[0], &p, &err)) fail_msg("%s", err.msg);
    assert_int_equal(omp_get_max_threads(), before); /* nothing process-wide */

    clens_ctx *a = NULL, *b = NULL;
    assert_int_equal(clens_ctx_new(&a, m, 1, 32, 32, &err), CLENS_OK);
    assert_int_equal(clens_ctx_new(&b, m, 1, 32, 32, &err), CLENS_OK);
    assert_int_equal(clens_ctx_get_threads(a), 1);
    assert_int_equal(clens_ctx_set_threads(b, 2, &err), CLENS_OK);
    assert_int_equal(clens_ctx_get_threads(b), 2);
    assert_int_equal(clens_ctx_set_threads(b, -1, &err), CLENS_E_ARG);
    assert_int_equal(clens_ctx_get_threads(b), 2);

    const int V = clens_model_get_info(m)->vocab;
    float *la = malloc(sizeof(float) * V), *lb = malloc(sizeof(float) * V);
    int32_t ids[12];
    for (int i = 0; i < 12; i++) ids[i] = (int32_t)((i * 37 + 5) % V);
    last_logits(a, ids, 12, la);
    assert_int_equal(omp_get_max_threads(), before); /* restored after the call */
    last_logits(b, ids, 12, lb);
    assert_int_equal(omp_get_max_threads(), before);
    for (int v = 0; v < V; v++) {
        assert_true(isfinite(la[v]));
        assert_true(la[v] == lb[v]);
    }
    free(la);
    free(lb);
    clens_ctx_free(a);
    clens_ctx_free(b);
    clens_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_threads_per_context)};
    return cmocka_run_group_tests(tests, setup, NULL);
}
