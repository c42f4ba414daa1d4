/*
 * svg.c: the SVG plots of `clens compare` (docs/compare.md "Plots"), plain
 * text with no scripts, fonts or external references, so report.html can
 * inline them: recovery against relative depth (or absolute layer), one line
 * per model with its bootstrap CI band; the increments Δ of one model as bars
 * with CI whiskers and the rule's threshold; a heat map of per-head (`z`)
 * recoveries. Every curve, band and bar group carries data-model="label" so a
 * test can find each model's elements.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report/compare_internal.h"

static const char *palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"};
#define N_PALETTE 8

void cmp_html_esc(clens_sb *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': clens_sb_puts(b, "&amp;"); break;
        case '<': clens_sb_puts(b, "&lt;"); break;
        case '>': clens_sb_puts(b, "&gt;"); break;
        case '"': clens_sb_puts(b, "&quot;"); break;
        case '\'': clens_sb_puts(b, "&#39;"); break;
        default: clens_sb_put(b, s, 1);
        }
    }
}

/* A tick step of 1, 2 or 5 times a power of ten giving at most about 12 ticks over span. */
static double nice_step(double span)
{
    double raw = span / 12, p10 = pow(10, floor(log10(raw > 0 ? raw : 1)));
    double m = raw / p10;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p10;
}

typedef struct frame { double x0, x1, y0, y1; int W, H, L, R, T, Bm; } frame;

static double fx(const frame *f, double x) { return f->L + (x - f->x0) / (f->x1 - f->x0) * (f->W - f->L - f->R); }
static double fy(const frame *f, double y) { return f->H - f->Bm - (y - f->y0) / (f->y1 - f->y0) * (f->H - f->T - f->Bm); }

static void axes(clens_sb *b, const frame *f, const char *xlabel, const char *ylabel, double xstep, double ystep, int xint)
{
    clens_sb_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fff\" stroke=\"#444\"/>\n", f->L, f->T,
                    f->W - f->L - f->R, f->H - f->T - f->Bm);
    for (double y = ceil(f->y0 / ystep) * ystep; y <= f->y1 + 1e-9; y += ystep) {
        clens_sb_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                           "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%g</text>\n",
                        f->L, f->W - f->R, fy(f, y), fy(f, y), f->L - 4, fy(f, y) + 4, fabs(y) < 1e-9 ? 0 : y);
    }
    for (double x = ceil(f->x0 / xstep - 1e-9) * xstep; x <= f->x1 + 1e-9; x += xstep) {
        clens_sb_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#eee\"/>", fx(f, x), fx(f, x), f->T,
                        f->H - f->Bm);
        if (xint) clens_sb_printf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%d</text>\n", fx(f, x),
                                  f->H - f->Bm + 14, (int)lround(x));
        else clens_sb_printf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%.1f</text>\n", fx(f, x),
                             f->H - f->Bm + 14, fabs(x) < 1e-9 ? 0.0 : x);
    }
    clens_sb_printf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">%s</text>\n",
                    (f->L + f->W - f->R) / 2.0, f->H - 6, xlabel);
    clens_sb_printf(b, "<text x=\"14\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 14 %.1f)\">%s</text>\n",
                    (f->T + f->H - f->Bm) / 2.0, (f->T + f->H - f->Bm) / 2.0, ylabel);
}

