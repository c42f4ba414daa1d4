/*
 * test_probe.c: the numerics of src/interp/probe_util.c against values
 * computed by hand or independently:
 *  - AUROC: hand-computed Mann-Whitney with ties, weights = repeated rows,
 *    a class missing -> 0.5;
 *  - pair-grouped folds: every group in exactly one fold, fold sizes within
 *    one, the same seed gives the same folds, another seed another;
 *  - bootstrap CI over pairs: contains the estimate, lo <= hi, deterministic;
 *  - ridge (LAPACK dposv): an exactly linear Y = X W + c recovered at
 *    lambda -> 0, and the closed form (Xc'Xc + lambda I)^-1 Xc'Yc on a
 *    2-feature example solved by hand (Cramer's rule);
 *  - logistic regression (liblinear): the first-order optimality condition
 *    w = C sum_i y_i sigma(-y_i w.x_i) x_i of the stated objective holds;
 *  - the .npy reader reads what npy_write_f32 writes.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/formats.h"
#include "interp/probe_internal.h"

static void auroc_hand(void **state)
{
    (void)state;
    /* positives 0.8, 0.4 ; negatives 0.4, 0.1, 0.3: pairs won 3 of 6 + tie 0.5 + ... */
    double s[] = {0.8, 0.4, 0.4, 0.1, 0.3};
    int y[] = {1, 1, 0, 0, 0};
    /* (0.8 > all 3) = 3, (0.4 vs 0.4 tie) = 0.5, (0.4 > 0.1, 0.3) = 2 -> 5.5 / 6 */
    assert_true(fabs(probe_auroc(s, y, NULL, 5) - 5.5 / 6) < 1e-12);
    /* weights = repetition: row 0 twice == the array with it duplicated */
    int w[] = {2, 1, 1, 1, 1};
    double s2[] = {0.8, 0.8, 0.4, 0.4, 0.1, 0.3};
    int y2[] = {1, 1, 1, 0, 0, 0};
    assert_true(fabs(probe_auroc(s, y, w, 5) - probe_auroc(s2, y2, NULL, 6)) < 1e-12);
    assert_true(fabs(probe_auroc(s2, y2, NULL, 6) - 8.5 / 9) < 1e-12);
    int yall[] = {1, 1, 1, 1, 1};
    assert_true(probe_auroc(s, yall, NULL, 5) == 0.5);
    /* accuracy at threshold 0.35: 0.8,0.4 -> 1 ; 0.4 -> 1 (wrong), 0.1, 0.3 -> 0 : 4 / 5 */
    assert_true(fabs(probe_accuracy(s, y, NULL, 5, 0.35) - 0.8) < 1e-12);
}

static void folds_grouped(void **state)
{
    (void)state;
    enum { G = 23, K = 5 };
    int f[G], f2[G], f3[G], count[K] = {0};
    probe_group_folds(G, K, 7, f);
    probe_group_folds(G, K, 7, f2);
    probe_group_folds(G, K, 8, f3);
    int differ = 0;
    for (int g = 0; g < G; g++) {
        assert_true(f[g] >= 0 && f[g] < K);
        assert_true(f[g] == f2[g]);
        differ |= f[g] != f3[g];
        count[f[g]]++;
    }
    assert_true(differ);
    for (int k = 0; k < K; k++) assert_true(count[k] == 4 || count[k] == 5);
}

static void boot_ci(void **state)
{
    (void)state;
    enum { N = 40 };
    double s[N];
    int y[N], g[N];
    for (int i = 0; i < N; i++) {
        y[i] = i & 1;
        g[i] = i / 2;
        s[i] = y[i] * 0.5 + 0.3 * sin(i * 1.7);
    }
    double a = probe_auroc(s, y, NULL, N), lo, hi, lo2, hi2;
    probe_boot_ci(s, y, g, N, N / 2, 0, 0, 500, 3, &lo, &hi);
    probe_boot_ci(s, y, g, N, N / 2, 0, 0, 500, 3, &lo2, &hi2);
    assert_true(lo <= a && a <= hi && lo < hi);
    assert_true(lo == lo2 && hi == hi2);
}

