/*
 * probe_svg.c: the two figures of the probe tools (docs/probe.md): lines of
 * a metric against the layer (probe AUROC, transfer AUROC) and a heat map of
 * a value per (row, column) (the logit lens). Self-contained SVG text, no
 * scripts, colours fixed so that reruns give the same bytes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp/probe_internal.h"
#include "report/report.h"

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#7f7f7f"};

static void esc(clens_sb *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '<') clens_sb_puts(b, "&lt;");
        else if (*s == '>') clens_sb_puts(b, "&gt;");
        else if (*s == '&') clens_sb_puts(b, "&amp;");
        else if (*s == '"') clens_sb_puts(b, "&quot;");
        else clens_sb_put(b, s, 1);
    }
}

char *probe_svg_lines(const char *title, const char *xlabel, const char *ylabel, int n_series,
                      const char *const *names, const int *dashed, const double *x, const double *y, int n_points,
                      double y0, double y1)
{
    const double W = 640, H = 360, L = 60, R = 150, T = 34, B = 46;
    double x0 = x[0], x1 = x[0];
    for (int i = 0; i < n_points; i++) { if (x[i] < x0) x0 = x[i]; if (x[i] > x1) x1 = x[i]; }
    if (x1 == x0) x1 = x0 + 1;
    clens_sb b = {0};
    clens_sb_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
    clens_sb_printf(&b, "<rect width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n<text x=\"%.0f\" y=\"20\" font-size=\"14\">", W, H, L);
    esc(&b, title);
    clens_sb_puts(&b, "</text>\n");
#define FX(v) (L + ((v) - x0) / (x1 - x0) * (W - L - R))
#define FY(v) (H - B - ((v) - y0) / (y1 - y0) * (H - T - B))
    clens_sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", L, H - B, W - R, H - B);
    clens_sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", L, T, L, H - B);
    for (int k = 0; k <= 5; k++) {
        double v = y0 + (y1 - y0) * k / 5;
        clens_sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.2f</text>\n",
                        L, FY(v), W - R, FY(v), L - 4, FY(v) + 4, v);
    }
    int step = (int)ceil((x1 - x0) / 12);
    if (step < 1) step = 1;
    for (double v = ceil(x0); v <= x1; v += step)
        clens_sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.0f</text>\n", FX(v), H - B + 16, v);
    clens_sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", (L + W - R) / 2, H - 8);
    esc(&b, xlabel);
    clens_sb_printf(&b, "</text>\n<text transform=\"translate(14,%.1f) rotate(-90)\" text-anchor=\"middle\">", (T + H - B) / 2);
    esc(&b, ylabel);
    clens_sb_puts(&b, "</text>\n");
    for (int s = 0; s < n_series; s++) {
        const char *col = palette[s % 6];
        clens_sb_printf(&b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", col,
                        dashed && dashed[s] ? " stroke-dasharray=\"5,4\"" : "");
        for (int i = 0; i < n_points; i++) {
            double v = y[(size_t)s * n_points + i];
            if (!isfinite(v)) continue;
            if (v < y0) v = y0;
            if (v > y1) v = y1;
            clens_sb_printf(&b, "%.1f,%.1f ", FX(x[i]), FY(v));
        }
        clens_sb_puts(&b, "\"/>\n");
        clens_sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s/><text x=\"%.1f\" y=\"%.1f\">",
                        W - R + 10, T + 10 + 18.0 * s, W - R + 30, T + 10 + 18.0 * s, col,
                        dashed && dashed[s] ? " stroke-dasharray=\"5,4\"" : "", W - R + 34, T + 14 + 18.0 * s);
        esc(&b, names[s]);
        clens_sb_puts(&b, "</text>\n");
    }
#undef FX
#undef FY
    clens_sb_puts(&b, "</svg>\n");
    return clens_sb_take(&b);
}

char *probe_svg_heat(const char *title, int n_rows, const char *const *row_labels, int n_cols,
                     const char *const *col_labels, const double *v, const char *const *cell_text, double lo, double hi)
{
    const double cw = 70, ch = 20, L = 110, T = 40;
    double W = L + cw * n_cols + 20, H = T + ch * n_rows + 30;
    clens_sb b = {0};
    clens_sb_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" font-size=\"10\">\n", W, H);
    clens_sb_printf(&b, "<rect width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n<text x=\"10\" y=\"16\" font-size=\"13\">", W, H);
    esc(&b, title);
    clens_sb_puts(&b, "</text>\n");
    for (int c = 0; c < n_cols; c++) {
        clens_sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", L + cw * c + cw / 2, T - 6);
        esc(&b, col_labels[c]);
        clens_sb_puts(&b, "</text>\n");
    }
    for (int r = 0; r < n_rows; r++) {
        clens_sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", L - 6, T + ch * r + 14);
        esc(&b, row_labels[r]);
        clens_sb_puts(&b, "</text>\n");
        for (int c = 0; c < n_cols; c++) {
            double x = v[(size_t)r * n_cols + c];
            double t = isfinite(x) && hi > lo ? (x - lo) / (hi - lo) : 0;
            if (t < 0) t = 0;
            if (t > 1) t = 1;
            /* white (lo) to dark blue (hi) */
            int R = (int)(255 - t * (255 - 8)), G = (int)(255 - t * (255 - 48)), Bc = (int)(255 - t * (255 - 107));
            clens_sb_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#%02x%02x%02x\"/>", L + cw * c,
                            T + ch * r, cw - 1, ch - 1, R, G, Bc);
            if (cell_text && cell_text[(size_t)r * n_cols + c]) {
                clens_sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"%s\">", L + cw * c + cw / 2,
                                T + ch * r + 14, t > 0.5 ? "white" : "black");
                esc(&b, cell_text[(size_t)r * n_cols + c]);
                clens_sb_puts(&b, "</text>");
            }
            clens_sb_puts(&b, "\n");
        }
    }
    clens_sb_puts(&b, "</svg>\n");
    return clens_sb_take(&b);
}
