/*
 * template_tok.c: encoding rendered chat text (architectures.md 4.3): a
 * template that already starts with bos_token is encoded with special tokens
 * off, as transformers' apply_chat_template(tokenize=True) does, so the BOS
 * is not doubled. Kept apart from template.c so that the template engine
 * (and its fuzz harness) links without the tokenizer.
 */
#include <string.h>

#include "clens.h"

int clens_chat_template_tokenize(const clens_chat_template *t, const clens_tokenizer *tok, const char *text,
                                 size_t len, int32_t **ids, int *n, int *add_special, clens_error *err)
{
    const char *bos = clens_chat_template_special_token(t, "bos_token");
    size_t bl = bos ? strlen(bos) : 0;
    int as = !(bl && len >= bl && memcmp(text, bos, bl) == 0);
    if (add_special) *add_special = as;
    return clens_tokenize(tok, text, len, as, ids, n, NULL, err);
}
