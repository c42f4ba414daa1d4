/*
 * organism_vocab.c: the model organisms' tokenizer, written as a real Hugging
 * Face tokenizer.json (format: huggingface/tokenizers serialization; the
 * pipeline is Qwen2's: Split on the Qwen2 regex, then ByteLevel; byte-level
 * BPE model; ByteLevel decoder). docs/organisms.md describes it.
 *
 * Why this shape. The vocabulary is the 256 byte symbols plus every word the
 * trace generator (traces.c) and the seed's raw prompt write, each with and
 * without a leading space, the correction words in both cases, and the few
 * punctuation runs of the traces; "ignore_merges": true makes a pre-token
 * that is a whole vocabulary entry one token (the BPE reference does the same,
 * so no merge list is needed and no merge can split a word). The Qwen2 regex
 * splits numbers into single digits: the organisms learn arithmetic digit by
 * digit, and every number has one spelling. Anything else (a word the
 * generator never writes) falls back to its bytes, so every text encodes.
 * The file is generated, not committed: a C function is the one definition
 * the demo, the tests and `clens organism tokenizer` share, with no Python or
 * npm needed on a fresh machine.
 */
#include "clens.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

/* Same text as the Qwen2 tokenizer.json pre-tokenizer (and tokenizer.c). */
static const char QWEN2_REGEX[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* Words of the raw prompt and of the generator's questions and corrections. */
static const char *const vocab_words[] = {
    "Solve", "this", "math", "problem", "step", "by", "Solution",
    "Compute", "then", "add", "subtract", "multiply", "it", "from",
    "Wait", "But", "Actually", "Hmm", "wait", "but", "actually", "hmm",
};
/* Punctuation runs as the regex cuts them: ":\n\n", ".\n\n", ".\n", "\n\n", "####". */
static const char *const vocab_runs[] = {":\n\n", ".\n\n", ".\n", "\n\n", "####"};

static const char EOS[] = "<|endoftext|>";

/* GPT-2's bytes_to_unicode: printable bytes map to themselves, the others to
 * U+0100 onwards in byte order. */
static unsigned byte_symbol(unsigned b)
{
    int keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    if (keep) return b;
    unsigned n = 0;
    for (unsigned c = 0; c < b; c++)
        if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE)) n++;
    return 0x100 + n;
}

/* The byte-level form of text (each byte as its symbol, UTF-8 encoded). */
static void byte_level(const char *text, char *out, size_t n)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p && o + 3 < n; p++) {
        unsigned cp = byte_symbol(*p);
        if (cp < 0x80) out[o++] = (char)cp;
        else { out[o++] = (char)(0xC0 | (cp >> 6)); out[o++] = (char)(0x80 | (cp & 0x3F)); }
    }
    out[o] = 0;
}

static json_t *byte_level_component(const char *type)
{
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string(type));
    json_object_set_new(o, "add_prefix_space", json_false());
    json_object_set_new(o, "trim_offsets", json_false());
    json_object_set_new(o, "use_regex", json_false());
    return o;
}

static json_t *added_token(int id)
{
    json_t *t = json_object();
    json_object_set_new(t, "id", json_integer(id));
    json_object_set_new(t, "content", json_string(EOS));
    json_object_set_new(t, "single_word", json_false());
    json_object_set_new(t, "lstrip", json_false());
    json_object_set_new(t, "rstrip", json_false());
    json_object_set_new(t, "normalized", json_false());
    json_object_set_new(t, "special", json_true());
    return t;
}

static int write_json(const char *dir, const char *name, json_t *j, clens_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!s) return clens_err(err, CLENS_E_NOMEM, "%s: out of memory", path);
    size_t len = strlen(s);
    char *t = realloc(s, len + 2);
    if (!t) { free(s); return clens_err(err, CLENS_E_NOMEM, "%s: out of memory", path); }
    t[len] = '\n';
    t[len + 1] = 0;
    int rc = clens_write_file_atomic(path, t, len + 1, err);
    free(t);
    return rc;
}

