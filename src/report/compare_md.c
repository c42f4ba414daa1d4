/*
 * compare_md.c: comparison.md of `clens compare` (docs/compare.md
 * "comparison.md"): the rule and its thresholds, the summary table of the
 * seed's §5 (model, training, layers, critical layer, main jump, jump size,
 * pattern, peak), one table per model in the seed's layout (Layer, Recovery %,
 * Δ from previous) plus resid_pre numbering, depth and CIs, ASCII bar visuals,
 * the pairwise differences and the plain-language paragraph.
 */
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report/compare_internal.h"

/* The seed's Δ format: "-" on the first row, "0.0%" for |Δ| < 0.05, else "%+.1f%". */
static const char *delta_text(char *buf, size_t n, const cmp_step *st, int first)
{
    if (first || !st->has) snprintf(buf, n, "-");
    else if (fabs(st->delta) < 0.05) snprintf(buf, n, "0.0%%");
    else snprintf(buf, n, "%+.1f%%", st->delta);
    return buf;
}

static const char *ci_text(char *buf, size_t n, int has, double lo, double hi)
{
    if (!has || !isfinite(lo)) snprintf(buf, n, "n/a");
    else snprintf(buf, n, "[%.1f, %.1f]", lo, hi);
    return buf;
}

/* The step with the largest non-trivial increment, or -1. */
static int main_jump(const cmp_model *m)
{
    int best = -1;
    for (int j = 1; j < m->n_pts; j++)
        if (m->step[j].has && !m->step[j].trivial && (best < 0 || m->step[j].delta > m->step[best].delta)) best = j;
    return best;
}

static void bar(clens_sb *b, double v, int width)
{
    int k = isfinite(v) ? (int)lround(v / 100.0 * width) : 0;
    if (k < 0) k = 0;
    if (k > width) k = width;
    for (int i = 0; i < k; i++) clens_sb_puts(b, "█");
    for (int i = k; i < width; i++) clens_sb_puts(b, "·");
}

