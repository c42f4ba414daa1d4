/*
 * compare_evidence.c: probe, steering and attribution-patching evidence
 * beside a profile's patching recovery in `clens compare` (docs/compare.md,
 * "Probe, steering and AtP beside patching"; clens_compare_params.probes /
 * steers / atps).
 *
 * Per model with attachments, one row per resid_pre layer (rulings R12: a
 * probe or steering hook resid_post L is resid_pre L+1) joins
 *  - cause: the profile's mean recovery and its bootstrap CI (compare.c),
 *  - probe: the logistic probe's cross-validated AUROC with its CI, the
 *    permutation null's 95th percentile and p-value (probe.json, docs/probe.md),
 *  - control: the change of the corrupted prompt's correction metric under the
 *    steering / ablation at that layer, and the same change along the random
 *    directions of the same norm (mean over draws), each a mean over pairs with
 *    a bootstrap CI (steer.json per_pair values, docs/steer.md), at the alpha
 *    with the largest |alpha| (the first such).
 * AtP beside exact: an AtP run folder on the same pairs (same pairs_sha256,
 * prompt and metric, else refused naming the key) gives, per site of every
 * site type both runs patched (z: every head), the mean recovery over the pairs
 * kept in both runs, exact and AtP; per site type Pearson and Spearman (average
 * ranks for ties) of the two over sites; flags: "sign" (opposite signs, both at
 * least CMP_ATP_SIGN_MIN points) and "magnitude" (|AtP - exact| greater than
 * CMP_ATP_ABS points and than CMP_ATP_REL of |exact|).
 * Bootstrap CIs use the compare bootstrap (one stream restarted at the seed
 * for every statistic, clens_site_stats_compute), so tests/suites/
 * compare_ref.py reproduces them with the same indices.
 */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/infile.h"
#include "report/stats.h"
#include "report/compare_internal.h"

static char *xstrdup(const char *s) { return s ? strdup(s) : NULL; }

