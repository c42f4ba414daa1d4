/*
 * compare.c: the analysis of `clens compare` and its entry point
 * clens_compare_write (docs/compare.md). For each profile (loaded by
 * compare_load.c): per-point mean and bootstrap CI, per-step increments Δ with
 * paired bootstrap CIs (src/report/stats.c, the same procedure as results.json),
 * the profile label by the rule of docs/compare.md "Profile label" (study.md
 * §5.11) evaluated at the point increments and again at each CI bound, the
 * critical layer (first mean >= 50%) with a bootstrap CI, the peak; across
 * profiles, differences on a common relative-depth grid with paired or
 * independent bootstrap CIs; a plain-language paragraph. Then every report
 * file is written atomically into the output folder.
 * Arithmetic in a fixed order without FMA contraction (gcc's ISO C default;
 * clang is told by the pragma), so gcc and clang builds write the same bytes.
 */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/outdir.h"
#include "report/stats.h"
#include "report/compare_internal.h"

clens_compare_params clens_compare_default_params(void)
{
    clens_compare_params p;
    memset(&p, 0, sizeof p);
    p.resamples = 2000;
    p.seed = 0;
    p.min_jump = 10.0;
    p.mid_lo = 0.4;
    p.mid_hi = 0.8;
    p.critical_pct = 50.0;
    p.grid_step = 0.1;
    return p;
}

const char *cmp_kind_name(cmp_kind k)
{
    return k == CMP_RUN ? "run" : k == CMP_RESULTS ? "results" : "seed-fixture";
}

const char *cmp_f1(char *buf, size_t n, double x)
{
    if (!isfinite(x)) snprintf(buf, n, "–");
    else snprintf(buf, n, "%.1f", fabs(x) < 0.05 ? 0.0 : x);
    return buf;
}

/* ------------------------------------------------------------- per model */

