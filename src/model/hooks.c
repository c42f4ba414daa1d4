/*
 * hooks.c: the one site vocabulary of the library (include/clens.h,
 * "hooks"). Every hook point has one row below: its TransformerLens name,
 * its short name (the word `--sites`, settings.json and records.jsonl use),
 * whether it exists per layer, whether its activation splits into heads, and
 * whether final-position patching may write it. Names are printed and parsed
 * from this table only, and a site {point, layer, head} is checked and
 * sliced here, so no other file tests for a particular point by name: adding
 * a hook point is one row here plus the forward pass's call of the hook.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "model/model.h"

static const struct hook_row {
    const char *tl_name;  /* TransformerLens name, after "blocks.{L}." for per-layer points */
    const char *short_name;
    int per_layer;        /* 0: one activation per forward (hook_embed, ln_final) */
    int per_head;         /* activation is [n_heads][head_dim], head-major */
    int patchable;        /* a final-position patching site */
} hook_table[CLENS_HOOK_COUNT] = {
    [CLENS_HOOK_EMBED] = {"hook_embed", "embed", 0, 0, 0},
    [CLENS_HOOK_RESID_PRE] = {"hook_resid_pre", "resid_pre", 1, 0, 1},
    [CLENS_HOOK_ATTN_Z] = {"attn.hook_z", "z", 1, 1, 1},
    [CLENS_HOOK_ATTN_OUT] = {"hook_attn_out", "attn_out", 1, 0, 1},
    [CLENS_HOOK_MLP_OUT] = {"hook_mlp_out", "mlp_out", 1, 0, 1},
    [CLENS_HOOK_RESID_POST] = {"hook_resid_post", "resid_post", 1, 0, 1},
    [CLENS_HOOK_LN_FINAL] = {"ln_final.hook_normalized", "ln_final", 0, 0, 0},
};

/* Layers and heads are read as plain decimal numbers below this bound. */
enum { MAX_INDEX = 1000000 };

static int valid_point(clens_hook_point p) { return (int)p >= 0 && p < CLENS_HOOK_COUNT; }

char *clens_hook_name(clens_hook_point p, int layer, char *buf, size_t n)
{
    if (!valid_point(p)) snprintf(buf, n, "?");
    else if (!hook_table[p].per_layer) snprintf(buf, n, "%s", hook_table[p].tl_name);
    else snprintf(buf, n, "blocks.%d.%s", layer, hook_table[p].tl_name);
    return buf;
}

/* A decimal number without sign or leading zeros in [s, *end); -1 if none. */
static long read_index(const char *s, const char **end)
{
    const char *q = s;
    long v = 0;
    while (*q >= '0' && *q <= '9' && v < MAX_INDEX) v = v * 10 + (*q++ - '0');
    *end = q;
    if (q == s || (q - s > 1 && *s == '0') || v >= MAX_INDEX) return -1;
    return v;
}

/* The hook name in [name, name + len): point and layer, 0 or -1. */
static int parse_hook(const char *name, size_t len, clens_hook_point *point, int *layer)
{
    for (int p = 0; p < CLENS_HOOK_COUNT; p++)
        if (!hook_table[p].per_layer && strlen(hook_table[p].tl_name) == len &&
            strncmp(name, hook_table[p].tl_name, len) == 0) {
            *point = p;
            *layer = -1;
            return 0;
        }
    if (len < 7 || strncmp(name, "blocks.", 7) != 0) return -1;
    const char *end;
    long l = read_index(name + 7, &end);
    if (l < 0 || *end != '.') return -1;
    size_t rest = len - (size_t)(end + 1 - name);
    for (int p = 0; p < CLENS_HOOK_COUNT; p++)
        if (hook_table[p].per_layer && strlen(hook_table[p].tl_name) == rest &&
            strncmp(end + 1, hook_table[p].tl_name, rest) == 0) {
            *point = p;
            *layer = (int)l;
            return 0;
        }
    return -1;
}

int clens_hook_parse(const char *name, clens_hook_point *point, int *layer, clens_error *err)
{
    if (name && parse_hook(name, strlen(name), point, layer) == 0) return CLENS_OK;
    return clens_err(err, CLENS_E_ARG,
                     "unknown hook name '%.200s': expected hook_embed, ln_final.hook_normalized or "
                     "blocks.LAYER.{hook_resid_pre, attn.hook_z, hook_attn_out, hook_mlp_out, hook_resid_post}",
                     name ? name : "(null)");
}