/* "INPUT=PATH" matches source as given or its last path component (as labels do). */
static int spec_matches(const char *spec, const char *source)
{
    const char *eq = strrchr(spec, '=');
    if (!eq) return 0;
    size_t k = (size_t)(eq - spec);
    const char *base = strrchr(source, '/');
    base = base && base[1] ? base + 1 : source;
    return (strlen(source) == k && strncmp(spec, source, k) == 0) || (strlen(base) == k && strncmp(spec, base, k) == 0);
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* DIR/name, or DIR itself when it is a file. */
static json_t *load_attached(const char *path, const char *name, char **used, clens_error *err)
{
    char *p = join(path, name);
    if (!p) { clens_err(err, CLENS_E_NOMEM, "out of memory"); return NULL; }
    FILE *f = fopen(p, "rb");
    if (f) fclose(f);
    else { free(p); p = xstrdup(path); }
    json_t *j = NULL;
    json_error_t je;
    if (p && clens_json_load_regular(p, 0, &j, &je, err)) j = NULL;
    *used = p;
    return j;
}

static double num(json_t *v) { return json_is_number(v) ? json_number_value(v) : NAN; }

/* Mean and bootstrap CI of x[0..n) (all defined) with the compare bootstrap. */
static int mean_ci(clens_boot *boot, const double *x, int n, double *mean, double *lo, double *hi, clens_error *err)
{
    *mean = *lo = *hi = NAN;
    if (n < 1) return 0;
    double *D = malloc((size_t)n * sizeof *D);
    unsigned char *d = malloc((size_t)n);
    if (!D || !d) { free(D); free(d); return clens_err(err, CLENS_E_NOMEM, "out of memory"); }
    for (int i = 0; i < n; i++) { D[i] = 100.0; d[i] = 1; }
    clens_site_stats st;
    int rc = clens_site_stats_compute(boot, x, x, D, d, n, &st, err);
    if (!rc && st.has_mean) *mean = st.mean;
    if (!rc && st.has_ci) { *lo = st.ci_lo; *hi = st.ci_hi; }
    free(D); free(d);
    return rc;
}

static cmp_ev_row *row_at(cmp_evidence *ev, int layer_pre)
{
    for (int i = 0; i < ev->n_rows; i++)
        if (ev->rows[i].layer_pre == layer_pre) return &ev->rows[i];
    cmp_ev_row *r = realloc(ev->rows, (size_t)(ev->n_rows + 1) * sizeof *r);
    if (!r) return NULL;
    ev->rows = r;
    int k = ev->n_rows++;
    while (k > 0 && ev->rows[k - 1].layer_pre > layer_pre) { ev->rows[k] = ev->rows[k - 1]; k--; }
    cmp_ev_row *x = &ev->rows[k];
    memset(x, 0, sizeof *x);
    x->layer_pre = layer_pre;
    x->rec = x->rec_lo = x->rec_hi = NAN;
    return x;
}

/* --------------------------------------------------------------- probe */

static int add_probe(cmp_evidence *ev, const cmp_model *m, const char *path, clens_error *err)
{
    char *used = NULL;
    json_t *root = load_attached(path, "probe.json", &used, err);
    int rc = 0;
    if (!root) { free(used); return err ? err->code : CLENS_E_FORMAT; }
    json_t *layers = json_object_get(root, "layers"), *e;
    if (!json_is_array(layers)) { rc = clens_err(err, CLENS_E_FORMAT, "%s: no \"layers\" list (not a probe.json of clens probe)", used); goto done; }
    json_t *nl = json_object_get(root, "n_layers");
    if (json_is_integer(nl) && json_integer_value(nl) != m->n_layers) {
        rc = clens_err(err, CLENS_E_ARG, "%s: n_layers is %lld but %s has %d layers (probe of another model?)", used,
                       (long long)json_integer_value(nl), m->label, m->n_layers);
        goto done;
    }
    free(ev->probe_src);
    ev->probe_src = xstrdup(used);
    size_t k;
    json_array_foreach(layers, k, e) {
        const char *hook = json_string_value(json_object_get(e, "hook"));
        int L = -1, off = -1;
        char kind[32] = "";
        if (!hook || sscanf(hook, "blocks.%d.hook_%31s", &L, kind) != 2) continue;
        if (strcmp(kind, "resid_pre") == 0) off = 0;
        else if (strcmp(kind, "resid_post") == 0) off = 1;
        else continue; /* other hooks are not on the residual stream */
        cmp_ev_row *r = row_at(ev, L + off);
        if (!r) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
        if (r->has_probe && off == 1) continue; /* the same activation: resid_pre wins */
        json_t *lr = json_object_get(e, "logreg"), *ci = json_object_get(lr, "auroc_ci95");
        json_t *pn = json_object_get(e, "permutation_null"), *rd = json_object_get(e, "random_direction");
        r->has_probe = 1;
        snprintf(r->probe_hook, sizeof r->probe_hook, "%s", hook);
        r->auroc = num(json_object_get(lr, "auroc"));
        r->auroc_lo = num(json_array_get(ci, 0));
        r->auroc_hi = num(json_array_get(ci, 1));
        r->null_p95 = num(json_object_get(pn, "p95"));
        r->null_p = num(json_object_get(pn, "p_value"));
        r->random_p95 = num(json_object_get(rd, "p95"));
        r->dom_auroc = num(json_object_get(json_object_get(e, "diff_of_means"), "auroc"));
    }
done:
    json_decref(root);
    free(used);
    return rc;
}

/* --------------------------------------------------------------- steer */

static int add_steer(cmp_evidence *ev, const cmp_model *m, const char *path, clens_boot *boot, clens_error *err)
{
    char *used = NULL;
    json_t *root = load_attached(path, "steer.json", &used, err);
    double *eff = NULL, *ctl = NULL;
    int rc = 0;
    if (!root) { free(used); return err ? err->code : CLENS_E_FORMAT; }
    json_t *layers = json_object_get(root, "layers"), *alphas = json_object_get(root, "alphas");
    json_t *pairs = json_object_get(root, "pairs"), *pp = json_object_get(pairs, "per_pair");
    const char *hook = json_string_value(json_object_get(root, "hook"));
    const char *mode = json_string_value(json_object_get(root, "mode"));
    int nR = (int)json_integer_value(json_object_get(root, "n_random"));
    if (!json_is_array(layers) || !json_is_array(alphas) || !hook || !mode) {
        rc = clens_err(err, CLENS_E_FORMAT, "%s: needs hook, mode, layers and alphas (a steer.json of clens steer)", used);
        goto done;
    }
    if (json_array_size(layers) != 1) {
        rc = clens_err(err, CLENS_E_ARG, "%s: steers %zu layers at once; the per-layer comparison needs one steer run per "
                       "layer (clens steer --layers L)", used, json_array_size(layers));
        goto done;
    }
    if (!json_is_array(pp) || json_array_size(pp) == 0) {
        rc = clens_err(err, CLENS_E_ARG, "%s: no pairs.per_pair values (run clens steer with --pairs)", used);
        goto done;
    }
    int nA = (int)json_array_size(alphas), a = 0;
    for (int i = 1; i < nA; i++)
        if (fabs(num(json_array_get(alphas, (size_t)i))) > fabs(num(json_array_get(alphas, (size_t)a)))) a = i;
    int L = (int)json_integer_value(json_array_get(layers, 0));
    int Lpre = L + (strcmp(hook, "resid_post") == 0 ? 1 : 0);
    cmp_ev_row *r = row_at(ev, Lpre);
    if (!r) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    if (r->has_steer) {
        rc = clens_err(err, CLENS_E_ARG, "%s: a second steer run at resid_pre %d for %s (one per layer)", used, Lpre, m->label);
        goto done;
    }
    int n = (int)json_array_size(pp), k = 0;
    size_t need = (size_t)(2 + 2 * (nR + 1) * nA);
    eff = malloc((size_t)n * sizeof *eff);
    ctl = malloc((size_t)n * sizeof *ctl);
    if (!eff || !ctl) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    for (int i = 0; i < n; i++) {
        json_t *v = json_object_get(json_array_get(pp, (size_t)i), "values");
        if (!json_is_array(v) || json_array_size(v) < need) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: pairs.per_pair[%d].values needs %zu values", used, i, need);
            goto done;
        }
        double base = num(json_array_get(v, 1));
        double e = num(json_array_get(v, (size_t)(2 + 2 * a + 1))) - base, c = 0;
        for (int q = 1; q <= nR; q++) c += num(json_array_get(v, (size_t)(2 + 2 * (q * nA + a) + 1))) - base;
        c = nR > 0 ? c / nR : NAN;
        if (!isfinite(e) || (nR > 0 && !isfinite(c))) continue; /* a pair with a null value */
        eff[k] = e;
        ctl[k] = c;
        k++;
    }
    r->has_steer = 1;
    r->steer_layer = L;
    snprintf(r->steer_hook, sizeof r->steer_hook, "%s", hook);
    snprintf(r->steer_mode, sizeof r->steer_mode, "%s", mode);
    r->alpha = num(json_array_get(alphas, (size_t)a));
    r->steer_n = k;
    if ((rc = mean_ci(boot, eff, k, &r->eff, &r->eff_lo, &r->eff_hi, err))) goto done;
    if (nR > 0 && (rc = mean_ci(boot, ctl, k, &r->ctl, &r->ctl_lo, &r->ctl_hi, err))) goto done;
    if (nR == 0) r->ctl = r->ctl_lo = r->ctl_hi = NAN;
    const char *met = json_string_value(json_object_get(pairs, "metric"));
    if (!ev->steer_metric && met) ev->steer_metric = xstrdup(met);
    char **s = realloc(ev->steer_src, (size_t)(ev->n_steer + 1) * sizeof *s);
    if (!s) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    ev->steer_src = s;
    ev->steer_src[ev->n_steer++] = used;
    used = NULL;
done:
    json_decref(root);
    free(used); free(eff); free(ctl);
    return rc;
}

