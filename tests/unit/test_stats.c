/*
 * test_stats.c: recovery, mean / population SD / median / ratio of sums on a
 * hand-computed example, undefined pairs, the PRNG against splitmix64's
 * published first outputs, and the bootstrap CIs against an independent
 * Python reference (constants below from this script, run with numpy):
 *
 *   M = 2**64 - 1; splitmix64 / xoshiro256** as in https://prng.di.unimi.it/;
 *   below(n): x = next() until x < 2**64 - 2**64 % n, return x % n;
 *   boot(x, B, seed[, xa]): draws[b][j] = below(m) for b, j in order; mean_b =
 *   (sum in draw order) / m [- sum(xa drawn) / m]; sort; h = (B-1)*p;
 *   q = v[floor h] + (h - floor h)(v[floor h + 1] - v[floor h]), checked against
 *   np.percentile(means, 2.5 / 97.5) to 1e-12.
 */
#include "testutil.h"

#include <math.h>

#include "report/stats.h"

/* |a - b| <= eps (eps 0: exactly equal), printing both on failure. */
#define assert_near(a, b, eps) assert_near_at((a), (b), (eps), #a, __LINE__)
static void assert_near_at(double a, double b, double eps, const char *what, int line)
{
    if (!(fabs(a - b) <= eps)) fail_msg("line %d: %s = %.17g, expected %.17g (eps %g)", line, what, a, b, eps);
}

static void rng_vectors(void **state)
{
    (void)state;
    clens_rng r;
    clens_rng_seed(&r, 0);
    /* splitmix64 from seed 0: the published first four outputs */
    assert_true(r.s[0] == 0xe220a8397b1dcdafULL);
    assert_true(r.s[1] == 0x6e789e6aa1b965f4ULL);
    assert_true(r.s[2] == 0x06c45d188009454fULL);
    assert_true(r.s[3] == 0xf88bb8a8724c81ecULL);
    assert_true(clens_rng_next(&r) == 0x99ec5f36cb75f2b4ULL);
    assert_true(clens_rng_next(&r) == 0xbf6e1f784956452aULL);
    assert_true(clens_rng_next(&r) == 0x1a5f849d4933e6e0ULL);
    clens_rng_seed(&r, 12345);
    const uint64_t want[8] = {4, 5, 0, 0, 2, 2, 6, 1};
    for (int i = 0; i < 8; i++) assert_int_equal(clens_rng_below(&r, 7), want[i]);
    for (int i = 0; i < 100; i++) assert_int_equal(clens_rng_below(&r, 1), 0);
}

static void recovery_values(void **state)
{
    (void)state;
    double r;
    /* (100 * (m_patched - m_corr)) / (m_clean - m_corr) */
    assert_int_equal(clens_recovery(-1.0, -4.0, 0.0, &r), 1);
    assert_true(r == 25.0);
    assert_int_equal(clens_recovery(-2.0, -2.0, 1.0, &r), 1);
    assert_true(r == 100.0);
    assert_int_equal(clens_recovery(5.5, 0.0, 5.0, &r), 1);
    assert_true(r == -10.0);
    /* patching the corrupted value back gives 0 */
    assert_int_equal(clens_recovery(3.0, 7.0, 3.0, &r), 1);
    assert_true(r == 0.0);
    /* identical prompts: undefined, never NaN */
    assert_int_equal(clens_recovery(2.0, 1.5, 1.5, &r), 0);
    assert_true(r == 0.0);
    assert_int_equal(clens_recovery(2.0, 1.5, 1.5 + 1e-10, &r), 0);
    assert_int_equal(clens_recovery(2.0, 1.5, 1.5 + 2e-9, &r), 1);
    assert_false(isnan(r));
}

