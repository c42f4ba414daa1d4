/*
 * dynamics_report.c: the outputs of `clens dynamics` (docs/dynamics.md
 * "Output"): dynamics.json (deterministic, keys sorted, numbers in the
 * report writers' format), dynamics.md with the verdict paragraph, a heat map
 * of recovery (resid_pre layer x checkpoint), the per-layer curves with both
 * fits, and a self-contained report.html inlining them (no scripts, no
 * external reference; a Content Security Policy of default-src 'none', like
 * compare's report). Every curve carries data-layer="L" so a test can find it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp/dynamics_internal.h"

/* -0.0 and values that print as it show as 0. */
static double nz(double x) { return fabs(x) < 0.05 ? 0.0 : x; }

static json_t *jnum(double x) { return isfinite(x) ? json_real(x) : json_null(); }

static json_t *jci(double lo, double hi)
{
    if (!isfinite(lo) || !isfinite(hi)) return json_null();
    return json_pack("[o,o]", json_real(lo), json_real(hi));
}

char *dyn_render_json(const dyn_series *s, json_t *settings)
{
    const clens_dynamics_params *p = s->params;
    json_t *root = json_object(), *cks = json_array(), *layers = json_array();
    json_object_set_new(root, "format", json_string("clens-dynamics/1"));
    json_object_set(root, "settings", settings);
    json_object_set_new(root, "n_layers", json_integer(s->n_layers));
    json_object_set_new(root, "n_pair_ids", json_integer(s->n_ids));
    for (int k = 0; k < s->n_ck; k++) {
        const dyn_ckpt *c = &s->ck[k];
        const cmp_model *m = dyn_model(c);
        json_t *o = json_object(), *prof = json_array();
        json_object_set_new(o, "checkpoint", json_string(c->arg));
        json_object_set_new(o, "path", json_string(c->path));
        json_object_set_new(o, "step", json_integer(c->step));
        json_object_set_new(o, "run", json_string(c->run_dir));
        json_object_set_new(o, "n_pairs", json_integer(m ? m->n_pairs : 0));
        for (int j = 0; m && j < m->n_pts; j++)
            json_array_append_new(prof, json_pack("{s:i,s:o,s:o,s:i}", "layer_resid_pre", m->layer_pre[j], "mean",
                                                  jnum(m->mean[j]), "ci95",
                                                  m->has_ci ? jci(m->ci_lo[j], m->ci_hi[j]) : json_null(), "n",
                                                  m->n_samples[j]));
        json_object_set_new(o, "profile", prof);
        json_object_set_new(o, "label", m ? json_pack("{s:s,s:s,s:s}", "point", m->label_point, "at_ci_low", m->label_lo,
                                                      "at_ci_high", m->label_hi) : json_null());
        json_object_set_new(o, "critical",
                            m ? json_pack("{s:o,s:o}", "layer_resid_pre",
                                          m->crit_idx >= 0 ? json_integer(m->layer_pre[m->crit_idx]) : json_null(), "ci95",
                                          m->crit_has_ci ? jci(m->crit_lo, m->crit_hi) : json_null())
                              : json_null());
        json_object_set_new(o, "behaviour",
                            c->has_beh ? json_pack("{s:o,s:o,s:i}", "p_correction_after_error",
                                                   jnum(c->beh.p_correction_after_error), "p_correction_after_correct",
                                                   jnum(c->beh.p_correction_after_correct), "n_traces", c->beh.n_traces)
                                       : json_null());
        json_array_append_new(cks, o);
    }
    for (int j = 0; j < s->n_pts; j++) {
        const dyn_layer *L = &s->layer[j];
        json_t *o = json_object(), *steps = json_array(), *means = json_array();
        for (int k = 0; k < s->n_ck; k++) {
            json_array_append_new(steps, json_integer(s->ck[k].step));
            json_array_append_new(means, jnum(L->mean[k]));
        }
        json_object_set_new(o, "layer_resid_pre", json_integer(s->layer_pre[j]));
        json_object_set_new(o, "steps", steps);
        json_object_set_new(o, "recovery", means);
        json_object_set_new(o, "n_fit", json_integer(L->n_fit));
        json_object_set_new(o, "linear", json_pack("{s:o,s:o,s:o,s:o}", "intercept", jnum(L->lin.a), "slope",
                                                   jnum(L->lin.b), "sse", jnum(L->lin.sse), "bic", jnum(L->lin.bic)));
        json_t *lg = json_null();
        if (L->lg.ok)
            lg = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:i,s:i}", "lo", jnum(L->lg.lo), "hi", jnum(L->lg.hi),
                           "location", jnum(L->lg.loc), "width", jnum(L->lg.width), "sse", jnum(L->lg.sse), "bic",
                           jnum(L->lg.bic), "location_ci95", jci(L->loc_lo, L->loc_hi), "width_ci95",
                           jci(L->w_lo, L->w_hi), "window_10_90",
                           json_pack("[o,o]", jnum(L->lg.loc - DYN_RISE * L->lg.width),
                                     jnum(L->lg.loc + DYN_RISE * L->lg.width)),
                           "checkpoints_in_window", L->n_inside, "resamples_converged", L->n_boot);
        json_object_set_new(o, "logistic", lg);
        json_object_set_new(o, "delta_bic", L->lg.ok ? jnum(L->lin.bic - L->lg.bic) : json_null());
        json_object_set_new(o, "verdict", json_string(dyn_verdict_name(L->verdict)));
        json_array_append_new(layers, o);
    }
    json_object_set_new(root, "checkpoints", cks);
    json_object_set_new(root, "layers", layers);
    json_object_set_new(root, "headline",
                        s->headline >= 0 ? json_pack("{s:i,s:b,s:s}", "layer_resid_pre", s->layer_pre[s->headline],
                                                     "is_critical_layer", s->headline_is_critical, "verdict",
                                                     dyn_verdict_name(s->layer[s->headline].verdict))
                                         : json_null());
    json_object_set_new(root, "rule", json_pack("{s:f,s:f,s:i,s:f}", "min_delta_bic", p->min_delta_bic,
                                                 "max_window_frac", p->max_window_frac, "min_inside", p->min_inside,
                                                 "min_amplitude", p->min_amplitude));
    clens_sb b = {0};
    clens_sb_json_value(&b, root, 0);
    clens_sb_puts(&b, "\n");
    json_decref(root);
    return clens_sb_take(&b);
}

