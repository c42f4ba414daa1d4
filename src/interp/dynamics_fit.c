/*
 * dynamics_fit.c: the curve fits of `clens dynamics` (docs/dynamics.md
 * "Fits"): recovery y against training step t as a straight line (closed-form
 * least squares) and as a logistic step lo + (hi - lo) / (1 + e^(-(t-loc)/w))
 * with GSL's nonlinear least squares (gsl_multifit_nlinear, trust region with
 * Levenberg-Marquardt steps), the two compared by BIC, and the verdict rule.
 * The logistic is fitted on t rescaled to [0, 1] (steps span thousands; the
 * solver's scaling is better near 1) with the width as log w (kept > 0), and
 * from many starts, because its SSE surface has a plateau wherever the step
 * falls between two checkpoints.
 */
#include <gsl/gsl_errno.h>
#include <gsl/gsl_multifit_nlinear.h>
#include <gsl/gsl_vector.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/dynamics.h"

double dyn_logistic_eval(const dyn_logistic *f, double t)
{
    double z = (t - f->loc) / f->width;
    if (z > 700) return f->hi;
    if (z < -700) return f->lo;
    return f->lo + (f->hi - f->lo) / (1 + exp(-z));
}

double dyn_bic(double sse, int n, int k)
{
    double floor_ = 1e-12 * n;
    if (!(sse > floor_)) sse = floor_;
    return n * log(sse / n) + k * log((double)n);
}

void dyn_fit_linear(const double *t, const double *y, int n, dyn_linear *out)
{
    double mt = 0, my = 0, stt = 0, sty = 0, sse = 0;
    for (int i = 0; i < n; i++) { mt += t[i]; my += y[i]; }
    mt /= n; my /= n;
    for (int i = 0; i < n; i++) { stt += (t[i] - mt) * (t[i] - mt); sty += (t[i] - mt) * (y[i] - my); }
    out->b = stt > 0 ? sty / stt : 0;
    out->a = my - out->b * mt;
    for (int i = 0; i < n; i++) { double r = y[i] - out->a - out->b * t[i]; sse += r * r; }
    out->sse = sse;
    out->bic = dyn_bic(sse, n, 2);
}

typedef struct fit_data {
    const double *t, *y; /* t rescaled */
    int n;
} fit_data;

/* x = (lo, hi, loc, log w) on the rescaled axis. */
static int resid_f(const gsl_vector *x, void *data, gsl_vector *f)
{
    const fit_data *d = data;
    double lo = gsl_vector_get(x, 0), hi = gsl_vector_get(x, 1), loc = gsl_vector_get(x, 2);
    double w = exp(gsl_vector_get(x, 3));
    for (int i = 0; i < d->n; i++) {
        double z = (d->t[i] - loc) / w;
        double s = z > 700 ? 1 : z < -700 ? 0 : 1 / (1 + exp(-z));
        gsl_vector_set(f, (size_t)i, lo + (hi - lo) * s - d->y[i]);
    }
    return GSL_SUCCESS;
}

static int resid_df(const gsl_vector *x, void *data, gsl_matrix *J)
{
    const fit_data *d = data;
    double lo = gsl_vector_get(x, 0), hi = gsl_vector_get(x, 1), loc = gsl_vector_get(x, 2);
    double w = exp(gsl_vector_get(x, 3));
    for (int i = 0; i < d->n; i++) {
        double z = (d->t[i] - loc) / w;
        double s = z > 700 ? 1 : z < -700 ? 0 : 1 / (1 + exp(-z));
        double ds = s * (1 - s); /* d s / d z */
        gsl_matrix_set(J, (size_t)i, 0, 1 - s);
        gsl_matrix_set(J, (size_t)i, 1, s);
        gsl_matrix_set(J, (size_t)i, 2, (hi - lo) * ds * (-1 / w));
        gsl_matrix_set(J, (size_t)i, 3, (hi - lo) * ds * (-z)); /* d z / d log w = -z */
    }
    (void)lo;
    return GSL_SUCCESS;
}

/* One start; returns the SSE (INFINITY if the solver failed) and the solution in x0. */
static double solve_one(gsl_multifit_nlinear_workspace *w, gsl_multifit_nlinear_fdf *fdf, double x0[4])
{
    gsl_vector_view xv = gsl_vector_view_array(x0, 4);
    if (gsl_multifit_nlinear_init(&xv.vector, fdf, w) != GSL_SUCCESS) return INFINITY;
    int info = 0;
    int st = gsl_multifit_nlinear_driver(200, 1e-10, 1e-10, 1e-12, NULL, NULL, &info, w);
    (void)st; /* GSL_EMAXITER still leaves the best point so far: keep it, its SSE decides */
    gsl_vector *x = gsl_multifit_nlinear_position(w), *f = gsl_multifit_nlinear_residual(w);
    double sse = 0;
    for (size_t i = 0; i < f->size; i++) sse += gsl_vector_get(f, i) * gsl_vector_get(f, i);
    for (int k = 0; k < 4; k++) x0[k] = gsl_vector_get(x, (size_t)k);
    if (!isfinite(sse) || !isfinite(x0[0]) || !isfinite(x0[1]) || !isfinite(x0[2]) || !isfinite(x0[3])) return INFINITY;
    return sse;
}

