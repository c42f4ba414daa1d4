/*
 * prompts.c: pair text -> model token ids, in the seed's raw format or the
 * model's own chat template (study.md §5.4).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "interp/prompts.h"

int clens_prompt_mode_parse(const char *s, clens_prompt_mode *mode)
{
    if (strcmp(s, "raw") == 0) *mode = CLENS_PROMPT_RAW;
    else if (strcmp(s, "chat") == 0) *mode = CLENS_PROMPT_CHAT;
    else return -1;
    return 0;
}

int clens_prompt_tokenize(const clens_tokenizer *tok, const char *text, int add_special, int32_t **ids, size_t *n,
                          clens_error *err)
{
    int k = 0;
    int rc = clens_tokenize(tok, text, strlen(text), add_special, ids, &k, NULL, err);
    *n = rc ? 0 : (size_t)k;
    return rc;
}

int clens_prompt_generation_ids(const clens_tokenizer *tok, const char *problem, int32_t **ids,
                                size_t *n, clens_error *err)
{
    size_t len = strlen(problem) + 64;
    char *text = malloc(len);
    if (!text) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    snprintf(text, len, "Solve this math problem step by step:\n\n%s\n\nSolution:", problem);
    int rc = clens_prompt_tokenize(tok, text, 1, ids, n, err);
    free(text);
    return rc;
}

int clens_prompt_ids(const clens_tokenizer *tok, const clens_chat_template *tmpl, clens_prompt_mode mode,
                     const char *problem, const char *prefix, int32_t **ids, size_t *n, clens_error *err)
{
    char *text = NULL;
    int rc;
    if (mode == CLENS_PROMPT_RAW) {
        size_t len = strlen(problem) + strlen(prefix) + 64;
        text = malloc(len);
        if (!text) return clens_err(err, CLENS_E_NOMEM, "out of memory");
        snprintf(text, len, "Solve this math problem step by step:\n\n%s\n\nSolution: %s", problem, prefix);
        rc = clens_prompt_tokenize(tok, text, 1, ids, n, err);
        free(text);
        return rc;
    }
    if (!tmpl) return clens_err(err, CLENS_E_ARG, "--prompt chat needs the model's chat template");
    json_t *msgs = json_array(), *msg = json_object();
    json_object_set_new(msg, "role", json_string("user"));
    json_object_set_new(msg, "content", json_string(problem));
    json_array_append_new(msgs, msg);
    char *mj = json_dumps(msgs, JSON_COMPACT);
    json_decref(msgs);
    size_t out_len = 0;
    if (!mj) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    rc = clens_chat_template_render(tmpl, mj, 1, NULL, &text, &out_len, err);
    free(mj);
    if (rc) return rc;
    size_t pl = strlen(prefix);
    char *full = malloc(out_len + pl + 1);
    if (!full) { free(text); return clens_err(err, CLENS_E_NOMEM, "out of memory"); }
    memcpy(full, text, out_len);
    memcpy(full + out_len, prefix, pl + 1);
    free(text);
    rc = clens_prompt_tokenize(tok, full, 0, ids, n, err);
    free(full);
    return rc;
}

const char *clens_tokenizer_sha256(const clens_tokenizer *tok)
{
    static __thread char hex[65];
    clens_tokenizer_info info;
    clens_error e = {0};
    hex[0] = 0;
    if (clens_tokenizer_get_info(tok, &info)) return hex;
    char p[4096];
    snprintf(p, sizeof p, "%s/tokenizer.json", info.dir);
    if (clens_sha256_file_hex(p, hex, &e) == 0) return hex;
    /* the older form: hash vocab.json then merges.txt */
    clens_sha256 s;
    clens_sha256_init(&s);
    const char *names[] = {"vocab.json", "merges.txt"};
    for (int i = 0; i < 2; i++) {
        char *data;
        size_t len;
        snprintf(p, sizeof p, "%s/%s", info.dir, names[i]);
        if (clens_read_file(p, &data, &len, &e)) return hex;
        clens_sha256_update(&s, data, len);
        free(data);
    }
    uint8_t d[32];
    clens_sha256_final(&s, d);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    return hex;
}

int clens_pair_token_check(const clens_tokenizer *tok, const clens_chat_template *tmpl,
                           clens_prompt_mode mode, const clens_pair *pair, long max_len,
                           const char **reason, int32_t **ids_c, int32_t **ids_r, size_t *n,
                           clens_error *err)
{
    int32_t *c = NULL, *r = NULL;
    size_t nc = 0, nr = 0;
    *reason = NULL;
    int rc = clens_prompt_ids(tok, tmpl, mode, pair->problem, pair->clean_prefix, &c, &nc, err);
    if (!rc) rc = clens_prompt_ids(tok, tmpl, mode, pair->problem, pair->corrupted_prefix, &r, &nr, err);
    if (rc) {
        free(c);
        free(r);
        return rc;
    }
    if (nc != nr) *reason = "length_mismatch";
    else if (nc == 0 || c[nc - 1] != r[nr - 1]) *reason = "final_token_mismatch";
    else if (max_len > 0 && (long)nc > max_len) *reason = "too_long";
    else if (memcmp(c, r, sizeof(int32_t) * nc) == 0) *reason = "identical";
    if (n) *n = nc;
    if (ids_c) *ids_c = c; else free(c);
    if (ids_r) *ids_r = r; else free(r);
    return 0;
}