/* The verdict paragraph (plain text; also in report.html). */
static void paragraph(clens_sb *b, const dyn_series *s)
{
    const clens_dynamics_params *p = s->params;
    long t0 = s->ck[0].step, t1 = s->ck[s->n_ck - 1].step;
    clens_sb_printf(b, "Over %d checkpoints (steps %ld to %ld) on %d shared pair ids, ", s->n_ck, t0, t1, s->n_ids);
    if (s->headline < 0) {
        clens_sb_printf(b, "no resid_pre layer's mean recovery changes by %.0f points or more: there is nothing to "
                           "call gradual or a transition.",
                        p->min_amplitude);
        return;
    }
    const dyn_layer *L = &s->layer[s->headline];
    int lp = s->layer_pre[s->headline];
    /* A checkpoint that keeps no pair has no value (NaN): the sentence names the first and last
     * checkpoints that have one, with their steps. */
    int k0 = 0, k1 = s->n_ck - 1;
    while (k0 < k1 && !isfinite(L->mean[k0])) k0++;
    while (k1 > k0 && !isfinite(L->mean[k1])) k1--;
    clens_sb_printf(b, "recovery at resid_pre %d (%s) goes from %.1f%% (step %ld) to %.1f%% (step %ld). ", lp,
                    s->headline_is_critical ? "the last checkpoint's critical layer" : "the layer that changes most",
                    nz(L->mean[k0]), s->ck[k0].step, nz(L->mean[k1]), s->ck[k1].step);
    double dbic = L->lg.ok ? L->lin.bic - L->lg.bic : NAN;
    switch (L->verdict) {
    case DYN_TRANSITION:
        clens_sb_printf(b, "It is a **transition**: the logistic step beats the straight line by ΔBIC = %.1f (>= %.0f), "
                           "its 10–90%% rise spans steps %.0f to %.0f (%.0f%% of the series, <= %.0f%%), centred at "
                           "step %.0f",
                        dbic, p->min_delta_bic, L->lg.loc - DYN_RISE * L->lg.width, L->lg.loc + DYN_RISE * L->lg.width,
                        100 * 2 * DYN_RISE * L->lg.width / (double)(t1 - t0), 100 * p->max_window_frac, L->lg.loc);
        if (isfinite(L->loc_lo)) clens_sb_printf(b, " (95%% CI %.0f to %.0f, bootstrap over pairs)", L->loc_lo, L->loc_hi);
        clens_sb_printf(b, ", with %d checkpoints inside that window (>= %d needed).", L->n_inside, p->min_inside);
        break;
    case DYN_SPARSE:
        clens_sb_printf(b, "The checkpoints are **too sparse to decide**: ");
        if (L->n_fit < 5) clens_sb_printf(b, "only %d checkpoints have a value (a 4-parameter fit needs 5).", L->n_fit);
        else
            clens_sb_printf(b, "a step fits better (ΔBIC = %.1f) and its 10–90%% rise spans steps %.0f to %.0f, but only "
                               "%d checkpoint(s) fall inside it (%d needed); a jump and a fast ramp between those "
                               "checkpoints look the same. Add checkpoints in that range.",
                            dbic, L->lg.loc - DYN_RISE * L->lg.width, L->lg.loc + DYN_RISE * L->lg.width, L->n_inside,
                            p->min_inside);
        break;
    case DYN_GRADUAL:
        if (!(dbic >= p->min_delta_bic))
            clens_sb_printf(b, "It is **gradual**: the logistic step does not beat the straight line by ΔBIC >= %.0f "
                               "(ΔBIC = %.1f).",
                            p->min_delta_bic, dbic);
        else
            clens_sb_printf(b, "It is **gradual**: a logistic fits better (ΔBIC = %.1f) but its 10–90%% rise spans "
                               "%.0f%% of the series (a transition needs <= %.0f%%).",
                            dbic, 100 * 2 * DYN_RISE * L->lg.width / (double)(t1 - t0), 100 * p->max_window_frac);
        break;
    default:
        clens_sb_printf(b, "It is flat (change below %.0f points).", p->min_amplitude);
    }
    int n_tr = 0, n_gr = 0, n_sp = 0;
    for (int j = 0; j < s->n_pts; j++) {
        n_tr += s->layer[j].verdict == DYN_TRANSITION;
        n_gr += s->layer[j].verdict == DYN_GRADUAL;
        n_sp += s->layer[j].verdict == DYN_SPARSE;
    }
    clens_sb_printf(b, " Across the %d layers: %d transition, %d gradual, %d too sparse, %d flat.", s->n_pts, n_tr, n_gr,
                    n_sp, s->n_pts - n_tr - n_gr - n_sp);
}

