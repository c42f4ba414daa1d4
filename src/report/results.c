/*
 * results.c: the statistics driver of a patching run: from the parsed
 * settings and records (results_input.c) to the per-site statistics
 * (stats.h) and their rendering as results.json and results.md. Input and
 * output schemas: docs/patch-output.md (and its Notes); selection of pairs:
 * the first settings.n kept pairs in candidate order (docs/rulings.md R13).
 *
 * Everything in results.json except "timing" is a deterministic function of
 * settings.json and the records: keys are written in a fixed order (embedded
 * settings/provenance objects with sorted keys), numbers in the format of
 * base/strbuf.h, and the statistics are bit-reproducible (stats.h). So
 * merging the shards of a run (merge.c) gives the same bytes as one
 * unsharded run.
 */
#include "report/results_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "report/stats.h"

/* ============================================================ computation */

typedef struct reason_count {
    const char *reason;
    int count;
} reason_count;

typedef struct calc {
    int n;                   /* pairs used (first n_target kept, candidate order) */
    int n_used_recs;         /* records up to and including the last pair used */
    const rec **pair;        /* [n] */
    double *D;               /* [n] m_clean - m_corr, primary metric */
    double *R, *P;           /* [n_sites][n] recovery %, m_patched - m_corr */
    unsigned char *def;      /* [n_sites][n] recovery defined */
    clens_site_stats *st;    /* [n_sites] */
    clens_delta_stats *dl;   /* [n_sites]: vs previous layer of the same (non-z) type */
    unsigned char *has_dl;   /* [n_sites] */
    reason_count *reasons;   /* dropped, by reason, sorted by name */
    int n_reasons;
    int n_dropped;
    double seconds_total;    /* all records */
    int best;                /* best site of the primary type, -1 if none */
} calc;

static void calc_free(calc *c)
{
    free(c->pair);
    free(c->D);
    free(c->R);
    free(c->P);
    free(c->def);
    free(c->st);
    free(c->dl);
    free(c->has_dl);
    free(c->reasons);
}

static int cmp_reason(const void *a, const void *b)
{
    return strcmp(((const reason_count *)a)->reason, ((const reason_count *)b)->reason);
}

/* Site s of type ty: layer index i, head h (0 for non-z). */
static void site_pos(const clens_results_input *in, const site_type *ty, int s, int *i, int *h)
{
    int k = s - ty->off;
    if (ty->is_z) { *i = k / in->n_heads; *h = k % in->n_heads; }
    else { *i = k; *h = 0; }
}

static const char *site_key(const clens_results_input *in, const site_type *ty, int s, char *buf, size_t n)
{
    int i, h;
    site_pos(in, ty, s, &i, &h);
    if (ty->is_z) snprintf(buf, n, "%d.%d", ty->layers[i], h);
    else snprintf(buf, n, "%d", ty->layers[i]);
    return buf;
}

