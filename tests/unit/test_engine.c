/*
 * test_engine.c: invariants of the forward pass on generated models of every
 * architecture (f32): prefill == token-by-token decode, a batch == each
 * sequence alone (bitwise on the portable path), patching a hook point with
 * its own value changes nothing, resid_post = resid_pre + attn_out + mlp_out,
 * resid_post L == resid_pre L+1, an ephemeral row started at block L from the
 * captured residual reproduces the full run, and the default kernel path
 * agrees with the portable one. Logit values against the independent torch
 * reference are checked by tests/suites/20-engine-ref.sh.
 */
#include "testutil.h"

#include <math.h>

#include "clens.h"

static const char *archs[] = {"qwen2", "llama", "qwen3", "olmo2", "olmo3"};
#define N_ARCH (sizeof archs / sizeof archs[0])
#define T 14
static const int32_t prompt[T] = {1, 5, 9, 3, 7, 2, 8, 11, 4, 6, 10, 12, 13, 2};

static char model_dir[N_ARCH][4200];

static int setup(void **state)
{
    (void)state;
    return tu_gen_arch_models("engine-models", archs, N_ARCH, 1, model_dir);
}

static clens_model *open_model(size_t a, clens_matmul_mode mode)
{
    clens_model_params p = clens_model_default_params();
    clens_error err = {0};
    clens_model *m = NULL;
    p.matmul = mode;
    if (clens_model_open(&m, model_dir[a], &p, &err)) fail_msg("%s: %s", archs[a], err.msg);
    return m;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

static void prefill_equals_decode(void **state)
{
    (void)state;
    for (size_t a = 0; a < N_ARCH; a++) {
        clens_model *m = open_model(a, CLENS_MATMUL_PORTABLE);
        int V = clens_model_get_info(m)->vocab;
        clens_ctx *ctx;
        clens_error err = {0};
        assert_int_equal(clens_ctx_new(&ctx, m, 1, T, T, &err), 0);
        float *full = malloc(sizeof(float) * T * V), *step = malloc(sizeof(float) * T * V);
        assert_int_equal(clens_prefill(ctx, 0, prompt, T, full, NULL, NULL, &err), 0);
        clens_ctx_seq_clear(ctx, 0);
        /* a 5-token prefill, then one token at a time */
        assert_int_equal(clens_prefill(ctx, 0, prompt, 5, step, NULL, NULL, &err), 0);
        for (int t = 5; t < T; t++)
            assert_int_equal(clens_prefill(ctx, 0, prompt + t, 1, step + (size_t)t * V, NULL, NULL, &err), 0);
        double d = max_diff(full, step, (size_t)T * V);
        printf("  %-6s prefill vs decode max |diff| = %.3g\n", archs[a], d);
        assert_true(d <= 1e-5);
        free(full);
        free(step);
        clens_ctx_free(ctx);
        clens_model_free(m);
    }
}

static void batch_equals_alone(void **state)
{
    (void)state;
    int32_t other[T];
    for (int i = 0; i < T; i++) other[i] = (prompt[T - 1 - i] * 7 + 3) % 64;
    for (size_t a = 0; a < N_ARCH; a++) {
        clens_model *m = open_model(a, CLENS_MATMUL_PORTABLE);
        int V = clens_model_get_info(m)->vocab;
        clens_ctx *ctx;
        clens_error err = {0};
        assert_int_equal(clens_ctx_new(&ctx, m, 2, T, 2 * T, &err), 0);
        float *alone = malloc(sizeof(float) * 2 * T * V), *batch = malloc(sizeof(float) * 2 * T * V);
        assert_int_equal(clens_prefill(ctx, 0, prompt, T, alone, NULL, NULL, &err), 0);
        assert_int_equal(clens_prefill(ctx, 1, other, T, alone + (size_t)T * V, NULL, NULL, &err), 0);
        clens_ctx_seq_clear(ctx, 0);
        clens_ctx_seq_clear(ctx, 1);
        /* interleaved rows of both sequences in one batch */
        clens_row rows[2 * T];
        for (int t = 0; t < T; t++) {
            rows[2 * t] = (clens_row){0, t, prompt[t], 0, 1, 1};
            rows[2 * t + 1] = (clens_row){1, t, other[t], 0, 1, 1};
        }
        clens_forward_args fa = {0};
        fa.out_logits = batch;
        assert_int_equal(clens_forward(ctx, rows, 2 * T, &fa, &err), 0);
        for (int t = 0; t < T; t++) {
            assert_memory_equal(batch + (size_t)(2 * t) * V, alone + (size_t)t * V, sizeof(float) * V);
            assert_memory_equal(batch + (size_t)(2 * t + 1) * V, alone + (size_t)(T + t) * V, sizeof(float) * V);
        }
        free(alone);
        free(batch);
        clens_ctx_free(ctx);
        clens_model_free(m);
    }
}

/* Captures (and optionally overwrites) the final-position row at one hook. */
typedef struct {
    clens_hook_point point;
    int layer, pos, write;
    float *value;          /* captured or to write */
    /* identity check: the last position's pre/attn/mlp/post per layer */
    float *pre, *attn, *mlp, *post;
    int C;
} probe;

static void probe_hook(void *user, const clens_hook_event *ev)
{
    probe *p = user;
    for (int i = 0; i < ev->n_rows; i++) {
        const clens_row *r = &ev->batch[ev->rows[i]];
        float *row = ev->data + (size_t)i * ev->width;
        if (r->pos != p->pos) continue;
        if (ev->point == p->point && ev->layer == p->layer) {
            if (p->write) memcpy(row, p->value, sizeof(float) * ev->width);
            else memcpy(p->value, row, sizeof(float) * ev->width);
        }
        if (p->pre && ev->layer >= 0 && ev->width == p->C) {
            float *dst = ev->point == CLENS_HOOK_RESID_PRE ? p->pre : ev->point == CLENS_HOOK_ATTN_OUT ? p->attn
                       : ev->point == CLENS_HOOK_MLP_OUT ? p->mlp : ev->point == CLENS_HOOK_RESID_POST ? p->post : NULL;
            if (dst) memcpy(dst + (size_t)ev->layer * p->C, row, sizeof(float) * p->C);
        }
    }
}

static void self_patch_and_identities(void **state)
{
    (void)state;
    for (size_t a = 0; a < N_ARCH; a++) {
        clens_model *m = open_model(a, CLENS_MATMUL_PORTABLE);
        const clens_model_info *in = clens_model_get_info(m);
        int V = in->vocab, C = in->d_model, L = in->n_layers;
        clens_ctx *ctx;
        clens_error err = {0};
        assert_int_equal(clens_ctx_new(&ctx, m, 1, T, T, &err), 0);
        float *base = malloc(sizeof(float) * V), *patched = malloc(sizeof(float) * V);
        float *val = malloc(sizeof(float) * in->n_heads * in->head_dim);
        float *pre = malloc(sizeof(float) * L * C), *attn = malloc(sizeof(float) * L * C);
        float *mlp = malloc(sizeof(float) * L * C), *post = malloc(sizeof(float) * L * C);
        probe pr = {CLENS_HOOK_ATTN_Z, L - 1, T - 1, 0, val, pre, attn, mlp, post, C};
        clens_forward_args fa = {0};
        fa.hook = probe_hook;
        fa.hook_user = &pr;
        assert_int_equal(clens_prefill(ctx, 0, prompt, T, NULL, base, &fa, &err), 0);
        for (int l = 0; l < L; l++)
            for (int c = 0; c < C; c++) {
                size_t k = (size_t)l * C + c;
                assert_true(fabs((double)post[k] - ((double)pre[k] + attn[k] + mlp[k])) <= 1e-5);
                if (l + 1 < L) assert_true(post[k] == pre[k + C]);
            }
        /* Writing every hook point's own value back changes nothing. */
        clens_hook_point pts[] = {CLENS_HOOK_RESID_PRE, CLENS_HOOK_ATTN_Z, CLENS_HOOK_ATTN_OUT, CLENS_HOOK_MLP_OUT,
                                  CLENS_HOOK_RESID_POST};
        for (size_t k = 0; k < sizeof pts / sizeof pts[0]; k++)
            for (int l = 0; l < L; l++) {
                probe cap = {pts[k], l, T - 1, 0, val, NULL, NULL, NULL, NULL, C};
                fa.hook_user = &cap;
                clens_ctx_seq_clear(ctx, 0);
                assert_int_equal(clens_prefill(ctx, 0, prompt, T, NULL, patched, &fa, &err), 0);
                cap.write = 1;
                clens_ctx_seq_clear(ctx, 0);
                assert_int_equal(clens_prefill(ctx, 0, prompt, T, NULL, patched, &fa, &err), 0);
                assert_memory_equal(patched, base, sizeof(float) * V);
            }
        /* An ephemeral row started at block l from resid_pre l reproduces the run. */
        float *final = malloc(sizeof(float) * C), *resid = malloc(sizeof(float) * C);
        clens_logits_from_resid(m, post + (size_t)(L - 1) * C, patched);
        assert_memory_equal(patched, base, sizeof(float) * V);
        for (int l = 0; l <= L; l++) {
            clens_ctx_seq_clear(ctx, 0);
            assert_int_equal(clens_prefill(ctx, 0, prompt, T - 1, NULL, NULL, NULL, &err), 0);
            memcpy(resid, l < L ? pre + (size_t)l * C : post + (size_t)(L - 1) * C, sizeof(float) * C);
            clens_row row = {0, T - 1, prompt[T - 1], l, 0, 0};
            clens_forward_args ea = {0};
            ea.init_resid = resid;
            ea.out_resid = final;
            assert_int_equal(clens_forward(ctx, &row, 1, &ea, &err), 0);
            assert_int_equal(clens_ctx_seq_len(ctx, 0), T - 1);
            clens_logits_from_resid(m, final, patched);
            assert_memory_equal(patched, base, sizeof(float) * V);
        }
        free(final); free(resid);
        free(base); free(patched); free(val); free(pre); free(attn); free(mlp); free(post);
        clens_ctx_free(ctx);
        clens_model_free(m);
    }
}

/* Every fp32-activation kernel path this CPU has (CLENS_KERNEL selects it)
 * against the portable reference; paths the CPU lacks are reported skipped. */
static void kernel_paths_match_portable(void **state)
{
    (void)state;
    const char *paths[] = {"avx2", "avx512"};
    for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++) {
        setenv("CLENS_KERNEL", paths[k], 1);
        for (size_t a = 0; a < N_ARCH; a++) {
            clens_model *mp = open_model(a, CLENS_MATMUL_PORTABLE), *md = open_model(a, CLENS_MATMUL_DEFAULT);
            if (strcmp(clens_model_kernel_name(md), paths[k]) != 0) {
                if (a == 0) printf("  kernel path %s: not available on this CPU, skipped\n", paths[k]);
                clens_model_free(mp);
                clens_model_free(md);
                break;
            }
            int V = clens_model_get_info(mp)->vocab;
            float *lp = malloc(sizeof(float) * T * V), *ld = malloc(sizeof(float) * T * V);
            clens_ctx *cp, *cd;
            clens_error err = {0};
            assert_int_equal(clens_ctx_new(&cp, mp, 1, T, T, &err), 0);
            assert_int_equal(clens_ctx_new(&cd, md, 1, T, T, &err), 0);
            assert_int_equal(clens_prefill(cp, 0, prompt, T, lp, NULL, NULL, &err), 0);
            assert_int_equal(clens_prefill(cd, 0, prompt, T, ld, NULL, NULL, &err), 0);
            double d = max_diff(lp, ld, (size_t)T * V);
            printf("  %-6s kernel %s vs portable max |diff| = %.3g\n", archs[a], clens_model_kernel_name(md), d);
            assert_true(d <= 1e-4);
            free(lp); free(ld);
            clens_ctx_free(cp); clens_ctx_free(cd);
            clens_model_free(mp); clens_model_free(md);
        }
    }
    unsetenv("CLENS_KERNEL");
}