char *cmp_svg_profiles(const cmp_set *s, int by_depth)
{
    clens_sb b = {0};
    frame f = {0, 1, -10, 110, 800, 430, 50, 270, 30, 40};
    if (!by_depth) {
        int maxl = 1;
        for (int i = 0; i < s->n_models; i++)
            if (s->m[i].n_layers > maxl) maxl = s->m[i].n_layers;
        f.x1 = maxl;
    }
    for (int i = 0; i < s->n_models; i++) {
        const cmp_model *m = &s->m[i];
        for (int j = 0; j < m->n_pts; j++) { /* the means set the scale; CI bands are clipped to it */
            double v = m->mean[j];
            if (isfinite(v) && v < f.y0) f.y0 = floor(v / 10) * 10;
            if (isfinite(v) && v > f.y1) f.y1 = ceil(v / 10) * 10;
        }
    }
    clens_sb_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                        "class=\"plot-profiles\" font-family=\"sans-serif\">\n", f.W, f.H, f.W, f.H);
    clens_sb_printf(&b, "<text x=\"%d\" y=\"18\" font-size=\"14\">Recovery %% vs %s (resid_pre numbering)%s</text>\n", f.L,
                    by_depth ? "relative depth d = L / n_layers" : "layer", s->n_models && s->m[0].has_ci ? ", 95% CI bands" : "");
    clens_sb_printf(&b, "<defs><clipPath id=\"clip-%s\"><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/></clipPath></defs>\n",
                    by_depth ? "depth" : "layer", f.L, f.T, f.W - f.L - f.R, f.H - f.T - f.Bm);
    axes(&b, &f, by_depth ? "relative depth d" : "resid_pre layer", "recovery %", by_depth ? 0.1 : (f.x1 > 20 ? 4 : 2),
         nice_step(f.y1 - f.y0), !by_depth);
    for (int i = 0; i < s->n_models; i++) {
        const cmp_model *m = &s->m[i];
        const char *col = palette[i % N_PALETTE];
        if (m->has_ci) {
            clens_sb_puts(&b, "<polygon class=\"band\" data-model=\"");
            cmp_html_esc(&b, m->label);
            clens_sb_printf(&b, "\" clip-path=\"url(#clip-%s)\" fill=\"%s\" fill-opacity=\"0.15\" stroke=\"none\" points=\"",
                            by_depth ? "depth" : "layer", col);
            for (int j = 0; j < m->n_pts; j++)
                if (isfinite(m->ci_hi[j]))
                    clens_sb_printf(&b, "%.1f,%.1f ", fx(&f, by_depth ? m->depth[j] : m->layer_pre[j]), fy(&f, m->ci_hi[j]));
            for (int j = m->n_pts - 1; j >= 0; j--)
                if (isfinite(m->ci_lo[j]))
                    clens_sb_printf(&b, "%.1f,%.1f ", fx(&f, by_depth ? m->depth[j] : m->layer_pre[j]), fy(&f, m->ci_lo[j]));
            clens_sb_puts(&b, "\"/>\n");
        }
        clens_sb_puts(&b, "<polyline class=\"curve\" data-model=\"");
        cmp_html_esc(&b, m->label);
        clens_sb_printf(&b, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", col,
                        m->kind == CMP_SEED ? " stroke-dasharray=\"6 3\"" : "");
        for (int j = 0; j < m->n_pts; j++)
            if (isfinite(m->mean[j]))
                clens_sb_printf(&b, "%.1f,%.1f ", fx(&f, by_depth ? m->depth[j] : m->layer_pre[j]), fy(&f, m->mean[j]));
        clens_sb_puts(&b, "\"/>\n");
        for (int j = 0; j < m->n_pts; j++)
            if (isfinite(m->mean[j])) {
                clens_sb_printf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"><title>", fx(&f, by_depth ? m->depth[j] : m->layer_pre[j]),
                                fy(&f, m->mean[j]), col);
                cmp_html_esc(&b, m->label);
                clens_sb_printf(&b, " L%d (pre %d, d %.3f): %.1f%%</title></circle>\n", m->layer[j], m->layer_pre[j], m->depth[j],
                                m->mean[j]);
            }
        double ly = f.T + 14 + 18 * i;
        clens_sb_printf(&b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"/>"
                            "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" class=\"legend\" data-model=\"",
                        f.W - f.R + 10, f.W - f.R + 30, ly, ly, col, f.W - f.R + 34, ly + 4);
        cmp_html_esc(&b, m->label);
        clens_sb_puts(&b, "\">");
        char lab[48];
        snprintf(lab, sizeof lab, "%.30s", m->label);
        for (size_t k = strlen(lab); k > 0 && ((unsigned char)lab[k] & 0xC0) == 0x80; k--) lab[k - 1] = 0; /* whole UTF-8 characters */
        cmp_html_esc(&b, lab);
        clens_sb_printf(&b, " (%s)</text>\n", m->label_point);
    }
    clens_sb_puts(&b, "</svg>\n");
    return clens_sb_take(&b);
}

