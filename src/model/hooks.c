/*
 * hooks.c: the hook-point contract: TransformerLens names <-> (point, layer),
 * and activation widths. Where each point sits in a block: include/clens.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

static const char *suffix[CLENS_HOOK_COUNT] = {
    [CLENS_HOOK_EMBED] = "hook_embed",
    [CLENS_HOOK_RESID_PRE] = "hook_resid_pre",
    [CLENS_HOOK_ATTN_Z] = "attn.hook_z",
    [CLENS_HOOK_ATTN_OUT] = "hook_attn_out",
    [CLENS_HOOK_MLP_OUT] = "hook_mlp_out",
    [CLENS_HOOK_RESID_POST] = "hook_resid_post",
    [CLENS_HOOK_LN_FINAL] = "ln_final.hook_normalized",
};

static int is_global(clens_hook_point p)
{
    return p == CLENS_HOOK_EMBED || p == CLENS_HOOK_LN_FINAL;
}

char *clens_hook_name(clens_hook_point p, int layer, char *buf, size_t n)
{
    if (p < 0 || p >= CLENS_HOOK_COUNT) snprintf(buf, n, "?");
    else if (is_global(p)) snprintf(buf, n, "%s", suffix[p]);
    else snprintf(buf, n, "blocks.%d.%s", layer, suffix[p]);
    return buf;
}

int clens_hook_parse(const char *name, clens_hook_point *point, int *layer)
{
    for (int p = 0; p < CLENS_HOOK_COUNT; p++)
        if (is_global(p) && strcmp(name, suffix[p]) == 0) {
            *point = p;
            *layer = -1;
            return 0;
        }
    if (strncmp(name, "blocks.", 7) != 0) return -1;
    char *end;
    long l = strtol(name + 7, &end, 10);
    if (end == name + 7 || *end != '.' || l < 0 || l > 100000) return -1;
    for (int p = 0; p < CLENS_HOOK_COUNT; p++)
        if (!is_global(p) && strcmp(end + 1, suffix[p]) == 0) {
            *point = p;
            *layer = (int)l;
            return 0;
        }
    return -1;
}

int clens_hook_width(const clens_model *m, clens_hook_point p)
{
    return p == CLENS_HOOK_ATTN_Z ? m->cfg.n_heads * m->cfg.head_dim : m->cfg.d_model;
}
