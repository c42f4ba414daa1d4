/*
 * html.c: report.html of `clens compare` (docs/compare.md "report.html"): one
 * self-contained page with no scripts and no external reference (a Content
 * Security Policy of default-src 'none' makes the browser refuse any fetch):
 * inline SVG plots, the summary table, one section per model (its table with
 * Δ and CIs, Δ bars, per-head heat map, the behaviour block, a per-pair
 * drill-down, settings and provenance), the pairwise differences and the
 * plain-language paragraph. Sections and tables carry data-model="label" so
 * the browser test (tools/browser/check_report.js) can find each model.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report/compare_internal.h"

static void json_pre(clens_sb *b, json_t *v)
{
    char *t = v ? json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY | JSON_REAL_PRECISION(10)) : NULL;
    clens_sb_puts(b, "<pre>");
    cmp_html_esc(b, t ? t : "null");
    clens_sb_puts(b, "</pre>\n");
    free(t);
}

static void esc_attr_model(clens_sb *b, const cmp_model *m)
{
    clens_sb_puts(b, " data-model=\"");
    cmp_html_esc(b, m->label);
    clens_sb_puts(b, "\"");
}

static void td_num(clens_sb *b, double x)
{
    if (isfinite(x)) clens_sb_printf(b, "<td>%.1f</td>", fabs(x) < 0.05 ? 0.0 : x);
    else clens_sb_puts(b, "<td>–</td>");
}

static void td_ci(clens_sb *b, int has, double lo, double hi)
{
    if (has && isfinite(lo)) clens_sb_printf(b, "<td>[%.1f, %.1f]</td>", lo, hi);
    else clens_sb_puts(b, "<td>n/a</td>");
}

/* Three decimals (AUROC, correlations, metric changes). */
static void td_num3(clens_sb *b, double x)
{
    if (isfinite(x)) clens_sb_printf(b, "<td>%.3f</td>", x);
    else clens_sb_puts(b, "<td>–</td>");
}

static void td_ci3(clens_sb *b, int has, double lo, double hi)
{
    if (has && isfinite(lo)) clens_sb_printf(b, "<td>[%.3f, %.3f]</td>", lo, hi);
    else clens_sb_puts(b, "<td>n/a</td>");
}