static void f1(clens_sb *b, double x)
{
    if (isfinite(x)) clens_sb_printf(b, "%.1f", nz(x));
    else clens_sb_puts(b, "–");
}

char *dyn_render_md(const dyn_series *s)
{
    clens_sb b = {0};
    clens_sb_puts(&b, "# Training dynamics\n\n");
    paragraph(&b, s);
    clens_sb_puts(&b, "\n\n## Checkpoints\n\n| # | step | checkpoint | pairs | label | critical layer (resid_pre) | "
                      "P(corr after error) |\n|---|---|---|---|---|---|---|\n");
    for (int k = 0; k < s->n_ck; k++) {
        const dyn_ckpt *c = &s->ck[k];
        const cmp_model *m = dyn_model(c);
        clens_sb_printf(&b, "| %d | %ld | `%s` | %d | %s | ", k, c->step, c->arg, m ? m->n_pairs : 0,
                        m ? m->label_point : "no pair kept");
        if (!m) clens_sb_puts(&b, "–");
        else if (m->crit_idx >= 0) clens_sb_printf(&b, "%d", m->layer_pre[m->crit_idx]);
        else clens_sb_puts(&b, "not reached");
        clens_sb_puts(&b, " | ");
        if (c->has_beh) clens_sb_printf(&b, "%.4f", c->beh.p_correction_after_error);
        else clens_sb_puts(&b, "–");
        clens_sb_puts(&b, " |\n");
    }
    clens_sb_puts(&b, "\n## Layers\n\n| resid_pre | first → last | ΔBIC (lin − logistic) | location [95% CI] | width "
                      "[95% CI] | in window | verdict |\n|---|---|---|---|---|---|---|\n");
    for (int j = 0; j < s->n_pts; j++) {
        const dyn_layer *L = &s->layer[j];
        clens_sb_printf(&b, "| %d%s | ", s->layer_pre[j], j == s->headline ? " **(headline)**" : "");
        f1(&b, L->mean[0]);
        clens_sb_puts(&b, " → ");
        f1(&b, L->mean[s->n_ck - 1]);
        clens_sb_puts(&b, " | ");
        f1(&b, L->lg.ok ? L->lin.bic - L->lg.bic : NAN);
        clens_sb_puts(&b, " | ");
        if (L->lg.ok) {
            clens_sb_printf(&b, "%.0f", L->lg.loc);
            if (isfinite(L->loc_lo)) clens_sb_printf(&b, " [%.0f, %.0f]", L->loc_lo, L->loc_hi);
            clens_sb_printf(&b, " | %.3g", L->lg.width);
            if (isfinite(L->w_lo)) clens_sb_printf(&b, " [%.3g, %.3g]", L->w_lo, L->w_hi);
        } else
            clens_sb_puts(&b, "– | –");
        clens_sb_printf(&b, " | %d | %s |\n", L->n_inside, dyn_verdict_name(L->verdict));
    }
    clens_sb_printf(&b, "\nRule (docs/dynamics.md): flat if the checkpoint means span < %.0f points; transition if "
                        "BIC(linear) − BIC(logistic) >= %.0f, the logistic's 10–90%% window (location ± ln 9 · width) "
                        "is <= %.2f of the step span and holds >= %d checkpoints; too sparse if the first two hold but "
                        "not the third (or fewer than 5 checkpoints); else gradual. CIs: %d bootstrap resamples of the "
                        "pair ids, drawn jointly for every checkpoint (seed %llu).\n",
                    s->params->min_amplitude, s->params->min_delta_bic, s->params->max_window_frac,
                    s->params->min_inside, s->params->resamples, (unsigned long long)s->params->seed);
    return clens_sb_take(&b);
}