static int compute(clens_results_input *in, calc *c, clens_error *err)
{
    memset(c, 0, sizeof *c);
    c->best = -1;
    int rc = results_sort_records(in, err);
    if (rc) return rc;

    /* Selection (rulings R13): the first n_target kept pairs in candidate order. */
    int kept = 0, last = in->n_recs - 1;
    for (int i = 0; i < in->n_recs; i++) {
        if (in->recs[i].kept && ++kept == in->n_target) { last = i; break; }
    }
    c->n = kept;
    c->n_used_recs = last + 1;
    /* Every candidate up to the last one used must be recorded: a gap means an
     * incomplete shard or a truncated file, and the pairs kept would differ
     * from a complete run's. */
    for (int i = 0; i <= last; i++) {
        long long want = (long long)in->shard_index + (long long)i * in->shard_count;
        if (in->recs[i].candidate != want)
            return clens_err(err, CLENS_E_STATE,
                             "candidate %lld has no record but candidate %lld (%s:%d) does: a shard is incomplete "
                             "(rerun it to resume) or records.jsonl is truncated",
                             want, in->recs[i].candidate, in->sources[in->recs[i].src], in->recs[i].line);
    }

    const int n = c->n, NS = in->n_sites;
    size_t cells = (size_t)NS * (size_t)(n ? n : 1);
    c->pair = calloc((size_t)(n ? n : 1), sizeof *c->pair);
    c->D = calloc((size_t)(n ? n : 1), sizeof *c->D);
    c->R = calloc(cells, sizeof *c->R);
    c->P = calloc(cells, sizeof *c->P);
    c->def = calloc(cells, 1);
    c->st = calloc((size_t)NS, sizeof *c->st);
    c->dl = calloc((size_t)NS, sizeof *c->dl);
    c->has_dl = calloc((size_t)NS, 1);
    c->reasons = calloc((size_t)c->n_used_recs + 1, sizeof *c->reasons);
    if (!c->pair || !c->D || !c->R || !c->P || !c->def || !c->st || !c->dl || !c->has_dl || !c->reasons)
        return clens_err(err, CLENS_E_NOMEM, "results: out of memory");

    for (int i = 0; i < in->n_recs; i++) {
        json_t *s = json_object_get(in->recs[i].j, "seconds");
        if (json_is_number(s)) c->seconds_total += json_number_value(s);
    }
    int k = 0;
    for (int i = 0; i < c->n_used_recs; i++) {
        const rec *r = &in->recs[i];
        if (r->kept) { c->pair[k++] = r; continue; }
        c->n_dropped++;
        const char *why = json_string_value(json_object_get(r->j, "reason"));
        if (!why) why = "unspecified";
        int q = 0;
        while (q < c->n_reasons && strcmp(c->reasons[q].reason, why)) q++;
        if (q == c->n_reasons) c->reasons[c->n_reasons++].reason = why;
        c->reasons[q].count++;
    }
    if (c->n_reasons > 1) qsort(c->reasons, (size_t)c->n_reasons, sizeof *c->reasons, cmp_reason);

    for (int i = 0; i < n; i++) {
        json_t *m = json_object_get(json_object_get(c->pair[i]->j, "metrics"), in->metric);
        double clean = json_number_value(json_object_get(m, "clean"));
        double corr = json_number_value(json_object_get(m, "corr"));
        c->D[i] = clean - corr;
        json_t *pt = json_object_get(m, "patched");
        for (int t = 0; t < in->n_types; t++) {
            const site_type *ty = &in->types[t];
            json_t *a = json_object_get(pt, ty->name);
            for (int s = ty->off; s < ty->off + ty->n_sites; s++) {
                int li, h;
                site_pos(in, ty, s, &li, &h);
                json_t *v = json_array_get(a, (size_t)li);
                if (ty->is_z) v = json_array_get(v, (size_t)h);
                size_t cell = (size_t)s * (size_t)n + (size_t)i;
                if (!json_is_number(v)) continue; /* null: undefined at this site */
                double p = json_number_value(v);
                c->def[cell] = (unsigned char)clens_recovery(p, clean, corr, &c->R[cell]);
                c->P[cell] = p - corr;
            }
        }
    }

    clens_boot *boot = NULL;
    rc = clens_boot_new(&boot, in->boot_resamples, in->boot_seed, err);
    if (rc) return rc;
    for (int s = 0; s < NS && !rc; s++) {
        size_t o = (size_t)s * (size_t)n;
        rc = clens_site_stats_compute(boot, c->R + o, c->P + o, c->D, c->def + o, n, &c->st[s], err);
    }
    for (int t = 0; t < in->n_types && !rc; t++) {
        const site_type *ty = &in->types[t];
        if (ty->is_z) continue;
        for (int s = ty->off + 1; s < ty->off + ty->n_sites && !rc; s++) {
            size_t oa = (size_t)(s - 1) * (size_t)n, ob = (size_t)s * (size_t)n;
            rc = clens_delta_stats_compute(boot, c->R + oa, c->def + oa, &c->st[s - 1], c->R + ob, c->def + ob,
                                           &c->st[s], n, &c->dl[s], err);
            c->has_dl[s] = 1;
        }
    }
    clens_boot_free(boot);
    if (rc) return rc;

    const site_type *pt = &in->types[0];
    for (int s = pt->off; s < pt->off + pt->n_sites; s++)
        if (c->st[s].has_mean && (c->best < 0 || c->st[s].mean > c->st[c->best].mean)) c->best = s;
    return CLENS_OK;
}

