/*
 * patch_prompt_ids.c: prints the token ids `clens patch` feeds the model for
 * each pair, so that tests/suites/51-patch-ref.sh can compare them with the
 * ids the independent reference (tools/ref_patch.py: jinja2 + Hugging Face
 * tokenizers) builds from the same pair texts. It makes the calls cmd_patch.c
 * makes (tokenizer and chat template opened from the model folder, then
 * clens_pair_token_check per pair); patch records carry only n_tokens.
 *
 * Built by the suite against $BUILD/libclens.a; not part of the CLI.
 * usage: patch_prompt_ids MODEL_DIR PAIRS_JSONL raw|chat
 * Output: one JSON line per pair, {"candidate", "reason", "clean", "corr"}.
 * Exit codes: 0 ok, 1 error, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clens.h"
#include "interp/prompts.h"

static void print_ids(const int32_t *ids, size_t n)
{
    putchar('[');
    for (size_t i = 0; i < n; i++) printf(i ? ",%d" : "%d", ids[i]);
    putchar(']');
}

int main(int argc, char **argv)
{
    clens_prompt_mode mode;
    if (argc != 4 || clens_prompt_mode_parse(argv[3], &mode)) {
        fprintf(stderr, "usage: patch_prompt_ids MODEL_DIR PAIRS_JSONL raw|chat\n");
        return 2;
    }
    clens_error err = {0};
    clens_tokenizer *tok = NULL;
    clens_chat_template *tmpl = NULL;
    clens_pair *pairs = NULL;
    size_t n_pairs = 0;
    int rc = 0;
    if (clens_tokenizer_open(&tok, argv[1], &err) ||
        (mode == CLENS_PROMPT_CHAT && clens_chat_template_open(&tmpl, argv[1], &err)) ||
        clens_pairs_read_jsonl(argv[2], &pairs, &n_pairs, &err)) {
        fprintf(stderr, "patch_prompt_ids: %s\n", err.msg);
        rc = 1;
        goto end;
    }
    for (size_t c = 0; c < n_pairs; c++) {
        const char *reason = NULL;
        int32_t *ic = NULL, *ir = NULL;
        size_t n = 0;
        if (clens_pair_token_check(tok, tmpl, mode, &pairs[c], 0, &reason, &ic, &ir, &n, &err)) {
            fprintf(stderr, "patch_prompt_ids: %s: pair %zu: %s\n", argv[2], c, err.msg);
            rc = 1;
            goto end;
        }
        /* corr has its own length when the reason is length_mismatch: count it */
        size_t nr = 0;
        if (reason && strcmp(reason, "length_mismatch") == 0) {
            free(ir);
            ir = NULL;
            if (clens_prompt_ids(tok, tmpl, mode, pairs[c].problem, pairs[c].corrupted_prefix, &ir, &nr, &err)) {
                free(ic);
                fprintf(stderr, "patch_prompt_ids: %s: pair %zu: %s\n", argv[2], c, err.msg);
                rc = 1;
                goto end;
            }
        } else {
            nr = n;
        }
        printf("{\"candidate\":%zu,\"reason\":", c);
        if (reason) printf("\"%s\"", reason);
        else printf("null");
        printf(",\"clean\":");
        print_ids(ic, n);
        printf(",\"corr\":");
        print_ids(ir, nr);
        printf("}\n");
        free(ic);
        free(ir);
    }
end:
    clens_pairs_free(pairs, n_pairs);
    clens_chat_template_free(tmpl);
    clens_tokenizer_free(tok);
    return rc;
}
