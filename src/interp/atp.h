/*
 * atp.h: attribution patching for the run engine (atp.c; docs/dynamics.md
 * "Attribution patching"): the linear estimate of every site's patching
 * effect from one forward pass of the clean prompt and one forward + one
 * backward pass of the corrupted prompt per metric.
 */
#ifndef CLENS_INTERP_ATP_H
#define CLENS_INTERP_ATP_H

#include "clens.h"
#include "train/atp_train.h"

/* Fills columns 2.. of vals ([n_metrics][width], as clens_patch_sites does)
 * with m_corr + sum over the site's activation of
 * d metric / d a (corrupted run) * (a_clean - a_corr), m_corr being column 1
 * (the inference engine's corrupted value). */
int atp_fill_sites(tr_atp *a, const clens_site *sites, int n_sites, const clens_metric *metrics, int n_metrics,
                   const int32_t *clean, const int32_t *corr, int T, double *vals, size_t width, clens_error *err);

#endif
