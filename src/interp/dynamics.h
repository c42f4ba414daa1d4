/*
 * dynamics.h: internal API of `clens dynamics` (docs/dynamics.md): the fits of
 * recovery vs training step (dynamics_fit.c: a linear ramp in closed form and
 * a 4-parameter logistic step by GSL's trust-region nonlinear least squares,
 * multi-start), their BIC comparison and the verdict rule; the data of a
 * series (dynamics.c) and its renderers (dynamics_report.c).
 */
#ifndef CLENS_INTERP_DYNAMICS_H
#define CLENS_INTERP_DYNAMICS_H

#include "clens.h"

/* y = lo + (hi - lo) / (1 + exp(-(t - loc) / width)), width > 0. */
typedef struct dyn_logistic {
    double lo, hi, loc, width;
    double sse, bic;
    int ok;
} dyn_logistic;

typedef struct dyn_linear {
    double a, b; /* y = a + b t */
    double sse, bic;
} dyn_linear;

/* ln 9: the 10-90% rise of the logistic spans loc +- DYN_RISE * width. */
#define DYN_RISE 2.1972245773362196

double dyn_logistic_eval(const dyn_logistic *f, double t);
/* BIC = n ln(SSE / n) + k ln n (SSE floored at 1e-12 n so a perfect fit stays finite). */
double dyn_bic(double sse, int n, int k);
/* Least-squares line through (t[i], y[i]), n >= 2. */
void dyn_fit_linear(const double *t, const double *y, int n, dyn_linear *out);
/* Least-squares logistic, n >= 5: starts on a grid of locations (the
 * midpoints between consecutive steps and the steps) x widths (span / 100,
 * span / 20, span / 4); with a `guess` (not NULL, guess->ok: the bootstrap's
 * refits start from the full-data fit) the guess itself and its location x
 * the three widths only. The best SSE wins. Returns 0, or CLENS_E_NOMEM; out->ok = 0 if no start converged. */
int dyn_fit_logistic(const double *t, const double *y, int n, const dyn_logistic *guess, dyn_logistic *out);

/* The verdict of one curve (docs/dynamics.md "Verdict"). */
typedef enum { DYN_FLAT = 0, DYN_GRADUAL, DYN_TRANSITION, DYN_SPARSE } dyn_verdict;
const char *dyn_verdict_name(dyn_verdict v);
/* n_inside (may be NULL) gets the checkpoints inside the logistic's 10-90% window. */
dyn_verdict dyn_decide(const clens_dynamics_params *p, const double *t, const double *y, int n,
                       const dyn_linear *lin, const dyn_logistic *lg, int *n_inside);

#endif
