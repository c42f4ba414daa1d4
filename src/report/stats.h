/*
 * stats.h: the statistics of a patching run (study.md §5 items 8-11,
 * docs/patch-output.md "results.json"): per-pair recovery, mean and population
 * SD, ratio of sums, median, seeded percentile-bootstrap 95% CIs of the mean
 * and of layer-to-layer increments.
 *
 * Reproducibility contract: every result is a deterministic function of the
 * inputs, bit-identical across x86-64 machines and compilers. Sums run in index
 * order, one rounding per operation (no FMA contraction: C11 mode on gcc, a
 * pragma on clang), the only libm call is sqrt (correctly rounded), and the
 * bootstrap uses xoshiro256** seeded by splitmix64 (both by Blackman and Vigna,
 * https://prng.di.unimi.it/), with bounded draws by rejection so each index is
 * exactly uniform.
 */
#ifndef CLENS_REPORT_STATS_H
#define CLENS_REPORT_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* Recovery is undefined when |m_clean - m_corr| is below this. */
#define CLENS_RECOVERY_MIN_ABS_D 1e-9

/* ---------------------------------------------------------------- PRNG */

/* xoshiro256** state; seed with clens_rng_seed. */
typedef struct clens_rng {
    uint64_t s[4];
} clens_rng;

/* s[0..3] = four successive outputs of splitmix64 started at seed. */
void clens_rng_seed(clens_rng *r, uint64_t seed);
/* Next 64-bit output of xoshiro256**. */
uint64_t clens_rng_next(clens_rng *r);
/* Uniform integer in [0, n), n >= 1: draws x = next() until x < 2^64 - (2^64 mod n),
 * returns x mod n (exactly uniform; the rejection probability is < n / 2^64). */
uint64_t clens_rng_below(clens_rng *r, uint64_t n);

/* ------------------------------------------------------------- recovery */

/* Recovery in percent of one pair at one site: *out = (100 * (m_patched - m_corr))
 * / (m_clean - m_corr), evaluated in that order. Returns 1 if defined, 0 if
 * |m_clean - m_corr| < CLENS_RECOVERY_MIN_ABS_D or the result is not finite
 * (then *out = 0, never NaN). */
int clens_recovery(double m_patched, double m_clean, double m_corr, double *out);

/* ------------------------------------------------------------ statistics */

/* Statistics of one site over n pairs. Pairs whose recovery is undefined are
 * excluded from every statistic. */
typedef struct clens_site_stats {
    int n_samples;       /* pairs with a defined recovery */
    int n_undefined;     /* pairs without (n_samples + n_undefined = n) */
    int has_mean;        /* n_samples > 0: mean, sd, median valid */
    double mean;         /* sum in pair order / n_samples */
    double sd;           /* population SD (ddof 0), two-pass */
    double median;       /* middle value, or (a + b) / 2 of the two middle values */
    int has_ratio;       /* n_samples > 0 and |sum D| >= CLENS_RECOVERY_MIN_ABS_D */
    double ratio_of_sums;/* (100 * sum P) / sum D over the defined pairs, sums in pair order */
    int has_ci;          /* n_samples > 0 and resamples > 0 */
    double ci_lo, ci_hi; /* percentile bootstrap 95% CI of the mean */
} clens_site_stats;

/* Increment of one site's mean over the previous site's (e.g. layer L over the
 * previous sampled layer). */
typedef struct clens_delta_stats {
    int has_delta;       /* both means defined */
    double delta;        /* mean - mean_prev (each over its own defined pairs) */
    int has_ci;          /* some pair defined at both sites, and resamples > 0 */
    double ci_lo, ci_hi; /* paired percentile bootstrap 95% CI of the increment */
} clens_delta_stats;

/* Bootstrap context: resamples, seed and a cache of index draws (the draws
 * depend only on (seed, resamples, m), m = number of pairs resampled).
 *
 * Procedure, for a sample of m values x[0..m-1] (the defined pairs in pair
 * order): seed a clens_rng with `seed`; for b = 0..B-1, for j = 0..m-1 draw
 * k = clens_rng_below(m) and add x[k] to a running sum (in draw order); the
 * b-th resample mean is sum / m. Sort the B means ascending; the CI bounds are
 * the 2.5 and 97.5 percentiles with linear interpolation between order
 * statistics (numpy's default "linear" method): h = (B - 1) * p,
 * q = v[floor(h)] + (h - floor(h)) * (v[floor(h) + 1] - v[floor(h)]).
 * Every site restarts the stream at `seed`, so sites with the same defined
 * pairs use the same resamples (common random numbers); an increment uses the
 * same draws for both of its sites (paired bootstrap over the pairs defined
 * at both). */
typedef struct clens_boot clens_boot;

/* resamples >= 0 (0 = no CIs). *out is owned by the caller (clens_boot_free). */
int clens_boot_new(clens_boot **out, int resamples, uint64_t seed, clens_error *err);
void clens_boot_free(clens_boot *b);
/* Largest draw table (resamples x m entries) kept in memory, default 2^25;
 * larger ones are redrawn from the seed per site, with identical results. For tests. */
void clens_boot_set_cache_limit(clens_boot *b, size_t max_entries);

/* Statistics of one site over n pairs: r[i] recovery, P[i] = m_patched - m_corr,
 * D[i] = m_clean - m_corr, def[i] != 0 if r[i] is defined (r, P, D are read only
 * where def[i]). boot may be NULL (no CI). */
int clens_site_stats_compute(clens_boot *boot, const double *r, const double *P, const double *D,
                             const unsigned char *def, int n, clens_site_stats *out,
                             clens_error *err);

/* Increment of site b over site a (same n pairs): point estimate from the two
 * computed means (sa, sb), CI by the paired bootstrap of mean(rb) - mean(ra)
 * over the pairs defined at both. */
int clens_delta_stats_compute(clens_boot *boot, const double *ra, const unsigned char *defa,
                              const clens_site_stats *sa, const double *rb,
                              const unsigned char *defb, const clens_site_stats *sb, int n,
                              clens_delta_stats *out, clens_error *err);

/* Percentile with linear interpolation (see clens_boot) of an ascending array, n >= 1. */
double clens_percentile_sorted(const double *v, int n, double p);

#endif