/* ----------------------------------------------------------------- AtP */

static double pearson(const double *x, const double *y, int n)
{
    if (n < 3) return NAN;
    double mx = 0, my = 0;
    for (int i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
    mx /= n; my /= n;
    double sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

typedef struct rank_item { double v; int i; } rank_item;
static int rank_cmp(const void *a, const void *b)
{
    const rank_item *x = a, *y = b;
    return x->v < y->v ? -1 : x->v > y->v ? 1 : x->i - y->i;
}

/* Ranks 1..n, ties get their average rank. */
static int ranks(const double *x, int n, double *out)
{
    rank_item *t = malloc((size_t)(n ? n : 1) * sizeof *t);
    if (!t) return -1;
    for (int i = 0; i < n; i++) { t[i].v = x[i]; t[i].i = i; }
    qsort(t, (size_t)n, sizeof *t, rank_cmp);
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && t[j + 1].v == t[i].v) j++;
        double r = (i + j) / 2.0 + 1;
        for (int k = i; k <= j; k++) out[t[k].i] = r;
        i = j + 1;
    }
    free(t);
    return 0;
}

static const char *const atp_keys[] = {"pairs_sha256", "prompt", "metric"};

static int add_atp(cmp_evidence *ev, const cmp_set *s, const cmp_model *m, const char *path, clens_error *err)
{
    cmp_set t;
    memset(&t, 0, sizeof t);
    t.p = clens_compare_default_params();
    int rc = 0;
    double *x = NULL, *y = NULL, *rx = NULL, *ry = NULL;
    (void)s;
    if (m->kind != CMP_RUN || m->n_pairs == 0)
        return clens_err(err, CLENS_E_ARG, "--atp for %s: AtP is compared with an exact run folder's per-pair records, and "
                         "%s is not a run folder", m->label, m->source);
    if ((rc = cmp_load_input(&t, path, err))) goto done;
    const cmp_model *a = &t.m[0];
    if (t.n_models != 1 || a->kind != CMP_RUN) {
        rc = clens_err(err, CLENS_E_ARG, "%s: not a clens patch run folder (--atp wants a run of --method atp)", path);
        goto done;
    }
    const char *meth = json_string_value(json_object_get(a->settings, "method"));
    const char *mine = json_string_value(json_object_get(m->settings, "method"));
    if (!meth || strcmp(meth, "atp") != 0) {
        rc = clens_err(err, CLENS_E_ARG, "%s: settings.method is \"%s\", not \"atp\"", path, meth ? meth : "?");
        goto done;
    }
    if (mine && strcmp(mine, "atp") == 0) {
        rc = clens_err(err, CLENS_E_ARG, "%s: the run AtP is attached to is itself an AtP run (attach it to an exact run)", m->source);
        goto done;
    }
    for (size_t k = 0; k < sizeof atp_keys / sizeof *atp_keys; k++) {
        json_t *va = json_object_get(a->settings, atp_keys[k]), *vm = json_object_get(m->settings, atp_keys[k]);
        if (!va || !vm || !json_equal(va, vm)) {
            char *sa = va ? json_dumps(va, JSON_ENCODE_ANY) : NULL, *sm = vm ? json_dumps(vm, JSON_ENCODE_ANY) : NULL;
            rc = clens_err(err, CLENS_E_ARG, "%s: settings.%s is %s there but %s in the exact run %s: AtP and exact runs must "
                           "share the pairs file, prompt and metric", path, atp_keys[k], sa ? sa : "missing",
                           sm ? sm : "missing", m->source);
            free(sa); free(sm);
            goto done;
        }
    }
    free(ev->atp_src);
    ev->atp_src = xstrdup(path);
    const char *metric = m->metric;
    /* pairs kept in both: join on candidate */
    int na = (int)json_array_size(a->records), nm = (int)json_array_size(m->records);
    int *match = malloc((size_t)(nm ? nm : 1) * sizeof *match);
    if (!match) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    ev->atp_n_common = 0;
    for (int i = 0; i < nm; i++) {
        json_int_t c = json_integer_value(json_object_get(json_array_get(m->records, (size_t)i), "candidate"));
        match[i] = -1;
        for (int j = 0; j < na; j++)
            if (json_integer_value(json_object_get(json_array_get(a->records, (size_t)j), "candidate")) == c) { match[i] = j; break; }
        ev->atp_n_common += match[i] >= 0;
    }
    for (int ti = 0; ti < m->n_types && !rc; ti++) {
        const cmp_sitetype *ty = &m->types[ti];
        const cmp_sitetype *ta = NULL;
        for (int q = 0; q < a->n_types; q++)
            if (strcmp(a->types[q].name, ty->name) == 0) ta = &a->types[q];
        if (!ta) continue;
        int heads = ty->is_z ? m->n_heads : 1;
        int first = ev->n_atp_sites;
        for (int li = 0; li < ty->n_layers && !rc; li++) {
            int ai = -1;
            for (int q = 0; q < ta->n_layers; q++)
                if (ta->layers[q] == ty->layers[li]) ai = q;
            if (ai < 0) continue;
            for (int h = 0; h < heads; h++) {
                double se = 0, sa = 0;
                int n = 0;
                for (int i = 0; i < nm; i++) {
                    if (match[i] < 0) continue;
                    json_t *ma = json_object_get(json_object_get(json_array_get(a->records, (size_t)match[i]), "metrics"), metric);
                    json_t *mm = json_object_get(json_object_get(json_array_get(m->records, (size_t)i), "metrics"), metric);
                    json_t *va = json_array_get(json_object_get(json_object_get(ma, "patched"), ty->name), (size_t)ai);
                    json_t *vm = json_array_get(json_object_get(json_object_get(mm, "patched"), ty->name), (size_t)li);
                    if (ty->is_z) { va = json_array_get(va, (size_t)h); vm = json_array_get(vm, (size_t)h); }
                    double re, ra;
                    if (!clens_recovery(num(vm), num(json_object_get(mm, "clean")), num(json_object_get(mm, "corr")), &re) ||
                        !clens_recovery(num(va), num(json_object_get(ma, "clean")), num(json_object_get(ma, "corr")), &ra) ||
                        !isfinite(re) || !isfinite(ra))
                        continue;
                    se += re;
                    sa += ra;
                    n++;
                }
                if (n == 0) continue;
                cmp_atp_site *ns = realloc(ev->atp_sites, (size_t)(ev->n_atp_sites + 1) * sizeof *ns);
                if (!ns) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); break; }
                ev->atp_sites = ns;
                cmp_atp_site *st = &ev->atp_sites[ev->n_atp_sites++];
                st->type = ti;
                st->layer = ty->layers[li];
                st->head = ty->is_z ? h : -1;
                st->n = n;
                st->exact = se / n;
                st->atp = sa / n;
                double d = fabs(st->atp - st->exact);
                st->flag = st->exact * st->atp < 0 && fabs(st->exact) >= CMP_ATP_SIGN_MIN && fabs(st->atp) >= CMP_ATP_SIGN_MIN ? 1
                           : d > CMP_ATP_ABS && d > CMP_ATP_REL * fabs(st->exact)                                        ? 2
                                                                                                                           : 0;
            }
        }
        if (rc) break;
        int n = ev->n_atp_sites - first;
        if (n == 0) continue;
        cmp_atp_type *nt = realloc(ev->atp_types, (size_t)(ev->n_atp_types + 1) * sizeof *nt);
        if (!nt) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); break; }
        ev->atp_types = nt;
        cmp_atp_type *at = &ev->atp_types[ev->n_atp_types++];
        at->type = ti;
        at->first = first;
        at->n_sites = n;
        at->n_flagged = 0;
        x = malloc((size_t)n * sizeof *x); y = malloc((size_t)n * sizeof *y);
        rx = malloc((size_t)n * sizeof *rx); ry = malloc((size_t)n * sizeof *ry);
        if (!x || !y || !rx || !ry) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); break; }
        for (int i = 0; i < n; i++) {
            x[i] = ev->atp_sites[first + i].exact;
            y[i] = ev->atp_sites[first + i].atp;
            at->n_flagged += ev->atp_sites[first + i].flag != 0;
        }
        at->pearson = pearson(x, y, n);
        if (ranks(x, n, rx) || ranks(y, n, ry)) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); break; }
        at->spearman = pearson(rx, ry, n);
        free(x); free(y); free(rx); free(ry);
        x = y = rx = ry = NULL;
    }
    free(match);