/* 3 pairs: D = -4, -3, -5; P = -1, -3, 0.5; recoveries 25, 100, -10. */
static void hand_example(void **state)
{
    (void)state;
    const double clean[3] = {-4.0, -2.0, 0.0}, corr[3] = {0.0, 1.0, 5.0}, patched[3] = {-1.0, -2.0, 5.5};
    double r[3], P[3], D[3];
    unsigned char def[3];
    for (int i = 0; i < 3; i++) {
        def[i] = (unsigned char)clens_recovery(patched[i], clean[i], corr[i], &r[i]);
        P[i] = patched[i] - corr[i];
        D[i] = clean[i] - corr[i];
    }
    clens_site_stats st;
    clens_error err = {0};
    assert_int_equal(clens_site_stats_compute(NULL, r, P, D, def, 3, &st, &err), 0);
    assert_int_equal(st.n_samples, 3);
    assert_int_equal(st.n_undefined, 0);
    assert_true(st.has_mean && st.has_ratio && !st.has_ci);
    /* mean 115/3, population SD sqrt(((-40/3)^2 + (185/3)^2 + (-145/3)^2) / 3) */
    assert_near(st.mean, 115.0 / 3.0, 1e-12);
    assert_near(st.mean, 38.333333333333336, 0);
    assert_near(st.sd, sqrt((1600.0 + 34225.0 + 21025.0) / 27.0), 1e-12);
    assert_near(st.sd, 45.886332993120675, 1e-13);
    assert_true(st.median == 25.0);
    /* 100 * (-1 - 3 + 0.5) / (-4 - 3 - 5) = 350 / 12 */
    assert_near(st.ratio_of_sums, 350.0 / 12.0, 1e-12);

    /* even count: median = mean of the two middle values */
    const double r4[4] = {4.0, 1.0, 3.0, 10.0}, one[4] = {1, 1, 1, 1};
    const unsigned char d4[4] = {1, 1, 1, 1};
    assert_int_equal(clens_site_stats_compute(NULL, r4, one, one, d4, 4, &st, &err), 0);
    assert_true(st.median == 3.5);
    assert_true(st.mean == 4.5);
    /* single pair: SD 0, CI collapses onto the value */
    clens_boot *b;
    assert_int_equal(clens_boot_new(&b, 100, 5, &err), 0);
    assert_int_equal(clens_site_stats_compute(b, r4, one, one, d4, 1, &st, &err), 0);
    assert_true(st.sd == 0.0 && st.median == 4.0 && st.ci_lo == 4.0 && st.ci_hi == 4.0);
    clens_boot_free(b);
}

static void undefined_pairs_excluded(void **state)
{
    (void)state;
    /* pair 1 has identical clean and corrupted runs */
    const double clean[4] = {-4.0, 2.0, -2.0, 0.0}, corr[4] = {0.0, 2.0, 1.0, 5.0},
                 patched[4] = {-1.0, 9.0, -2.0, 5.5};
    double r[4], P[4], D[4];
    unsigned char def[4];
    for (int i = 0; i < 4; i++) {
        def[i] = (unsigned char)clens_recovery(patched[i], clean[i], corr[i], &r[i]);
        P[i] = patched[i] - corr[i];
        D[i] = clean[i] - corr[i];
    }
    assert_int_equal(def[1], 0);
    clens_boot *b;
    clens_error err = {0};
    assert_int_equal(clens_boot_new(&b, 500, 1, &err), 0);
    clens_site_stats st;
    assert_int_equal(clens_site_stats_compute(b, r, P, D, def, 4, &st, &err), 0);
    assert_int_equal(st.n_samples, 3);
    assert_int_equal(st.n_undefined, 1);
    /* same numbers as the 3-pair hand example; P of the undefined pair (7) not summed */
    assert_near(st.mean, 115.0 / 3.0, 1e-12);
    assert_near(st.ratio_of_sums, 350.0 / 12.0, 1e-12);
    assert_true(st.median == 25.0);
    assert_false(isnan(st.ci_lo) || isnan(st.ci_hi));
    /* all undefined: no statistic, nothing NaN */
    const unsigned char none[4] = {0, 0, 0, 0};
    assert_int_equal(clens_site_stats_compute(b, r, P, D, none, 4, &st, &err), 0);
    assert_int_equal(st.n_samples, 0);
    assert_int_equal(st.n_undefined, 4);
    assert_false(st.has_mean || st.has_ratio || st.has_ci);
    /* sum of D ~ 0 (pairs of both signs): ratio of sums undefined */
    const double Dz[2] = {3.0, -3.0}, Pz[2] = {1.0, 1.0}, rz[2] = {33.0, -33.0};
    const unsigned char dz[2] = {1, 1};
    assert_int_equal(clens_site_stats_compute(b, rz, Pz, Dz, dz, 2, &st, &err), 0);
    assert_true(st.has_mean && !st.has_ratio);
    clens_boot_free(b);
}

