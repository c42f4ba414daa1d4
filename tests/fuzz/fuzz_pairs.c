/* fuzz_pairs.c: libFuzzer harness for the pair builder's text parsers: the
 * input is one solution text, run through the MATH (LaTeX) and GSM8K
 * detectors and the generated-text (prose) detector, every cut and
 * corruption rule; every made pair must satisfy the invariants of
 * clens_pairs_read_jsonl, and the default plus-minus-one corruption keeps
 * the value's length. Inputs up to 64 KB (fuzz_pairs.options: -max_len),
 * with seeds of 9,000 nested "(" and 3,000 nested "\frac{" (corpus/pairs/),
 * so the parser's depth bound (issue 23 F1) is exercised. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clens.h"

static void check(const clens_pair *p, int same_length)
{
    size_t lc = strlen(p->clean_prefix), s = (size_t)p->site.start, e = (size_t)p->site.end;
    if (e < s || e > lc || memcmp(p->clean_prefix + s, p->site.clean_value, e - s) != 0) abort();
    if (memcmp(p->clean_prefix, p->corrupted_prefix, s) != 0) abort();
    if (same_length && (strlen(p->site.corrupted_value) != e - s ||
                        strlen(p->corrupted_prefix) != lc))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    char *text = malloc(n + 1);
    if (!text) return 0;
    memcpy(text, data, n);
    text[n] = 0;
    static const char *const cuts[] = {"line", "chars:20", "chars-raw:7"};
    for (int mode = 0; mode < 3; mode++) {
        clens_pairs_params p = clens_pairs_default_params();
        clens_error err = {0};
        p.format = mode == 1 ? CLENS_PAIRS_GSM8K : CLENS_PAIRS_MATH;
        clens_pairs_parse_cut(&p, cuts[mode], &err);
        if (mode == 2) clens_pairs_parse_corrupt(&p, "plus-one", &err);
        p.site = mode == 1 ? CLENS_SITE_LAST : CLENS_SITE_RANDOM;
        clens_pair pair;
        int made = 0;
        int rc = mode == 2 ? clens_pairs_from_generation(&p, "f", "q", text, "\\boxed{7} #### 3", &pair, &made, NULL, &err)
                           : clens_pairs_from_text(&p, "f", "q", text, &pair, &made, NULL, &err);
        if (rc == CLENS_OK && made) {
            check(&pair, mode < 2);
            clens_pair_clear(&pair);
        }
    }
    free(text);
    return 0;
}