/* Blue (0%) - white (50%) - red (100%), clamped. */
static void colour(char *buf, size_t n, double v)
{
    if (!isfinite(v)) { snprintf(buf, n, "#cccccc"); return; }
    double x = v < 0 ? 0 : v > 100 ? 1 : v / 100;
    int r, g, bl;
    if (x < 0.5) { double u = x / 0.5; r = (int)(59 + u * 196); g = (int)(76 + u * 179); bl = (int)(192 + u * 63); }
    else { double u = (x - 0.5) / 0.5; r = (int)(255 - u * 75); g = (int)(255 - u * 251); bl = (int)(255 - u * 217); }
    snprintf(buf, n, "#%02x%02x%02x", r, g, bl);
}

char *dyn_svg_heat(const dyn_series *s)
{
    int cw = 28, ch = 18, L = 70, T = 30, W = L + s->n_ck * cw + 90, H = T + s->n_pts * ch + 60;
    clens_sb b = {0};
    clens_sb_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot-heat\" width=\"%d\" height=\"%d\" "
                        "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"10\">\n",
                    W, H, W, H);
    clens_sb_printf(&b, "<text x=\"%d\" y=\"16\" font-size=\"12\">recovery %% (resid_pre layer × checkpoint)</text>\n", L);
    for (int j = 0; j < s->n_pts; j++) {
        int row = s->n_pts - 1 - j; /* deepest layer on top */
        clens_sb_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">L%d</text>\n", L - 4, T + row * ch + 13,
                        s->layer_pre[j]);
        for (int k = 0; k < s->n_ck; k++) {
            char c[16];
            double v = s->layer[j].mean[k];
            colour(c, sizeof c, v);
            clens_sb_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" data-layer=\"%d\" "
                                "data-step=\"%ld\"><title>resid_pre %d, step %ld: ",
                            L + k * cw, T + row * ch, cw, ch, c, s->layer_pre[j], s->ck[k].step, s->layer_pre[j],
                            s->ck[k].step);
            if (isfinite(v)) clens_sb_printf(&b, "%.1f%%", v);
            else clens_sb_puts(&b, "undefined");
            clens_sb_puts(&b, "</title></rect>\n");
        }
    }
    for (int k = 0; k < s->n_ck; k++)
        clens_sb_printf(&b, "<text x=\"%d\" y=\"%d\" transform=\"rotate(60 %d %d)\">%ld</text>\n", L + k * cw + 8,
                        T + s->n_pts * ch + 10, L + k * cw + 8, T + s->n_pts * ch + 10, s->ck[k].step);
    /* legend */
    for (int i = 0; i <= 10; i++) {
        char c[16];
        colour(c, sizeof c, i * 10.0);
        clens_sb_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"%d\" fill=\"%s\"/>\n", W - 60,
                        T + (10 - i) * 12, 12, c);
    }
    clens_sb_printf(&b, "<text x=\"%d\" y=\"%d\">100%%</text><text x=\"%d\" y=\"%d\">0%%</text>\n", W - 42, T + 10,
                    W - 42, T + 130);
    clens_sb_puts(&b, "</svg>\n");
    return clens_sb_take(&b);
}