/* ================================================================ JSON */

static void opt_num(clens_sb *b, int has, double x)
{
    if (has) clens_sb_json_num(b, x);
    else clens_sb_puts(b, "null");
}

static void opt_pair(clens_sb *b, int has, double lo, double hi)
{
    if (!has) { clens_sb_puts(b, "null"); return; }
    clens_sb_puts(b, "[");
    clens_sb_json_num(b, lo);
    clens_sb_puts(b, ", ");
    clens_sb_json_num(b, hi);
    clens_sb_puts(b, "]");
}

static void emit_stats(clens_sb *b, const calc *c, const site_type *ty, int s)
{
    const clens_site_stats *st = &c->st[s];
    clens_sb_puts(b, "{\"mean_recovery\": ");
    opt_num(b, st->has_mean, st->mean);
    clens_sb_puts(b, ", \"std_recovery\": ");
    opt_num(b, st->has_mean, st->sd);
    clens_sb_printf(b, ", \"n_samples\": %d, \"ratio_of_sums\": ", st->n_samples);
    opt_num(b, st->has_ratio, st->ratio_of_sums);
    clens_sb_puts(b, ", \"median\": ");
    opt_num(b, st->has_mean, st->median);
    clens_sb_puts(b, ", \"ci95\": ");
    opt_pair(b, st->has_ci, st->ci_lo, st->ci_hi);
    clens_sb_printf(b, ", \"n_undefined\": %d", st->n_undefined);
    if (!ty->is_z) {
        const clens_delta_stats *d = &c->dl[s];
        int first = !c->has_dl[s];
        clens_sb_puts(b, ", \"delta\": ");
        opt_num(b, !first && d->has_delta, d->delta);
        clens_sb_puts(b, ", \"delta_ci95\": ");
        opt_pair(b, !first && d->has_ci, d->ci_lo, d->ci_hi);
    }
    clens_sb_puts(b, "}");
}

static void emit_type_stats(clens_sb *b, const clens_results_input *in, const calc *c, const site_type *ty,
                            int indent)
{
    char key[64];
    clens_sb_puts(b, "{\n");
    for (int s = ty->off; s < ty->off + ty->n_sites; s++) {
        clens_sb_indent(b, indent + 2);
        clens_sb_json_str(b, site_key(in, ty, s, key, sizeof key));
        clens_sb_puts(b, ": ");
        emit_stats(b, c, ty, s);
        clens_sb_puts(b, s + 1 < ty->off + ty->n_sites ? ",\n" : "\n");
    }
    clens_sb_indent(b, indent);
    clens_sb_puts(b, "}");
}

static const char *model_name(const char *path, char *buf, size_t n)
{
    size_t l = strlen(path);
    while (l > 1 && path[l - 1] == '/') l--;
    size_t s = l;
    while (s > 0 && path[s - 1] != '/') s--;
    size_t k = l - s < n - 1 ? l - s : n - 1;
    memcpy(buf, path + s, k);
    buf[k] = '\0';
    return buf;
}

static void emit_rec_value(clens_sb *b, const calc *c, int s, int i)
{
    size_t cell = (size_t)s * (size_t)c->n + (size_t)i;
    opt_num(b, c->def[cell], c->R[cell]);
}