done:
    free(x); free(y); free(rx); free(ry);
    for (int i = 0; i < t.n_models; i++) cmp_model_clear(&t.m[i]);
    free(t.m);
    return rc;
}

/* ------------------------------------------------------------ the join */

/* The plain-language line: what probe (readable), cause (recovery) and
 * control (steering beyond random directions) agree on. */
static char *agreement_line(const cmp_model *m, const cmp_evidence *ev, double crit_pct)
{
    clens_sb b = {0};
    int crit = -1, probe_first = -1, n_probe = 0, n_steer = 0, n_beyond = 0;
    for (int j = 0; j < m->n_pts; j++)
        if (isfinite(m->mean[j]) && m->mean[j] >= crit_pct) { crit = m->layer_pre[j]; break; }
    for (int i = 0; i < ev->n_rows; i++) {
        const cmp_ev_row *r = &ev->rows[i];
        if (r->has_probe) {
            n_probe++;
            if (probe_first < 0 && isfinite(r->auroc_lo) && isfinite(r->null_p95) && r->auroc_lo > r->null_p95) probe_first = r->layer_pre;
        }
        if (r->has_steer) {
            n_steer++;
            if (isfinite(r->eff_lo) && isfinite(r->ctl_lo) && (r->eff_lo > r->ctl_hi || r->eff_hi < r->ctl_lo)) n_beyond++;
        }
    }
    clens_sb_printf(&b, "%s: ", m->label);
    if (crit >= 0) clens_sb_printf(&b, "patching recovery (cause) first reaches %.0f%% at resid_pre %d", crit_pct, crit);
    else clens_sb_printf(&b, "patching recovery (cause) never reaches %.0f%% at the sampled layers", crit_pct);
    if (n_probe) {
        if (probe_first >= 0)
            clens_sb_printf(&b, "; the probe (readable) separates clean from corrupted above its permutation null (CI low > null 95th "
                                "percentile) from resid_pre %d, %s", probe_first,
                            crit < 0 ? "with no causal layer to compare"
                            : probe_first < crit ? "before the causal layer: the error is readable earlier than patching restores it, so "
                                                   "readability alone does not locate the cause"
                            : probe_first == crit ? "at the causal layer: probe and cause agree"
                                                  : "only after the causal layer: the probe misses where patching acts");
        else clens_sb_puts(&b, "; the probe never beats its permutation null (CI low > null 95th percentile)");
    }
    if (n_steer)
        clens_sb_printf(&b, "; steering (control) changes the corrupted prompt's correction metric beyond the random-direction control "
                            "(non-overlapping CIs) at %d of %d steered layer%s", n_beyond, n_steer, n_steer == 1 ? "" : "s");
    clens_sb_puts(&b, ".");
    return clens_sb_take(&b);
}

