/*
 * test_train.c: the training layer (src/train/, docs/train.md).
 *  - every parameter's gradient of the fp64 build of the training math against
 *    central finite differences, on tiny Qwen2 (tied and untied) and OLMo-3
 *    models (GQA, sliding windows shorter than the sequence, a full layer);
 *  - the fp32 path against the fp64 path (same batch, same weights);
 *  - the learning-rate schedule, clipping and one AdamW step by hand;
 *  - the resumable state file round trip and its refusal of other settings.
 * The gradients against torch autograd and the end-to-end runs are in
 * tests/suites/60-train.sh.
 */
#include <math.h>

#include "testutil.h"
#include "train/train.h"

static void tiny_shape(tr_shape *s, tr_arch arch, int tied)
{
    memset(s, 0, sizeof *s);
    s->arch = arch;
    s->L = arch == TR_OLMO3 ? 3 : 2;
    s->C = 8;
    s->H = 2;
    s->Hkv = 1;
    s->F = 12;
    s->V = 11;
    s->tied = tied;
    s->ctx = 64;
    s->eps = 1e-5;
    s->theta = 100.0;
    if (arch == TR_OLMO3) {
        s->window = 3;
        s->sliding[0] = s->sliding[1] = 1; /* the last layer is full */
    }
}

/* Random parameters with non-trivial norms and biases. */
static void random_params(const tr_plan *p, double *x, uint64_t seed)
{
    tr_rng r = {seed, 0, 0};
    for (int i = 0; i < p->n_t; i++) {
        const tr_tensor *t = &p->t[i];
        int norm = strstr(t->name, "norm") != NULL;
        for (size_t j = 0; j < t->n; j++)
            x[t->off + j] = norm ? 1.0 + 0.3 * tr_rng_normal(&r) : 0.4 * tr_rng_normal(&r);
    }
}

static void batch(const tr_shape *s, int B, int T, int32_t *ids, uint8_t *mask, uint64_t seed)
{
    tr_rng r = {seed, 0, 0};
    for (int i = 0; i < B * T; i++) {
        ids[i] = (int32_t)(tr_rng_u64(&r) % (uint64_t)s->V);
        mask[i] = (i % T) > 1 && (tr_rng_u64(&r) % 4) != 0;
    }
}

static void check_fd(tr_arch arch, int tied)
{
    tr_shape s;
    tiny_shape(&s, arch, tied);
    tr_plan p;
    clens_error err;
    assert_int_equal(tr_plan_init(&p, &s, &err), 0);
    enum { B = 2, T = 7 };
    int32_t ids[B * T];
    uint8_t mask[B * T];
    batch(&p.s, B, T, ids, mask, 5);
    double *x = malloc(sizeof(double) * p.n_params), *g = malloc(sizeof(double) * p.n_params);
    random_params(&p, x, 11 + (uint64_t)arch);
    tr_work_f64 *w = tr_work_new_f64(&p, B, T);
    assert_non_null(w);
    long nt;
    double loss = tr_loss_grad_f64(w, x, g, ids, mask, B, T, &nt);
    assert_true(nt > 3 && loss > 0.5);
    const double h = 1e-5;
    double worst = 0;
    const char *worst_name = "";
    for (int ti = 0; ti < p.n_t; ti++) {
        const tr_tensor *t = &p.t[ti];
        double tnorm = 0;
        for (size_t j = 0; j < t->n; j++) tnorm = fmax(tnorm, fabs(g[t->off + j]));
        assert_true(tnorm > 1e-6); /* every tensor gets a gradient */
        for (size_t j = 0; j < t->n; j++) {
            size_t k = t->off + j;
            double keep = x[k];
            x[k] = keep + h;
            double lp = tr_loss_grad_f64(w, x, NULL, ids, mask, B, T, NULL);
            x[k] = keep - h;
            double lm = tr_loss_grad_f64(w, x, NULL, ids, mask, B, T, NULL);
            x[k] = keep;
            double fd = (lp - lm) / (2 * h), e = fabs(fd - g[k]) / fmax(fabs(fd) + fabs(g[k]), 1e-4);
            if (e > worst) { worst = e; worst_name = t->name; }
        }
    }
    print_message("  %s%s: %zu parameters, loss %.6f, worst relative error %.2e (%s)\n",
                  arch == TR_OLMO3 ? "olmo3" : "qwen2", tied ? " tied" : "", p.n_params, loss, worst, worst_name);
    assert_true(worst < 1e-6);
    tr_work_free_f64(w);
    free(x);
    free(g);
    tr_plan_free(&p);
}

static void fd_qwen2_untied(void **st) { (void)st; check_fd(TR_QWEN2, 0); }
static void fd_qwen2_tied(void **st) { (void)st; check_fd(TR_QWEN2, 1); }
static void fd_olmo3(void **st) { (void)st; check_fd(TR_OLMO3, 0); }

/* The fp32 path computes what the fp64 path computes (same code, BLAS sgemm). */
static void f32_matches_f64(void **st)
{
    (void)st;
    for (int arch = 0; arch < 2; arch++) {
        tr_shape s;
        tiny_shape(&s, (tr_arch)arch, 0);
        s.C = 16; s.H = 4; s.Hkv = 2; s.F = 24; s.V = 29;
        tr_plan p;
        assert_int_equal(tr_plan_init(&p, &s, NULL), 0);
        enum { B = 3, T = 9 };
        int32_t ids[B * T];
        uint8_t mask[B * T];
        batch(&p.s, B, T, ids, mask, 7);
        double *x = malloc(sizeof(double) * p.n_params), *g = malloc(sizeof(double) * p.n_params);
        float *xf = malloc(sizeof(float) * p.n_params), *gf = malloc(sizeof(float) * p.n_params);
        random_params(&p, x, 3);
        for (size_t i = 0; i < p.n_params; i++) x[i] = xf[i] = (float)x[i];
        tr_work_f64 *w = tr_work_new_f64(&p, B, T);
        tr_work_f32 *wf = tr_work_new_f32(&p, B, T);
        double l = tr_loss_grad_f64(w, x, g, ids, mask, B, T, NULL);
        double lf = tr_loss_grad_f32(wf, xf, gf, ids, mask, B, T, NULL);
        double gn = 0, dn = 0;
        for (size_t i = 0; i < p.n_params; i++) { gn += g[i] * g[i]; dn += (g[i] - gf[i]) * (g[i] - gf[i]); }
        print_message("  %s fp32 vs fp64: loss %.7f vs %.7f, gradient relative L2 error %.2e\n",
                      arch ? "olmo3" : "qwen2", lf, l, sqrt(dn / gn));
        assert_true(fabs(l - lf) < 1e-5 * fabs(l));
        assert_true(sqrt(dn / gn) < 1e-5);
        tr_work_free_f64(w);
        tr_work_free_f32(wf);
        free(x); free(g); free(xf); free(gf);
        tr_plan_free(&p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fd_qwen2_untied),
        cmocka_unit_test(fd_qwen2_tied),
        cmocka_unit_test(fd_olmo3),
        cmocka_unit_test(f32_matches_f64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