char *cmp_svg_deltas(const cmp_set *s, int mi)
{
    const cmp_model *m = &s->m[mi];
    clens_sb b = {0};
    int ns = m->n_pts - 1 > 0 ? m->n_pts - 1 : 1;
    frame f = {0, ns, 0, s->p.min_jump + 5, 0, 300, 50, 20, 30, 40};
    f.W = 90 + 26 * ns;
    if (f.W < 560) f.W = 560;
    for (int j = 1; j < m->n_pts; j++) {
        const cmp_step *st = &m->step[j];
        if (!st->has) continue;
        double lo = st->has_ci ? fmin(st->lo, st->delta) : st->delta, hi = st->has_ci ? fmax(st->hi, st->delta) : st->delta;
        if (lo < f.y0) f.y0 = floor(lo / 5) * 5;
        if (hi > f.y1) f.y1 = ceil(hi / 5) * 5;
    }
    clens_sb_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                        "class=\"plot-deltas\" data-model=\"", f.W, f.H, f.W, f.H);
    cmp_html_esc(&b, m->label);
    clens_sb_puts(&b, "\" font-family=\"sans-serif\">\n<text x=\"50\" y=\"18\" font-size=\"13\">Δ per step");
    clens_sb_printf(&b, "%s; red: spike by the rule, grey: last block</text>\n", m->has_ci ? " (95% CI)" : " (no CI)");
    double span = f.y1 - f.y0;
    double ystep = nice_step(span);
    /* axes without x ticks: category labels instead */
    clens_sb_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fff\" stroke=\"#444\"/>\n", f.L, f.T,
                    f.W - f.L - f.R, f.H - f.T - f.Bm);
    for (double y = ceil(f.y0 / ystep) * ystep; y <= f.y1 + 1e-9; y += ystep)
        clens_sb_printf(&b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                            "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%g</text>\n",
                        f.L, f.W - f.R, fy(&f, y), fy(&f, y), f.L - 4, fy(&f, y) + 4, fabs(y) < 1e-9 ? 0 : y);
    clens_sb_printf(&b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>\n", f.L, f.W - f.R, fy(&f, 0), fy(&f, 0));
    clens_sb_printf(&b, "<line class=\"threshold\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#d62728\" stroke-dasharray=\"5 3\"/>"
                        "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" fill=\"#d62728\" text-anchor=\"end\">min_jump %.1f</text>\n",
                    f.L, f.W - f.R, fy(&f, s->p.min_jump), fy(&f, s->p.min_jump), f.W - f.R - 2, fy(&f, s->p.min_jump) - 3,
                    s->p.min_jump);
    if (m->has_median)
        clens_sb_printf(&b, "<line class=\"median\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" stroke-dasharray=\"2 2\"/>"
                            "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" fill=\"#555\">median Δ %.1f</text>\n",
                        f.L, f.W - f.R, fy(&f, m->median_delta), fy(&f, m->median_delta), f.L + 4, fy(&f, m->median_delta) - 3,
                        m->median_delta);
    double bw = (f.W - f.L - f.R) / (double)ns;
    for (int j = 1; j < m->n_pts; j++) {
        const cmp_step *st = &m->step[j];
        double x = f.L + (j - 1) * bw;
        clens_sb_printf(&b, "<text x=\"%.1f\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\">%d</text>\n", x + bw / 2,
                        f.H - f.Bm + 13, m->layer[j]);
        if (!st->has) continue;
        const char *col = st->trivial ? "#999" : st->spike ? "#d62728" : "#1f77b4";
        double y0 = fy(&f, 0), y1 = fy(&f, st->delta);
        clens_sb_printf(&b, "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>L%d→L%d Δ %.1f",
                        x + bw * 0.15, fmin(y0, y1), bw * 0.7, fabs(y1 - y0), col, m->layer[j - 1], m->layer[j], st->delta);
        if (st->has_ci) clens_sb_printf(&b, " [%.1f, %.1f]", st->lo, st->hi);
        clens_sb_puts(&b, "</title></rect>\n");
        if (st->has_ci)
            clens_sb_printf(&b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>"
                                "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>"
                                "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>\n",
                            x + bw / 2, x + bw / 2, fy(&f, st->lo), fy(&f, st->hi), x + bw * 0.35, x + bw * 0.65, fy(&f, st->lo),
                            fy(&f, st->lo), x + bw * 0.35, x + bw * 0.65, fy(&f, st->hi), fy(&f, st->hi));
    }
    clens_sb_printf(&b, "<text x=\"%.1f\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">layer (end of step, as recorded)</text>\n",
                    (f.L + f.W - f.R) / 2.0, f.H - 6);
    clens_sb_puts(&b, "</svg>\n");
    return clens_sb_take(&b);
}

/* Diverging colour for a recovery: blue (-100) - white (0) - red (+100). */
static void heat_colour(char *buf, size_t n, double v)
{
    if (!isfinite(v)) { snprintf(buf, n, "#cccccc"); return; }
    double t = v / 100.0;
    if (t > 1) t = 1;
    if (t < -1) t = -1;
    int r, g, bl;
    if (t >= 0) { r = 255; g = (int)lround(255 * (1 - t)); bl = g; }
    else { bl = 255; r = (int)lround(255 * (1 + t)); g = r; }
    snprintf(buf, n, "#%02x%02x%02x", r, g, bl);
}