int cmp_evidence_load(cmp_set *s, clens_error *err)
{
    const clens_compare_params *p = &s->p;
    const char *const *lists[3] = {p->probes, p->steers, p->atps};
    const int counts[3] = {p->n_probes, p->n_steers, p->n_atps};
    const char *flags[3] = {"--probe", "--steer", "--atp"};
    int any = 0, rc = 0;
    for (int k = 0; k < 3; k++) any |= counts[k] > 0;
    if (!any) return 0;
    s->ev = calloc((size_t)s->n_models, sizeof *s->ev);
    if (!s->ev) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    clens_boot *boot = NULL;
    if ((rc = clens_boot_new(&boot, p->resamples, p->seed, err))) return rc;
    for (int k = 0; k < 3 && !rc; k++)
        for (int q = 0; q < counts[k] && !rc; q++) {
            const char *spec = lists[k][q], *eq = spec ? strrchr(spec, '=') : NULL;
            if (!eq || eq == spec || !eq[1]) { rc = clens_err(err, CLENS_E_ARG, "%s wants INPUT=PATH, got '%s'", flags[k], spec ? spec : "(null)"); break; }
            int hit = 0;
            for (int i = 0; i < s->n_models && !rc; i++) {
                if (!spec_matches(spec, s->m[i].source)) continue;
                hit = 1;
                cmp_evidence *ev = &s->ev[i];
                ev->has = 1;
                if (k == 0) rc = add_probe(ev, &s->m[i], eq + 1, err);
                else if (k == 1) rc = add_steer(ev, &s->m[i], eq + 1, boot, err);
                else rc = add_atp(ev, s, &s->m[i], eq + 1, err);
            }
            if (!rc && !hit) rc = clens_err(err, CLENS_E_ARG, "%s %s: no input matches '%.*s' (give the input as on the command line "
                                            "or its last path component)", flags[k], spec, (int)(eq - spec), spec);
        }
    clens_boot_free(boot);
    return rc;
}