static void render_json(clens_sb *b, const clens_results_input *in, const calc *c)
{
    const site_type *pt = &in->types[0];
    char name[512];
    clens_sb_puts(b, "{\n  \"site_type\": ");
    clens_sb_json_str(b, pt->name);
    clens_sb_puts(b, ",\n  \"model\": ");
    clens_sb_json_str(b, model_name(in->model, name, sizeof name));
    clens_sb_printf(b, ",\n  \"n_pairs\": %d,\n  \"layers\": [", c->n);
    for (int i = 0; i < pt->n_layers; i++) clens_sb_printf(b, i ? ", %d" : "%d", pt->layers[i]);
    clens_sb_puts(b, "],\n  \"layer_stats\": ");
    emit_type_stats(b, in, c, pt, 2);
    clens_sb_puts(b, ",\n  \"sites\": {");
    for (int t = 1; t < in->n_types; t++) {
        clens_sb_puts(b, t > 1 ? ",\n    " : "\n    ");
        clens_sb_json_str(b, in->types[t].name);
        clens_sb_puts(b, ": ");
        emit_type_stats(b, in, c, &in->types[t], 4);
    }
    clens_sb_puts(b, in->n_types > 1 ? "\n  },\n" : "},\n");
    if (c->best >= 0) {
        int li, h;
        site_pos(in, pt, c->best, &li, &h);
        clens_sb_printf(b, "  \"best_layer\": %d,\n", pt->layers[li]);
        if (pt->is_z) clens_sb_printf(b, "  \"best_head\": %d,\n", h);
        clens_sb_puts(b, "  \"best_recovery\": ");
        clens_sb_json_num(b, c->st[c->best].mean);
    } else {
        clens_sb_puts(b, "  \"best_layer\": null,\n");
        if (pt->is_z) clens_sb_puts(b, "  \"best_head\": null,\n");
        clens_sb_puts(b, "  \"best_recovery\": null");
    }
    clens_sb_puts(b, ",\n  \"metric\": ");
    clens_sb_json_str(b, in->metric);
    clens_sb_puts(b, ",\n  \"sign_convention\": \"D = m_clean - m_corr (usually < 0)\"");
    clens_sb_printf(b, ",\n  \"counts\": {\"attempted\": %d, \"kept\": %d, \"dropped\": {", c->n_used_recs, c->n);
    for (int q = 0; q < c->n_reasons; q++) {
        if (q) clens_sb_puts(b, ", ");
        clens_sb_json_str(b, c->reasons[q].reason);
        clens_sb_printf(b, ": %d", c->reasons[q].count);
    }
    clens_sb_puts(b, "}},\n  \"pairs\": [");
    for (int i = 0; i < c->n; i++) {
        const rec *r = c->pair[i];
        clens_sb_printf(b, "%s\n    {\"candidate\": %lld, \"id\": ", i ? "," : "", r->candidate);
        const char *id = json_string_value(json_object_get(r->j, "id"));
        if (id) clens_sb_json_str(b, id);
        else clens_sb_puts(b, "null");
        clens_sb_puts(b, ", \"D\": ");
        clens_sb_json_num(b, c->D[i]);
        clens_sb_puts(b, ", \"recovery\": {");
        for (int t = 0; t < in->n_types; t++) {
            const site_type *ty = &in->types[t];
            if (t) clens_sb_puts(b, ", ");
            clens_sb_json_str(b, ty->name);
            clens_sb_puts(b, ": [");
            for (int li = 0; li < ty->n_layers; li++) {
                if (li) clens_sb_puts(b, ", ");
                if (!ty->is_z) { emit_rec_value(b, c, ty->off + li, i); continue; }
                clens_sb_puts(b, "[");
                for (int h = 0; h < in->n_heads; h++) {
                    if (h) clens_sb_puts(b, ", ");
                    emit_rec_value(b, c, ty->off + li * in->n_heads + h, i);
                }
                clens_sb_puts(b, "]");
            }
            clens_sb_puts(b, "]");
        }
        clens_sb_puts(b, "}}");
    }
    clens_sb_puts(b, c->n ? "\n  ],\n  \"settings\": " : "],\n  \"settings\": ");
    clens_sb_json_value(b, in->settings, 2);
    clens_sb_puts(b, ",\n  \"settings_hash\": ");
    clens_sb_json_str(b, json_string_value(json_object_get(in->root, "settings_hash")));
    clens_sb_puts(b, ",\n  \"provenance\": ");
    json_t *prov = json_object_get(in->root, "provenance");
    if (prov) clens_sb_json_value(b, prov, 2);
    else clens_sb_puts(b, "null");
    clens_sb_printf(b, ",\n  \"shard\": {\"index\": %d, \"count\": %d}", in->shard_index, in->shard_count);
    clens_sb_puts(b, ",\n  \"clens_version\": ");
    clens_sb_json_str(b, CLENS_VERSION);
    clens_sb_puts(b, ",\n  \"timing\": {\"seconds_total\": ");
    clens_sb_json_num(b, c->seconds_total);
    clens_sb_puts(b, ", \"seconds_per_pair\": ");
    opt_num(b, c->n > 0, c->seconds_total / (c->n > 0 ? c->n : 1));
    clens_sb_puts(b, "}\n}\n");
}