char *cmp_svg_heat(const cmp_set *s, int mi)
{
    const cmp_model *m = &s->m[mi];
    clens_sb b = {0};
    if (m->z_index < 0) { clens_sb_puts(&b, ""); return clens_sb_take(&b); }
    const cmp_sitetype *z = &m->types[m->z_index];
    int cell = 18, L = 60, T = 40;
    int W = L + cell * m->n_heads + 120, H = T + cell * z->n_layers + 40;
    if (W < 300) W = 300;
    clens_sb_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                        "class=\"plot-heads\" data-model=\"", W, H, W, H);
    cmp_html_esc(&b, m->label);
    clens_sb_puts(&b, "\" font-family=\"sans-serif\">\n<text x=\"10\" y=\"18\" font-size=\"13\">Per-head (z) mean recovery %</text>\n");
    char col[16];
    for (int l = 0; l < z->n_layers; l++) {
        clens_sb_printf(&b, "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"end\">L%d</text>\n", L - 4,
                        T + l * cell + cell - 5, z->layers[l]);
        for (int h = 0; h < m->n_heads; h++) {
            double v = z->z_mean[(size_t)l * (size_t)m->n_heads + (size_t)h];
            heat_colour(col, sizeof col, v);
            clens_sb_printf(&b, "<rect class=\"cell\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" stroke=\"#fff\">"
                                "<title>L%d H%d: %.2f%%</title></rect>\n",
                            L + h * cell, T + l * cell, cell, cell, col, z->layers[l], h, v);
        }
    }
    for (int h = 0; h < m->n_heads; h++)
        clens_sb_printf(&b, "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\">%d</text>\n", L + h * cell + cell / 2,
                        T - 4, h);
    int lx = L + cell * m->n_heads + 20;
    for (int k = 0; k <= 4; k++) {
        double v = 100 - 50 * k;
        heat_colour(col, sizeof col, v);
        clens_sb_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"14\" fill=\"%s\" stroke=\"#888\"/>"
                            "<text x=\"%d\" y=\"%d\" font-size=\"10\">%+.0f%%</text>\n",
                        lx, T + k * 18, col, lx + 18, T + k * 18 + 11, v);
    }
    clens_sb_puts(&b, "</svg>\n");
    return clens_sb_take(&b);
}

/* ------------------------------------------------- probe, cause, control */

/* Whisker plus dot at (x, y) with CI [lo, hi] in frame f. */
static void point_ci(clens_sb *b, const frame *f, double x, double y, double lo, double hi, const char *col, const char *cls,
                     const char *label, const char *title)
{
    if (!isfinite(y)) return;
    if (isfinite(lo) && isfinite(hi))
        clens_sb_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>", fx(f, x), fx(f, x),
                        fy(f, fmax(lo, f->y0)), fy(f, fmin(hi, f->y1)), col);
    clens_sb_printf(b, "<circle class=\"%s\" data-model=\"", cls);
    cmp_html_esc(b, label);
    clens_sb_printf(b, "\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>", fx(f, x), fy(f, fmin(fmax(y, f->y0), f->y1)), col);
    cmp_html_esc(b, title);
    clens_sb_puts(b, "</title></circle>\n");
}