static void bootstrap_reference_and_determinism(void **state)
{
    (void)state;
    const double x[5] = {25.0, 100.0, -10.0, 40.0, 7.5}, one[5] = {1, 1, 1, 1, 1};
    const unsigned char def[5] = {1, 1, 1, 1, 1};
    clens_error err = {0};
    clens_site_stats a, a2, c;
    clens_boot *b0, *b0b, *b1;
    assert_int_equal(clens_boot_new(&b0, 1000, 0, &err), 0);
    assert_int_equal(clens_boot_new(&b0b, 1000, 0, &err), 0);
    assert_int_equal(clens_boot_new(&b1, 1000, 1, &err), 0);
    assert_int_equal(clens_site_stats_compute(b0, x, one, one, def, 5, &a, &err), 0);
    assert_int_equal(clens_site_stats_compute(b0b, x, one, one, def, 5, &a2, &err), 0);
    assert_int_equal(clens_site_stats_compute(b1, x, one, one, def, 5, &c, &err), 0);
    /* the Python reference, bit for bit */
    assert_true(a.has_ci);
    assert_true(a.ci_lo == 3.5);
    assert_true(a.ci_hi == 66.012499999999989);
    assert_true(c.ci_lo == 4.0);
    assert_true(c.ci_hi == 69.5);
    /* same seed: same bits (also from a context with cached draws); other seed: differs */
    assert_memory_equal(&a.ci_lo, &a2.ci_lo, sizeof(double));
    assert_memory_equal(&a.ci_hi, &a2.ci_hi, sizeof(double));
    assert_int_equal(clens_site_stats_compute(b0, x, one, one, def, 5, &a2, &err), 0);
    assert_memory_equal(&a.ci_lo, &a2.ci_lo, sizeof(double));
    assert_memory_equal(&a.ci_hi, &a2.ci_hi, sizeof(double));
    assert_true(a.ci_lo != c.ci_lo || a.ci_hi != c.ci_hi);
    /* without the draw cache: the same bits */
    clens_boot_set_cache_limit(b0b, 0);
    assert_int_equal(clens_site_stats_compute(b0b, x, one, one, def, 5, &a2, &err), 0);
    assert_true(a2.ci_lo == 3.5 && a2.ci_hi == 66.012499999999989);
    /* the CI contains the mean (32.5) */
    assert_true(a.ci_lo <= a.mean && a.mean <= a.ci_hi);
    assert_true(c.ci_lo <= c.mean && c.mean <= c.ci_hi);
    clens_boot_free(b0);
    clens_boot_free(b0b);
    clens_boot_free(b1);

    /* a larger sample: the CI contains the mean and is narrower than +-2 SD */
    double y[200], o[200];
    unsigned char d[200];
    clens_rng r;
    clens_rng_seed(&r, 99);
    for (int i = 0; i < 200; i++) {
        y[i] = (double)(clens_rng_next(&r) >> 11) * 0x1.0p-53 * 100.0;
        o[i] = 1.0;
        d[i] = 1;
    }
    clens_boot *bb;
    assert_int_equal(clens_boot_new(&bb, 2000, 0, &err), 0);
    assert_int_equal(clens_site_stats_compute(bb, y, o, o, d, 200, &a, &err), 0);
    assert_true(a.ci_lo < a.mean && a.mean < a.ci_hi);
    double se = a.sd / sqrt(200.0);
    assert_true(a.ci_hi - a.ci_lo > 3.0 * se && a.ci_hi - a.ci_lo < 4.8 * se);
    clens_boot_free(bb);

    assert_int_equal(clens_boot_new(&bb, -1, 0, &err), CLENS_E_ARG);
}