/* Percentile of an ascending array that may end in +INFINITY entries. */
static double pct_inf(const double *v, int n, double p)
{
    double h = (n - 1) * p;
    int lo = (int)floor(h);
    if (lo >= n - 1) return v[n - 1];
    if (isinf(v[lo]) || isinf(v[lo + 1])) return (h - lo) > 0 || isinf(v[lo]) ? INFINITY : v[lo];
    return v[lo] + (h - lo) * (v[lo + 1] - v[lo]);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The rule's spike test for an increment value x at step i. */
static int is_spike(const clens_compare_params *p, const cmp_model *m, const cmp_step *st, double x)
{
    if (!st->has || st->trivial || !(x >= p->min_jump)) return 0;
    if (st->has_ci && m->has_median) return st->lo > m->median_delta || st->hi < m->median_delta;
    return 1;
}

/* The label from per-step spike flags (which: 0 point, 1 low bound, 2 high bound). */
static void label_of(const clens_compare_params *p, const cmp_model *m, int which, char *out, size_t n)
{
    int last = -1, mid = 0, fin = 0;
    for (int i = 1; i < m->n_pts; i++)
        if (m->step[i].has && !m->step[i].trivial) last = i;
    for (int i = 1; i < m->n_pts; i++) {
        const cmp_step *st = &m->step[i];
        int sp = which == 0 ? st->spike : which == 1 ? st->spike_lo : st->spike_hi;
        if (!sp) continue;
        if (m->depth[i] >= p->mid_lo && m->depth[i] <= p->mid_hi) mid = 1;
        if (i == last) fin = 1;
    }
    snprintf(out, n, "%s", mid && fin ? "hybrid" : mid ? "mid-spike" : fin ? "final-spike" : "gradual");
    (void)p;
}

/* Mean recovery at every point over the pairs idx[0..k) (defined ones only). */
static void resampled_means(const cmp_model *m, const int *idx, int k, double *out, double *sum, int *cnt)
{
    for (int j = 0; j < m->n_pts; j++) { sum[j] = 0; cnt[j] = 0; }
    for (int t = 0; t < k; t++) {
        const double *r = m->rec + (size_t)idx[t] * (size_t)m->n_pts;
        const unsigned char *d = m->def + (size_t)idx[t] * (size_t)m->n_pts;
        for (int j = 0; j < m->n_pts; j++)
            if (d[j]) { sum[j] += r[j]; cnt[j]++; }
    }
    for (int j = 0; j < m->n_pts; j++) out[j] = cnt[j] ? sum[j] / cnt[j] : NAN;
}

static int analyze_model(const clens_compare_params *p, cmp_model *m, clens_boot *boot, clens_error *err)
{
    int n = m->n_pairs, rc = 0;
    double *r = NULL, *P = NULL, *D = NULL, *rb = NULL, *crit = NULL, *mean = NULL, *sum = NULL;
    unsigned char *d = NULL, *db = NULL;
    int *idx = NULL, *cnt = NULL;
    if (n > 0) {
        r = malloc((size_t)n * sizeof *r); P = malloc((size_t)n * sizeof *P); D = malloc((size_t)n * sizeof *D);
        rb = malloc((size_t)n * sizeof *rb); d = malloc((size_t)n); db = malloc((size_t)n);
        if (!r || !P || !D || !rb || !d || !db) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
        clens_site_stats prev = {0};
        for (int j = 0; j < m->n_pts; j++) {
            for (int i = 0; i < n; i++) {
                r[i] = m->rec[(size_t)i * (size_t)m->n_pts + (size_t)j];
                d[i] = m->def[(size_t)i * (size_t)m->n_pts + (size_t)j];
                P[i] = r[i]; D[i] = 100.0; /* ratio of sums is not used here */
            }
            clens_site_stats st;
            if ((rc = clens_site_stats_compute(boot, r, P, D, d, n, &st, err))) goto done;
            m->mean[j] = st.has_mean ? st.mean : NAN;
            m->sd[j] = st.has_mean ? st.sd : NAN;
            m->n_samples[j] = st.n_samples;
            if (st.has_ci) { m->ci_lo[j] = st.ci_lo; m->ci_hi[j] = st.ci_hi; m->has_ci = 1; }
            if (j > 0) {
                clens_delta_stats ds;
                if ((rc = clens_delta_stats_compute(boot, rb, db, &prev, r, d, &st, n, &ds, err))) goto done;
                cmp_step *s = &m->step[j];
                s->has = ds.has_delta;
                s->delta = ds.delta;
                s->has_ci = ds.has_ci;
                s->lo = ds.ci_lo;
                s->hi = ds.ci_hi;
            }
            memcpy(rb, r, (size_t)n * sizeof *r);
            memcpy(db, d, (size_t)n);
            prev = st;
        }
    } else {
        for (int j = 1; j < m->n_pts; j++) {
            cmp_step *s = &m->step[j];
            s->has = isfinite(m->mean[j]) && isfinite(m->mean[j - 1]);
            s->delta = s->has ? m->mean[j] - m->mean[j - 1] : NAN;
        }
    }
    /* median increment over the candidate steps */
    {
        double *v = malloc((size_t)m->n_pts * sizeof *v);
        int k = 0;
        if (!v) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
        for (int j = 1; j < m->n_pts; j++) {
            m->step[j].trivial = m->layer_pre[j] >= m->n_layers;
            if (m->step[j].has && !m->step[j].trivial) v[k++] = m->step[j].delta;
        }
        qsort(v, (size_t)k, sizeof *v, cmp_double);
        m->has_median = k > 0;
        m->median_delta = k == 0 ? NAN : k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
        free(v);
    }
    for (int j = 1; j < m->n_pts; j++) {
        cmp_step *s = &m->step[j];
        s->spike = is_spike(p, m, s, s->delta);
        s->spike_lo = is_spike(p, m, s, s->has_ci ? s->lo : s->delta);
        s->spike_hi = is_spike(p, m, s, s->has_ci ? s->hi : s->delta);
    }
    label_of(p, m, 0, m->label_point, sizeof m->label_point);
    label_of(p, m, 1, m->label_lo, sizeof m->label_lo);
    label_of(p, m, 2, m->label_hi, sizeof m->label_hi);
    /* peak and critical layer */
    for (int j = 0; j < m->n_pts; j++) {
        if (isfinite(m->mean[j]) && (m->peak_idx < 0 || m->mean[j] > m->mean[m->peak_idx])) m->peak_idx = j;
        if (m->crit_idx < 0 && isfinite(m->mean[j]) && m->mean[j] >= p->critical_pct) m->crit_idx = j;
    }
    if (n > 0 && p->resamples > 0) {
        int B = p->resamples;
        crit = malloc((size_t)B * sizeof *crit);
        mean = malloc((size_t)m->n_pts * sizeof *mean);
        sum = malloc((size_t)m->n_pts * sizeof *sum);
        cnt = malloc((size_t)m->n_pts * sizeof *cnt);
        idx = malloc((size_t)n * sizeof *idx);
        if (!crit || !mean || !sum || !cnt || !idx) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
        clens_rng g;
        clens_rng_seed(&g, p->seed);
        m->crit_not_reached = 0;
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < n; t++) idx[t] = (int)clens_rng_below(&g, (uint64_t)n);
            resampled_means(m, idx, n, mean, sum, cnt);
            crit[b] = INFINITY;
            for (int j = 0; j < m->n_pts; j++)
                if (isfinite(mean[j]) && mean[j] >= p->critical_pct) { crit[b] = m->layer_pre[j]; break; }
            if (isinf(crit[b])) m->crit_not_reached++;
        }
        qsort(crit, (size_t)B, sizeof *crit, cmp_double);
        m->crit_has_ci = 1;
        m->crit_lo = pct_inf(crit, B, 0.025);
        m->crit_hi = pct_inf(crit, B, 0.975);
    }
done:
    free(r); free(P); free(D); free(rb); free(d); free(db); free(crit); free(mean); free(sum); free(cnt); free(idx);
    return rc;
}

/* The analysis of one profile alone (label, critical layer, CIs), for
 * callers outside `clens compare` (clens dynamics, src/interp/dynamics.c). */
int cmp_analyze(const clens_compare_params *p, cmp_model *m, clens_error *err)
{
    clens_boot *boot = NULL;
    int rc = clens_boot_new(&boot, p->resamples, p->seed, err);
    if (!rc) rc = analyze_model(p, m, boot, err);
    clens_boot_free(boot);
    return rc;
}

/* ------------------------------------------------------------ differences */