static const char *palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"};

/* One small panel per non-flat layer (all layers if at most 12): points, the line, the logistic. */
char *dyn_svg_curves(const dyn_series *s)
{
    int pw = 260, ph = 170, cols = 3;
    int n = 0;
    for (int j = 0; j < s->n_pts; j++) n++;
    int rows = (n + cols - 1) / cols, W = cols * pw, H = rows * ph + 10;
    double t0 = (double)s->ck[0].step, t1 = (double)s->ck[s->n_ck - 1].step;
    if (!(t1 > t0)) t1 = t0 + 1;
    double ylo = 0, yhi = 100;
    for (int j = 0; j < s->n_pts; j++)
        for (int k = 0; k < s->n_ck; k++) {
            double v = s->layer[j].mean[k];
            if (isfinite(v)) { ylo = v < ylo ? v : ylo; yhi = v > yhi ? v : yhi; }
        }
    clens_sb b = {0};
    clens_sb_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot-curves\" width=\"%d\" height=\"%d\" "
                        "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"10\">\n",
                    W, H, W, H);
    int q = 0;
    for (int j = 0; j < s->n_pts; j++, q++) {
        const dyn_layer *Ly = &s->layer[j];
        double ox = (q % cols) * pw + 40, oy = (q / cols) * ph + 20, w = pw - 55, h = ph - 50;
#define X(t) (ox + ((t) - t0) / (t1 - t0) * w)
#define Y(v) (oy + h - ((v) - ylo) / (yhi - ylo) * h)
        const char *col = palette[j % 8];
        clens_sb_printf(&b, "<g data-layer=\"%d\" class=\"curve\">\n", s->layer_pre[j]);
        clens_sb_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#999\"/>\n",
                        ox, oy, w, h);
        clens_sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\">resid_pre %d: %s</text>\n", ox, oy - 5, s->layer_pre[j],
                        dyn_verdict_name(Ly->verdict));
        clens_sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.0f</text><text x=\"%.1f\" y=\"%.1f\" "
                            "text-anchor=\"end\">%.0f</text>\n",
                        ox - 3, Y(yhi) + 8, nz(yhi), ox - 3, Y(ylo), nz(ylo));
        clens_sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\">%.0f</text><text x=\"%.1f\" y=\"%.1f\" "
                            "text-anchor=\"end\">%.0f</text>\n",
                        ox, oy + h + 12, t0, ox + w, oy + h + 12, t1);
        if (Ly->n_fit >= 2 && isfinite(Ly->lin.a))
            clens_sb_printf(&b, "<line class=\"fit-linear\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                                "stroke=\"#888\" stroke-dasharray=\"4 3\"/>\n",
                            X(t0), Y(Ly->lin.a + Ly->lin.b * t0), X(t1), Y(Ly->lin.a + Ly->lin.b * t1));
        if (Ly->lg.ok) {
            clens_sb_printf(&b, "<polyline class=\"fit-logistic\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", col);
            for (int i = 0; i <= 200; i++) {
                double t = t0 + (t1 - t0) * i / 200.0, v = dyn_logistic_eval(&Ly->lg, t);
                if (v > yhi) v = yhi;
                if (v < ylo) v = ylo;
                clens_sb_printf(&b, "%.1f,%.1f ", X(t), Y(v));
            }
            clens_sb_puts(&b, "\"/>\n");
        }
        for (int k = 0; k < s->n_ck; k++)
            if (isfinite(Ly->mean[k]))
                clens_sb_printf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"><title>step %ld: %.1f%%</title></circle>\n",
                                X((double)s->ck[k].step), Y(Ly->mean[k]), col, s->ck[k].step, Ly->mean[k]);
        clens_sb_puts(&b, "</g>\n");