/* Probe, cause and control per layer; AtP beside exact (docs/compare.md). */
static void evidence_section(clens_sb *b, const cmp_set *s, int i)
{
    const cmp_evidence *ev = &s->ev[i];
    const cmp_model *m = &s->m[i];
    if (ev->n_rows > 0) {
        clens_sb_puts(b, "<h3>Probe, cause and control</h3>\n<p class=\"agreement\">");
        cmp_html_esc(b, ev->line ? ev->line : "");
        clens_sb_puts(b, "</p>\n<table class=\"evidence\"");
        esc_attr_model(b, m);
        clens_sb_printf(b, ">\n<tr><th>resid_pre</th><th>d</th><th>recovery %%</th><th>95%% CI</th><th>probe AUROC</th><th>95%% CI</th>"
                           "<th>null p95</th><th>steering effect (%s)</th><th>95%% CI</th><th>random control</th><th>95%% CI</th></tr>\n",
                        ev->steer_metric ? ev->steer_metric : "metric");
        for (int q = 0; q < ev->n_rows; q++) {
            const cmp_ev_row *r = &ev->rows[q];
            clens_sb_printf(b, "<tr><td>%d</td><td>%.3f</td>", r->layer_pre, m->n_layers ? (double)r->layer_pre / m->n_layers : 0.0);
            td_num(b, r->has_rec ? r->rec : NAN);
            td_ci(b, r->has_rec, r->rec_lo, r->rec_hi);
            td_num3(b, r->has_probe ? r->auroc : NAN);
            td_ci3(b, r->has_probe, r->auroc_lo, r->auroc_hi);
            td_num3(b, r->has_probe ? r->null_p95 : NAN);
            td_num3(b, r->has_steer ? r->eff : NAN);
            td_ci3(b, r->has_steer, r->eff_lo, r->eff_hi);
            td_num3(b, r->has_steer ? r->ctl : NAN);
            td_ci3(b, r->has_steer, r->ctl_lo, r->ctl_hi);
            clens_sb_puts(b, "</tr>\n");
        }
        clens_sb_puts(b, "</table>\n<div class=\"plot\">");
        char *svg = cmp_svg_evidence(s, i);
        if (svg) clens_sb_puts(b, svg);
        free(svg);
        clens_sb_puts(b, "</div>\n");
    }
    if (ev->atp_src) {
        clens_sb_puts(b, "<h3>AtP beside exact patching</h3>\n<p>AtP run <code>");
        cmp_html_esc(b, ev->atp_src);
        clens_sb_printf(b, "</code>, %d pairs kept in both runs. Flagged: <b>sign</b> = opposite signs with both |x| &ge; %.0f point; "
                           "<b>magnitude</b> = |AtP &minus; exact| &gt; %.0f points and &gt; %.0f%% of |exact|.</p>\n"
                           "<table class=\"atp-types\"",
                        ev->atp_n_common, CMP_ATP_SIGN_MIN, CMP_ATP_ABS, CMP_ATP_REL * 100);
        esc_attr_model(b, m);
        clens_sb_puts(b, ">\n<tr><th>site type</th><th>sites</th><th>Pearson r</th><th>Spearman &rho;</th><th>flagged</th></tr>\n");
        for (int q = 0; q < ev->n_atp_types; q++) {
            const cmp_atp_type *t = &ev->atp_types[q];
            clens_sb_printf(b, "<tr><td>%s</td><td>%d</td>", m->types[t->type].name, t->n_sites);
            td_num3(b, t->pearson);
            td_num3(b, t->spearman);
            clens_sb_printf(b, "<td>%d</td></tr>\n", t->n_flagged);
        }
        clens_sb_puts(b, "</table>\n<div class=\"plot\">");
        char *svg = cmp_svg_atp(s, i);
        if (svg) clens_sb_puts(b, svg);
        free(svg);
        clens_sb_puts(b, "</div>\n<details class=\"atp-sites\"><summary>Every site: exact and AtP mean recovery</summary>\n"
                         "<table><tr><th>site type</th><th>layer</th><th>head</th><th>exact %</th><th>AtP %</th><th>n</th><th>flag</th></tr>\n");
        for (int q = 0; q < ev->n_atp_sites; q++) {
            const cmp_atp_site *st = &ev->atp_sites[q];
            clens_sb_printf(b, "<tr%s><td>%s</td><td>%d</td>", st->flag ? " class=\"spike\"" : "", m->types[st->type].name, st->layer);
            if (st->head >= 0) clens_sb_printf(b, "<td>%d</td>", st->head);
            else clens_sb_puts(b, "<td>-</td>");
            td_num(b, st->exact);
            td_num(b, st->atp);
            clens_sb_printf(b, "<td>%d</td><td>%s</td></tr>\n", st->n, st->flag ? cmp_atp_flag_name(st->flag) : "");
        }
        clens_sb_puts(b, "</table></details>\n");
    }
}