static void sparkline(clens_sb *b, const cmp_model *m)
{
    static const char *lv[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
    for (int j = 0; j < m->n_pts; j++) {
        double v = m->mean[j];
        int k = isfinite(v) ? (int)floor(v / 100.0 * 8) : 0;
        if (k < 0) k = 0;
        if (k > 7) k = 7;
        clens_sb_puts(b, lv[k]);
    }
}

char *cmp_render_md(const cmp_set *s)
{
    clens_sb b = {0};
    const clens_compare_params *p = &s->p;
    char x[64], y[64], z[64];
    clens_sb_printf(&b, "# Comparison of %d recovery profile%s\n\n", s->n_models, s->n_models == 1 ? "" : "s");
    clens_sb_puts(&b, "Layers are shown as recorded and in resid_pre numbering (the seed's resid_post L is resid_pre L+1); "
                      "relative depth d = resid_pre layer / n_layers. Recovery in percent (mean of per-pair recoveries).\n\n");
    clens_sb_printf(&b, "**Profile label rule** (docs/compare.md \"Profile label\"): a *spike* is a step with Δ ≥ %.1f points "
                        "whose paired bootstrap 95%% CI excludes the median increment (point value only when there are no "
                        "per-pair data); *mid-spike*: a spike at %.2f ≤ d ≤ %.2f; *final-spike*: a spike at the last sampled "
                        "step (steps into resid_pre n_layers excluded: 100%% by construction); *hybrid*: both; *gradual*: "
                        "neither. Thresholds: min_jump = %.1f, mid range = [%.2f, %.2f], critical level = %.0f%%, "
                        "bootstrap %d resamples, seed %llu.\n\n",
                    p->min_jump, p->mid_lo, p->mid_hi, p->min_jump, p->mid_lo, p->mid_hi, p->critical_pct, p->resamples,
                    (unsigned long long)p->seed);

    clens_sb_puts(&b, "## Summary\n\n| Model | Training | Layers | N | Critical layer (≥ 50%) | Main jump | Jump size | Pattern (rule) | Peak |\n"
                      "|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < s->n_models; i++) {
        const cmp_model *m = &s->m[i];
        int n = m->n_pairs;
        if (!n && m->n_pts) n = m->n_samples[0];
        clens_sb_printf(&b, "| %s | %s | %d | %d | ", m->label, m->training, m->n_layers, n);
        if (m->crit_idx >= 0) {
            clens_sb_printf(&b, "L%d (pre %d, d %.2f)", m->layer[m->crit_idx], m->layer_pre[m->crit_idx], m->depth[m->crit_idx]);
            if (m->crit_has_ci) {
                if (isinf(m->crit_hi)) clens_sb_printf(&b, " CI [%.1f, not reached]", m->crit_lo);
                else clens_sb_printf(&b, " CI [%.1f, %.1f]", m->crit_lo, m->crit_hi);
            }
        } else {
            clens_sb_puts(&b, "not reached");
        }
        int j = main_jump(m);
        if (j > 0)
            clens_sb_printf(&b, " | L%d→L%d | %+.1f%s%s | ", m->layer[j - 1], m->layer[j], m->step[j].delta,
                            m->step[j].has_ci ? " " : "", m->step[j].has_ci ? ci_text(x, sizeof x, 1, m->step[j].lo, m->step[j].hi) : "");
        else
            clens_sb_puts(&b, " | – | – | ");
        clens_sb_printf(&b, "%s", m->label_point);
        if (m->seed_label) clens_sb_printf(&b, " (seed: %s)", m->seed_label);
        if (m->n_pairs == 0) clens_sb_puts(&b, " (point values, no CI)");
        else if (strcmp(m->label_lo, m->label_point) || strcmp(m->label_hi, m->label_point))
            clens_sb_printf(&b, " (CI bounds: %s / %s)", m->label_lo, m->label_hi);
        if (m->peak_idx >= 0) clens_sb_printf(&b, " | %.1f%% (L%d) |\n", m->mean[m->peak_idx], m->layer[m->peak_idx]);
        else clens_sb_puts(&b, " | – |\n");
    }
    clens_sb_puts(&b, "\n");

    for (int i = 0; i < s->n_models; i++) {
        const cmp_model *m = &s->m[i];
        clens_sb_printf(&b, "## %d. %s\n\n", i + 1, m->label);
        clens_sb_printf(&b, "- source: `%s` (%s); training: %s; %d layers; site %s; metric %s\n", m->source,
                        cmp_kind_name(m->kind), m->training, m->n_layers, m->site_type, m->metric ? m->metric : "?");
        clens_sb_printf(&b, "- mode: %s\n", m->mode ? m->mode : "?");
        if (m->n_pairs) clens_sb_printf(&b, "- %d pairs with per-pair values: CIs by bootstrap over pairs\n", m->n_pairs);
        else clens_sb_puts(&b, "- no per-pair values: CIs unavailable, label from point values\n");
        if (m->notes && json_is_string(m->notes)) clens_sb_printf(&b, "- note: %s\n", json_string_value(m->notes));
        clens_sb_puts(&b, "- largest jumps:");
        {
            int used[3] = {-1, -1, -1};
            for (int k = 0; k < 3; k++) {
                int best = -1;
                for (int j = 1; j < m->n_pts; j++)
                    if (m->step[j].has && j != used[0] && j != used[1] && (best < 0 || m->step[j].delta > m->step[best].delta))
                        best = j;
                if (best < 0) break;
                used[k] = best;
                const cmp_step *st = &m->step[best];
                clens_sb_printf(&b, "%s L%d→L%d %+.1f", k ? "," : "", m->layer[best - 1], m->layer[best], st->delta);
                if (st->has_ci) clens_sb_printf(&b, " %s", ci_text(y, sizeof y, 1, st->lo, st->hi));
                if (st->trivial) clens_sb_puts(&b, " (last block)");
            }
        }
        clens_sb_puts(&b, "\n");
        clens_sb_printf(&b, "- median increment %s; label **%s**", cmp_f1(x, sizeof x, m->median_delta), m->label_point);
        if (m->n_pairs) clens_sb_printf(&b, " (at the CIs' lower bounds: %s; upper: %s)", m->label_lo, m->label_hi);
        if (m->seed_label) clens_sb_printf(&b, "; the seed's label: %s", m->seed_label);
        clens_sb_puts(&b, "\n\n| Layer | Recovery % | Δ from Previous | resid_pre | d | 95% CI | Δ 95% CI | n |\n"
                          "|-------|------------|-----------------|---|---|---|---|---|\n");
        for (int j = 0; j < m->n_pts; j++) {
            const cmp_step *st = &m->step[j];
            int bold = j > 0 && st->spike;
            clens_sb_printf(&b, bold ? "| **%d** | **%.1f%%** | **%s** | %d | %.3f | %s | %s | %d |%s\n"
                                     : "| %d | %.1f%% | %s | %d | %.3f | %s | %s | %d |%s\n",
                            m->layer[j], m->mean[j], delta_text(x, sizeof x, st, j == 0), m->layer_pre[j], m->depth[j],
                            ci_text(y, sizeof y, m->has_ci, m->ci_lo[j], m->ci_hi[j]),
                            ci_text(z, sizeof z, j > 0 && st->has_ci, st->lo, st->hi), m->n_samples[j],
                            bold ? " ← spike" : j > 0 && st->trivial ? " (last block: 100% by construction)" : "");
        }
        clens_sb_puts(&b, "\n```\n");
        clens_sb_printf(&b, "%-28.28s ", m->label);
        sparkline(&b, m);
        clens_sb_puts(&b, "\n\n");
        for (int j = 0; j < m->n_pts; j++) {
            clens_sb_printf(&b, "L%-3d ", m->layer[j]);
            bar(&b, m->mean[j], 40);
            clens_sb_printf(&b, " %5.1f%s\n", m->mean[j], j > 0 && m->step[j].spike ? "  ← spike" : "");
        }
        clens_sb_puts(&b, "```\n\n");
        if (s->ev && s->ev[i].has) cmp_md_evidence(&b, s, i);
    }

    if (s->n_diffs) {
        clens_sb_printf(&b, "## Differences on a common relative-depth grid (step %.2f)\n\n", p->grid_step);
        clens_sb_puts(&b, "Each profile is linearly interpolated between its sampled depths (no extrapolation); "
                          "difference = first − second, in recovery points.\n\n");
        for (int k = 0; k < s->n_diffs; k++) {
            const cmp_diff *d = &s->d[k];
            clens_sb_printf(&b, "### %s − %s (%s)\n\n| d | difference | 95%% CI |\n|---|---|---|\n", s->m[d->a].label,
                            s->m[d->b].label,
                            !d->has_ci ? "no CI: aggregates only" : d->paired ? "paired bootstrap, shared pairs"
                                                                               : "independent bootstrap, different pairs");
            for (int g = 0; g < d->n_grid; g++) {
                if (!isfinite(d->diff[g])) continue;
                int sig = isfinite(d->lo[g]) && (d->lo[g] > 0 || d->hi[g] < 0);
                clens_sb_printf(&b, "| %.2f | %+.1f | %s%s |\n", d->grid[g], d->diff[g],
                                ci_text(x, sizeof x, isfinite(d->lo[g]), d->lo[g], d->hi[g]), sig ? " (excludes 0)" : "");
            }
            clens_sb_puts(&b, "\n");
        }
    }
    clens_sb_puts(&b, "## What the data do and do not support\n\n");
    clens_sb_puts(&b, s->paragraph);
    clens_sb_puts(&b, "\n");
    return clens_sb_take(&b);
}

/* "lo–hi" with `fmt` per bound, or "–". */
static const char *ci_fmt(char *buf, size_t n, const char *fmt, double lo, double hi)
{
    if (!isfinite(lo) || !isfinite(hi)) { snprintf(buf, n, "–"); return buf; }
    char f[32];
    snprintf(f, sizeof f, "[%s, %s]", fmt, fmt);
    snprintf(buf, n, f, lo, hi);
    return buf;
}

static const char *val_fmt(char *buf, size_t n, const char *fmt, double x)
{
    if (!isfinite(x)) snprintf(buf, n, "–");
    else snprintf(buf, n, fmt, x);
    return buf;
}

void cmp_md_evidence(clens_sb *b, const cmp_set *s, int i)
{
    const cmp_evidence *ev = &s->ev[i];
    const cmp_model *m = &s->m[i];
    char a[64], c[64], d[64], e[64], f[64], g[64], h[64], k[64], l[64];
    if (ev->n_rows > 0) {
        clens_sb_printf(b, "### Probe, cause and control (%s)\n\n", m->label);
        if (ev->probe_src) clens_sb_printf(b, "- probe: `%s` (logistic probe, cross-validated AUROC; null = permutation 95th percentile)\n", ev->probe_src);
        for (int q = 0; q < ev->n_steer; q++) clens_sb_printf(b, "- steer: `%s`\n", ev->steer_src[q]);
        if (ev->n_steer)
            clens_sb_printf(b, "- steering effect: mean change of the corrupted prompt's %s under the direction at the largest |alpha|, "
                               "vs the same for the random directions (mean over draws); CIs by bootstrap over pairs\n",
                            ev->steer_metric ? ev->steer_metric : "metric");
        clens_sb_puts(b, "\n| resid_pre | d | recovery % | 95% CI | probe AUROC | 95% CI | null p95 | steer (alpha) | effect | 95% CI | random | 95% CI |\n"
                         "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (int q = 0; q < ev->n_rows; q++) {
            const cmp_ev_row *r = &ev->rows[q];
            char st[96] = "–";
            if (r->has_steer) snprintf(st, sizeof st, "%s %s L%d (%g)", r->steer_mode, r->steer_hook, r->steer_layer, r->alpha);
            clens_sb_printf(b, "| %d | %.3f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r->layer_pre,
                            m->n_layers ? (double)r->layer_pre / m->n_layers : 0.0,
                            val_fmt(a, sizeof a, "%.1f", r->has_rec ? r->rec : NAN), ci_fmt(c, sizeof c, "%.1f", r->rec_lo, r->rec_hi),
                            val_fmt(d, sizeof d, "%.3f", r->has_probe ? r->auroc : NAN),
                            ci_fmt(e, sizeof e, "%.3f", r->has_probe ? r->auroc_lo : NAN, r->auroc_hi),
                            val_fmt(f, sizeof f, "%.3f", r->has_probe ? r->null_p95 : NAN), st,
                            val_fmt(g, sizeof g, "%+.3f", r->has_steer ? r->eff : NAN),
                            ci_fmt(h, sizeof h, "%+.3f", r->has_steer ? r->eff_lo : NAN, r->eff_hi),
                            val_fmt(k, sizeof k, "%+.3f", r->has_steer ? r->ctl : NAN),
                            ci_fmt(l, sizeof l, "%+.3f", r->has_steer ? r->ctl_lo : NAN, r->ctl_hi));
        }
        clens_sb_printf(b, "\nPlot: `evidence_%d.svg`. %s\n\n", i + 1, ev->line ? ev->line : "");
    }
    if (ev->atp_src) {
        clens_sb_printf(b, "### AtP beside exact patching (%s)\n\n- AtP run: `%s`, %d pairs kept in both runs (same pairs file, prompt, metric)\n"
                           "- flags: **sign** = opposite signs with both |x| >= %.0f point; **magnitude** = |AtP − exact| > %.0f points "
                           "and > %.0f%% of |exact|\n\n| site type | sites | Pearson r | Spearman ρ | flagged |\n|---|---|---|---|---|\n",
                        m->label, ev->atp_src, ev->atp_n_common, CMP_ATP_SIGN_MIN, CMP_ATP_ABS, CMP_ATP_REL * 100);
        for (int q = 0; q < ev->n_atp_types; q++) {
            const cmp_atp_type *t = &ev->atp_types[q];
            clens_sb_printf(b, "| %s | %d | %s | %s | %d |\n", m->types[t->type].name, t->n_sites, val_fmt(a, sizeof a, "%.3f", t->pearson),
                            val_fmt(c, sizeof c, "%.3f", t->spearman), t->n_flagged);
        }
        clens_sb_puts(b, "\n| site | exact % | AtP % | n | flag |\n|---|---|---|---|---|\n");
        int shown = 0;
        for (int q = 0; q < ev->n_atp_sites; q++) {
            const cmp_atp_site *st = &ev->atp_sites[q];
            if (!st->flag) continue;
            shown++;
            if (st->head >= 0) snprintf(d, sizeof d, "%s L%d H%d", m->types[st->type].name, st->layer, st->head);
            else snprintf(d, sizeof d, "%s L%d", m->types[st->type].name, st->layer);
            clens_sb_printf(b, "| %s | %.1f | %.1f | %d | %s |\n", d, st->exact, st->atp, st->n, cmp_atp_flag_name(st->flag));
        }
        if (!shown) clens_sb_puts(b, "| (no site flagged) | | | | |\n");
        clens_sb_printf(b, "\nScatter: `atp_%d.svg`; every site in comparison.json (`evidence.atp`).\n\n", i + 1);
    }
}