char *cmp_svg_evidence(const cmp_set *s, int mi)
{
    const cmp_model *m = &s->m[mi];
    const cmp_evidence *ev = &s->ev[mi];
    clens_sb b = {0};
    const int W = 800, ph = 150, gap = 60, top = 40;
    double xs = m->n_layers > 20 ? 4 : m->n_layers > 10 ? 2 : 1;
    /* the steering panel's scale: every effect, control and CI bound, and 0 */
    double s0 = 0, s1 = 0;
    for (int i = 0; i < ev->n_rows; i++) {
        const cmp_ev_row *r = &ev->rows[i];
        if (!r->has_steer) continue;
        const double v[6] = {r->eff, r->eff_lo, r->eff_hi, r->ctl, r->ctl_lo, r->ctl_hi};
        for (int k = 0; k < 6; k++)
            if (isfinite(v[k])) { s0 = fmin(s0, v[k]); s1 = fmax(s1, v[k]); }
    }
    if (s1 - s0 < 1e-9) { s0 -= 1; s1 += 1; }
    double pad = (s1 - s0) * 0.08;
    s0 -= pad; s1 += pad;
    double r0 = -10, r1 = 110;
    for (int i = 0; i < ev->n_rows; i++)
        if (ev->rows[i].has_rec && isfinite(ev->rows[i].rec)) {
            r0 = fmin(r0, floor(ev->rows[i].rec / 10) * 10);
            r1 = fmax(r1, ceil(ev->rows[i].rec / 10) * 10);
        }
    frame F[3] = {{0, m->n_layers, r0, r1, W, top + ph + gap - 20, 60, 200, top, gap - 20},
                  {0, m->n_layers, 0, 1, W, top + 2 * ph + gap + gap - 20, 60, 200, top + ph + gap, gap - 20},
                  {0, m->n_layers, s0, s1, W, top + 3 * ph + 3 * gap - 20, 60, 200, top + 2 * (ph + gap), gap - 20}};
    int H = F[2].H;
    clens_sb_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                        "class=\"plot-evidence\" data-model=\"", W, H, W, H);
    cmp_html_esc(&b, m->label);
    clens_sb_puts(&b, "\" font-family=\"sans-serif\">\n<text x=\"60\" y=\"18\" font-size=\"14\">");
    cmp_html_esc(&b, m->label);
    clens_sb_puts(&b, ": cause (patching recovery), probe (AUROC) and control (steering) per resid_pre layer</text>\n");
    const char *titles[3] = {"cause: recovery % (95% CI)", "probe: logistic AUROC (95% CI); dashed: permutation null p95",
                             "control: change of the corrupted metric, direction (red) vs random (grey)"};
    const char *ylab[3] = {"recovery %", "AUROC", "metric change"};
    for (int k = 0; k < 3; k++) {
        axes(&b, &F[k], "resid_pre layer", ylab[k], xs, k == 1 ? 0.1 : nice_step(F[k].y1 - F[k].y0), 1);
        clens_sb_printf(&b, "<text x=\"%d\" y=\"%d\" font-size=\"12\">%s</text>\n", F[k].L, F[k].T - 6, titles[k]);
    }
    char t[160];
    /* cause */
    clens_sb_puts(&b, "<polyline class=\"ev-recovery\" data-model=\"");
    cmp_html_esc(&b, m->label);
    clens_sb_puts(&b, "\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"");
    for (int i = 0; i < ev->n_rows; i++)
        if (ev->rows[i].has_rec && isfinite(ev->rows[i].rec))
            clens_sb_printf(&b, "%.1f,%.1f ", fx(&F[0], ev->rows[i].layer_pre), fy(&F[0], ev->rows[i].rec));
    clens_sb_puts(&b, "\"/>\n");
    for (int i = 0; i < ev->n_rows; i++) {
        const cmp_ev_row *r = &ev->rows[i];
        if (!r->has_rec) continue;
        snprintf(t, sizeof t, "resid_pre %d: recovery %.1f%%", r->layer_pre, r->rec);
        point_ci(&b, &F[0], r->layer_pre, r->rec, r->rec_lo, r->rec_hi, "#1f77b4", "ev-rec-point", m->label, t);
    }
    /* probe and its null */
    clens_sb_puts(&b, "<polyline class=\"ev-probe\" data-model=\"");
    cmp_html_esc(&b, m->label);
    clens_sb_puts(&b, "\" fill=\"none\" stroke=\"#2ca02c\" stroke-width=\"2\" points=\"");
    for (int i = 0; i < ev->n_rows; i++)
        if (ev->rows[i].has_probe && isfinite(ev->rows[i].auroc))
            clens_sb_printf(&b, "%.1f,%.1f ", fx(&F[1], ev->rows[i].layer_pre), fy(&F[1], ev->rows[i].auroc));
    clens_sb_puts(&b, "\"/>\n<polyline class=\"ev-null\" fill=\"none\" stroke=\"#888\" stroke-dasharray=\"5 3\" points=\"");
    for (int i = 0; i < ev->n_rows; i++)
        if (ev->rows[i].has_probe && isfinite(ev->rows[i].null_p95))
            clens_sb_printf(&b, "%.1f,%.1f ", fx(&F[1], ev->rows[i].layer_pre), fy(&F[1], ev->rows[i].null_p95));
    clens_sb_puts(&b, "\"/>\n");
    for (int i = 0; i < ev->n_rows; i++) {
        const cmp_ev_row *r = &ev->rows[i];
        if (!r->has_probe) continue;
        snprintf(t, sizeof t, "resid_pre %d: AUROC %.3f (null p95 %.3f)", r->layer_pre, r->auroc, r->null_p95);
        point_ci(&b, &F[1], r->layer_pre, r->auroc, r->auroc_lo, r->auroc_hi, "#2ca02c", "ev-probe-point", m->label, t);
    }
    /* control */
    clens_sb_printf(&b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#444\" stroke-dasharray=\"2 2\"/>\n", F[2].L,
                    W - F[2].R, fy(&F[2], 0), fy(&F[2], 0));
    for (int i = 0; i < ev->n_rows; i++) {
        const cmp_ev_row *r = &ev->rows[i];
        if (!r->has_steer) continue;
        snprintf(t, sizeof t, "resid_pre %d: direction %+.3f", r->layer_pre, r->eff);
        point_ci(&b, &F[2], r->layer_pre - 0.08, r->eff, r->eff_lo, r->eff_hi, "#d62728", "ev-steer", m->label, t);
        snprintf(t, sizeof t, "resid_pre %d: random %+.3f", r->layer_pre, r->ctl);
        point_ci(&b, &F[2], r->layer_pre + 0.08, r->ctl, r->ctl_lo, r->ctl_hi, "#888", "ev-control", m->label, t);
    }
    clens_sb_puts(&b, "</svg>\n");
    return clens_sb_take(&b);
}