static void model_section(clens_sb *b, const cmp_set *s, int i)
{
    const cmp_model *m = &s->m[i];
    clens_sb_printf(b, "<section class=\"model\" id=\"model-%d\"", i + 1);
    esc_attr_model(b, m);
    clens_sb_printf(b, ">\n<h2>%d. ", i + 1);
    cmp_html_esc(b, m->label);
    clens_sb_puts(b, "</h2>\n<ul>\n<li>source: <code>");
    cmp_html_esc(b, m->source);
    clens_sb_printf(b, "</code> (%s)</li>\n<li>training: ", cmp_kind_name(m->kind));
    cmp_html_esc(b, m->training);
    clens_sb_printf(b, "; %d layers; site %s; metric ", m->n_layers, m->site_type);
    cmp_html_esc(b, m->metric ? m->metric : "?");
    clens_sb_puts(b, "</li>\n<li>mode: ");
    cmp_html_esc(b, m->mode ? m->mode : "?");
    clens_sb_printf(b, "</li>\n<li>label by the rule: <b>%s</b>", m->label_point);
    if (m->n_pairs) clens_sb_printf(b, " (at the CIs' lower bounds: %s; upper: %s)", m->label_lo, m->label_hi);
    else clens_sb_puts(b, " (point values only: no per-pair data, CIs unavailable)");
    if (m->seed_label) clens_sb_printf(b, "; the seed's label: %s", m->seed_label);
    clens_sb_puts(b, "</li>\n");
    if (m->notes && json_is_string(m->notes)) {
        clens_sb_puts(b, "<li>note: ");
        cmp_html_esc(b, json_string_value(m->notes));
        clens_sb_puts(b, "</li>\n");
    }
    clens_sb_puts(b, "</ul>\n<table class=\"profile\"");
    esc_attr_model(b, m);
    clens_sb_puts(b, ">\n<tr><th>Layer</th><th>resid_pre</th><th>d</th><th>Recovery %</th><th>95% CI</th><th>Δ from previous</th>"
                     "<th>Δ 95% CI</th><th>n</th></tr>\n");
    for (int j = 0; j < m->n_pts; j++) {
        const cmp_step *st = &m->step[j];
        clens_sb_printf(b, "<tr%s><td>%d</td><td>%d</td><td>%.3f</td>", j > 0 && st->spike ? " class=\"spike\"" : "", m->layer[j],
                        m->layer_pre[j], m->depth[j]);
        td_num(b, m->mean[j]);
        td_ci(b, m->has_ci, m->ci_lo[j], m->ci_hi[j]);
        if (j == 0) clens_sb_puts(b, "<td>-</td>");
        else td_num(b, st->delta);
        td_ci(b, j > 0 && st->has_ci, st->lo, st->hi);
        clens_sb_printf(b, "<td>%d</td></tr>\n", m->n_samples[j]);
    }
    clens_sb_puts(b, "</table>\n<div class=\"plot\">");
    char *svg = cmp_svg_deltas(s, i);
    if (svg) clens_sb_puts(b, svg);
    free(svg);
    if (m->z_index >= 0) {
        svg = cmp_svg_heat(s, i);
        if (svg) clens_sb_puts(b, svg);
        free(svg);
    }
    clens_sb_puts(b, "</div>\n");
    if (m->behaviour) {
        clens_sb_puts(b, "<h3>Behaviour</h3>\n");
        json_pre(b, m->behaviour);
    }
    if (s->ev && s->ev[i].has) evidence_section(b, s, i);
    /* per-pair drill-down */
    clens_sb_puts(b, "<details class=\"pairs\"><summary>Per-pair recoveries</summary>\n");
    if (m->n_pairs == 0) {
        clens_sb_puts(b, "<p>No per-pair data: this input has aggregates only.</p>\n");
    } else {
        clens_sb_puts(b, "<table class=\"pairs\"><tr><th>pair</th><th>D</th>");
        for (int j = 0; j < m->n_pts; j++) clens_sb_printf(b, "<th>L%d</th>", m->layer[j]);
        clens_sb_puts(b, "</tr>\n");
        for (int q = 0; q < m->n_pairs; q++) {
            clens_sb_puts(b, "<tr><td>");
            cmp_html_esc(b, m->pair_id[q]);
            clens_sb_puts(b, "</td>");
            td_num(b, m->pair_D[q]);
            for (int j = 0; j < m->n_pts; j++) {
                size_t c = (size_t)q * (size_t)m->n_pts + (size_t)j;
                td_num(b, m->def[c] ? m->rec[c] : NAN);
            }
            clens_sb_puts(b, "</tr>\n");
        }
        clens_sb_puts(b, "</table>\n");
        if (m->has_tokens) {
            clens_sb_puts(b, "<h4>Final prompt tokens (first pairs)</h4>\n<p>The last tokens of each prompt, one "
                             "box per token as the tokenizer decodes it alone; a token that differs between the "
                             "clean and the corrupted prompt is marked.</p>\n<table class=\"tokens\">\n");
            for (int q = 0; q < m->n_pairs && q < 5; q++) {
                json_t *t = json_object_get(json_array_get(m->records, (size_t)q), "final_tokens");
                json_t *side[2] = {json_object_get(t, "clean"), json_object_get(t, "corrupted")};
                if (!json_is_array(side[0]) || !json_is_array(side[1])) continue;
                size_t n0 = json_array_size(side[0]), n1 = json_array_size(side[1]);
                for (int k = 0; k < 2; k++) {
                    clens_sb_puts(b, k == 0 ? "<tr><td rowspan=\"2\"><code>" : "<tr>");
                    if (k == 0) {
                        cmp_html_esc(b, m->pair_id[q]);
                        clens_sb_puts(b, "</code></td>");
                    }
                    clens_sb_printf(b, "<td>%s</td><td class=\"final-tokens\" data-side=\"%s\">",
                                    k == 0 ? "clean" : "corrupted", k == 0 ? "clean" : "corrupted");
                    size_t nk = k == 0 ? n0 : n1, no = k == 0 ? n1 : n0;
                    for (size_t i = 0; i < nk; i++) {
                        /* aligned from the end: both lists end at the final token */
                        const char *a = json_string_value(json_array_get(side[k], i));
                        const char *o = nk - i <= no ? json_string_value(json_array_get(side[1 - k], no - (nk - i))) : NULL;
                        int differs = !a || !o || strcmp(a, o) != 0;
                        clens_sb_puts(b, differs ? "<span class=\"tok diff\">" : "<span class=\"tok\">");
                        cmp_html_esc(b, a ? a : "?");
                        clens_sb_puts(b, "</span>");
                    }
                    json_t *fd = json_object_get(t, "first_diff");
                    if (json_is_object(fd)) {
                        const char *d = json_string_value(json_object_get(fd, k == 0 ? "clean" : "corrupted"));
                        clens_sb_printf(b, " &nbsp;first difference at token %lld (%lld from the end): <span class=\"tok diff first-diff\">",
                                        (long long)json_integer_value(json_object_get(fd, "position")),
                                        (long long)json_integer_value(json_object_get(fd, "from_end")));
                        cmp_html_esc(b, d ? d : "?");
                        clens_sb_puts(b, "</span>");
                    }
                    clens_sb_puts(b, "</td></tr>\n");
                }
            }
            clens_sb_puts(b, "</table>\n");
        } else {
            clens_sb_puts(b, "<p>The records carry no prompt tokens (no <code>final_tokens</code> field), so none are shown.</p>\n");
        }
    }
    clens_sb_puts(b, "</details>\n<details class=\"settings\"><summary>Settings and provenance</summary>\n<h4>settings</h4>\n");
    json_pre(b, m->settings);
    clens_sb_puts(b, "<h4>provenance</h4>\n");
    json_pre(b, m->provenance);
    clens_sb_puts(b, "</details>\n</section>\n");
}