/* ============================================================ markdown */

/* "%.1f" without a negative zero. */
static const char *f1(char *buf, size_t n, double x)
{
    snprintf(buf, n, "%.1f", x);
    if (strcmp(buf, "-0.0") == 0) snprintf(buf, n, "0.0");
    return buf;
}

static const char *f1_signed(char *buf, size_t n, double x)
{
    snprintf(buf, n, "%+.1f", x);
    if (strcmp(buf, "-0.0") == 0 || strcmp(buf, "+0.0") == 0) snprintf(buf, n, "0.0");
    return buf;
}

static void md_row(clens_sb *b, const calc *c, const char *label, int s, int bold, int with_delta)
{
    const clens_site_stats *st = &c->st[s];
    char x[64], y[64];
    const char *B = bold ? "**" : "";
    clens_sb_printf(b, "| %s%s%s | ", B, label, B);
    if (st->has_mean) clens_sb_printf(b, "%s%s%s", B, f1(x, sizeof x, st->mean), B);
    else clens_sb_puts(b, "n/a");
    if (with_delta) {
        const clens_delta_stats *d = &c->dl[s];
        if (c->has_dl[s] && d->has_delta) clens_sb_printf(b, " | %s", f1_signed(x, sizeof x, d->delta));
        else clens_sb_puts(b, " | -");
    }
    if (st->has_ci) clens_sb_printf(b, " | [%s, %s]", f1(x, sizeof x, st->ci_lo), f1(y, sizeof y, st->ci_hi));
    else clens_sb_puts(b, " | n/a");
    if (st->has_ratio) clens_sb_printf(b, " | %s", f1(x, sizeof x, st->ratio_of_sums));
    else clens_sb_puts(b, " | n/a");
    if (st->has_mean) clens_sb_printf(b, " | %s", f1(x, sizeof x, st->median));
    else clens_sb_puts(b, " | n/a");
    clens_sb_printf(b, " | %d", st->n_samples);
    if (st->n_undefined) clens_sb_printf(b, " (+%d undefined)", st->n_undefined);
    clens_sb_puts(b, " |\n");
}

static void md_layer_table(clens_sb *b, const clens_results_input *in, const calc *c, const site_type *ty, int best)
{
    char key[64];
    clens_sb_puts(b, "| Layer | Recovery % | Δ | 95% CI | ratio of sums | median | n |\n"
                     "|------:|-----------:|--:|:------:|--------------:|-------:|--:|\n");
    for (int s = ty->off; s < ty->off + ty->n_sites; s++)
        md_row(b, c, site_key(in, ty, s, key, sizeof key), s, s == best, 1);
}

typedef struct head_rank { int s; double mean; } head_rank;
static int cmp_head(const void *a, const void *b)
{
    const head_rank *x = a, *y = b;
    if (x->mean != y->mean) return x->mean > y->mean ? -1 : 1;
    return (x->s > y->s) - (x->s < y->s);
}