/* Linear interpolation of a profile (values v at m's depths) at depth x; NAN outside. */
static double interp(const cmp_model *m, const double *v, double x)
{
    const double eps = 1e-12;
    if (x < m->depth[0] - eps || x > m->depth[m->n_pts - 1] + eps) return NAN;
    for (int j = 0; j < m->n_pts; j++) {
        if (fabs(x - m->depth[j]) <= eps) return v[j];
        if (j + 1 < m->n_pts && x > m->depth[j] && x < m->depth[j + 1]) {
            double t = (x - m->depth[j]) / (m->depth[j + 1] - m->depth[j]);
            return v[j] + t * (v[j + 1] - v[j]);
        }
    }
    return NAN;
}

static int compute_diff(const clens_compare_params *p, cmp_set *s, cmp_diff *df, clens_error *err)
{
    const cmp_model *A = &s->m[df->a], *Bm = &s->m[df->b];
    int ng = (int)floor(1.0 / p->grid_step + 1e-9) + 1, rc = 0;
    df->n_grid = ng;
    df->grid = calloc((size_t)ng, sizeof *df->grid);
    df->diff = calloc((size_t)ng, sizeof *df->diff);
    df->lo = calloc((size_t)ng, sizeof *df->lo);
    df->hi = calloc((size_t)ng, sizeof *df->hi);
    if (!df->grid || !df->diff || !df->lo || !df->hi) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    for (int k = 0; k < ng; k++) {
        df->grid[k] = k * p->grid_step;
        df->diff[k] = interp(A, A->mean, df->grid[k]) - interp(Bm, Bm->mean, df->grid[k]);
        df->lo[k] = df->hi[k] = NAN;
    }
    /* paired when both have per-pair data over the same pair ids */
    int *map = NULL;
    if (A->n_pairs > 0 && A->n_pairs == Bm->n_pairs) {
        map = malloc((size_t)A->n_pairs * sizeof *map);
        if (!map) return clens_err(err, CLENS_E_NOMEM, "out of memory");
        int ok = 1;
        for (int i = 0; i < A->n_pairs && ok; i++) {
            map[i] = -1;
            for (int j = 0; j < Bm->n_pairs; j++)
                if (strcmp(A->pair_id[i], Bm->pair_id[j]) == 0) { map[i] = j; break; }
            ok = map[i] >= 0;
        }
        if (!ok) { free(map); map = NULL; }
    }
    df->paired = map != NULL;
    df->n_common = map ? A->n_pairs : 0;
    if (A->n_pairs == 0 || Bm->n_pairs == 0 || p->resamples == 0) { free(map); return 0; }
    int Bn = p->resamples, na = A->n_pairs, nb = Bm->n_pairs, nmax = na > nb ? na : nb;
    int pmax = A->n_pts > Bm->n_pts ? A->n_pts : Bm->n_pts;
    double *vals = malloc((size_t)Bn * (size_t)ng * sizeof *vals), *ma = malloc((size_t)pmax * sizeof *ma);
    double *mb = malloc((size_t)pmax * sizeof *mb), *sum = malloc((size_t)pmax * sizeof *sum);
    double *col = malloc((size_t)Bn * sizeof *col);
    int *ia = malloc((size_t)nmax * sizeof *ia), *ib = malloc((size_t)nmax * sizeof *ib);
    int *cnt = malloc((size_t)pmax * sizeof *cnt);
    if (!vals || !ma || !mb || !sum || !col || !ia || !ib || !cnt) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    clens_rng g;
    clens_rng_seed(&g, p->seed);
    for (int b = 0; b < Bn; b++) {
        for (int t = 0; t < na; t++) ia[t] = (int)clens_rng_below(&g, (uint64_t)na);
        if (map) for (int t = 0; t < na; t++) ib[t] = map[ia[t]];
        else for (int t = 0; t < nb; t++) ib[t] = (int)clens_rng_below(&g, (uint64_t)nb);
        resampled_means(A, ia, na, ma, sum, cnt);
        resampled_means(Bm, ib, map ? na : nb, mb, sum, cnt);
        for (int k = 0; k < ng; k++)
            vals[(size_t)b * (size_t)ng + (size_t)k] = interp(A, ma, df->grid[k]) - interp(Bm, mb, df->grid[k]);
    }
    for (int k = 0; k < ng; k++) {
        if (!isfinite(df->diff[k])) continue;
        int c = 0;
        for (int b = 0; b < Bn; b++) {
            double v = vals[(size_t)b * (size_t)ng + (size_t)k];
            if (isfinite(v)) col[c++] = v;
        }
        if (c == 0) continue;
        qsort(col, (size_t)c, sizeof *col, cmp_double);
        df->lo[k] = clens_percentile_sorted(col, c, 0.025);
        df->hi[k] = clens_percentile_sorted(col, c, 0.975);
        df->has_ci = 1;
    }
done:
    free(map); free(vals); free(ma); free(mb); free(sum); free(col); free(ia); free(ib); free(cnt);
    return rc;
}

/* -------------------------------------------------------------- paragraph */