/* After the analysis: the recovery column and the agreement line. */
int cmp_evidence_finish(cmp_set *s, clens_error *err)
{
    if (!s->ev) return 0;
    for (int i = 0; i < s->n_models; i++) {
        cmp_evidence *ev = &s->ev[i];
        const cmp_model *m = &s->m[i];
        if (!ev->has || (ev->n_rows == 0 && !ev->atp_src)) continue;
        if (ev->n_rows > 0) {
            for (int j = 0; j < m->n_pts; j++) {
                cmp_ev_row *r = row_at(ev, m->layer_pre[j]);
                if (!r) return clens_err(err, CLENS_E_NOMEM, "out of memory");
                r->has_rec = 1;
                r->rec = m->mean[j];
                r->rec_lo = m->has_ci ? m->ci_lo[j] : NAN;
                r->rec_hi = m->has_ci ? m->ci_hi[j] : NAN;
            }
            ev->line = agreement_line(m, ev, s->p.critical_pct);
            if (!ev->line) return clens_err(err, CLENS_E_NOMEM, "out of memory");
        }
    }
    return 0;
}

void cmp_evidence_free(cmp_set *s)
{
    if (!s->ev) return;
    for (int i = 0; i < s->n_models; i++) {
        cmp_evidence *ev = &s->ev[i];
        free(ev->probe_src);
        for (int k = 0; k < ev->n_steer; k++) free(ev->steer_src[k]);
        free(ev->steer_src);
        free(ev->steer_metric);
        free(ev->rows);
        free(ev->line);
        free(ev->atp_src);
        free(ev->atp_sites);
        free(ev->atp_types);
    }
    free(s->ev);
    s->ev = NULL;
}