static void bad_requests(void **state)
{
    (void)state;
    clens_model *m = open_model(0, CLENS_MATMUL_PORTABLE);
    int V = clens_model_get_info(m)->vocab;
    clens_ctx *ctx;
    clens_error err = {0};
    assert_int_equal(clens_ctx_new(&ctx, m, 1, 8, 8, &err), 0);
    int32_t bad[2] = {1, V};
    assert_int_equal(clens_prefill(ctx, 0, bad, 2, NULL, NULL, NULL, &err), CLENS_E_ARG);
    assert_non_null(strstr(err.msg, "outside the vocabulary"));
    int32_t longp[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    assert_int_equal(clens_prefill(ctx, 0, longp, 9, NULL, NULL, NULL, &err), CLENS_E_ARG);
    assert_non_null(strstr(err.msg, "longer than the context"));
    clens_ctx_free(ctx);
    clens_model_free(m);
}

/* A hook that writes NaN into one residual row (position 1) after block 0. */
static void poison_hook(void *user, const clens_hook_event *ev)
{
    (void)user;
    if (ev->point == CLENS_HOOK_RESID_POST && ev->layer == 0 && ev->n_rows > 1) ev->data[1 * ev->width + 3] = NAN;
}

/* Issue 23 item 3: a non-finite activation stops the pass naming the first
 * hook point, layer and position, and leaves the cache length unchanged. */
static void nonfinite_detected(void **state)
{
    (void)state;
    float v[200];
    for (int i = 0; i < 200; i++) v[i] = (float)i;
    assert_int_equal(clens_first_nonfinite(v, 200), -1);
    v[130] = INFINITY;
    assert_int_equal(clens_first_nonfinite(v, 200), 130);
    v[5] = -NAN;
    assert_int_equal(clens_first_nonfinite(v, 200), 5);
    assert_int_equal(clens_first_nonfinite(v, 3), -1);
    v[199] = NAN;
    v[5] = 0;
    v[130] = 0;
    assert_int_equal(clens_first_nonfinite(v, 200), 199);

    clens_model *m = open_model(0, CLENS_MATMUL_PORTABLE);
    int V = clens_model_get_info(m)->vocab;
    clens_ctx *ctx;
    clens_error err = {0};
    float *lg = malloc(sizeof(float) * T * V);
    assert_int_equal(clens_ctx_new(&ctx, m, 1, T, T, &err), 0);
    clens_forward_args a = {0};
    a.hook = poison_hook;
    assert_int_equal(clens_prefill(ctx, 0, prompt, 4, lg, NULL, &a, &err), CLENS_E_NONFINITE);
    assert_non_null(strstr(err.msg, "(NaN) at blocks.1.attn.hook_z, position 1 of sequence 0"));
    assert_string_equal(clens_status_name(CLENS_E_NONFINITE), "nonfinite");
    assert_int_equal(clens_ctx_seq_len(ctx, 0), 0);
    /* the same context then runs clean, with finite logits */
    assert_int_equal(clens_prefill(ctx, 0, prompt, 4, lg, NULL, NULL, &err), 0);
    assert_int_equal(clens_first_nonfinite(lg, (size_t)4 * V), -1);
    assert_int_equal(clens_ctx_seq_len(ctx, 0), 4);
    /* the weights of a generated model are finite */
    int64_t n = 0;
    assert_int_equal(clens_model_check_weights(m, &n, &err), 0);
    assert_true(n == clens_model_get_info(m)->n_params);
    free(lg);
    clens_ctx_free(ctx);
    clens_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prefill_equals_decode),
        cmocka_unit_test(batch_equals_alone),
        cmocka_unit_test(self_patch_and_identities),
        cmocka_unit_test(kernel_paths_match_portable),
        cmocka_unit_test(bad_requests),
        cmocka_unit_test(nonfinite_detected),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
