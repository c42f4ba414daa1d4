/*
 * fidelity.c: the seed study's choices as one table (docs/study.md,
 * "Fidelity"; include/clens.h, "fidelity preset"), so that every command
 * offering `--fidelity seed` applies and checks the same values: `clens pairs`
 * reads the "pairs." rows (the pair builder and the on-policy generation),
 * the patching commands the others. The values are those of the seed's code:
 * on-policy greedy solutions of the raw generation prompt with 512 new
 * tokens, the last "= n" site verified or not, the number + 1, both prompts cut
 * 20 characters after the number's start in their own text; raw prompt,
 * logit_mean over the seed's 7 strings, |D| >= 3, every second layer of
 * resid_post.
 */
#include "clens.h"

static const clens_fidelity_choice seed_choices[] = {
    {"pairs.mode", "--on-policy", "on-policy"},
    {"pairs.gen_prompt", "--gen-prompt", "raw"},
    {"pairs.max_new", "--max-new", "512"},
    {"pairs.site", "--site", "seed"},
    {"pairs.corrupt", "--corrupt", "plus-one"},
    {"pairs.cut", "--cut", "chars-raw:20"},
    {"prompt", "--prompt", "raw"},
    {"metric", "--metric", "logit_mean"},
    {"tokens", "--tokens", NULL},          /* the engine's default: the seed's 7 strings */
    {"filter", "--filter", "seed"},
    {"min_diff", "--min-diff", "3"},
    {"sites", "--sites", "resid_post"},
    {"layers", "--layers", "every-2"},
};

const clens_fidelity_choice *clens_fidelity_seed_choices(int *n)
{
    *n = (int)(sizeof seed_choices / sizeof *seed_choices);
    return seed_choices;
}