/* ---------------------------------------------------------------- JSON */

static json_t *jnv(double x) { return isfinite(x) ? json_real(x) : json_null(); }
static json_t *jci2(double lo, double hi) { return isfinite(lo) && isfinite(hi) ? json_pack("[o,o]", jnv(lo), jnv(hi)) : json_null(); }

const char *cmp_atp_flag_name(int flag) { return flag == 1 ? "sign" : flag == 2 ? "magnitude" : NULL; }

json_t *cmp_evidence_json(const cmp_set *s, int mi)
{
    if (!s->ev || !s->ev[mi].has) return json_null();
    const cmp_evidence *ev = &s->ev[mi];
    const cmp_model *m = &s->m[mi];
    json_t *o = json_object();
    json_object_set_new(o, "probe_source", ev->probe_src ? json_string(ev->probe_src) : json_null());
    json_t *ss = json_array();
    for (int k = 0; k < ev->n_steer; k++) json_array_append_new(ss, json_string(ev->steer_src[k]));
    json_object_set_new(o, "steer_sources", ss);
    json_object_set_new(o, "steer_metric", ev->steer_metric ? json_string(ev->steer_metric) : json_null());
    json_t *rows = json_array();
    for (int i = 0; i < ev->n_rows; i++) {
        const cmp_ev_row *r = &ev->rows[i];
        json_t *e = json_object();
        json_object_set_new(e, "layer_resid_pre", json_integer(r->layer_pre));
        json_object_set_new(e, "depth", jnv(m->n_layers > 0 ? (double)r->layer_pre / m->n_layers : NAN));
        json_object_set_new(e, "recovery", r->has_rec ? json_pack("{s:o, s:o}", "mean", jnv(r->rec), "ci95", jci2(r->rec_lo, r->rec_hi))
                                                      : json_null());
        json_object_set_new(e, "probe", r->has_probe
            ? json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "hook", r->probe_hook, "auroc", jnv(r->auroc), "ci95",
                        jci2(r->auroc_lo, r->auroc_hi), "null_p95", jnv(r->null_p95), "null_p_value", jnv(r->null_p),
                        "random_direction_p95", jnv(r->random_p95), "dom_auroc", jnv(r->dom_auroc))
            : json_null());
        json_object_set_new(e, "steer", r->has_steer
            ? json_pack("{s:i, s:s, s:s, s:o, s:i, s:o, s:o, s:o, s:o}", "layer", r->steer_layer, "hook", r->steer_hook, "mode",
                        r->steer_mode, "alpha", jnv(r->alpha), "n_pairs", r->steer_n, "effect", jnv(r->eff), "effect_ci95",
                        jci2(r->eff_lo, r->eff_hi), "control", jnv(r->ctl), "control_ci95", jci2(r->ctl_lo, r->ctl_hi))
            : json_null());
        json_array_append_new(rows, e);
    }
    json_object_set_new(o, "layers", rows);
    json_object_set_new(o, "agreement", ev->line ? json_string(ev->line) : json_null());
    if (ev->atp_src) {
        json_t *at = json_object();
        json_object_set_new(at, "source", json_string(ev->atp_src));
        json_object_set_new(at, "n_common_pairs", json_integer(ev->atp_n_common));
        json_object_set_new(at, "matched_keys", json_pack("[s,s,s]", atp_keys[0], atp_keys[1], atp_keys[2]));
        json_object_set_new(at, "flag_rule", json_pack("{s:o, s:o, s:o}", "sign_min_points", jnv(CMP_ATP_SIGN_MIN), "abs_points",
                                                       jnv(CMP_ATP_ABS), "rel_of_exact", jnv(CMP_ATP_REL)));
        json_t *types = json_array();
        for (int k = 0; k < ev->n_atp_types; k++) {
            const cmp_atp_type *t = &ev->atp_types[k];
            json_t *sites = json_array();
            for (int q = t->first; q < t->first + t->n_sites; q++) {
                const cmp_atp_site *st = &ev->atp_sites[q];
                const char *fl = cmp_atp_flag_name(st->flag);
                json_array_append_new(sites, json_pack("{s:i, s:o, s:i, s:o, s:o, s:o}", "layer", st->layer, "head",
                                                       st->head >= 0 ? json_integer(st->head) : json_null(), "n", st->n, "exact",
                                                       jnv(st->exact), "atp", jnv(st->atp), "flag", fl ? json_string(fl) : json_null()));
            }
            json_array_append_new(types, json_pack("{s:s, s:i, s:o, s:o, s:i, s:o}", "site_type", m->types[t->type].name,
                                                   "n_sites", t->n_sites, "pearson", jnv(t->pearson), "spearman",
                                                   jnv(t->spearman), "n_flagged", t->n_flagged, "sites", sites));
        }
        json_object_set_new(at, "site_types", types);
        json_object_set_new(o, "atp", at);
    } else {
        json_object_set_new(o, "atp", json_null());
    }
    return o;
}