#undef X
#undef Y
    }
    clens_sb_puts(&b, "</svg>\n");
    return clens_sb_take(&b);
}

char *dyn_render_html(const dyn_series *s, const char *md, const char *heat, const char *curves, const char *json)
{
    clens_sb b = {0};
    clens_sb_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
                      "<title>clens dynamics</title>\n<style>body{font-family:sans-serif;max-width:1100px;margin:1em auto;"
                      "padding:0 1em}pre{background:#f6f6f6;padding:.5em;overflow:auto;max-height:30em}"
                      "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}</style>\n</head>\n<body>\n"
                      "<h1>Training dynamics</h1>\n<p class=\"verdict\">");
    clens_sb sb = {0};
    paragraph(&sb, s);
    char *para = clens_sb_take(&sb);
    /* the paragraph's **bold** (markdown) as <b> */
    int bold = 0;
    for (const char *q = para ? para : ""; *q;) {
        const char *m = strstr(q, "**");
        size_t n = m ? (size_t)(m - q) : strlen(q);
        char *piece = strndup(q, n);
        cmp_html_esc(&b, piece ? piece : "");
        free(piece);
        if (!m) break;
        clens_sb_puts(&b, bold ? "</b>" : "<b>");
        bold = !bold;
        q = m + 2;
    }
    if (bold) clens_sb_puts(&b, "</b>");
    free(para);
    clens_sb_puts(&b, "</p>\n<h2>Recovery by layer and checkpoint</h2>\n");
    clens_sb_puts(&b, heat);
    clens_sb_puts(&b, "<h2>Recovery vs step, with the linear (dashed) and logistic fits</h2>\n");
    clens_sb_puts(&b, curves);
    clens_sb_puts(&b, "<h2>Tables</h2>\n<pre>");
    cmp_html_esc(&b, md);
    clens_sb_puts(&b, "</pre>\n<h2>dynamics.json</h2>\n<pre>");
    cmp_html_esc(&b, json);
    clens_sb_puts(&b, "</pre>\n</body>\n</html>\n");
    return clens_sb_take(&b);
}