static void md_head_table(clens_sb *b, const clens_results_input *in, const calc *c, const site_type *ty)
{
    head_rank *hr = malloc(sizeof *hr * (size_t)ty->n_sites);
    if (!hr) { b->oom = 1; return; }
    int k = 0;
    for (int s = ty->off; s < ty->off + ty->n_sites; s++)
        if (c->st[s].has_mean) hr[k++] = (head_rank){s, c->st[s].mean};
    qsort(hr, (size_t)k, sizeof *hr, cmp_head);
    int top = k < 10 ? k : 10;
    clens_sb_printf(b, "Top %d of %d heads by mean recovery (key layer.head):\n\n", top, ty->n_sites);
    clens_sb_puts(b, "| Head | Recovery % | 95% CI | ratio of sums | median | n |\n"
                     "|-----:|-----------:|:------:|--------------:|-------:|--:|\n");
    char key[64];
    for (int i = 0; i < top; i++) md_row(b, c, site_key(in, ty, hr[i].s, key, sizeof key), hr[i].s, 0, 0);
    free(hr);
}

static const char *sget(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "?";
}

static void md_value(clens_sb *b, const json_t *v)
{
    if (!v) { clens_sb_puts(b, "?"); return; }
    if (json_is_string(v)) { clens_sb_puts(b, json_string_value(v)); return; }
    clens_sb_json_value(b, v, 0);
}

static void render_md(clens_sb *b, const clens_results_input *in, const calc *c)
{
    const site_type *pt = &in->types[0];
    const json_t *st = in->settings;
    char name[512], x[64];
    clens_sb_printf(b, "# Activation patching: %s\n\n", model_name(in->model, name, sizeof name));
    clens_sb_printf(b,
                    "Site type `%s`, metric `%s`, %d kept pairs (target %d). Recovery %% = 100 · (m_patched − m_corr) "
                    "/ (m_clean − m_corr), mean over pairs; D = m_clean − m_corr (usually < 0). "
                    "Δ = change of the mean from the previous row; 95%% CI = percentile bootstrap over pairs "
                    "(%d resamples, seed %llu); ratio of sums = 100 · ΣP / ΣD.\n\n",
                    pt->name, in->metric, c->n, in->n_target, in->boot_resamples,
                    (unsigned long long)in->boot_seed);
    if (pt->is_z) md_head_table(b, in, c, pt);
    else md_layer_table(b, in, c, pt, c->best);
    if (c->best >= 0) {
        char key[64];
        clens_sb_printf(b, "\nBest %s: %s (%s%%).\n", pt->is_z ? "head" : "layer",
                        site_key(in, pt, c->best, key, sizeof key), f1(x, sizeof x, c->st[c->best].mean));
    }
    for (int t = 1; t < in->n_types; t++) {
        const site_type *ty = &in->types[t];
        clens_sb_printf(b, "\n## Site type `%s`\n\n", ty->name);
        if (ty->is_z) md_head_table(b, in, c, ty);
        else md_layer_table(b, in, c, ty, -1);
    }
    clens_sb_printf(b, "\n## Pairs\n\nCandidates attempted: %d; kept: %d; dropped: %d", c->n_used_recs, c->n,
                    c->n_dropped);
    for (int q = 0; q < c->n_reasons; q++)
        clens_sb_printf(b, "%s%s %d", q ? ", " : " (", c->reasons[q].reason, c->reasons[q].count);
    clens_sb_puts(b, c->n_reasons ? ").\n" : ".\n");
    if (c->n < in->n_target)
        clens_sb_printf(b, "Only %d of the %d target pairs were kept: the candidate pool ran out.\n", c->n,
                        in->n_target);

    clens_sb_puts(b, "\n## Settings\n\n");
    static const char *keys[] = {"model", "method", "prompt", "metric", "filter", "min_diff", "n", "matmul",
                                 "pairs_file", "pairs_sha256"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(st, keys[i]);
        if (!v) continue;
        clens_sb_printf(b, "- %s: ", keys[i]);
        md_value(b, v);
        clens_sb_puts(b, "\n");
    }
    clens_sb_puts(b, "- site types:");
    for (int t = 0; t < in->n_types; t++)
        clens_sb_printf(b, "%s %s (%d layers)", t ? "," : "", in->types[t].name, in->types[t].n_layers);
    clens_sb_puts(b, "\n");
    json_t *mets = json_object_get(st, "metrics");
    if (json_is_object(mets)) {
        const char *k;
        json_t *v;
        json_object_foreach(mets, k, v) {
            clens_sb_printf(b, "- metric %s tokens: ", k);
            md_value(b, json_object_get(v, "tokens"));
            clens_sb_puts(b, "\n");
        }
    }
    clens_sb_printf(b, "- settings_hash: %s\n", sget(in->root, "settings_hash"));
    clens_sb_printf(b, "- shard: %d of %d\n", in->shard_index, in->shard_count);
    json_t *prov = json_object_get(in->root, "provenance");
    if (json_is_object(prov)) {
        clens_sb_puts(b, "- provenance:");
        static const char *pk[] = {"arch", "n_layers", "dtype", "kernel", "host_cpu"};
        int first = 1;
        for (size_t i = 0; i < sizeof pk / sizeof pk[0]; i++) {
            json_t *v = json_object_get(prov, pk[i]);
            if (!v) continue;
            clens_sb_printf(b, "%s %s ", first ? "" : ",", pk[i]);
            md_value(b, v);
            first = 0;
        }
        clens_sb_puts(b, "\n");
    }
    clens_sb_printf(b, "- time: %.1f s over all records", c->seconds_total);
    if (c->n > 0) clens_sb_printf(b, ", %.2f s per kept pair", c->seconds_total / c->n);
    clens_sb_puts(b, "\n");
}