/* The evidence sentences appended to the plain-language paragraph: each
 * model's agreement line and its AtP-vs-exact summary. "" without attachments. */
char *cmp_evidence_paragraph(const cmp_set *s)
{
    clens_sb b = {0};
    clens_sb_puts(&b, "");
    for (int i = 0; s->ev && i < s->n_models; i++) {
        const cmp_evidence *ev = &s->ev[i];
        if (ev->line) clens_sb_printf(&b, "\n\nProbe vs cause vs control. %s", ev->line);
        if (ev->atp_src && ev->n_atp_types > 0) {
            clens_sb_printf(&b, "\n\nAtP vs exact patching (%s, %d pairs): ", s->m[i].label, ev->atp_n_common);
            int flagged = 0;
            for (int k = 0; k < ev->n_atp_types; k++) {
                const cmp_atp_type *t = &ev->atp_types[k];
                flagged += t->n_flagged;
                clens_sb_printf(&b, "%s%s Pearson ", k ? "; " : "", s->m[i].types[t->type].name);
                if (isfinite(t->pearson)) clens_sb_printf(&b, "%.2f, Spearman %.2f over %d sites", t->pearson, t->spearman, t->n_sites);
                else clens_sb_printf(&b, "undefined (%d site%s)", t->n_sites, t->n_sites == 1 ? "" : "s");
            }
            clens_sb_printf(&b, ". %d site%s flagged (opposite signs, or off by more than %.0f points and %.0f%% of the exact "
                                "value): AtP is a first-order estimate; confirm what it finds with exact patching.",
                            flagged, flagged == 1 ? "" : "s", CMP_ATP_ABS, CMP_ATP_REL * 100);
        }
    }
    return clens_sb_take(&b);
}