char *cmp_render_html(const cmp_set *s, const char *comparison_json)
{
    (void)comparison_json;
    clens_sb b = {0};
    const clens_compare_params *p = &s->p;
    clens_sb_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
                      "<title>clens compare report</title>\n<style>\n"
                      "body{font-family:sans-serif;margin:1.5em;max-width:1200px;color:#222}\n"
                      "table{border-collapse:collapse;margin:.5em 0;font-size:13px}\n"
                      "td,th{border:1px solid #bbb;padding:2px 6px;text-align:right}\n"
                      "th{background:#eee}tr.spike td{background:#fde0dd;font-weight:bold}\n"
                      "td:first-child,th:first-child{text-align:left}\n"
                      "pre{background:#f6f6f6;padding:.5em;overflow:auto;font-size:12px}\n"
                      "section.model{border-top:2px solid #888;margin-top:1.5em}\n"
                      ".tok{border:1px solid #999;margin:0 2px;padding:0 2px;font-family:monospace;white-space:pre}\n"
                      ".tok.diff{background:#fdd;border-color:#c00;font-weight:bold}\n"
                      "p.summary{white-space:pre-wrap}\n</style></head><body>\n");
    clens_sb_printf(&b, "<h1>Comparison of %d recovery profile%s</h1>\n<p>clens %s. Layers in resid_pre numbering "
                        "(the seed's resid_post L = resid_pre L+1), relative depth d = L / n_layers.</p>\n",
                    s->n_models, s->n_models == 1 ? "" : "s", CLENS_VERSION);
    clens_sb_printf(&b, "<p class=\"rule\"><b>Profile label rule</b> (docs/compare.md): spike = step with Δ ≥ %.1f whose "
                        "paired bootstrap 95%% CI excludes the median increment (point value when there are no per-pair data); "
                        "mid-spike: a spike at %.2f ≤ d ≤ %.2f; final-spike: a spike at the last sampled step (steps into "
                        "resid_pre n_layers excluded); hybrid: both; gradual: neither. Critical layer: first ≥ %.0f%%. "
                        "Bootstrap: %d resamples, seed %llu.</p>\n",
                    p->min_jump, p->mid_lo, p->mid_hi, p->critical_pct, p->resamples, (unsigned long long)p->seed);
    clens_sb_puts(&b, "<h2>Summary</h2>\n<table class=\"summary\"><tr><th>Model</th><th>Training</th><th>Layers</th><th>N</th>"
                      "<th>Critical layer</th><th>Main jump</th><th>Jump size</th><th>Pattern (rule)</th><th>Peak</th></tr>\n");
    for (int i = 0; i < s->n_models; i++) {
        const cmp_model *m = &s->m[i];
        clens_sb_puts(&b, "<tr");
        esc_attr_model(&b, m);
        clens_sb_puts(&b, "><td>");
        cmp_html_esc(&b, m->label);
        clens_sb_puts(&b, "</td><td>");
        cmp_html_esc(&b, m->training);
        clens_sb_printf(&b, "</td><td>%d</td><td>%d</td><td>", m->n_layers, m->n_pairs ? m->n_pairs : m->n_samples[0]);
        if (m->crit_idx >= 0) {
            clens_sb_printf(&b, "L%d (pre %d, d %.2f)", m->layer[m->crit_idx], m->layer_pre[m->crit_idx], m->depth[m->crit_idx]);
            if (m->crit_has_ci) {
                if (isinf(m->crit_hi)) clens_sb_printf(&b, " CI [%.1f, not reached]", m->crit_lo);
                else clens_sb_printf(&b, " CI [%.1f, %.1f]", m->crit_lo, m->crit_hi);
            }
        } else clens_sb_puts(&b, "not reached");
        int best = -1;
        for (int j = 1; j < m->n_pts; j++)
            if (m->step[j].has && !m->step[j].trivial && (best < 0 || m->step[j].delta > m->step[best].delta)) best = j;
        if (best > 0) {
            clens_sb_printf(&b, "</td><td>L%d→L%d</td><td>%+.1f", m->layer[best - 1], m->layer[best], m->step[best].delta);
            if (m->step[best].has_ci) clens_sb_printf(&b, " [%.1f, %.1f]", m->step[best].lo, m->step[best].hi);
            clens_sb_puts(&b, "</td>");
        } else clens_sb_puts(&b, "</td><td>–</td><td>–</td>");
        clens_sb_printf(&b, "<td>%s%s%s%s</td>", m->label_point, m->seed_label ? " (seed: " : "", m->seed_label ? m->seed_label : "",
                        m->seed_label ? ")" : "");
        if (m->peak_idx >= 0) clens_sb_printf(&b, "<td>%.1f%% (L%d)</td></tr>\n", m->mean[m->peak_idx], m->layer[m->peak_idx]);
        else clens_sb_puts(&b, "<td>–</td></tr>\n");
    }
    clens_sb_puts(&b, "</table>\n<h2>Profiles</h2>\n<div class=\"plot\">\n");
    char *svg = cmp_svg_profiles(s, 1);
    if (svg) clens_sb_puts(&b, svg);
    free(svg);
    svg = cmp_svg_profiles(s, 0);
    if (svg) clens_sb_puts(&b, svg);
    free(svg);
    clens_sb_puts(&b, "</div>\n<h2>What the data do and do not support</h2>\n<p class=\"summary\">");
    cmp_html_esc(&b, s->paragraph);
    clens_sb_puts(&b, "</p>\n");
    for (int i = 0; i < s->n_models; i++) model_section(&b, s, i);
    if (s->n_diffs) {
        clens_sb_printf(&b, "<h2>Differences on a common relative-depth grid (step %.2f)</h2>\n", p->grid_step);
        for (int k = 0; k < s->n_diffs; k++) {
            const cmp_diff *d = &s->d[k];
            clens_sb_puts(&b, "<h3>");
            cmp_html_esc(&b, s->m[d->a].label);
            clens_sb_puts(&b, " − ");
            cmp_html_esc(&b, s->m[d->b].label);
            clens_sb_printf(&b, " (%s)</h3>\n<table class=\"diff\"><tr><th>d</th><th>difference</th><th>95%% CI</th></tr>\n",
                            !d->has_ci ? "no CI: aggregates only" : d->paired ? "paired bootstrap" : "independent bootstrap");
            for (int g = 0; g < d->n_grid; g++) {
                if (!isfinite(d->diff[g])) continue;
                clens_sb_printf(&b, "<tr><td>%.2f</td>", d->grid[g]);
                td_num(&b, d->diff[g]);
                td_ci(&b, isfinite(d->lo[g]), d->lo[g], d->hi[g]);
                clens_sb_puts(&b, "</tr>\n");
            }
            clens_sb_puts(&b, "</table>\n");
        }
    }
    clens_sb_puts(&b, "</body></html>\n");
    return clens_sb_take(&b);
}