static void sbp(clens_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sbp(clens_sb *b, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    clens_sb_puts(b, buf);
}

static char *paragraph(const cmp_set *s)
{
    clens_sb b = {0};
    const clens_compare_params *p = &s->p;
    char x[32], y[32], z[32];
    int any_nopair = 0;
    for (int i = 0; i < s->n_models; i++) {
        const cmp_model *m = &s->m[i];
        sbp(&b, "%s (%s, %d layers, %s): by the rule the profile is %s", m->label, m->training, m->n_layers,
            m->n_pairs ? "per-pair data" : "aggregates only", m->label_point);
        if (m->seed_label && strcmp(m->seed_label, m->label_point) != 0)
            sbp(&b, " (the seed called it %s by eye)", m->seed_label);
        else if (m->seed_label)
            sbp(&b, " (as the seed called it)");
        int nsp = 0;
        for (int j = 1; j < m->n_pts; j++)
            if (m->step[j].spike) nsp++;
        if (nsp) {
            sbp(&b, "; spike%s at", nsp > 1 ? "s" : "");
            for (int j = 1, k = 0; j < m->n_pts; j++)
                if (m->step[j].spike) {
                    const cmp_step *st = &m->step[j];
                    if (st->has_ci)
                        sbp(&b, "%s L%d→L%d (d = %.2f, Δ = %s, CI [%s, %s])", k++ ? "," : "", m->layer[j - 1], m->layer[j],
                            m->depth[j], cmp_f1(x, sizeof x, st->delta), cmp_f1(y, sizeof y, st->lo), cmp_f1(z, sizeof z, st->hi));
                    else
                        sbp(&b, "%s L%d→L%d (d = %.2f, Δ = %s)", k++ ? "," : "", m->layer[j - 1], m->layer[j], m->depth[j],
                            cmp_f1(x, sizeof x, st->delta));
                }
        }
        sbp(&b, ". ");
        if (!m->n_pairs) {
            any_nopair = 1;
            sbp(&b, "Without per-pair values no CI is available: the label comes from point values only and "
                    "cannot be told apart from noise. ");
        } else if (strcmp(m->label_lo, m->label_point) || strcmp(m->label_hi, m->label_point)) {
            sbp(&b, "The label rests on a CI that crosses its threshold: with each increment at its lower CI bound "
                    "it would be %s, at its upper bound %s. ", m->label_lo, m->label_hi);
        } else {
            sbp(&b, "The label holds at both ends of every increment's CI. ");
        }
        if (m->crit_idx >= 0) {
            sbp(&b, "It first reaches %.0f%% at resid_pre %d (d = %.2f%s)", p->critical_pct, m->layer_pre[m->crit_idx],
                m->depth[m->crit_idx], m->layer_pre[m->crit_idx] >= m->n_layers ? ", after the last block: 100% by construction" : "");
            if (m->crit_has_ci) {
                if (isinf(m->crit_hi))
                    sbp(&b, ", CI [%.1f, not reached]", m->crit_lo);
                else
                    sbp(&b, ", CI [%.1f, %.1f]", m->crit_lo, m->crit_hi);
            }
            sbp(&b, ". ");
        } else {
            sbp(&b, "It never reaches %.0f%% at a sampled layer. ", p->critical_pct);
        }
        sbp(&b, "\n\n");
    }
    int n_noci = 0;
    for (int k = 0; k < s->n_diffs; k++) {
        const cmp_diff *d = &s->d[k];
        const cmp_model *A = &s->m[d->a], *B = &s->m[d->b];
        if (!d->has_ci) { n_noci++; continue; }
        sbp(&b, "%s − %s on the depth grid: ", A->label, B->label);
        {
            int nsig = 0, ndef = 0;
            for (int g = 0; g < d->n_grid; g++)
                if (isfinite(d->lo[g])) {
                    ndef++;
                    if (d->lo[g] > 0 || d->hi[g] < 0) nsig++;
                }
            if (nsig == 0)
                sbp(&b, "no grid point's CI excludes 0 (%d points): the data do not show a difference in profile. ", ndef);
            else {
                sbp(&b, "the CI excludes 0 at %d of %d grid points (d =", nsig, ndef);
                for (int g = 0, c = 0; g < d->n_grid; g++)
                    if (isfinite(d->lo[g]) && (d->lo[g] > 0 || d->hi[g] < 0)) sbp(&b, "%s %.2f", c++ ? "," : "", d->grid[g]);
                sbp(&b, "). ");
            }
            if (d->paired)
                sbp(&b, "Paired bootstrap over %d shared pairs, so the difference is a model effect on the same data. ",
                    d->n_common);
            else
                sbp(&b, "The pair sets differ (independent bootstrap), so the difference mixes model and data effects. ");
        }
        sbp(&b, "\n\n");
    }
    if (n_noci)
        sbp(&b, "%d pairwise difference%s involve a profile without per-pair values: point differences only, no CI "
                "(comparison.md lists them).\n\n", n_noci, n_noci == 1 ? "" : "s");
    sbp(&b, "What the data do not support: relative depth aligns depth fractions, not functions, between models "
            "of different depth; increments depend on the layer sampling step (a step over two layers adds two "
            "layers' change); the step into resid_pre n_layers is 100%% by construction and is never a spike; "
            "a label says where the mean profile steps, not what computes there.");
    if (any_nopair)
        sbp(&b, " Profiles without per-pair values (published aggregates) carry no uncertainty at all.");
    for (int i = 0; i < s->n_models; i++)
        if (s->m[i].kind == CMP_SEED) {
            sbp(&b, " The seed's profiles come from a different on-policy pair set per model, so differences between "
                    "them mix model and data effects, and its tables have known inconsistencies (see each model's notes).");
            break;
        }
    sbp(&b, "\n");
    return clens_sb_take(&b);
}

/* ------------------------------------------------------------------ JSON */

static json_t *jnum(double x) { return isfinite(x) ? json_real(x) : json_null(); }
static json_t *jci(int has, double lo, double hi)
{
    if (!has || !isfinite(lo)) return json_null();
    return json_pack("[o,o]", jnum(lo), jnum(hi));
}

static json_t *model_json(const clens_compare_params *p, const cmp_model *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "label", json_string(m->label));
    json_object_set_new(o, "training", json_string(m->training));
    json_object_set_new(o, "source", json_string(m->source));
    json_object_set_new(o, "kind", json_string(cmp_kind_name(m->kind)));
    json_object_set_new(o, "mode", json_string(m->mode ? m->mode : "?"));
    json_object_set_new(o, "metric", json_string(m->metric ? m->metric : "?"));
    json_object_set_new(o, "site_type", json_string(m->site_type));
    json_object_set_new(o, "n_layers", json_integer(m->n_layers));
    json_object_set_new(o, "n_pairs", json_integer(m->n_pairs));
    json_object_set_new(o, "per_pair", json_boolean(m->n_pairs > 0));
    json_object_set_new(o, "has_final_tokens", json_boolean(m->has_tokens));
    json_t *prof = json_array();
    for (int j = 0; j < m->n_pts; j++) {
        const cmp_step *st = &m->step[j];
        json_t *e = json_object();
        json_object_set_new(e, "layer", json_integer(m->layer[j]));
        json_object_set_new(e, "layer_resid_pre", json_integer(m->layer_pre[j]));
        json_object_set_new(e, "depth", jnum(m->depth[j]));
        json_object_set_new(e, "mean", jnum(m->mean[j]));
        json_object_set_new(e, "sd", jnum(m->sd[j]));
        json_object_set_new(e, "n", json_integer(m->n_samples[j]));
        json_object_set_new(e, "ci95", jci(m->has_ci, m->ci_lo[j], m->ci_hi[j]));
        json_object_set_new(e, "delta", j > 0 && st->has ? jnum(st->delta) : json_null());
        json_object_set_new(e, "delta_ci95", j > 0 ? jci(st->has_ci, st->lo, st->hi) : json_null());
        json_object_set_new(e, "trivial", json_boolean(j > 0 && st->trivial));
        json_object_set_new(e, "spike", json_boolean(j > 0 && st->spike));
        if (m->published_delta) json_object_set_new(e, "published_delta", jnum(m->published_delta[j]));
        json_array_append_new(prof, e);
    }
    json_object_set_new(o, "profile", prof);
    json_object_set_new(o, "median_delta", jnum(m->median_delta));
    /* the three largest increments */
    json_t *jumps = json_array();
    unsigned char *used = calloc((size_t)m->n_pts, 1);
    for (int k = 0; k < 3 && used; k++) {
        int best = -1;
        for (int j = 1; j < m->n_pts; j++)
            if (!used[j] && m->step[j].has && (best < 0 || m->step[j].delta > m->step[best].delta)) best = j;
        if (best < 0) break;
        used[best] = 1;
        const cmp_step *st = &m->step[best];
        json_array_append_new(jumps, json_pack("{s:i, s:i, s:i, s:o, s:o, s:o, s:b, s:b}", "from", m->layer[best - 1], "to",
                                               m->layer[best], "to_resid_pre", m->layer_pre[best], "depth", jnum(m->depth[best]),
                                               "delta", jnum(st->delta), "ci95", jci(st->has_ci, st->lo, st->hi),
                                               "spike", st->spike, "trivial", st->trivial));
    }
    free(used);
    json_object_set_new(o, "largest_jumps", jumps);
    json_object_set_new(o, "label", json_string(m->label));
    json_t *lab = json_object();
    json_object_set_new(lab, "point", json_string(m->label_point));
    json_object_set_new(lab, "at_ci_low", json_string(m->label_lo));
    json_object_set_new(lab, "at_ci_high", json_string(m->label_hi));
    json_object_set_new(lab, "stable", json_boolean(m->n_pairs > 0 && !strcmp(m->label_lo, m->label_point) &&
                                                    !strcmp(m->label_hi, m->label_point)));
    json_object_set_new(lab, "basis", json_string(m->n_pairs > 0 && p->resamples > 0
                                                      ? "increments with paired bootstrap CIs"
                                                      : "point values only (no per-pair data: CIs unavailable)"));
    if (m->seed_label) json_object_set_new(lab, "seed", json_string(m->seed_label));
    json_object_set_new(o, "profile_label", lab);
    json_t *crit = json_object();
    if (m->crit_idx >= 0) {
        json_object_set_new(crit, "layer", json_integer(m->layer[m->crit_idx]));
        json_object_set_new(crit, "layer_resid_pre", json_integer(m->layer_pre[m->crit_idx]));
        json_object_set_new(crit, "depth", jnum(m->depth[m->crit_idx]));
    } else {
        json_object_set_new(crit, "layer", json_null());
    }
    json_object_set_new(crit, "ci95_resid_pre", m->crit_has_ci ? json_pack("[o,o]", jnum(m->crit_lo), jnum(m->crit_hi)) : json_null());
    json_object_set_new(crit, "resamples_not_reached", m->crit_has_ci ? json_integer(m->crit_not_reached) : json_null());
    json_object_set_new(o, "critical", crit);
    if (m->peak_idx >= 0)
        json_object_set_new(o, "peak", json_pack("{s:i, s:i, s:o}", "layer", m->layer[m->peak_idx], "layer_resid_pre",
                                                 m->layer_pre[m->peak_idx], "mean", jnum(m->mean[m->peak_idx])));
    json_object_set_new(o, "settings", m->settings ? json_incref(m->settings) : json_null());
    json_object_set_new(o, "provenance", m->provenance ? json_incref(m->provenance) : json_null());
    json_object_set_new(o, "behaviour", m->behaviour ? json_incref(m->behaviour) : json_null());
    if (m->notes) json_object_set_new(o, "notes", json_incref(m->notes));
    return o;
}