static void ridge_exact_and_hand(void **state)
{
    (void)state;
    /* exactly linear data, tiny lambda: W and c recovered */
    enum { n = 12, p = 3, q = 2 };
    double X[n * p], Y[n * q], Wt[p * q] = {1, -2, 0.5, 3, -1, 0.25}, ct[q] = {0.7, -1.1}, W[p * q], c[q];
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < p; j++) X[i * p + j] = sin(1.3 * i + 2.1 * j) + 0.1 * i * j;
        for (int k = 0; k < q; k++) {
            Y[i * q + k] = ct[k];
            for (int j = 0; j < p; j++) Y[i * q + k] += X[i * p + j] * Wt[j * q + k];
        }
    }
    assert_int_equal(probe_ridge_fit(X, Y, n, p, q, 1e-12, W, c, NULL), 0);
    for (int i = 0; i < p * q; i++) assert_true(fabs(W[i] - Wt[i]) < 1e-8);
    for (int k = 0; k < q; k++) assert_true(fabs(c[k] - ct[k]) < 1e-8);
    /* hand example: x = (1,0),(0,1),(1,1),(0,0) -> centred ; y = 1, 2, 4, 0 ; lambda = 1.
       means x (0.5, 0.5), y 1.75; Xc = (.5,-.5),(-.5,.5),(.5,.5),(-.5,-.5)
       Xc'Xc = [[1,0],[0,1]] ; Xc'yc = (0.5*(-.75) - .5*.25 + .5*2.25 - .5*(-1.75),
                                         -.5*(-.75) + .5*.25 + .5*2.25 - .5*(-1.75)) = (1.5, 2.5)
       W = (1.5, 2.5) / 2 = (0.75, 1.25) ; c = 1.75 - 0.5*0.75 - 0.5*1.25 = 0.75 */
    double x2[] = {1, 0, 0, 1, 1, 1, 0, 0}, y2[] = {1, 2, 4, 0}, w2[2], c2[1];
    assert_int_equal(probe_ridge_fit(x2, y2, 4, 2, 1, 1.0, w2, c2, NULL), 0);
    assert_true(fabs(w2[0] - 0.75) < 1e-12 && fabs(w2[1] - 1.25) < 1e-12 && fabs(c2[0] - 0.75) < 1e-12);
}

static void logreg_optimality(void **state)
{
    (void)state;
    enum { n = 30, d = 3 };
    float X[n * d];
    int y[n], idx[n];
    for (int i = 0; i < n; i++) {
        y[i] = i % 2;
        idx[i] = i;
        for (int j = 0; j < d; j++) X[i * d + j] = (float)(sin(0.9 * i + j) + (y[i] ? 0.4 * (j + 1) : 0));
    }
    double w[d + 1], C = 0.5;
    assert_int_equal(probe_logreg_fit(X, y, idx, n, d, C, 1e-9, w, NULL), 0);
    /* gradient of 0.5|w|^2 + C sum log(1 + exp(-y w.[x,1])) is w - C sum y sigma(-y w.x) x */
    double g[d + 1];
    memcpy(g, w, sizeof g);
    for (int i = 0; i < n; i++) {
        double yy = y[i] ? 1 : -1, z = w[d];
        for (int j = 0; j < d; j++) z += w[j] * X[i * d + j];
        double s = 1 / (1 + exp(yy * z));
        for (int j = 0; j < d; j++) g[j] -= C * yy * s * X[i * d + j];
        g[d] -= C * yy * s;
    }
    for (int j = 0; j <= d; j++) assert_true(fabs(g[j]) < 1e-5);
    /* the corrupted class (y = 1) scores positive on average */
    double m1 = 0, m0 = 0;
    for (int i = 0; i < n; i++) {
        double z = w[d];
        for (int j = 0; j < d; j++) z += w[j] * X[i * d + j];
        if (y[i]) m1 += z; else m0 += z;
    }
    assert_true(m1 > m0);
}

static void npy_roundtrip(void **state)
{
    (void)state;
    char path[] = "/tmp/clens_test_probe_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    float a[6] = {1, -2, 3.5f, 4, 5, 6e-7f}, *b;
    int64_t shape[2] = {2, 3}, r, c;
    assert_int_equal(npy_write_f32(path, a, shape, 2, NULL), 0);
    assert_int_equal(probe_npy_read(path, &b, &r, &c, NULL), 0);
    assert_true(r == 2 && c == 3 && memcmp(a, b, sizeof a) == 0);
    free(b);
    int64_t s1[1] = {6};
    assert_int_equal(npy_write_f32(path, a, s1, 1, NULL), 0);
    assert_int_equal(probe_npy_read(path, &b, &r, &c, NULL), 0);
    assert_true(r == 1 && c == 6);
    free(b);
    FILE *f = fopen(path, "w");
    fputs("not an npy", f);
    fclose(f);
    clens_error err = {0};
    assert_int_equal(probe_npy_read(path, &b, &r, &c, &err), CLENS_E_FORMAT);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(auroc_hand),       cmocka_unit_test(folds_grouped),     cmocka_unit_test(boot_ci),
        cmocka_unit_test(ridge_exact_and_hand), cmocka_unit_test(logreg_optimality), cmocka_unit_test(npy_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