int clens_results_input_render(clens_results_input *in, char **results_json, char **results_md, clens_error *err)
{
    *results_json = NULL;
    if (results_md) *results_md = NULL;
    calc c;
    int rc = compute(in, &c, err);
    if (rc) { calc_free(&c); return rc; }
    clens_sb j = {0}, m = {0};
    render_json(&j, in, &c);
    if (results_md) render_md(&m, in, &c);
    calc_free(&c);
    char *js = clens_sb_take(&j);
    char *ms = results_md ? clens_sb_take(&m) : NULL;
    if (!js || (results_md && !ms)) {
        free(js);
        free(ms);
        return clens_err(err, CLENS_E_NOMEM, "results: out of memory");
    }
    *results_json = js;
    if (results_md) *results_md = ms;
    return CLENS_OK;
}

/* ========================================================== public API */

int clens_results_build(const char *settings_json, const char *records_jsonl, size_t len, char **results_json,
                        char **results_md, clens_error *err)
{
    clens_results_input *in = NULL;
    int rc = clens_results_input_new(&in, settings_json, "settings.json", err);
    if (rc) return rc;
    rc = clens_results_input_add(in, records_jsonl ? records_jsonl : "", records_jsonl ? len : 0, "records.jsonl",
                                 in->shard_index, in->shard_count, err);
    if (!rc) rc = clens_results_input_render(in, results_json, results_md, err);
    clens_results_input_free(in);
    return rc;
}

int clens_results_write(const char *dir, char **results_md, clens_error *err)
{
    if (results_md) *results_md = NULL;
    char *st = NULL, *recs = NULL, *sp = NULL, *rp = NULL, *js = NULL, *md = NULL;
    size_t sl = 0, rl = 0;
    clens_results_input *in = NULL;
    int rc = results_read_in(dir, "settings.json", &st, &sl, &sp, err);
    if (!rc) rc = results_read_in(dir, "records.jsonl", &recs, &rl, &rp, err);
    if (!rc) rc = clens_results_input_new(&in, st, sp, err);
    if (!rc) rc = clens_results_input_add(in, recs, rl, rp, in->shard_index, in->shard_count, err);
    if (!rc) rc = clens_results_input_render(in, &js, &md, err);
    if (!rc) rc = results_write_out(dir, "results.json", js, strlen(js), err);
    if (!rc) rc = results_write_out(dir, "results.md", md, strlen(md), err);
    if (!rc && results_md) { *results_md = md; md = NULL; }
    clens_results_input_free(in);
    free(st); free(recs); free(sp); free(rp); free(js); free(md);
    return rc;
}