static char *render_json(const cmp_set *s)
{
    const clens_compare_params *p = &s->p;
    json_t *root = json_object();
    json_object_set_new(root, "format", json_string("clens-comparison"));
    json_object_set_new(root, "version", json_integer(1));
    json_object_set_new(root, "clens_version", json_string(CLENS_VERSION));
    json_object_set_new(root, "params", json_pack("{s:i, s:I, s:o, s:[o,o], s:o, s:o}", "resamples", p->resamples, "seed",
                                                  (json_int_t)p->seed, "min_jump", jnum(p->min_jump), "mid_range",
                                                  jnum(p->mid_lo), jnum(p->mid_hi), "critical_pct", jnum(p->critical_pct),
                                                  "grid_step", jnum(p->grid_step)));
    json_object_set_new(root, "rule", json_string(
        "spike at step L (increment into resid_pre layer L from the previous sampled layer): delta >= min_jump and, "
        "where per-pair data exist, its paired bootstrap 95% CI excludes the median increment; steps ending at "
        "resid_pre n_layers are excluded; mid-spike: a spike with mid_range[0] <= L/n_layers <= mid_range[1]; "
        "final-spike: a spike at the last non-trivial step; hybrid: both; gradual: neither (docs/compare.md)"));
    json_t *ms = json_array();
    for (int i = 0; i < s->n_models; i++) {
        json_t *mj = model_json(p, &s->m[i]);
        if (s->ev) json_object_set_new(mj, "evidence", cmp_evidence_json(s, i));
        json_array_append_new(ms, mj);
    }
    json_object_set_new(root, "models", ms);
    json_t *ds = json_array();
    for (int k = 0; k < s->n_diffs; k++) {
        const cmp_diff *d = &s->d[k];
        json_t *g = json_array();
        for (int q = 0; q < d->n_grid; q++)
            if (isfinite(d->diff[q]))
                json_array_append_new(g, json_pack("{s:o, s:o, s:o}", "depth", jnum(d->grid[q]), "diff", jnum(d->diff[q]),
                                                   "ci95", jci(isfinite(d->lo[q]), d->lo[q], d->hi[q])));
        json_array_append_new(ds, json_pack("{s:s, s:s, s:b, s:i, s:s, s:o}", "a", s->m[d->a].label, "b", s->m[d->b].label,
                                            "paired", d->paired, "n_common_pairs", d->n_common, "bootstrap",
                                            !d->has_ci ? "none" : d->paired ? "paired" : "independent", "grid", g));
    }
    json_object_set_new(root, "differences", ds);
    json_object_set_new(root, "summary", json_string(s->paragraph ? s->paragraph : ""));
    clens_sb b = {0};
    clens_sb_json_value(&b, root, 0);
    clens_sb_puts(&b, "\n");
    json_decref(root);
    return clens_sb_take(&b);
}