static void delta_paired(void **state)
{
    (void)state;
    clens_error err = {0};
    const double xa[5] = {10.0, 20.0, 30.0, -5.0, 12.5}, xb[5] = {14.0, 31.0, 29.0, 2.0, 12.5};
    const double one[5] = {1, 1, 1, 1, 1};
    const unsigned char def[5] = {1, 1, 1, 1, 1};
    clens_boot *b;
    assert_int_equal(clens_boot_new(&b, 500, 3, &err), 0);
    clens_site_stats sa, sb;
    clens_delta_stats d;
    assert_int_equal(clens_site_stats_compute(b, xa, one, one, def, 5, &sa, &err), 0);
    assert_int_equal(clens_site_stats_compute(b, xb, one, one, def, 5, &sb, &err), 0);
    assert_int_equal(clens_delta_stats_compute(b, xa, def, &sa, xb, def, &sb, 5, &d, &err), 0);
    assert_true(d.has_delta && d.has_ci);
    assert_near(d.delta, 4.2, 1e-12); /* (88.5 - 67.5) / 5 */
    assert_true(d.ci_lo == 1.0 && d.ci_hi == 8.0); /* Python reference */
    clens_boot_set_cache_limit(b, 10);
    assert_int_equal(clens_delta_stats_compute(b, xa, def, &sa, xb, def, &sb, 5, &d, &err), 0);
    assert_true(d.ci_lo == 1.0 && d.ci_hi == 8.0);
    clens_boot_set_cache_limit(b, (size_t)1 << 25);
    /* paired: a constant shift gives a CI of width ~0 */
    double xc[5];
    for (int i = 0; i < 5; i++) xc[i] = xa[i] + 5.0;
    clens_site_stats sc;
    assert_int_equal(clens_site_stats_compute(b, xc, one, one, def, 5, &sc, &err), 0);
    assert_int_equal(clens_delta_stats_compute(b, xa, def, &sa, xc, def, &sc, 5, &d, &err), 0);
    assert_near(d.delta, 5.0, 1e-12);
    assert_near(d.ci_lo, 5.0, 1e-12);
    assert_near(d.ci_hi, 5.0, 1e-12);
    /* undefined at one site: the increment's CI uses the pairs defined at both */
    const unsigned char def2[5] = {1, 1, 0, 1, 1};
    assert_int_equal(clens_site_stats_compute(b, xc, one, one, def2, 5, &sc, &err), 0);
    assert_int_equal(clens_delta_stats_compute(b, xa, def, &sa, xc, def2, &sc, 5, &d, &err), 0);
    assert_true(d.has_ci);
    assert_near(d.ci_lo, 5.0, 1e-12);
    const unsigned char none[5] = {0};
    assert_int_equal(clens_site_stats_compute(b, xc, one, one, none, 5, &sc, &err), 0);
    assert_int_equal(clens_delta_stats_compute(b, xa, def, &sa, xc, none, &sc, 5, &d, &err), 0);
    assert_false(d.has_delta || d.has_ci);
    clens_boot_free(b);
}

static void percentile_linear(void **state)
{
    (void)state;
    const double v[4] = {1, 2, 3, 4};
    /* np.percentile([1, 2, 3, 4], [2.5, 97.5]) = [1.075, 3.925] */
    assert_near(clens_percentile_sorted(v, 4, 0.025), 1.075, 1e-12);
    assert_near(clens_percentile_sorted(v, 4, 0.975), 3.925, 1e-12);
    assert_true(clens_percentile_sorted(v, 1, 0.975) == 1.0);
    assert_true(clens_percentile_sorted(v, 4, 1.0) == 4.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rng_vectors),
        cmocka_unit_test(recovery_values),
        cmocka_unit_test(hand_example),
        cmocka_unit_test(undefined_pairs_excluded),
        cmocka_unit_test(bootstrap_reference_and_determinism),
        cmocka_unit_test(delta_paired),
        cmocka_unit_test(percentile_linear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