int dyn_fit_logistic(const double *t, const double *y, int n, const dyn_logistic *guess, dyn_logistic *out)
{
    memset(out, 0, sizeof *out);
    out->sse = out->bic = INFINITY;
    if (n < 5) return 0;
    double tmin = t[0], tmax = t[0];
    for (int i = 1; i < n; i++) { tmin = t[i] < tmin ? t[i] : tmin; tmax = t[i] > tmax ? t[i] : tmax; }
    double span = tmax - tmin;
    if (!(span > 0)) return 0;
    double *ts = malloc(sizeof *ts * (size_t)n);
    if (!ts) return CLENS_E_NOMEM;
    for (int i = 0; i < n; i++) ts[i] = (t[i] - tmin) / span;
    /* checkpoints sorted by step (the starts use consecutive midpoints) */
    double *srt = malloc(sizeof *srt * (size_t)n);
    if (!srt) { free(ts); return CLENS_E_NOMEM; }
    memcpy(srt, ts, sizeof *srt * (size_t)n);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && srt[j - 1] > srt[j]; j--) { double tmp = srt[j]; srt[j] = srt[j - 1]; srt[j - 1] = tmp; }
    double ylo = y[0], yhi = y[0];
    for (int i = 0; i < n; i++) { ylo = y[i] < ylo ? y[i] : ylo; yhi = y[i] > yhi ? y[i] : yhi; }
    /* direction: compare the means of the first and last thirds in step order */
    double first = 0, last = 0;
    int nf = 0, nl = 0;
    for (int i = 0; i < n; i++) {
        if (ts[i] <= 1.0 / 3) { first += y[i]; nf++; }
        if (ts[i] >= 2.0 / 3) { last += y[i]; nl++; }
    }
    int up = !(nf && nl) || last / nl >= first / nf;

    fit_data d = {ts, y, n};
    gsl_multifit_nlinear_fdf fdf;
    memset(&fdf, 0, sizeof fdf);
    fdf.f = resid_f;
    fdf.df = resid_df;
    fdf.n = (size_t)n;
    fdf.p = 4;
    fdf.params = &d;
    gsl_multifit_nlinear_parameters fp = gsl_multifit_nlinear_default_parameters();
    gsl_multifit_nlinear_workspace *w = gsl_multifit_nlinear_alloc(gsl_multifit_nlinear_trust, &fp, (size_t)n, 4);
    if (!w) { free(ts); free(srt); return CLENS_E_NOMEM; }
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    double best[4] = {0}, best_sse = INFINITY;
    const double widths[3] = {0.01, 0.05, 0.25};
    const int guided = guess && guess->ok; /* bootstrap refits: the guess and its location only */
    for (int s = -1; s < (guided ? 1 : 2 * n - 1); s++) {
        double loc;
        if (s == -1) {
            if (!guided) continue;
            loc = (guess->loc - tmin) / span;
        } else if (guided) loc = (guess->loc - tmin) / span;
        else if (s % 2 == 0) loc = srt[s / 2];
        else loc = (srt[s / 2] + srt[s / 2 + 1]) / 2;
        for (int k = 0; k < 3; k++) {
            double x0[4] = {up ? ylo : yhi, up ? yhi : ylo, loc, log(widths[k])};
            if (s == -1) {
                x0[0] = guess->lo; x0[1] = guess->hi; x0[3] = log(guess->width / span);
                if (k > 0) break;
            }
            double sse = solve_one(w, &fdf, x0);
            if (sse < best_sse) { best_sse = sse; memcpy(best, x0, sizeof best); }
        }
    }
    gsl_set_error_handler(old);
    gsl_multifit_nlinear_free(w);
    free(ts);
    free(srt);
    if (!isfinite(best_sse)) return 0;
    out->ok = 1;
    out->lo = best[0];
    out->hi = best[1];
    out->loc = tmin + best[2] * span;
    out->width = exp(best[3]) * span;
    out->sse = best_sse;
    out->bic = dyn_bic(best_sse, n, 4);
    return 0;
}

const char *dyn_verdict_name(dyn_verdict v)
{
    switch (v) {
    case DYN_FLAT: return "flat";
    case DYN_GRADUAL: return "gradual";
    case DYN_TRANSITION: return "transition";
    default: return "too sparse to decide";
    }
}

dyn_verdict dyn_decide(const clens_dynamics_params *p, const double *t, const double *y, int n,
                       const dyn_linear *lin, const dyn_logistic *lg, int *n_inside)
{
    if (n_inside) *n_inside = 0;
    if (n < 5 || !lg->ok) return n < 5 ? DYN_SPARSE : DYN_GRADUAL;
    double ylo = y[0], yhi = y[0], tmin = t[0], tmax = t[0];
    for (int i = 1; i < n; i++) {
        ylo = y[i] < ylo ? y[i] : ylo; yhi = y[i] > yhi ? y[i] : yhi;
        tmin = t[i] < tmin ? t[i] : tmin; tmax = t[i] > tmax ? t[i] : tmax;
    }
    if (yhi - ylo < p->min_amplitude) return DYN_FLAT;
    int inside = 0;
    double a = lg->loc - DYN_RISE * lg->width, b = lg->loc + DYN_RISE * lg->width;
    for (int i = 0; i < n; i++) inside += t[i] >= a && t[i] <= b;
    if (n_inside) *n_inside = inside;
    int logistic_wins = lin->bic - lg->bic >= p->min_delta_bic;
    int narrow = 2 * DYN_RISE * lg->width <= p->max_window_frac * (tmax - tmin);
    if (!logistic_wins) return DYN_GRADUAL;
    /* The logistic wins, but with fewer than min_inside checkpoints in its
     * window its width is not pinned down (a jump and a fast ramp between
     * those checkpoints give the same data), so neither is "narrow". */
    if (inside < p->min_inside) return DYN_SPARSE;
    if (!narrow) return DYN_GRADUAL;
    return DYN_TRANSITION;
}