/* -------------------------------------------------------------- pairs.csv */

static void csv_field(clens_sb *b, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) { clens_sb_puts(b, s); return; }
    clens_sb_puts(b, "\"");
    for (; *s; s++) {
        if (*s == '"') clens_sb_puts(b, "\"\"");
        else clens_sb_put(b, s, 1);
    }
    clens_sb_puts(b, "\"");
}

static void csv_num(clens_sb *b, json_t *v)
{
    char buf[40];
    if (json_is_number(v)) clens_sb_puts(b, clens_fmt_double(buf, sizeof buf, json_number_value(v)));
}

static void csv_row(clens_sb *b, const cmp_model *m, const char *id, const char *site, int layer, int head, json_t *clean,
                    json_t *corr, json_t *patched)
{
    char buf[40];
    csv_field(b, m->label); clens_sb_puts(b, ",");
    csv_field(b, id); clens_sb_puts(b, ",");
    csv_field(b, site); clens_sb_printf(b, ",%d,", layer);
    if (head >= 0) clens_sb_printf(b, "%d", head);
    clens_sb_puts(b, ",");
    csv_num(b, clean); clens_sb_puts(b, ",");
    csv_num(b, corr); clens_sb_puts(b, ",");
    csv_num(b, patched); clens_sb_puts(b, ",");
    double out;
    if (json_is_number(clean) && json_is_number(corr) && json_is_number(patched) &&
        clens_recovery(json_number_value(patched), json_number_value(clean), json_number_value(corr), &out))
        clens_sb_puts(b, clens_fmt_double(buf, sizeof buf, out));
    clens_sb_puts(b, "\n");
}

