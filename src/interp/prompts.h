/*
 * prompts.h: rendering (clean, corrupted) pairs into token ids for a model
 * (rulings R6: pairs are model-independent text; rendering happens where they
 * are used). Declared in include/clens.h once the tokenizer lands there.
 */
#ifndef CLENS_PROMPTS_H
#define CLENS_PROMPTS_H

#include "clens.h"

typedef enum { CLENS_PROMPT_RAW = 0, CLENS_PROMPT_CHAT } clens_prompt_mode;

int clens_prompt_mode_parse(const char *s, clens_prompt_mode *mode);

/* The seed's plain prompt (study.md §3.1): "Solve this math problem step by
 * step:\n\n{problem}\n\nSolution:" + " " + prefix, encoded with the
 * tokenizer's special tokens (BOS if it adds one). CHAT: the model's template
 * with the problem as the user turn and add_generation_prompt, the prefix
 * continuing the assistant's turn, encoded without special tokens (as
 * apply_chat_template(tokenize=True) does). *ids malloc'd, caller frees. */
int clens_prompt_ids(const clens_tokenizer *tok, const clens_chat_template *tmpl, clens_prompt_mode mode,
                     const char *problem, const char *prefix, int32_t **ids, size_t *n, clens_error *err);

/* The seed's raw prompt as a generation prompt (no prefix, no trailing
 * space): "Solve this math problem step by step:\n\n{problem}\n\nSolution:"
 * with special tokens. *ids malloc'd, caller frees. */
int clens_prompt_generation_ids(const clens_tokenizer *tok, const char *problem, int32_t **ids,
                                size_t *n, clens_error *err);

/* The token-level check of a pair for one model (study.md §5.2, R6): both
 * prompts rendered and encoded; *reason is NULL (usable) or
 * "length_mismatch", "final_token_mismatch", "too_long" (> max_len tokens;
 * max_len <= 0: no limit) or "identical". *ids_c / *ids_r (malloc'd, caller
 * frees, may be NULL to discard) get the ids and *n their length (clean). */
int clens_pair_token_check(const clens_tokenizer *tok, const clens_chat_template *tmpl,
                           clens_prompt_mode mode, const clens_pair *pair, long max_len,
                           const char **reason, int32_t **ids_c, int32_t **ids_r, size_t *n,
                           clens_error *err);

/* Encodes text (NUL-terminated) without or with special tokens. */
int clens_prompt_tokenize(const clens_tokenizer *tok, const char *text, int add_special, int32_t **ids,
                          size_t *n, clens_error *err);

/* sha256 (hex) of the tokenizer's files (tokenizer.json, or vocab.json +
 * merges.txt), for provenance. Static buffer per tokenizer path; "" if unknown. */
const char *clens_tokenizer_sha256(const clens_tokenizer *tok);

#endif
