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

/* Warmup, cosine, floor; clipping as torch; one AdamW step by hand. */
static void schedule_clip_adamw(void **st)
{
    (void)st;
    assert_true(fabs(tr_lr_at(0, 100, 10, 1e-3, 0.1) - 1e-4) < 1e-15);
    assert_true(fabs(tr_lr_at(9, 100, 10, 1e-3, 0.1) - 1e-3) < 1e-15);
    assert_true(fabs(tr_lr_at(10, 100, 10, 1e-3, 0.1) - 1e-3) < 1e-15);
    assert_true(fabs(tr_lr_at(55, 100, 10, 1e-3, 0.1) - (1e-4 + 0.5 * 9e-4)) < 1e-15); /* halfway: cos = 0 */
    assert_true(fabs(tr_lr_at(100, 100, 10, 1e-3, 0.1) - 1e-4) < 1e-15);
    assert_true(fabs(tr_lr_at(0, 1, 0, 1e-3, 0.1) - 1e-3) < 1e-15);
    float g[3] = {3, 4, 0};
    double n = tr_grad_norm(g, 3);
    assert_true(fabs(n - 5) < 1e-12);
    tr_clip(g, 3, n, 1.0);
    assert_true(fabs(g[0] - 0.6f) < 1e-6 && fabs(g[1] - 0.8f) < 1e-6);
    tr_clip(g, 3, 1.0, 10.0); /* below the bound: unchanged */
    assert_true(fabs(g[0] - 0.6f) < 1e-6);
    /* AdamW: a plan with a matrix (decay) and a norm (no decay). */
    tr_shape s;
    tiny_shape(&s, TR_QWEN2, 1);
    tr_plan p;
    assert_int_equal(tr_plan_init(&p, &s, NULL), 0);
    float *x = calloc(p.n_params, 4), *gr = calloc(p.n_params, 4), *m = calloc(p.n_params, 4), *v = calloc(p.n_params, 4);
    const tr_tensor *E = tr_plan_find(&p, "model.embed_tokens.weight"), *N = tr_plan_find(&p, "model.norm.weight");
    assert_non_null(E);
    assert_non_null(N);
    assert_int_equal(E->decay, 1);
    assert_int_equal(N->decay, 0);
    x[E->off] = 0.5f; gr[E->off] = 0.2f;
    x[N->off] = 0.5f; gr[N->off] = 0.2f;
    tr_adamw o = {0.9, 0.95, 1e-8, 0.1};
    tr_adamw_step(&p, &o, x, gr, m, v, 1, 1e-2);
    /* step 1: m_hat = g, v_hat = g^2: p = p (1 - lr wd) - lr g / (|g| + eps) */
    double want_e = 0.5 * (1 - 1e-3) - 1e-2 * 0.2 / (0.2 + 1e-8), want_n = 0.5 - 1e-2 * 0.2 / (0.2 + 1e-8);
    assert_true(fabs(x[E->off] - want_e) < 1e-7);
    assert_true(fabs(x[N->off] - want_n) < 1e-7);
    /* step 2 with g = -0.1: m = 0.9*0.02 - 0.01 = 0.008, v = 0.95*0.002 + 0.0005 = 0.0024 */
    gr[N->off] = -0.1f;
    tr_adamw_step(&p, &o, x, gr, m, v, 2, 1e-2);
    double mh = 0.008 / (1 - 0.81), vh = 0.0024 / (1 - 0.9025);
    want_n -= 1e-2 * mh / (sqrt(vh) + 1e-8);
    assert_true(fabs(x[N->off] - want_n) < 1e-6);
    free(x); free(gr); free(m); free(v);
    tr_plan_free(&p);
}

/* The state file round-trips bit for bit and refuses other settings or a corrupt file. */
static void state_roundtrip(void **st)
{
    (void)st;
    const char *dir = tu_tmpdir("train_state");
    char path[4200];
    snprintf(path, sizeof path, "%s/state.bin", dir);
    enum { n = 1000 };
    float a[n], b[n], c[n], a2[n], b2[n], c2[n];
    for (int i = 0; i < n; i++) { a[i] = (float)i / 7; b[i] = -(float)i; c[i] = (float)i * i; }
    clens_error err;
    assert_int_equal(tr_state_save(path, "abc123", 42, a, b, c, n, &err), 0);
    long step = 0;
    assert_int_equal(tr_state_load(path, "abc123", &step, a2, b2, c2, n, &err), 0);
    assert_int_equal(step, 42);
    assert_memory_equal(a, a2, sizeof a);
    assert_memory_equal(b, b2, sizeof b);
    assert_memory_equal(c, c2, sizeof c);
    assert_int_equal(tr_state_load(path, "abc124", &step, a2, b2, c2, n, &err), CLENS_E_STATE);
    assert_int_equal(tr_state_load(path, "abc123", &step, a2, b2, c2, n - 1, &err), CLENS_E_FORMAT);
    FILE *f = fopen(path, "r+b");
    fseek(f, 200, SEEK_SET);
    fputc(0x55, f);
    fclose(f);
    assert_int_equal(tr_state_load(path, "abc123", &step, a2, b2, c2, n, &err), CLENS_E_FORMAT);
    assert_non_null(strstr(err.msg, "checksum"));
    snprintf(path, sizeof path, "%s/absent.bin", dir);
    assert_int_equal(tr_state_load(path, "abc123", &step, a2, b2, c2, n, &err), CLENS_E_IO);
}