static char *render_csv(const cmp_set *s)
{
    clens_sb b = {0};
    char buf[40];
    clens_sb_puts(&b, "model,pair_id,site,layer,head,clean,corr,patched,recovery\n");
    for (int i = 0; i < s->n_models; i++) {
        const cmp_model *m = &s->m[i];
        if (m->kind == CMP_RUN) {
            for (int q = 0; q < m->n_pairs; q++) {
                json_t *r = json_array_get(m->records, (size_t)q);
                json_t *mm = json_object_get(json_object_get(r, "metrics"), m->metric);
                json_t *clean = json_object_get(mm, "clean"), *corr = json_object_get(mm, "corr");
                json_t *pat = json_object_get(mm, "patched");
                for (int t = 0; t < m->n_types; t++) {
                    const cmp_sitetype *ty = &m->types[t];
                    json_t *vals = json_object_get(pat, ty->name);
                    for (int l = 0; l < ty->n_layers; l++) {
                        json_t *v = json_array_get(vals, (size_t)l);
                        if (ty->is_z)
                            for (int h = 0; h < m->n_heads; h++)
                                csv_row(&b, m, m->pair_id[q], ty->name, ty->layers[l], h, clean, corr, json_array_get(v, (size_t)h));
                        else
                            csv_row(&b, m, m->pair_id[q], ty->name, ty->layers[l], -1, clean, corr, v);
                    }
                }
            }
        } else if (m->n_pairs > 0) { /* results.json pairs: recovery only */
            for (int q = 0; q < m->n_pairs; q++)
                for (int j = 0; j < m->n_pts; j++) {
                    csv_field(&b, m->label); clens_sb_puts(&b, ",");
                    csv_field(&b, m->pair_id[q]);
                    clens_sb_printf(&b, ",%s,%d,,,,,", m->site_type, m->layer[j]);
                    if (m->def[(size_t)q * (size_t)m->n_pts + (size_t)j])
                        clens_sb_puts(&b, clens_fmt_double(buf, sizeof buf, m->rec[(size_t)q * (size_t)m->n_pts + (size_t)j]));
                    clens_sb_puts(&b, "\n");
                }
        }
    }
    return clens_sb_take(&b);
}

/* ------------------------------------------------------------ settings.json */

/* sha256 of a file, or of DIR/settings.json + DIR/records.jsonl (results.json without records). */
static json_t *input_identity(const char *input)
{
    json_t *o = json_object();
    const char *names[] = {"settings.json", "records.jsonl", "results.json"};
    char hex[65];
    clens_error e = {0};
    if (clens_sha256_file_hex(input, hex, &e) == 0) {
        json_object_set_new(o, "sha256", json_string(hex));
        return o;
    }
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        size_t n = strlen(input) + strlen(names[i]) + 2;
        char *p = malloc(n);
        if (!p) break;
        snprintf(p, n, "%s/%s", input, names[i]);
        if (clens_sha256_file_hex(p, hex, &e) == 0) json_object_set_new(o, names[i], json_string(hex));
        free(p);
    }
    return o;
}

static json_t *str_array(const char *const *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_string(v[i]));
    return a;
}

/* Writes out_dir/settings.json ({settings, settings_hash, provenance}); refuses a
 * folder holding another comparison's settings, naming the first differing key
 * (docs/rulings.md, output folders). */
static int write_settings(const clens_compare_params *p, const char *const *inputs, int n_inputs, const char *out_dir,
                          clens_error *err)
{
    json_t *st = json_pack("{s:o, s:i, s:I, s:o, s:[o,o], s:o, s:o, s:o, s:o}", "inputs", str_array(inputs, n_inputs),
                           "resamples", p->resamples, "seed", (json_int_t)p->seed, "min_jump", jnum(p->min_jump),
                           "mid_range", jnum(p->mid_lo), jnum(p->mid_hi), "critical_pct", jnum(p->critical_pct),
                           "grid_step", jnum(p->grid_step), "labels", str_array(p->labels, p->n_labels), "trainings",
                           str_array(p->trainings, p->n_trainings));
    /* attachments: keys only when given, so older comparison folders keep their hash */
    if (st && p->n_probes) json_object_set_new(st, "probes", str_array(p->probes, p->n_probes));
    if (st && p->n_steers) json_object_set_new(st, "steers", str_array(p->steers, p->n_steers));
    if (st && p->n_atps) json_object_set_new(st, "atps", str_array(p->atps, p->n_atps));
    clens_sb b = {0};
    clens_sb_json_value(&b, st, 0);
    char *canon = clens_sb_take(&b), hex[65];
    int rc = 0;
    size_t n = strlen(out_dir) + 16;
    char *path = malloc(n);
    if (!st || !canon || !path) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    clens_sha256_hex(canon, strlen(canon), hex);
    snprintf(path, n, "%s/settings.json", out_dir);
    int found;
    if ((rc = clens_outdir_check(out_dir, "comparison", st, hex, NULL, &found, err))) goto done;
    json_t *prov = json_object();
    json_object_set_new(prov, "clens_version", json_string(CLENS_VERSION));
    json_t *ids = json_array();
    for (int i = 0; i < n_inputs; i++) json_array_append_new(ids, input_identity(inputs[i]));
    json_object_set_new(prov, "inputs_sha256", ids);
    json_t *doc = json_pack("{s:o, s:s, s:o}", "settings", json_incref(st), "settings_hash", hex, "provenance", prov);
    rc = clens_json_write_atomic(path, doc, err);
    json_decref(doc);
done:
    json_decref(st);
    free(canon);
    free(path);
    return rc;
}

/* ------------------------------------------------------------ entry point */

