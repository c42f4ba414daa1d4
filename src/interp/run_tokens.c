/*
 * run_tokens.c: the correction-token sets of a patching run (study.md §5.3 as
 * copied in docs/patch-output.md): which vocabulary ids each metric reads.
 * logprob_mass sums the probability of every single-token form of the
 * correction words (" Wait", "Wait", " wait", ...); logit_mean (the seed's)
 * averages the raw logit of the first sub-token of each string as written.
 * The ids and the strings go into settings.json, so the settings hash
 * changes with the vocabulary.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "interp/prompts.h"
#include "interp/run_internal.h"

static const char *const default_words[] = {"Wait", "But", "Actually", "Hmm"};
/* The seed's logit_mean strings (its CORRECTION_TOKENS). */
static const char *const seed_words[] = {"Wait", "But", "Actually", "Hmm", "wait", "but", "actually"};

void run_token_set_clear(run_token_set *ts)
{
    free(ts->ids);
    json_decref(ts->strs);
    memset(ts, 0, sizeof *ts);
}

/* Adds id (from string s) unless the set has it. */
static int add_token(run_token_set *ts, int32_t id, const char *s)
{
    for (int i = 0; i < ts->n; i++)
        if (ts->ids[i] == id) return 0;
    int32_t *nv = realloc(ts->ids, sizeof(int32_t) * (size_t)(ts->n + 1));
    if (!nv) return -1;
    ts->ids = nv;
    ts->ids[ts->n++] = id;
    return json_array_append_new(ts->strs, json_string(s));
}

/* The ids of s without special tokens (malloc'd); 0 or the tokenizer's error. */
static int encode(const clens_tokenizer *tok, const char *s, int32_t **ids, size_t *n, clens_error *err)
{
    *ids = NULL;
    *n = 0;
    return clens_prompt_tokenize(tok, s, 0, ids, n, err);
}

int run_token_sets_build(const clens_tokenizer *tok, const char *const *words, int n_words,
                         run_token_set *mass, run_token_set *mean, clens_error *err)
{
    memset(mass, 0, sizeof *mass);
    memset(mean, 0, sizeof *mean);
    const char *const *mean_words = words ? words : seed_words;
    int n_mean = words ? n_words : (int)(sizeof seed_words / sizeof seed_words[0]);
    if (!words) {
        words = default_words;
        n_words = (int)(sizeof default_words / sizeof default_words[0]);
    }
    mass->strs = json_array();
    mean->strs = json_array();
    if (!mass->strs || !mean->strs) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    for (int w = 0; w < n_words; w++) {
        char forms[4][256];
        snprintf(forms[0], 256, "%.200s", words[w]);
        snprintf(forms[1], 256, " %.200s", words[w]);
        snprintf(forms[2], 256, "%.200s", words[w]);
        for (char *c = forms[2]; *c; c++)
            if (*c >= 'A' && *c <= 'Z') *c += 32;
        snprintf(forms[3], 256, " %.200s", forms[2]);
        for (int f = 0; f < 4; f++) {
            int32_t *ids;
            size_t n;
            int rc = encode(tok, forms[f], &ids, &n, err);
            if (rc) return rc;
            int bad = n == 1 && add_token(mass, ids[0], forms[f]);
            free(ids);
            if (bad) return clens_err(err, CLENS_E_NOMEM, "out of memory");
        }
    }
    for (int w = 0; w < n_mean; w++) {
        int32_t *ids;
        size_t n;
        int rc = encode(tok, mean_words[w], &ids, &n, err);
        if (rc) return rc;
        int bad = n > 0 && add_token(mean, ids[0], mean_words[w]);
        free(ids);
        if (bad) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    }
    if (mass->n == 0)
        return clens_err(err, CLENS_E_ARG, "no correction string is a single token in this vocabulary");
    return CLENS_OK;
}

json_t *run_token_set_json(const run_token_set *ts)
{
    json_t *o = json_object(), *ids = json_array();
    for (int i = 0; i < ts->n; i++) json_array_append_new(ids, json_integer(ts->ids[i]));
    json_object_set_new(o, "ids", ids);
    json_object_set(o, "tokens", ts->strs);
    return o;
}
