/*
 * stats.c: per-site statistics of a patching run: recovery, mean, population
 * SD, median, ratio of sums, and seeded percentile-bootstrap CIs of the mean
 * and of increments between sites. Definitions in stats.h and
 * docs/patch-output.md; the study's reasons in study.md §5 items 8-11.
 *
 * Bit-reproducibility: plain IEEE double arithmetic in a fixed order; no FMA
 * contraction (gcc defaults to -ffp-contract=off in ISO C mode, clang is told
 * by the pragma below); sqrt is the only libm function.
 */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#include "base/rng.h"
#include "report/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- PRNG */


void clens_rng_seed(clens_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = clens_splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t clens_rng_next(clens_rng *r)
{
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t clens_rng_below(clens_rng *r, uint64_t n)
{
    /* 2^64 - (2^64 mod n) as a uint64 (0 means 2^64: every x is accepted). */
    uint64_t rem = (UINT64_MAX % n + 1) % n; /* 2^64 mod n */
    uint64_t lim = 0 - rem;                   /* 2^64 - rem (mod 2^64) */
    uint64_t x;
    do x = clens_rng_next(r);
    while (lim != 0 && x >= lim);
    return x % n;
}

/* ------------------------------------------------------------- recovery */

int clens_recovery(double m_patched, double m_clean, double m_corr, double *out)
{
    double D = m_clean - m_corr;
    *out = 0.0;
    if (!(fabs(D) >= CLENS_RECOVERY_MIN_ABS_D)) return 0;
    double P = m_patched - m_corr;
    double r = (100.0 * P) / D;
    if (!isfinite(r)) return 0;
    *out = r;
    return 1;
}

/* ------------------------------------------------------------ bootstrap */

/* Draw tables above this many entries are not cached: the draws are then
 * regenerated from the seed for every site (same values, less memory). */
#define BOOT_CACHE_MAX ((size_t)1 << 25)

struct clens_boot {
    int resamples;      /* B */
    uint64_t seed;
    int m;              /* sample size of the cached draws, 0 = none */
    int *draws;         /* [B][m] indices in [0, m) */
    double *means;      /* [B] scratch */
    double *a, *b;      /* [n] scratch: gathered samples */
    int cap;            /* capacity of a, b */
    size_t cache_max;   /* largest draw table cached (entries) */
};

int clens_boot_new(clens_boot **out, int resamples, uint64_t seed, clens_error *err)
{
    *out = NULL;
    if (resamples < 0) return clens_err(err, CLENS_E_ARG, "bootstrap: resamples must be >= 0, got %d", resamples);
    clens_boot *b = calloc(1, sizeof *b);
    if (!b) return clens_err(err, CLENS_E_NOMEM, "bootstrap: out of memory");
    b->resamples = resamples;
    b->seed = seed;
    b->cache_max = BOOT_CACHE_MAX;
    if (resamples > 0) {
        b->means = malloc(sizeof(double) * (size_t)resamples);
        if (!b->means) { free(b); return clens_err(err, CLENS_E_NOMEM, "bootstrap: out of memory"); }
    }
    *out = b;
    return CLENS_OK;
}

void clens_boot_set_cache_limit(clens_boot *b, size_t max_entries)
{
    b->cache_max = max_entries;
    free(b->draws);
    b->draws = NULL;
    b->m = 0;
}

void clens_boot_free(clens_boot *b)
{
    if (!b) return;
    free(b->draws);
    free(b->means);
    free(b->a);
    free(b->b);
    free(b);
}

/* Makes b->draws hold the B x m index draws of the stream seeded at b->seed,
 * or leaves it NULL (b->m = 0) if the table would be too large. */
static int boot_draws(clens_boot *b, int m, clens_error *err)
{
    if (b->m == m && b->draws) return CLENS_OK;
    free(b->draws);
    b->draws = NULL;
    b->m = 0;
    size_t total = (size_t)b->resamples * (size_t)m;
    if (total / (size_t)m != (size_t)b->resamples || total > b->cache_max) return CLENS_OK;
    b->draws = malloc(sizeof(int) * total);
    if (!b->draws) return clens_err(err, CLENS_E_NOMEM, "bootstrap: out of memory for %zu draws", total);
    clens_rng r;
    clens_rng_seed(&r, b->seed);
    for (size_t k = 0; k < total; k++) b->draws[k] = (int)clens_rng_below(&r, (uint64_t)m);
    b->m = m;
    return CLENS_OK;
}

static int boot_scratch(clens_boot *b, int n, clens_error *err)
{
    if (n <= b->cap) return CLENS_OK;
    double *na = realloc(b->a, sizeof(double) * (size_t)n);
    if (!na) return clens_err(err, CLENS_E_NOMEM, "bootstrap: out of memory");
    b->a = na;
    double *nb = realloc(b->b, sizeof(double) * (size_t)n);
    if (!nb) return clens_err(err, CLENS_E_NOMEM, "bootstrap: out of memory");
    b->b = nb;
    b->cap = n;
    return CLENS_OK;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

double clens_percentile_sorted(const double *v, int n, double p)
{
    double h = (double)(n - 1) * p;
    int lo = (int)floor(h);
    if (lo < 0) lo = 0;
    if (lo >= n - 1) return v[n - 1];
    double frac = h - (double)lo;
    return v[lo] + frac * (v[lo + 1] - v[lo]);
}

/* CI of mean(xb) - mean(xa) (xa may be NULL: CI of mean(xb)) over m gathered
 * samples, using the cached draws. */
static int boot_ci(clens_boot *b, const double *xa, const double *xb, int m, double *lo, double *hi,
                   clens_error *err)
{
    int rc = boot_draws(b, m, err);
    if (rc) return rc;
    const int B = b->resamples;
    clens_rng r;
    clens_rng_seed(&r, b->seed);
    for (int k = 0; k < B; k++) {
        double sb = 0.0, sa = 0.0;
        if (b->draws) {
            const int *d = b->draws + (size_t)k * (size_t)m;
            for (int j = 0; j < m; j++) sb += xb[d[j]];
            if (xa)
                for (int j = 0; j < m; j++) sa += xa[d[j]];
        } else { /* uncached: the same draws, from the stream */
            for (int j = 0; j < m; j++) {
                int d = (int)clens_rng_below(&r, (uint64_t)m);
                sb += xb[d];
                if (xa) sa += xa[d];
            }
        }
        double mean = sb / (double)m;
        if (xa) mean = mean - sa / (double)m;
        b->means[k] = mean;
    }
    qsort(b->means, (size_t)B, sizeof(double), cmp_double);
    *lo = clens_percentile_sorted(b->means, B, 0.025);
    *hi = clens_percentile_sorted(b->means, B, 0.975);
    return CLENS_OK;
}

/* ------------------------------------------------------------ statistics */

int clens_site_stats_compute(clens_boot *boot, const double *r, const double *P, const double *D,
                             const unsigned char *def, int n, clens_site_stats *out,
                             clens_error *err)
{
    memset(out, 0, sizeof *out);
    int m = 0;
    double sum = 0.0, sumP = 0.0, sumD = 0.0;
    for (int i = 0; i < n; i++) {
        if (!def[i]) continue;
        m++;
        sum += r[i];
        sumP += P[i];
        sumD += D[i];
    }
    out->n_samples = m;
    out->n_undefined = n - m;
    if (m == 0) return CLENS_OK;

    out->has_mean = 1;
    out->mean = sum / (double)m;
    double ss = 0.0;
    for (int i = 0; i < n; i++) {
        if (!def[i]) continue;
        double d = r[i] - out->mean;
        ss += d * d;
    }
    out->sd = sqrt(ss / (double)m);
    if (fabs(sumD) >= CLENS_RECOVERY_MIN_ABS_D) {
        double q = (100.0 * sumP) / sumD;
        if (isfinite(q)) {
            out->has_ratio = 1;
            out->ratio_of_sums = q;
        }
    }

    double *tmp = malloc(sizeof(double) * (size_t)m);
    if (!tmp) return clens_err(err, CLENS_E_NOMEM, "stats: out of memory");
    for (int i = 0, k = 0; i < n; i++)
        if (def[i]) tmp[k++] = r[i];
    if (boot && boot->resamples > 0) {
        int rc = boot_ci(boot, NULL, tmp, m, &out->ci_lo, &out->ci_hi, err);
        if (rc) { free(tmp); return rc; }
        out->has_ci = 1;
    }
    qsort(tmp, (size_t)m, sizeof(double), cmp_double);
    out->median = (m % 2) ? tmp[m / 2] : (tmp[m / 2 - 1] + tmp[m / 2]) / 2.0;
    free(tmp);
    return CLENS_OK;
}

int clens_delta_stats_compute(clens_boot *boot, const double *ra, const unsigned char *defa,
                              const clens_site_stats *sa, const double *rb,
                              const unsigned char *defb, const clens_site_stats *sb, int n,
                              clens_delta_stats *out, clens_error *err)
{
    memset(out, 0, sizeof *out);
    if (sa->has_mean && sb->has_mean) {
        out->has_delta = 1;
        out->delta = sb->mean - sa->mean;
    }
    if (!boot || boot->resamples == 0) return CLENS_OK;
    int rc = boot_scratch(boot, n > 0 ? n : 1, err);
    if (rc) return rc;
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!defa[i] || !defb[i]) continue;
        boot->a[m] = ra[i];
        boot->b[m] = rb[i];
        m++;
    }
    if (m == 0) return CLENS_OK;
    rc = boot_ci(boot, boot->a, boot->b, m, &out->ci_lo, &out->ci_hi, err);
    if (rc) return rc;
    out->has_ci = 1;
    return CLENS_OK;
}
