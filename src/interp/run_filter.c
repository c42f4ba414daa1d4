/*
 * run_filter.c: the keep/drop rule of a patching run (docs/patch-output.md,
 * settings.filter). A pair is patched only if its clean and corrupted prompts
 * differ enough in the logit_mean metric, D = m_clean - m_corr (the seed's
 * sign: an inserted error usually raises the correction tokens, so D < 0).
 *
 * The rules common to every filter come first (a non-finite value cannot be
 * filtered on and would poison every statistic; D == 0 leaves recovery
 * undefined; min_diff == 0 means "keep every pair that differs"), then the
 * filter's own row of the table below decides.
 */
#include <math.h>
#include <string.h>

#include "base/base.h"

/* A filter's decision on D once the common rules have passed it. */
typedef const char *(*filter_rule_fn)(double D, double min_diff);

/* default: the error must raise the correction tokens by min_diff. */
static const char *rule_default(double D, double min_diff)
{
    if (-D >= min_diff) return NULL;
    return D >= min_diff ? "wrong_sign" : "too_small";
}

/* seed: a difference of min_diff either way (the seed's |D| >= 3). */
static const char *rule_seed(double D, double min_diff)
{
    return fabs(D) >= min_diff ? NULL : "too_small";
}

static const struct filter_row {
    clens_filter_kind kind;
    const char *name;
    filter_rule_fn rule;
} filters[CLENS_FILTER_COUNT] = {
    {CLENS_FILTER_DEFAULT, "default", rule_default},
    {CLENS_FILTER_SEED, "seed", rule_seed},
};

const char *clens_filter_name(clens_filter_kind f)
{
    return f >= 0 && f < CLENS_FILTER_COUNT ? filters[f].name : "unknown";
}

int clens_filter_parse(const char *s, clens_filter_kind *f)
{
    for (int i = 0; i < CLENS_FILTER_COUNT; i++)
        if (s && strcmp(s, filters[i].name) == 0) {
            *f = filters[i].kind;
            return CLENS_OK;
        }
    return CLENS_E_ARG;
}

const char *clens_filter_decide(clens_filter_kind f, double min_diff, double m_clean, double m_corr)
{
    if (!isfinite(m_clean) || !isfinite(m_corr)) return "non_finite";
    double D = m_clean - m_corr;
    if (!isfinite(D)) return "non_finite";
    if (D == 0) return "too_small";
    if (min_diff == 0) return NULL;
    if (f < 0 || f >= CLENS_FILTER_COUNT) f = CLENS_FILTER_DEFAULT;
    return filters[f].rule(D, min_diff);
}