/* Masking on the test tokenizer (byte-level BPE + "<|bos|>" added, "<|eos|>"): the loss
 * covers exactly the answer bytes and the EOS; batches are a function of (seed, step). */
static void data_masking(void **st)
{
    (void)st;
    const char *dir = tu_tmpdir("train_data");
    char path[4200];
    snprintf(path, sizeof path, "%s/d.jsonl", dir);
    const char *txt = "{\"question\": \"Q1\", \"answer\": \"A=1\", \"x\": 5}\n\n"
                      "{\"question\": \"Hi\", \"answer\": \"So Wait\"}\n";
    tu_write(path, txt, strlen(txt));
    clens_tokenizer *tok;
    clens_error err;
    assert_int_equal(clens_tokenizer_open(&tok, "tests/data/train", &err), 0);
    tr_data d;
    assert_int_equal(tr_data_load(&d, path, tok, 128, &err), 0);
    assert_int_equal(d.n_ex, 2);
    assert_int_equal(d.eos_id, 260);
    /* Example 1: <|bos|> + the 39 + 2 + 12 bytes of the wrapper and question, less one for
     * each "So" merge (Solve, Solution), then "A", "=", "1" + eos. */
    const tr_example *e = &d.ex[0];
    int head = 1 + 39 + 2 + 12 - 2;
    assert_int_equal(e->n, head + 3 + 1);
    assert_int_equal(e->ids[0], 259);
    for (int i = 0; i < head; i++) assert_int_equal(e->mask[i], 0);
    assert_int_equal(e->ids[head], 'A');
    for (int i = head; i < e->n; i++) assert_int_equal(e->mask[i], 1);
    assert_int_equal(e->ids[e->n - 1], 260);
    /* Example 2: "So" (id 257) and " W" (258) are merges; the space after "Solution:" is its
     * own token (" So" is not a merge) and stays in the masked wrapper. */
    e = &d.ex[1];
    int targets = 0;
    for (int i = 0; i < e->n; i++) targets += e->mask[i];
    int32_t want[] = {257, 258, 97, 105, 116, 260};
    assert_int_equal(targets, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(e->ids[e->n - 6 + i], want[i]);
        assert_int_equal(e->mask[e->n - 6 + i], 1);
    }
    /* Truncation to seq. */
    tr_data d2;
    assert_int_equal(tr_data_load(&d2, path, tok, head + 2, &err), 0);
    assert_int_equal(d2.ex[0].n, head + 2);
    tr_data_free(&d2);
    /* Batches: deterministic, padded with eos and masked. */
    int32_t ids1[4 * 128], ids2[4 * 128];
    uint8_t m1[4 * 128], m2[4 * 128];
    int T1, T2;
    tr_data_batch(&d, 9, 3, 4, ids1, m1, &T1);
    tr_data_batch(&d, 9, 3, 4, ids2, m2, &T2);
    assert_int_equal(T1, T2);
    assert_memory_equal(ids1, ids2, sizeof(int32_t) * 4 * T1);
    assert_memory_equal(m1, m2, 4 * T1);
    int n0 = 0, n1 = 0; /* every epoch of 2 is a permutation: 2 steps of 4 = 4 epochs */
    for (int b = 0; b < 4; b++) {
        int len = 0;
        while (len < T1 && !(ids1[b * T1 + len] == 260 && m1[b * T1 + len])) len++;
        for (int t = len + 1; t < T1; t++) assert_int_equal(m1[b * T1 + t], 0);
        if (len + 1 == d.ex[0].n) n0++; else n1++;
    }
    assert_int_equal(n0, 2);
    assert_int_equal(n1, 2);
    tr_data_free(&d);
    clens_tokenizer_free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fd_qwen2_untied),
        cmocka_unit_test(fd_qwen2_tied),
        cmocka_unit_test(fd_olmo3),
        cmocka_unit_test(f32_matches_f64),
        cmocka_unit_test(schedule_clip_adamw),
        cmocka_unit_test(state_roundtrip),
        cmocka_unit_test(data_masking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
