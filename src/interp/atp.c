/*
 * atp.c: attribution patching (AtP, Nanda 2023; Kramár et al. 2024) in the
 * run engine's record layout (docs/dynamics.md "Attribution patching"). For
 * a pair, the clean prompt runs forward once (its last position's activation
 * at every site) and the corrupted prompt runs forward and backward once per
 * metric (train/atp_train.c: the training backward from the metric at the
 * last position, through every layer and the attention over every position).
 * The estimate of patching site s is the first-order Taylor term
 * m_corr + grad_s . (a_clean,s - a_corr,s): exact where the metric is linear
 * in the site, an approximation elsewhere (tests/suites/76-dynamics.sh prints
 * its correlation with exact patching).
 */
#include <stdlib.h>

#include "base/base.h"
#include "interp/atp.h"

int atp_fill_sites(tr_atp *a, const clens_site *sites, int n_sites, const clens_metric *metrics, int n_metrics,
                   const int32_t *clean, const int32_t *corr, int T, double *vals, size_t width, clens_error *err)
{
    size_t W = tr_atp_width(a);
    double *ac = malloc(sizeof *ac * W), *ar = malloc(sizeof *ar * W), *g = malloc(sizeof *g * W);
    int rc = 0;
    if (!ac || !ar || !g) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    double v;
    if ((rc = tr_atp_run(a, clean, T, &metrics[0], &v, ac, NULL, err))) goto done;
    for (int k = 0; k < n_metrics; k++) {
        if ((rc = tr_atp_run(a, corr, T, &metrics[k], &v, ar, g, err))) goto done;
        double *row = vals + (size_t)k * width;
        for (int i = 0; i < n_sites; i++) {
            int n = 0;
            long off = tr_atp_site_offset(a, sites[i].point, sites[i].layer, sites[i].head, &n);
            if (off < 0) { rc = clens_err(err, CLENS_E_ARG, "attribution patching: no such site"); goto done; }
            double e = 0;
            for (int j = 0; j < n; j++) e += g[off + j] * (ac[off + j] - ar[off + j]);
            row[2 + i] = row[1] + e;
        }
    }
done:
    free(ac); free(ar); free(g);
    return rc;
}