int clens_hook_width(const clens_model *m, clens_hook_point p)
{
    return valid_point(p) && hook_table[p].per_head ? m->cfg.n_heads * m->cfg.head_dim : m->cfg.d_model;
}

const char *clens_hook_short_name(clens_hook_point p)
{
    return valid_point(p) ? hook_table[p].short_name : "?";
}

int clens_hook_short_parse(const char *s, clens_hook_point *point, clens_error *err)
{
    for (int p = 0; s && p < CLENS_HOOK_COUNT; p++)
        if (strcmp(s, hook_table[p].short_name) == 0) {
            *point = p;
            return CLENS_OK;
        }
    return clens_err(err, CLENS_E_ARG, "unknown site type '%.200s': expected resid_pre, resid_post, attn_out, "
                     "mlp_out or z", s ? s : "(null)");
}

int clens_hook_per_head(clens_hook_point p) { return valid_point(p) && hook_table[p].per_head; }

int clens_hook_patchable(clens_hook_point p) { return valid_point(p) && hook_table[p].patchable; }

int clens_hook_max_layer(clens_hook_point p, int n_layers)
{
    if (!valid_point(p) || !hook_table[p].per_layer) return -1;
    /* resid_pre of layer n_layers: the residual after the last block */
    return p == CLENS_HOOK_RESID_PRE ? n_layers : n_layers - 1;
}

/* ------------------------------------------------------------------ sites */

char *clens_site_name(const clens_site *s, char *buf, size_t n)
{
    char hook[96];
    clens_hook_name(s->point, s->layer, hook, sizeof hook);
    if (s->head >= 0) snprintf(buf, n, "%s[%d]", hook, s->head);
    else snprintf(buf, n, "%s", hook);
    return buf;
}

int clens_site_parse(const char *name, clens_site *out, clens_error *err)
{
    if (!name) return clens_err(err, CLENS_E_ARG, "site name: none given");
    size_t len = strlen(name);
    int head = -1;
    const char *br = strchr(name, '[');
    if (br) {
        const char *end;
        long h = read_index(br + 1, &end);
        if (h < 0 || end[0] != ']' || end[1] != '\0')
            return clens_err(err, CLENS_E_ARG, "site name '%.200s': a head is written [H] at the end, H a number "
                             "(e.g. blocks.3.attn.hook_z[5])", name);
        head = (int)h;
        len = (size_t)(br - name);
    }
    clens_hook_point p;
    int layer;
    if (parse_hook(name, len, &p, &layer))
        return clens_err(err, CLENS_E_ARG,
                         "site name '%.200s': expected blocks.LAYER.{hook_resid_pre, attn.hook_z, hook_attn_out, "
                         "hook_mlp_out, hook_resid_post}, with [HEAD] after attn.hook_z for one head", name);
    if (!hook_table[p].patchable)
        return clens_err(err, CLENS_E_ARG, "site name '%.200s': %s is not a patching site", name,
                         hook_table[p].tl_name);
    if (head >= 0 && !hook_table[p].per_head)
        return clens_err(err, CLENS_E_ARG, "site name '%.200s': %s has no heads", name, hook_table[p].tl_name);
    *out = (clens_site){p, layer, head};
    return CLENS_OK;
}

int clens_site_check(const clens_model *m, const clens_site *s, clens_error *err)
{
    char name[128];
    if (!valid_point(s->point) || !hook_table[s->point].patchable)
        return clens_err(err, CLENS_E_ARG, "site %s: not a patching site (resid_pre, resid_post, attn_out, "
                         "mlp_out, z)", valid_point(s->point) ? hook_table[s->point].tl_name : "?");
    const int maxl = clens_hook_max_layer(s->point, m->cfg.n_layers);
    clens_site_name(s, name, sizeof name);
    if (s->layer < 0 || s->layer > maxl)
        return clens_err(err, CLENS_E_ARG, "site %s: layer %d out of range (layers 0..%d)", name, s->layer, maxl);
    if (s->head < -1 || (s->head >= 0 && !hook_table[s->point].per_head) || s->head >= m->cfg.n_heads)
        return clens_err(err, CLENS_E_ARG, "site %s: head %d out of range (%s)", name, s->head,
                         hook_table[s->point].per_head ? "heads 0..n_heads-1, or -1 for all" : "no heads: -1");
    return CLENS_OK;
}

void clens_site_span(const clens_model *m, const clens_site *s, int *offset, int *n)
{
    if (s->head >= 0) {
        *offset = s->head * m->cfg.head_dim;
        *n = m->cfg.head_dim;
    } else {
        *offset = 0;
        *n = clens_hook_width(m, s->point);
    }
}