char *cmp_svg_atp(const cmp_set *s, int mi)
{
    const cmp_model *m = &s->m[mi];
    const cmp_evidence *ev = &s->ev[mi];
    clens_sb b = {0};
    double lo = 0, hi = 100;
    for (int q = 0; q < ev->n_atp_sites; q++) {
        lo = fmin(lo, fmin(ev->atp_sites[q].exact, ev->atp_sites[q].atp));
        hi = fmax(hi, fmax(ev->atp_sites[q].exact, ev->atp_sites[q].atp));
    }
    lo = floor(lo / 10) * 10;
    hi = ceil(hi / 10) * 10;
    frame f = {lo, hi, lo, hi, 620, 520, 60, 160, 30, 40};
    clens_sb_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                        "class=\"plot-atp\" data-model=\"", f.W, f.H, f.W, f.H);
    cmp_html_esc(&b, m->label);
    clens_sb_puts(&b, "\" font-family=\"sans-serif\">\n<text x=\"60\" y=\"18\" font-size=\"14\">");
    cmp_html_esc(&b, m->label);
    clens_sb_puts(&b, ": AtP estimate vs exact patching, mean recovery % per site</text>\n");
    axes(&b, &f, "exact recovery %", "AtP recovery %", nice_step(hi - lo), nice_step(hi - lo), 1);
    clens_sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>\n",
                    fx(&f, lo), fy(&f, lo), fx(&f, hi), fy(&f, hi));
    for (int k = 0; k < ev->n_atp_types; k++) {
        const cmp_atp_type *t = &ev->atp_types[k];
        const char *col = palette[k % N_PALETTE], *name = m->types[t->type].name;
        for (int q = t->first; q < t->first + t->n_sites; q++) {
            const cmp_atp_site *st = &ev->atp_sites[q];
            clens_sb_printf(&b, "<circle class=\"atp-point\" data-site-type=\"%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"%s\" fill=\"%s\"%s>"
                                "<title>%s L%d", name, fx(&f, st->exact), fy(&f, st->atp), st->flag ? "4.5" : "3", col,
                            st->flag ? " stroke=\"#000\" stroke-width=\"1.5\"" : " fill-opacity=\"0.7\"", name, st->layer);
            if (st->head >= 0) clens_sb_printf(&b, " H%d", st->head);
            clens_sb_printf(&b, ": exact %.1f, AtP %.1f%s%s</title></circle>\n", st->exact, st->atp, st->flag ? ", flagged: " : "",
                            st->flag ? cmp_atp_flag_name(st->flag) : "");
        }
        double ly = f.T + 14 + 18 * k;
        clens_sb_printf(&b, "<circle cx=\"%d\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/><text x=\"%d\" y=\"%.1f\" font-size=\"11\">%s (r %.2f)</text>\n",
                        f.W - f.R + 16, ly, col, f.W - f.R + 26, ly + 4, name, t->pearson);
    }
    clens_sb_printf(&b, "<text x=\"%d\" y=\"%.1f\" font-size=\"10\">outlined: flagged</text>\n", f.W - f.R + 10,
                    f.T + 14 + 18.0 * ev->n_atp_types + 6);
    clens_sb_puts(&b, "</svg>\n");
    return clens_sb_take(&b);
}
