/*
 * fuzz_tokenize.c: libFuzzer harness for encoding arbitrary bytes.
 * The first input byte picks the tokenizer (dolma2: no normalizer, or
 * qwen2.5: NFC, older file form) and the mode; the rest is the text:
 *   - strict: invalid UTF-8 must be CLENS_E_ARG at the offset clens_utf8_check
 *     reports, valid text must encode;
 *   - lossy: the WHATWG-replaced text must encode;
 *   - offsets must be ordered and inside the text; with dolma2,
 *     decode(encode(text)) must give the text back byte for byte;
 *   - the bytes read as ids must decode without error.
 * Build and run: tests/fuzz/run.sh tokenize (seed corpus tests/fuzz/corpus/tokenize).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clens.h"

static clens_tokenizer *g_tok[2];

static const char *shared_dir(void)
{
    static char buf[4096];
    const char *e = getenv("SHARED");
    const char *cands[] = {e, "../shared", "../../shared", "../../../shared"};
    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
        if (!cands[i]) continue;
        snprintf(buf, sizeof buf, "%s/tokenizers/dolma2/tokenizer.json", cands[i]);
        FILE *f = fopen(buf, "rb");
        if (f) { fclose(f); return cands[i]; }
    }
    fprintf(stderr, "fuzz_tokenize: set SHARED to the shared data folder\n");
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    const char *sh = shared_dir();
    const char *names[2] = {"dolma2", "qwen2.5"};
    for (int i = 0; i < 2; i++) {
        char p[4200];
        clens_error err = {0};
        snprintf(p, sizeof p, "%s/tokenizers/%s", sh, names[i]);
        if (clens_tokenizer_open(&g_tok[i], p, &err)) {
            fprintf(stderr, "fuzz_tokenize: %s\n", err.msg);
            abort();
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    int which = data[0] & 1, lossy = (data[0] >> 1) & 1, add = (data[0] >> 2) & 1;
    clens_tokenizer *t = g_tok[which];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    char *fixed = NULL;
    size_t bad = clens_utf8_check(text, len);
    if (lossy) {
        size_t fl;
        if (clens_utf8_lossy(text, len, &fixed, &fl)) abort();
        if (clens_utf8_check(fixed, fl) != fl) abort();
        text = fixed;
        len = fl;
        bad = len;
    }
    clens_encoding e;
    clens_error err = {0};
    int rc = clens_tokenize_full(t, text, len, add, &e, &err);
    if (bad != len) {
        if (rc != CLENS_E_ARG) abort();
        char want[64];
        snprintf(want, sizeof want, "byte offset %zu ", bad);
        if (!strstr(err.msg, want)) abort();
        free(fixed);
        return 0;
    }
    if (rc) abort();
    for (int i = 0; i < e.n; i++) {
        if (e.offsets[2 * i] > e.offsets[2 * i + 1] || e.offsets[2 * i + 1] > len) abort();
        if (i && e.offsets[2 * i] < e.offsets[2 * i - 2]) abort();
        if (!e.tokens[i]) abort();
    }
    char *back;
    size_t bl;
    if (clens_detokenize(t, e.ids, e.n, 0, &back, &bl, &err)) abort();
    if (which == 0 && (bl != len || memcmp(back, text, len) != 0)) abort();
    free(back);
    clens_encoding_free(&e);
    /* the raw bytes as ids */
    int n = (int)(size / 4);
    int32_t *ids = malloc(sizeof *ids * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, data + 4 * i, 4);
        ids[i] = (int32_t)(v % 160000u);
    }
    if (clens_detokenize(t, ids, n, data[0] & 8, &back, &bl, &err)) abort();
    if (clens_utf8_check(back, bl) != bl) abort();
    free(back);
    free(ids);
    free(fixed);
    return 0;
}
