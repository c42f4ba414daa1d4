/*
 * fuzz_template.c: libFuzzer harness for the chat-template engine (lexer,
 * parser, evaluator). The input is a template source; it is parsed and, when
 * it parses, rendered with a small fixed conversation under tight limits
 * (1 MiB output, 64 MiB memory, 200000 steps). Any crash, sanitizer report,
 * leak or hang is a bug; error returns are expected.
 *
 * Run: `bash tests/fuzz/run.sh template` (FUZZ_SECONDS=600 for a long session;
 * the seed corpus is tests/fuzz/corpus/template/). Standalone, without the
 * rest of libclens, and with the token dictionary:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc \
 *     tests/fuzz/fuzz_template.c src/tokenizer/template.c src/tokenizer/template_lex.c \
 *     src/tokenizer/template_parse.c src/tokenizer/template_eval.c \
 *     src/tokenizer/template_builtins.c src/tokenizer/template_value.c src/base/base.c \
 *     src/base/infile.c \
 *     -ljansson -lutf8proc -lm -o build/fuzz_template
 *   mkdir -p build/fuzz-template-corpus
 *   build/fuzz_template -max_len=8192 -timeout=10 -max_total_time=600 \
 *     -dict=tests/fuzz/fuzz_template.dict build/fuzz-template-corpus tests/fuzz/corpus/template
 * The seed corpus tests/fuzz/corpus/template/ holds small templates covering
 * every construct; the real templates are in tests/data/templates/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clens.h"

static const char MESSAGES[] =
    "{\"messages\": ["
    "{\"role\": \"system\", \"content\": \"Be brief.\"},"
    "{\"role\": \"user\", \"content\": \"What is 2+3? \\u00e9\\ud83d\\ude00\"},"
    "{\"role\": \"assistant\", \"content\": \"<think>add</think>5\", \"reasoning_content\": \"add\","
    " \"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": \"calc\", \"arguments\": {\"x\": [1, 2.5, null, true]}}}]},"
    "{\"role\": \"tool\", \"content\": \"5\"},"
    "{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"thanks\"}]}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"calc\", \"parameters\": {\"type\": \"object\"}}}],"
    " \"enable_thinking\": false}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    clens_chat_template *t = NULL;
    clens_error err;
    if (clens_chat_template_from_string(&t, (const char *)data, size,
                                        "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}", &err) != CLENS_OK)
        return 0;
    clens_chat_render_params p = clens_chat_render_default_params();
    p.add_generation_prompt = 1;
    p.now = 0;
    p.max_output = 1u << 20;
    p.max_memory = 64u << 20;
    p.max_steps = 200000;
    char *out = NULL;
    size_t n = 0, *spans = NULL, nspans = 0;
    if (clens_chat_template_render_ex(t, MESSAGES, &p, &out, &n, &spans, &nspans, &err) == CLENS_OK) {
        if (out[n] != 0) abort(); /* the result is NUL-terminated */
        for (size_t i = 0; i < nspans; i++)
            if (spans[2 * i] > spans[2 * i + 1] || spans[2 * i + 1] > n) abort();
        free(out);
        free(spans);
    }
    clens_chat_template_free(t);
    return 0;
}