int clens_organism_tokenizer_write(const char *dir, clens_error *err)
{
    if (clens_mkdir_p(dir, err)) return -1;
    json_t *vocab = json_object();
    char sym[256], word[128];
    int id = 0;
    for (unsigned b = 0; b < 256; b++) {
        char one[2] = {(char)b, 0};
        if (b == 0) { strcpy(sym, "\xC4\x80"); } /* byte 0 -> U+0100 */
        else byte_level(one, sym, sizeof sym);
        json_object_set_new(vocab, sym, json_integer(id++));
    }
    for (size_t w = 0; w < sizeof vocab_words / sizeof vocab_words[0]; w++)
        for (int sp = 0; sp < 2; sp++) {
            snprintf(word, sizeof word, "%s%s", sp ? " " : "", vocab_words[w]);
            byte_level(word, sym, sizeof sym);
            if (!json_object_get(vocab, sym)) json_object_set_new(vocab, sym, json_integer(id++));
        }
    for (size_t r = 0; r < sizeof vocab_runs / sizeof vocab_runs[0]; r++) {
        byte_level(vocab_runs[r], sym, sizeof sym);
        if (!json_object_get(vocab, sym)) json_object_set_new(vocab, sym, json_integer(id++));
    }
    int eos_id = id;

    json_t *tj = json_object();
    json_object_set_new(tj, "version", json_string("1.0"));
    json_object_set_new(tj, "truncation", json_null());
    json_object_set_new(tj, "padding", json_null());
    json_t *added = json_array();
    json_array_append_new(added, added_token(eos_id));
    json_object_set_new(tj, "added_tokens", added);
    json_object_set_new(tj, "normalizer", json_null());
    json_t *split = json_object(), *pat = json_object();
    json_object_set_new(pat, "Regex", json_string(QWEN2_REGEX));
    json_object_set_new(split, "type", json_string("Split"));
    json_object_set_new(split, "pattern", pat);
    json_object_set_new(split, "behavior", json_string("Isolated"));
    json_object_set_new(split, "invert", json_false());
    json_t *pre = json_object(), *pres = json_array();
    json_array_append_new(pres, split);
    json_array_append_new(pres, byte_level_component("ByteLevel"));
    json_object_set_new(pre, "type", json_string("Sequence"));
    json_object_set_new(pre, "pretokenizers", pres);
    json_object_set_new(tj, "pre_tokenizer", pre);
    json_object_set_new(tj, "post_processor", byte_level_component("ByteLevel"));
    json_object_set_new(tj, "decoder", byte_level_component("ByteLevel"));
    json_t *model = json_object();
    json_object_set_new(model, "type", json_string("BPE"));
    json_object_set_new(model, "dropout", json_null());
    json_object_set_new(model, "unk_token", json_null());
    json_object_set_new(model, "continuing_subword_prefix", json_string(""));
    json_object_set_new(model, "end_of_word_suffix", json_string(""));
    json_object_set_new(model, "fuse_unk", json_false());
    json_object_set_new(model, "byte_fallback", json_false());
    json_object_set_new(model, "ignore_merges", json_true());
    json_object_set_new(model, "vocab", vocab);
    json_object_set_new(model, "merges", json_array());
    json_object_set_new(tj, "model", model);
    if (write_json(dir, "tokenizer.json", tj, err)) return -1;

    json_t *cfg = json_object(), *dec = json_object(), *e = added_token(eos_id);
    json_object_del(e, "id");
    char key[16];
    snprintf(key, sizeof key, "%d", eos_id);
    json_object_set_new(dec, key, e);
    json_object_set_new(cfg, "add_bos_token", json_false());
    json_object_set_new(cfg, "add_prefix_space", json_false());
    json_object_set_new(cfg, "added_tokens_decoder", dec);
    json_object_set_new(cfg, "bos_token", json_null());
    json_object_set_new(cfg, "clean_up_tokenization_spaces", json_false());
    json_object_set_new(cfg, "eos_token", json_string(EOS));
    json_object_set_new(cfg, "model_max_length", json_integer(4096));
    json_object_set_new(cfg, "pad_token", json_string(EOS));
    json_object_set_new(cfg, "tokenizer_class", json_string("PreTrainedTokenizerFast"));
    json_object_set_new(cfg, "unk_token", json_null());
    return write_json(dir, "tokenizer_config.json", cfg, err);
}