static void set_free(cmp_set *s)
{
    for (int i = 0; i < s->n_models; i++) cmp_model_clear(&s->m[i]);
    free(s->m);
    for (int k = 0; k < s->n_diffs; k++) { free(s->d[k].grid); free(s->d[k].diff); free(s->d[k].lo); free(s->d[k].hi); }
    free(s->d);
    free(s->paragraph);
    cmp_evidence_free(s);
}

static int write_text(const char *dir, const char *name, const char *text, clens_error *err)
{
    if (!text) return clens_err(err, CLENS_E_NOMEM, "out of memory rendering %s", name);
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    snprintf(p, n, "%s/%s", dir, name);
    int rc = clens_write_file_atomic(p, text, strlen(text), err);
    free(p);
    return rc;
}

int clens_compare_write(const char *const *inputs, int n_inputs, const clens_compare_params *params,
                        const char *out_dir, char **summary_md, clens_error *err)
{
    cmp_set s;
    memset(&s, 0, sizeof s);
    s.p = params ? *params : clens_compare_default_params();
    clens_boot *boot = NULL;
    char *json = NULL, *md = NULL, *csv = NULL, *html = NULL, *svg = NULL;
    int rc = 0;
    if (summary_md) *summary_md = NULL;
    if (n_inputs < 1) return clens_err(err, CLENS_E_ARG, "no inputs");
    if (s.p.resamples < 0 || !(s.p.grid_step > 0 && s.p.grid_step <= 1) || !(s.p.mid_lo <= s.p.mid_hi))
        return clens_err(err, CLENS_E_ARG, "bad parameters (resamples >= 0, 0 < grid_step <= 1, mid_lo <= mid_hi)");
    for (int i = 0; i < n_inputs; i++)
        if ((rc = cmp_load_input(&s, inputs[i], err))) goto done;
    if ((rc = cmp_evidence_load(&s, err))) goto done;
    if ((rc = clens_boot_new(&boot, s.p.resamples, s.p.seed, err))) goto done;
    for (int i = 0; i < s.n_models; i++)
        if ((rc = analyze_model(&s.p, &s.m[i], boot, err))) goto done;
    if ((rc = cmp_evidence_finish(&s, err))) goto done;
    if (s.n_models > 1) {
        s.d = calloc((size_t)s.n_models * (size_t)(s.n_models - 1) / 2, sizeof *s.d);
        if (!s.d) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
        for (int a = 0; a < s.n_models; a++)
            for (int b = a + 1; b < s.n_models; b++) {
                cmp_diff *d = &s.d[s.n_diffs++];
                d->a = a;
                d->b = b;
                if ((rc = compute_diff(&s.p, &s, d, err))) goto done;
            }
    }
    s.paragraph = paragraph(&s);
    if (!s.paragraph) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    if (s.ev) {
        char *extra = cmp_evidence_paragraph(&s);
        size_t la = strlen(s.paragraph), lb = extra ? strlen(extra) : 0;
        char *both = extra ? realloc(s.paragraph, la + lb + 1) : NULL;
        if (!both) { free(extra); rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
        memcpy(both + la, extra, lb + 1);
        s.paragraph = both;
        free(extra);
    }
    json = render_json(&s);
    md = cmp_render_md(&s);
    csv = render_csv(&s);
    if ((rc = clens_mkdir_p(out_dir, err))) goto done;
    if ((rc = write_settings(&s.p, inputs, n_inputs, out_dir, err))) goto done;
    if ((rc = write_text(out_dir, "comparison.json", json, err))) goto done;
    if ((rc = write_text(out_dir, "comparison.md", md, err))) goto done;
    if ((rc = write_text(out_dir, "pairs.csv", csv, err))) goto done;
    svg = cmp_svg_profiles(&s, 1);
    if ((rc = write_text(out_dir, "recovery_depth.svg", svg, err))) goto done;
    free(svg);
    svg = cmp_svg_profiles(&s, 0);
    if ((rc = write_text(out_dir, "recovery_layer.svg", svg, err))) goto done;
    for (int i = 0; i < s.n_models; i++) {
        char name[64];
        free(svg);
        svg = cmp_svg_deltas(&s, i);
        snprintf(name, sizeof name, "delta_%d.svg", i + 1);
        if ((rc = write_text(out_dir, name, svg, err))) goto done;
        if (s.m[i].z_index >= 0) {
            free(svg);
            svg = cmp_svg_heat(&s, i);
            snprintf(name, sizeof name, "heads_%d.svg", i + 1);
            if ((rc = write_text(out_dir, name, svg, err))) goto done;
        }
        if (s.ev && s.ev[i].n_rows > 0) {
            free(svg);
            svg = cmp_svg_evidence(&s, i);
            snprintf(name, sizeof name, "evidence_%d.svg", i + 1);
            if ((rc = write_text(out_dir, name, svg, err))) goto done;
        }
        if (s.ev && s.ev[i].n_atp_sites > 0) {
            free(svg);
            svg = cmp_svg_atp(&s, i);
            snprintf(name, sizeof name, "atp_%d.svg", i + 1);
            if ((rc = write_text(out_dir, name, svg, err))) goto done;
        }
    }
    html = cmp_render_html(&s, json);
    if ((rc = write_text(out_dir, "report.html", html, err))) goto done;
    if (summary_md) { *summary_md = md; md = NULL; }
done:
    clens_boot_free(boot);
    free(json); free(md); free(csv); free(html); free(svg);
    set_free(&s);
    return rc;
}
