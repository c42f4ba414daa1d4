/*
 * tokenizer.c: opening a tokenizer. Reads a Hugging Face `tokenizer.json`
 * (format: huggingface/tokenizers tokenizer/serialization.rs, models/bpe/
 * serialization.rs; components in normalizers/, pre_tokenizers/, processors/,
 * decoders/) or the older form vocab.json + merges.txt + tokenizer_config.json
 * (transformers' Qwen2Tokenizer / GPT2Tokenizer), plus tokenizer_config.json
 * for bos/eos and add_bos_token. Supported: model BPE (byte_fallback, unk,
 * continuing_subword_prefix / end_of_word_suffix, ignore_merges, merges as
 * "a b" strings or ["a","b"] pairs); normalizers NFC/NFD/NFKC/NFKD and
 * Sequence; pre-tokenizers Split (regex or string, every behaviour, invert),
 * ByteLevel and Sequence; post-processors ByteLevel, TemplateProcessing and
 * Sequence; decoder ByteLevel (or none). Anything else is an error naming
 * the component. Added-token ids are assigned as the reference assigns them
 * (the id of the content in the model vocabulary, else the next free id).
 * "truncation" and "padding" are ignored: transformers sets them per call.
 */
#include "tokenizer/tok_internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base.h"
#include "base/path.h"
#include "base/infile.h"
#include "formats/formats.h"

/* Regexes of the reconstructed pipelines. */
static const char QWEN2_REGEX[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char GPT2_REGEX[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ------------------------------------------------------- GPT-2 byte map */

static uint16_t byte_cp[256];
static int16_t cp_byte[0x144];
static pthread_once_t byte_once = PTHREAD_ONCE_INIT;

static void byte_map_init(void)
{
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        byte_cp[b] = keep ? (uint16_t)b : (uint16_t)(0x100 + n++);
    }
    for (int c = 0; c < 0x144; c++) cp_byte[c] = -1;
    for (int b = 0; b < 256; b++) cp_byte[byte_cp[b]] = (int16_t)b;
}

int tok_cp_to_byte(uint32_t cp)
{
    pthread_once(&byte_once, byte_map_init);
    return cp < 0x144 ? cp_byte[cp] : -1;
}

uint32_t tok_byte_to_cp(unsigned b)
{
    pthread_once(&byte_once, byte_map_init);
    return byte_cp[b];
}

/* ------------------------------------------------------------ helpers */

typedef struct load_ctx {
    const char *file;      /* file name for messages */
    clens_error *err;
} load_ctx;

static int fail(load_ctx *L, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(load_ctx *L, int code, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return clens_err(L->err, code, "%s: %s", L->file, msg);
}

/* Present and not a folder: a FIFO or device named like a tokenizer file is
 * then opened by clens_json_load_regular / clens_read_file, which refuse it
 * by name instead of skipping it (or blocking on it). */
static int is_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && !S_ISDIR(sb.st_mode);
}

/* Present at all (file, folder, FIFO...): a tokenizer file of the wrong kind
 * is then named by the loader ("tokenizer.json: is a folder, not a file")
 * instead of being reported missing. */
static int present(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* Ids are kept in tables indexed by id, so one huge id in a file would
 * allocate gigabytes: ids must stay below twice the number of entries plus
 * 65536 (real vocabularies are dense, with at most a few hundred holes). */
static long long id_limit(size_t n_entries)
{
    long long lim = 2 * (long long)n_entries + 65536;
    return lim < (1 << 30) ? lim : (1 << 30);
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Boolean field: absent/null -> def; non-boolean -> -2. */
static int jbool(json_t *o, const char *key, int def)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return def;
    if (!json_is_boolean(v)) return -2;
    return json_is_true(v);
}

/* ------------------------------------------------------------ vocabulary */

static int set_id_str(clens_tokenizer *t, int32_t id, const char *s, size_t n)
{
    if (id >= t->n_ids) {
        int32_t nn = t->n_ids ? t->n_ids : 1024;
        while (nn <= id) nn *= 2;
        char **ns = realloc(t->id_str, (size_t)nn * sizeof *ns);
        if (!ns) return -1;
        t->id_str = ns;
        int32_t *nl = realloc(t->id_len, (size_t)nn * sizeof *nl);
        if (!nl) return -1;
        t->id_len = nl;
        for (int32_t i = t->n_ids; i < nn; i++) { t->id_str[i] = NULL; t->id_len[i] = 0; }
        t->n_ids = nn;
    }
    char *c = malloc(n + 1);
    if (!c) return -1;
    memcpy(c, s, n);
    c[n] = 0;
    free(t->id_str[id]);
    t->id_str[id] = c;
    t->id_len[id] = (int32_t)n;
    return 0;
}

/* Loads model.vocab (object token -> id). */
static int load_vocab(load_ctx *L, clens_tokenizer *t, json_t *vocab, const char *where)
{
    if (!json_is_object(vocab))
        return fail(L, CLENS_E_FORMAT, "%s: expected an object mapping token strings to ids", where);
    size_t nv = json_object_size(vocab);
    if (tok_strmap_init(&t->vocab, (uint32_t)nv)) return fail(L, CLENS_E_NOMEM, "out of memory");
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) >= (1 << 30))
            return fail(L, CLENS_E_FORMAT, "%s: token '%.60s' has id %s, expected an integer in [0, 2^30)",
                        where, key, json_is_integer(val) ? "out of range" : "that is not an integer");
        if (json_integer_value(val) >= id_limit(nv))
            return fail(L, CLENS_E_FORMAT,
                        "%s: token '%.60s' has id %lld, far beyond the %zu entries of the vocabulary "
                        "(ids must be below %lld)", where, key, (long long)json_integer_value(val), nv, id_limit(nv));
        int32_t id = (int32_t)json_integer_value(val);
        size_t kl = strlen(key);
        if (tok_strmap_put(&t->vocab, key, kl, id) || set_id_str(t, id, key, kl))
            return fail(L, CLENS_E_NOMEM, "out of memory");
    }
    return 0;
}

static int add_merge(load_ctx *L, clens_tokenizer *t, const char *a, size_t la, const char *b, size_t lb,
                     int32_t rank, char **buf, size_t *cap)
{
    int32_t ia = tok_strmap_get(&t->vocab, a, la), ib = tok_strmap_get(&t->vocab, b, lb);
    if (ia < 0) return fail(L, CLENS_E_FORMAT, "merge %d: token '%.*s' is not in the vocabulary", rank + 1, (int)(la > 80 ? 80 : la), a);
    if (ib < 0) return fail(L, CLENS_E_FORMAT, "merge %d: token '%.*s' is not in the vocabulary", rank + 1, (int)(lb > 80 ? 80 : lb), b);
    size_t pl = t->cont_prefix ? strlen(t->cont_prefix) : 0;
    if (lb < pl) return fail(L, CLENS_E_FORMAT, "merge %d: token '%.*s' is shorter than continuing_subword_prefix", rank + 1, (int)lb, b);
    size_t ln = la + lb - pl;
    if (ln + 1 > *cap) {
        size_t nc = (ln + 1) * 2;
        char *nb = realloc(*buf, nc);
        if (!nb) return fail(L, CLENS_E_NOMEM, "out of memory");
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf, a, la);
    memcpy(*buf + la, b + pl, lb - pl);
    int32_t in = tok_strmap_get(&t->vocab, *buf, ln);
    if (in < 0) return fail(L, CLENS_E_FORMAT, "merge %d: merged token '%.*s' is not in the vocabulary", rank + 1, (int)(ln > 80 ? 80 : ln), *buf);
    if (tok_pairmap_put(&t->merges, ia, ib, rank, in)) return fail(L, CLENS_E_NOMEM, "out of memory");
    return 0;
}

/* A merge written as one string "a b": exactly one space (HF BadMerges). */
static int add_merge_line(load_ctx *L, clens_tokenizer *t, const char *line, size_t n, int32_t rank,
                          char **buf, size_t *cap)
{
    const char *sp = memchr(line, ' ', n);
    if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - line)))
        return fail(L, CLENS_E_FORMAT, "merge %d: expected two tokens separated by one space, got '%.*s'",
                    rank + 1, (int)(n > 80 ? 80 : n), line);
    return add_merge(L, t, line, (size_t)(sp - line), sp + 1, n - (size_t)(sp + 1 - line), rank, buf, cap);
}

static int load_merges_json(load_ctx *L, clens_tokenizer *t, json_t *merges)
{
    if (!json_is_array(merges)) return fail(L, CLENS_E_FORMAT, "model.merges: expected an array");
    size_t n = json_array_size(merges);
    if (tok_pairmap_init(&t->merges, (uint32_t)n)) return fail(L, CLENS_E_NOMEM, "out of memory");
    char *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        json_t *m = json_array_get(merges, i);
        if (json_is_string(m)) {
            rc = add_merge_line(L, t, json_string_value(m), json_string_length(m), (int32_t)i, &buf, &cap);
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) {
            json_t *a = json_array_get(m, 0), *b = json_array_get(m, 1);
            rc = add_merge(L, t, json_string_value(a), json_string_length(a), json_string_value(b),
                           json_string_length(b), (int32_t)i, &buf, &cap);
        } else {
            rc = fail(L, CLENS_E_FORMAT, "model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"]", i);
        }
    }
    free(buf);
    return rc;
}

/* merges.txt: "#version" lines skipped (HF BPE::read_file), and empty lines
 * (transformers' slow tokenizers skip them too). */
static int load_merges_txt(load_ctx *L, clens_tokenizer *t, const char *data, size_t len)
{
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += data[i] == '\n';
    if (tok_pairmap_init(&t->merges, (uint32_t)lines)) return fail(L, CLENS_E_NOMEM, "out of memory");
    char *buf = NULL;
    size_t cap = 0;
    int32_t rank = 0;
    int rc = 0;
    size_t p = 0, line_no = 1;
    while (p < len && !rc) {
        const char *nl = memchr(data + p, '\n', len - p);
        size_t e = nl ? (size_t)(nl - data) : len;
        size_t ll = e - p;
        if (ll && data[p + ll - 1] == '\r') ll--;
        if (memchr(data + p, 0, ll))
            rc = fail(L, CLENS_E_FORMAT, "line %zu holds a NUL byte (expected two tokens separated by one space)",
                      line_no);
        else if (ll && !(ll >= 8 && memcmp(data + p, "#version", 8) == 0))
            rc = add_merge_line(L, t, data + p, ll, rank++, &buf, &cap);
        line_no++;
        p = e + 1;
    }
    free(buf);
    return rc;
}

/* ------------------------------------------------------------ added tokens */

static int added_eq(const tok_added *a, const tok_added *b)
{
    return a->len == b->len && memcmp(a->content, b->content, (size_t)a->len) == 0 && a->special == b->special &&
           a->normalized == b->normalized && a->lstrip == b->lstrip && a->rstrip == b->rstrip &&
           a->single_word == b->single_word;
}

static int32_t added_find(const clens_tokenizer *t, const char *s, size_t n)
{
    for (int i = 0; i < t->n_added; i++)
        if ((size_t)t->added[i].len == n && memcmp(t->added[i].content, s, n) == 0) return i;
    return -1;
}

/* Adds the tokens as HF AddedVocabulary::add_tokens does. fixed_id >= 0 (the
 * older form's added_tokens_decoder): use that id. */
static int add_added(load_ctx *L, clens_tokenizer *t, tok_added *tk, int32_t fixed_id, int32_t *next_id)
{
    if (tk->len == 0) { free(tk->content); return 0; }
    for (int i = 0; i < t->n_added; i++)
        if (added_eq(&t->added[i], tk)) { free(tk->content); return 0; }
    int32_t id;
    int ex = added_find(t, tk->content, (size_t)tk->len);
    if (fixed_id >= 0) id = fixed_id;
    else if (ex >= 0) id = t->added[ex].id;
    else if ((id = tok_strmap_get(&t->vocab, tk->content, (size_t)tk->len)) < 0) id = (*next_id)++;
    if (fixed_id >= 0 && id >= *next_id) *next_id = id + 1;
    tk->id = id;
    if (ex >= 0) {                 /* same content, other flags: replaces the entry */
        free(t->added[ex].content);
        t->added[ex] = *tk;
        return 0;
    }
    tok_added *na = realloc(t->added, (size_t)(t->n_added + 1) * sizeof *na);
    if (!na) { free(tk->content); return fail(L, CLENS_E_NOMEM, "out of memory"); }
    t->added = na;
    t->added[t->n_added++] = *tk;
    return 0;
}

static int parse_added(load_ctx *L, json_t *o, const char *where, tok_added *tk, int content_key_required)
{
    memset(tk, 0, sizeof *tk);
    json_t *c = json_object_get(o, "content");
    if (!json_is_object(o) || (content_key_required && !json_is_string(c)))
        return fail(L, CLENS_E_FORMAT, "%s: expected an object with a string \"content\"", where);
    int sw = jbool(o, "single_word", 0), ls = jbool(o, "lstrip", 0), rs = jbool(o, "rstrip", 0);
    int sp = jbool(o, "special", 0);
    int nz = jbool(o, "normalized", !sp);
    if (sw < -1 || ls < -1 || rs < -1 || sp < -1 || nz < -1)
        return fail(L, CLENS_E_FORMAT, "%s: the flags single_word, lstrip, rstrip, normalized, special must be booleans", where);
    size_t n = json_string_length(c);
    tk->content = malloc(n + 1);
    if (!tk->content) return fail(L, CLENS_E_NOMEM, "out of memory");
    memcpy(tk->content, json_string_value(c), n + 1);
    tk->len = (int)n;
    tk->single_word = (unsigned)sw;
    tk->lstrip = (unsigned)ls;
    tk->rstrip = (unsigned)rs;
    tk->special = (unsigned)sp;
    tk->normalized = (unsigned)nz;
    return 0;
}

/* ---------------------------------------------------------- components */

static int add_regex(load_ctx *L, clens_tokenizer *t, const char *pat, int literal, tok_regex **out)
{
    tok_regex **nr = realloc(t->regexes, (size_t)(t->n_regexes + 1) * sizeof *nr);
    if (!nr) return fail(L, CLENS_E_NOMEM, "out of memory");
    t->regexes = nr;
    clens_error e2 = {0};
    if (tok_regex_compile(out, pat, literal, t->n_regexes, &e2))
        return fail(L, e2.code, "%s", e2.msg);
    t->regexes[t->n_regexes++] = *out;
    return 0;
}

static int push_pre(load_ctx *L, clens_tokenizer *t, const tok_pre *p)
{
    tok_pre *np = realloc(t->pre, (size_t)(t->n_pre + 1) * sizeof *np);
    if (!np) return fail(L, CLENS_E_NOMEM, "out of memory");
    t->pre = np;
    t->pre[t->n_pre++] = *p;
    return 0;
}

static int load_pre(load_ctx *L, clens_tokenizer *t, json_t *o, const char *where)
{
    if (!o || json_is_null(o)) return 0;
    const char *type = jstr(o, "type");
    if (!json_is_object(o) || !type) return fail(L, CLENS_E_FORMAT, "%s: expected an object with a \"type\"", where);
    if (t->byte_level)
        return fail(L, CLENS_E_UNSUPPORTED, "%s: pre-tokenizer '%s' after ByteLevel is not supported (ByteLevel must come last)", where, type);
    if (strcmp(type, "Sequence") == 0) {
        json_t *a = json_object_get(o, "pretokenizers");
        if (!json_is_array(a)) return fail(L, CLENS_E_FORMAT, "%s: Sequence needs a \"pretokenizers\" array", where);
        for (size_t i = 0; i < json_array_size(a); i++) {
            char w[256];
            snprintf(w, sizeof w, "%s.pretokenizers[%zu]", where, i);
            if (load_pre(L, t, json_array_get(a, i), w)) return -1;
        }
        return 0;
    }
    tok_pre p;
    memset(&p, 0, sizeof p);
    if (strcmp(type, "Split") == 0) {
        json_t *pat = json_object_get(o, "pattern");
        const char *rx = json_is_object(pat) ? jstr(pat, "Regex") : NULL;
        const char *lit = json_is_object(pat) ? jstr(pat, "String") : NULL;
        const char *beh = jstr(o, "behavior");
        int inv = jbool(o, "invert", -1);
        if ((!rx && !lit) || !beh || inv < 0)
            return fail(L, CLENS_E_FORMAT, "%s: Split needs \"pattern\" {\"Regex\"|\"String\"}, \"behavior\" and \"invert\"", where);
        p.type = TOK_PRE_SPLIT;
        p.invert = inv;
        if (strcmp(beh, "Removed") == 0) p.behavior = TOK_SPLIT_REMOVED;
        else if (strcmp(beh, "Isolated") == 0) p.behavior = TOK_SPLIT_ISOLATED;
        else if (strcmp(beh, "MergedWithPrevious") == 0) p.behavior = TOK_SPLIT_MERGED_PREV;
        else if (strcmp(beh, "MergedWithNext") == 0) p.behavior = TOK_SPLIT_MERGED_NEXT;
        else if (strcmp(beh, "Contiguous") == 0) p.behavior = TOK_SPLIT_CONTIGUOUS;
        else return fail(L, CLENS_E_UNSUPPORTED, "%s: unknown Split behavior '%s'", where, beh);
        if (add_regex(L, t, rx ? rx : lit, rx == NULL, &p.re)) return -1;
        return push_pre(L, t, &p);
    }
    if (strcmp(type, "ByteLevel") == 0) {
        int aps = jbool(o, "add_prefix_space", 1), ur = jbool(o, "use_regex", 1);
        if (aps < -1 || ur < -1) return fail(L, CLENS_E_FORMAT, "%s: ByteLevel flags must be booleans", where);
        p.type = TOK_PRE_BYTELEVEL;
        p.add_prefix_space = aps;
        p.use_regex = ur;
        if (ur && add_regex(L, t, GPT2_REGEX, 0, &p.re)) return -1;
        t->byte_level = 1;
        return push_pre(L, t, &p);
    }
    return fail(L, CLENS_E_UNSUPPORTED, "%s: unsupported pre-tokenizer '%s' (supported: Split, ByteLevel, Sequence)", where, type);
}

static int load_norm(load_ctx *L, clens_tokenizer *t, json_t *o, const char *where)
{
    if (!o || json_is_null(o)) return 0;
    const char *type = jstr(o, "type");
    if (!json_is_object(o) || !type) return fail(L, CLENS_E_FORMAT, "%s: expected an object with a \"type\"", where);
    if (strcmp(type, "Sequence") == 0) {
        json_t *a = json_object_get(o, "normalizers");
        if (!json_is_array(a)) return fail(L, CLENS_E_FORMAT, "%s: Sequence needs a \"normalizers\" array", where);
        for (size_t i = 0; i < json_array_size(a); i++) {
            char w[256];
            snprintf(w, sizeof w, "%s.normalizers[%zu]", where, i);
            if (load_norm(L, t, json_array_get(a, i), w)) return -1;
        }
        return 0;
    }
    tok_nf f;
    if (strcmp(type, "NFC") == 0) f = TOK_NF_NFC;
    else if (strcmp(type, "NFD") == 0) f = TOK_NF_NFD;
    else if (strcmp(type, "NFKC") == 0) f = TOK_NF_NFKC;
    else if (strcmp(type, "NFKD") == 0) f = TOK_NF_NFKD;
    else return fail(L, CLENS_E_UNSUPPORTED, "%s: unsupported normalizer '%s' (supported: NFC, NFD, NFKC, NFKD, Sequence)", where, type);
    tok_nf *nn = realloc(t->nf, (size_t)(t->n_nf + 1) * sizeof *nn);
    if (!nn) return fail(L, CLENS_E_NOMEM, "out of memory");
    t->nf = nn;
    t->nf[t->n_nf++] = f;
    return 0;
}

static int tpl_push(load_ctx *L, tok_post *p, int is_seq, const int32_t *ids, int n)
{
    tok_tpl_item *ni = realloc(p->items, (size_t)(p->n_items + 1) * sizeof *ni);
    if (!ni) return fail(L, CLENS_E_NOMEM, "out of memory");
    p->items = ni;
    tok_tpl_item *it = &p->items[p->n_items++];
    it->is_seq = is_seq;
    it->n_ids = n;
    it->ids = NULL;
    if (n) {
        it->ids = malloc((size_t)n * sizeof *it->ids);
        if (!it->ids) return fail(L, CLENS_E_NOMEM, "out of memory");
        memcpy(it->ids, ids, (size_t)n * sizeof *ids);
    }
    return 0;
}

static int load_post(load_ctx *L, clens_tokenizer *t, json_t *o, const char *where)
{
    if (!o || json_is_null(o)) return 0;
    const char *type = jstr(o, "type");
    if (!json_is_object(o) || !type) return fail(L, CLENS_E_FORMAT, "%s: expected an object with a \"type\"", where);
    if (strcmp(type, "Sequence") == 0) {
        json_t *a = json_object_get(o, "processors");
        if (!json_is_array(a)) return fail(L, CLENS_E_FORMAT, "%s: Sequence needs a \"processors\" array", where);
        for (size_t i = 0; i < json_array_size(a); i++) {
            char w[256];
            snprintf(w, sizeof w, "%s.processors[%zu]", where, i);
            if (load_post(L, t, json_array_get(a, i), w)) return -1;
        }
        return 0;
    }
    if (strcmp(type, "ByteLevel") == 0) {
        int tr = jbool(o, "trim_offsets", 1), aps = jbool(o, "add_prefix_space", 1);
        if (tr < -1 || aps < -1) return fail(L, CLENS_E_FORMAT, "%s: ByteLevel flags must be booleans", where);
        t->post.trim_offsets = tr;
        t->post.trim_add_prefix_space = aps;
        return 0;
    }
    if (strcmp(type, "TemplateProcessing") == 0) {
        json_t *single = json_object_get(o, "single"), *sp = json_object_get(o, "special_tokens");
        if (!json_is_array(single) || (sp && !json_is_null(sp) && !json_is_object(sp)))
            return fail(L, CLENS_E_FORMAT, "%s: TemplateProcessing needs a \"single\" array and a \"special_tokens\" object", where);
        if (t->post.has_template)
            return fail(L, CLENS_E_UNSUPPORTED, "%s: more than one TemplateProcessing", where);
        t->post.has_template = 1;
        for (size_t i = 0; i < json_array_size(single); i++) {
            json_t *it = json_array_get(single, i);
            json_t *st = json_object_get(it, "SpecialToken"), *sq = json_object_get(it, "Sequence");
            if (json_is_object(sq)) {
                const char *id = jstr(sq, "id");
                if (!id || strcmp(id, "A") != 0)
                    return fail(L, CLENS_E_UNSUPPORTED, "%s.single[%zu]: only the sequence $A is supported in a single template", where, i);
                if (tpl_push(L, &t->post, 1, NULL, 0)) return -1;
            } else if (json_is_object(st) && jstr(st, "id")) {
                const char *name = jstr(st, "id");
                json_t *def = json_object_get(sp, name), *ids = json_object_get(def, "ids");
                if (!json_is_array(ids))
                    return fail(L, CLENS_E_FORMAT, "%s.single[%zu]: special token '%s' has no \"ids\" in special_tokens", where, i, name);
                int32_t v[64];
                size_t n = json_array_size(ids);
                if (n > 64) return fail(L, CLENS_E_UNSUPPORTED, "%s: special token '%s' has more than 64 ids", where, name);
                for (size_t k = 0; k < n; k++) {
                    json_t *x = json_array_get(ids, k);
                    if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) >= (1 << 30))
                        return fail(L, CLENS_E_FORMAT, "%s: special token '%s': ids must be non-negative integers", where, name);
                    v[k] = (int32_t)json_integer_value(x);
                }
                if (tpl_push(L, &t->post, 0, v, (int)n)) return -1;
            } else {
                return fail(L, CLENS_E_FORMAT, "%s.single[%zu]: expected {\"SpecialToken\":...} or {\"Sequence\":...}", where, i);
            }
        }
        return 0;
    }
    return fail(L, CLENS_E_UNSUPPORTED, "%s: unsupported post-processor '%s' (supported: ByteLevel, TemplateProcessing, Sequence)", where, type);
}

static int load_decoder(load_ctx *L, clens_tokenizer *t, json_t *o, const char *where)
{
    if (!o || json_is_null(o)) return 0;
    const char *type = jstr(o, "type");
    if (!json_is_object(o) || !type) return fail(L, CLENS_E_FORMAT, "%s: expected an object with a \"type\"", where);
    if (strcmp(type, "ByteLevel") == 0) { t->dec_byte_level = 1; return 0; }
    if (strcmp(type, "Sequence") == 0) {
        json_t *a = json_object_get(o, "decoders");
        if (json_is_array(a) && json_array_size(a) == 1)
            return load_decoder(L, t, json_array_get(a, 0), where);
    }
    return fail(L, CLENS_E_UNSUPPORTED, "%s: unsupported decoder '%s' (supported: ByteLevel)", where, type);
}

static int load_model(load_ctx *L, clens_tokenizer *t, json_t *m)
{
    if (!json_is_object(m)) return fail(L, CLENS_E_FORMAT, "\"model\": expected an object");
    const char *type = jstr(m, "type");
    if (type && strcmp(type, "BPE") != 0)
        return fail(L, CLENS_E_UNSUPPORTED, "unsupported model type '%s' (only BPE is supported)", type);
    if (!type && !json_object_get(m, "merges"))
        return fail(L, CLENS_E_UNSUPPORTED, "model without \"type\" and without \"merges\": only BPE is supported");
    json_t *dr = json_object_get(m, "dropout");
    if (dr && !json_is_null(dr) && !(json_is_number(dr) && json_number_value(dr) == 0.0))
        return fail(L, CLENS_E_UNSUPPORTED, "model.dropout is set: BPE dropout is random and not supported");
    const char *pre = jstr(m, "continuing_subword_prefix"), *suf = jstr(m, "end_of_word_suffix");
    if (pre && *pre && !(t->cont_prefix = strdup(pre))) return fail(L, CLENS_E_NOMEM, "out of memory");
    if (suf && *suf && !(t->eow_suffix = strdup(suf))) return fail(L, CLENS_E_NOMEM, "out of memory");
    int im = jbool(m, "ignore_merges", 0), bf = jbool(m, "byte_fallback", 0), fu = jbool(m, "fuse_unk", 0);
    if (im < -1 || bf < -1 || fu < -1) return fail(L, CLENS_E_FORMAT, "model: ignore_merges, byte_fallback, fuse_unk must be booleans");
    t->ignore_merges = im;
    t->byte_fallback = bf;
    t->fuse_unk = fu;
    if (load_vocab(L, t, json_object_get(m, "vocab"), "model.vocab")) return -1;
    if (load_merges_json(L, t, json_object_get(m, "merges"))) return -1;
    const char *unk = jstr(m, "unk_token");
    t->unk_id = -1;
    if (unk && (t->unk_id = tok_strmap_get(&t->vocab, unk, strlen(unk))) < 0)
        return fail(L, CLENS_E_FORMAT, "model.unk_token '%s' is not in the vocabulary", unk);
    return 0;
}

/* ------------------------------------------------- tokenizer_config.json */

/* bos_token / eos_token: a string or an AddedToken object. */
static const char *cfg_token(json_t *cfg, const char *key)
{
    json_t *v = json_object_get(cfg, key);
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v)) return jstr(v, "content");
    return NULL;
}

static int class_is_llama_like(const char *cls)
{
    static const char *const names[] = {"LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer",
                                        "CodeLlamaTokenizerFast", "GemmaTokenizer", "GemmaTokenizerFast"};
    for (size_t i = 0; cls && i < sizeof names / sizeof *names; i++)
        if (strcmp(cls, names[i]) == 0) return 1;
    return 0;
}

/* Replaces the post-processor with "[bos] $A [eos]" (transformers'
 * LlamaTokenizerFast.update_post_processor and the older form). */
static int template_from_flags(load_ctx *L, clens_tokenizer *t, int add_bos, int add_eos)
{
    for (int i = 0; i < t->post.n_items; i++) free(t->post.items[i].ids);
    free(t->post.items);
    t->post.items = NULL;
    t->post.n_items = 0;
    t->post.has_template = 1;
    if (add_bos) {
        if (t->bos_id < 0) return fail(L, CLENS_E_FORMAT, "add_bos_token is true but bos_token is %s", t->bos ? "not in the vocabulary" : "missing");
        if (tpl_push(L, &t->post, 0, &t->bos_id, 1)) return -1;
    }
    if (tpl_push(L, &t->post, 1, NULL, 0)) return -1;
    if (add_eos) {
        if (t->eos_id < 0) return fail(L, CLENS_E_FORMAT, "add_eos_token is true but eos_token is %s", t->eos ? "not in the vocabulary" : "missing");
        if (tpl_push(L, &t->post, 0, &t->eos_id, 1)) return -1;
    }
    return 0;
}

static int read_config(load_ctx *L, clens_tokenizer *t, json_t *cfg)
{
    const char *b = cfg_token(cfg, "bos_token"), *e = cfg_token(cfg, "eos_token");
    if (b && !(t->bos = strdup(b))) return fail(L, CLENS_E_NOMEM, "out of memory");
    if (e && !(t->eos = strdup(e))) return fail(L, CLENS_E_NOMEM, "out of memory");
    int ab = jbool(cfg, "add_bos_token", -1);
    if (ab < -1) return fail(L, CLENS_E_FORMAT, "add_bos_token must be a boolean");
    t->add_bos_cfg = ab;
    return 0;
}

/* --------------------------------------------------------------- loading */

static int finish(load_ctx *L, clens_tokenizer *t)
{
    /* id -> string for added tokens (the reference resolves an id to its
     * added token first, then to the model vocabulary) */
    for (int i = 0; i < t->n_added; i++)
        if (set_id_str(t, t->added[i].id, t->added[i].content, (size_t)t->added[i].len))
            return fail(L, CLENS_E_NOMEM, "out of memory");
    /* set_id_str grows n_ids in powers of two: shrink to max id + 1 */
    int32_t real = 0;
    for (int32_t i = 0; i < t->n_ids; i++)
        if (t->id_str[i]) real = i + 1;
    t->n_ids = real;
    t->added_of_id = malloc((size_t)(real ? real : 1) * sizeof *t->added_of_id);
    t->is_special = calloc((size_t)(real ? real : 1), 1);
    if (!t->added_of_id || !t->is_special) return fail(L, CLENS_E_NOMEM, "out of memory");
    for (int32_t i = 0; i < real; i++) t->added_of_id[i] = -1;
    for (int i = 0; i < t->n_added; i++) t->added_of_id[t->added[i].id] = i;
    /* skip_special_tokens drops every id whose token string is special */
    for (int32_t i = 0; i < real; i++) {
        if (!t->id_str[i]) continue;
        for (int k = 0; k < t->n_added; k++)
            if (t->added[k].special && t->added[k].len == t->id_len[i] &&
                memcmp(t->added[k].content, t->id_str[i], (size_t)t->id_len[i]) == 0) {
                t->is_special[i] = 1;
                break;
            }
    }
    if (tok_matcher_build(&t->m_raw, t, 0) || tok_matcher_build(&t->m_norm, t, 1))
        return fail(L, CLENS_E_NOMEM, "out of memory");

    /* byte-level tables */
    for (int b = 0; b < 256; b++) {
        char u[4];
        int l = tok_utf8_enc(tok_byte_to_cp((unsigned)b), u);
        t->byte_id[b] = tok_strmap_get(&t->vocab, u, (size_t)l);
    }
    if (t->byte_level && t->ignore_merges) {
        if (tok_strmap_init(&t->raw_vocab, t->vocab.n)) return fail(L, CLENS_E_NOMEM, "out of memory");
        char *raw = NULL;
        size_t rcap = 0;
        for (uint32_t e = 0; e < t->vocab.n; e++) {
            const unsigned char *k = (const unsigned char *)tok_strmap_key(&t->vocab, e);
            uint32_t kl = t->vocab.ents[e].len;
            if (kl + 1 > rcap) { rcap = 2 * kl + 16; char *nr = realloc(raw, rcap); if (!nr) { free(raw); return fail(L, CLENS_E_NOMEM, "out of memory"); } raw = nr; }
            size_t o = 0;
            int okk = 1;
            for (uint32_t i = 0; i < kl && okk;) {
                uint32_t c;
                if (tok_utf8_valid_prefix((const char *)k + i, kl - i) == 0) { okk = 0; break; }
                i += (uint32_t)tok_utf8_dec(k + i, &c);
                int b = tok_cp_to_byte(c);
                if (b < 0) okk = 0;
                else raw[o++] = (char)b;
            }
            if (okk && tok_strmap_put(&t->raw_vocab, raw, o, t->vocab.ents[e].val)) { free(raw); return fail(L, CLENS_E_NOMEM, "out of memory"); }
        }
        free(raw);
    }
    /* decoder bytes */
    if (t->dec_byte_level) {
        t->dec_bytes = calloc((size_t)(real ? real : 1), sizeof *t->dec_bytes);
        t->dec_len = calloc((size_t)(real ? real : 1), sizeof *t->dec_len);
        if (!t->dec_bytes || !t->dec_len) return fail(L, CLENS_E_NOMEM, "out of memory");
        for (int32_t i = 0; i < real; i++) {
            const unsigned char *s = (const unsigned char *)t->id_str[i];
            if (!s) continue;
            size_t n = (size_t)t->id_len[i], o = 0;
            char *d = malloc(n + 1);
            if (!d) return fail(L, CLENS_E_NOMEM, "out of memory");
            int all = tok_utf8_valid_prefix((const char *)s, n) == n;
            for (size_t k = 0; k < n && all;) {
                uint32_t c;
                k += (size_t)tok_utf8_dec(s + k, &c);
                int b = tok_cp_to_byte(c);
                if (b < 0) all = 0;
                else d[o++] = (char)b;
            }
            if (!all) { memcpy(d, s, n); o = n; }   /* not byte-level: raw UTF-8 */
            t->dec_bytes[i] = d;
            t->dec_len[i] = (int32_t)o;
        }
    }
    t->bos_id = t->bos ? clens_tokenizer_token_to_id(t, t->bos) : -1;
    t->eos_id = t->eos ? clens_tokenizer_token_to_id(t, t->eos) : -1;
    return 0;
}

static json_t *load_json(load_ctx *L, const char *path)
{
    json_error_t je;
    json_t *j;
    clens_error e = {0};
    int rc = clens_json_load_regular(path, JSON_ALLOW_NUL, &j, &je, &e);
    if (rc == CLENS_E_FORMAT) fail(L, rc, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
    else if (rc) clens_err(L->err, rc, "%s", e.msg); /* names the path already */
    return j;
}

static int load_tokenizer_json(clens_tokenizer *t, const char *path, clens_error *err)
{
    load_ctx L = {path, err};
    json_t *j = load_json(&L, path);
    if (!j) return -1;
    int rc = -1;
    if (!json_is_object(j)) { fail(&L, CLENS_E_FORMAT, "expected a JSON object at the top level"); goto out; }
    const char *ver = jstr(j, "version");
    if (json_object_get(j, "version") && (!ver || strcmp(ver, "1.0") != 0)) {
        fail(&L, CLENS_E_UNSUPPORTED, "unknown tokenizer version (expected \"1.0\")");
        goto out;
    }
    if (!json_object_get(j, "model")) { fail(&L, CLENS_E_FORMAT, "no \"model\""); goto out; }
    if (load_model(&L, t, json_object_get(j, "model"))) goto out;
    if (load_norm(&L, t, json_object_get(j, "normalizer"), "normalizer")) goto out;
    if (load_pre(&L, t, json_object_get(j, "pre_tokenizer"), "pre_tokenizer")) goto out;
    if (load_post(&L, t, json_object_get(j, "post_processor"), "post_processor")) goto out;
    if (load_decoder(&L, t, json_object_get(j, "decoder"), "decoder")) goto out;
    json_t *at = json_object_get(j, "added_tokens");
    if (at && !json_is_null(at)) {
        if (!json_is_array(at)) { fail(&L, CLENS_E_FORMAT, "added_tokens: expected an array"); goto out; }
        int32_t next_id = (int32_t)t->vocab.n;
        /* HF: the next id is the model's vocab size unless added ids go beyond it */
        for (size_t i = 0; i < json_array_size(at); i++) {
            char w[64];
            tok_added tk;
            snprintf(w, sizeof w, "added_tokens[%zu]", i);
            if (parse_added(&L, json_array_get(at, i), w, &tk, 1)) goto out;
            if (add_added(&L, t, &tk, -1, &next_id)) goto out;
        }
    }
    rc = 0;
out:
    json_decref(j);
    return rc;
}

/* vocab.json + merges.txt + tokenizer_config.json */
static int load_legacy(clens_tokenizer *t, const char *dir, json_t *cfg, const char *cfg_path, clens_error *err)
{
    char *vp = clens_path_join(dir, "vocab.json"), *mp = clens_path_join(dir, "merges.txt");
    load_ctx L = {cfg_path, err};
    int rc = -1;
    json_t *vj = NULL;
    char *md = NULL;
    size_t ml = 0;
    if (!vp || !mp) { fail(&L, CLENS_E_NOMEM, "out of memory"); goto out; }
    const char *cls = jstr(cfg, "tokenizer_class");
    int qwen = cls && (strcmp(cls, "Qwen2Tokenizer") == 0 || strcmp(cls, "Qwen2TokenizerFast") == 0);
    int gpt2 = cls && (strcmp(cls, "GPT2Tokenizer") == 0 || strcmp(cls, "GPT2TokenizerFast") == 0);
    if (!qwen && !gpt2) {
        fail(&L, CLENS_E_UNSUPPORTED, "tokenizer_class '%s' with vocab.json + merges.txt is not supported "
             "(supported: Qwen2Tokenizer, GPT2Tokenizer; or provide tokenizer.json)", cls ? cls : "(missing)");
        goto out;
    }
    L.file = vp;
    if (!(vj = load_json(&L, vp))) goto out;
    if (load_vocab(&L, t, vj, "vocab.json")) goto out;
    L.file = mp;
    if (clens_read_file(mp, &md, &ml, err)) goto out;
    if (load_merges_txt(&L, t, md, ml)) goto out;
    L.file = cfg_path;
    t->unk_id = -1;
    const char *unk = cfg_token(cfg, "unk_token");
    if (unk) t->unk_id = tok_strmap_get(&t->vocab, unk, strlen(unk));
    tok_pre p;
    memset(&p, 0, sizeof p);
    if (qwen) {
        tok_nf *nf = malloc(sizeof *nf);
        if (!nf) { fail(&L, CLENS_E_NOMEM, "out of memory"); goto out; }
        nf[0] = TOK_NF_NFC;
        t->nf = nf;
        t->n_nf = 1;
        p.type = TOK_PRE_SPLIT;
        p.behavior = TOK_SPLIT_ISOLATED;
        if (add_regex(&L, t, QWEN2_REGEX, 0, &p.re) || push_pre(&L, t, &p)) goto out;
        memset(&p, 0, sizeof p);
        p.type = TOK_PRE_BYTELEVEL;
        if (push_pre(&L, t, &p)) goto out;
    } else {
        int aps = jbool(cfg, "add_prefix_space", 0);
        p.type = TOK_PRE_BYTELEVEL;
        p.add_prefix_space = aps > 0;
        p.use_regex = 1;
        if (add_regex(&L, t, GPT2_REGEX, 0, &p.re) || push_pre(&L, t, &p)) goto out;
    }
    t->byte_level = 1;
    t->dec_byte_level = 1;
    /* added tokens from added_tokens_decoder, by increasing id */
    json_t *atd = json_object_get(cfg, "added_tokens_decoder");
    if (atd && !json_is_object(atd)) { fail(&L, CLENS_E_FORMAT, "added_tokens_decoder: expected an object"); goto out; }
    if (atd) {
        size_t n = json_object_size(atd), k = 0;
        struct { long id; json_t *v; } *arr = calloc(n ? n : 1, sizeof *arr);
        if (!arr) { fail(&L, CLENS_E_NOMEM, "out of memory"); goto out; }
        const char *key;
        json_t *v;
        json_object_foreach(atd, key, v) {
            char *end;
            errno = 0;
            long id = strtol(key, &end, 10);
            if (end == key || *end || errno || id < 0 || id >= (1 << 30)) {
                free(arr);
                fail(&L, CLENS_E_FORMAT, "added_tokens_decoder: key '%s' is not a token id", key);
                goto out;
            }
            if (id >= id_limit(t->vocab.n + n)) {
                free(arr);
                fail(&L, CLENS_E_FORMAT, "added_tokens_decoder: id %ld is far beyond the %zu tokens of the vocabulary "
                     "(ids must be below %lld)", id, (size_t)t->vocab.n + n, id_limit(t->vocab.n + n));
                goto out;
            }
            arr[k].id = id;
            arr[k++].v = v;
        }
        for (size_t a = 1; a < n; a++)
            for (size_t b = a; b > 0 && arr[b - 1].id > arr[b].id; b--) {
                long ti = arr[b].id; json_t *tv = arr[b].v;
                arr[b] = arr[b - 1];
                arr[b - 1].id = ti; arr[b - 1].v = tv;
            }
        int32_t next_id = (int32_t)t->vocab.n;
        for (size_t i = 0; i < n; i++) {
            char w[96];
            tok_added tk;
            snprintf(w, sizeof w, "added_tokens_decoder[\"%ld\"]", arr[i].id);
            if (parse_added(&L, arr[i].v, w, &tk, 1) || add_added(&L, t, &tk, (int32_t)arr[i].id, &next_id)) {
                free(arr);
                goto out;
            }
        }
        free(arr);
    }
    rc = 0;
out:
    json_decref(vj);
    free(md);
    free(vp);
    free(mp);
    return rc;
}

int clens_tokenizer_open(clens_tokenizer **out, const char *path, clens_error *err)
{
    *out = NULL;
    if (!path || !*path) return clens_err(err, CLENS_E_ARG, "tokenizer: empty path");
    clens_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    pthread_mutex_init(&t->pool_lock, NULL);
    t->unk_id = -1;
    t->bos_id = t->eos_id = -1;
    t->add_bos_cfg = -1;
    char *tj = NULL, *cfgp = NULL;
    json_t *cfg = NULL;
    int rc;
    if (is_file(path)) {
        if (!(tj = strdup(path))) goto nomem;
        const char *sl = strrchr(path, '/');
        t->dir = sl ? strndup(path, (size_t)(sl - path)) : strdup(".");
        if (!t->dir) goto nomem;
    } else {
        char *dir = NULL;
        if ((rc = hf_resolve_model(path, &dir, err))) goto fail;
        t->dir = dir;
        if (!(tj = clens_path_join(dir, "tokenizer.json"))) goto nomem;
        if (!present(tj)) { free(tj); tj = NULL; }
    }
    if (!(cfgp = clens_path_join(t->dir, "tokenizer_config.json"))) goto nomem;
    if (present(cfgp)) {
        load_ctx L = {cfgp, err};
        if (!(cfg = load_json(&L, cfgp))) { rc = err ? err->code : CLENS_E_FORMAT; goto fail; }
        if (!json_is_object(cfg)) { rc = fail(&L, CLENS_E_FORMAT, "expected a JSON object"); goto fail; }
        if ((rc = read_config(&L, t, cfg) ? (err ? err->code : CLENS_E_FORMAT) : 0)) goto fail;
    }
    if (tj) {
        t->path = tj;
        tj = NULL;
        if (load_tokenizer_json(t, t->path, err)) { rc = err ? err->code : CLENS_E_FORMAT; goto fail; }
    } else {
        char *vp = clens_path_join(t->dir, "vocab.json"), *mp = clens_path_join(t->dir, "merges.txt");
        int have = vp && mp && present(vp) && present(mp);
        free(vp);
        free(mp);
        if (!have) {
            rc = clens_err(err, CLENS_E_IO, "%s: no tokenizer.json and no vocab.json + merges.txt in %s", path, t->dir);
            goto fail;
        }
        if (!cfg) {
            rc = clens_err(err, CLENS_E_IO, "%s: vocab.json + merges.txt need a tokenizer_config.json beside them", t->dir);
            goto fail;
        }
        if (!(t->path = strdup(t->dir))) goto nomem;
        if (load_legacy(t, t->dir, cfg, cfgp, err)) { rc = err ? err->code : CLENS_E_FORMAT; goto fail; }
    }
    {
        load_ctx L = {t->path, err};
        if (finish(&L, t)) { rc = err ? err->code : CLENS_E_FORMAT; goto fail; }
        L.file = cfgp;
        const char *cls = cfg ? jstr(cfg, "tokenizer_class") : NULL;
        int legacy = strcmp(t->path, t->dir) == 0;
        int ab = cfg ? jbool(cfg, "add_bos_token", -1) : -1, ae = cfg ? jbool(cfg, "add_eos_token", -1) : -1;
        if (class_is_llama_like(cls)) {
            /* transformers rebuilds the post-processor from the flags */
            if (template_from_flags(&L, t, ab < 0 ? 1 : ab, ae < 0 ? 0 : ae)) { rc = err ? err->code : CLENS_E_FORMAT; goto fail; }
        } else if (legacy && (ab == 1 || ae == 1)) {
            if (template_from_flags(&L, t, ab == 1, ae == 1)) { rc = err ? err->code : CLENS_E_FORMAT; goto fail; }
        }
    }
    json_decref(cfg);
    free(cfgp);
    *out = t;
    return CLENS_OK;
nomem:
    rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
fail:
    json_decref(cfg);
    free(cfgp);
    free(tj);
    clens_tokenizer_free(t);
    return rc ? rc : CLENS_E_FORMAT;
}

void clens_tokenizer_free(clens_tokenizer *t)
{
    if (!t) return;
    while (t->pool) {
        tok_state *s = t->pool;
        t->pool = s->next_free;
        tok_state_free(t, s);
    }
    pthread_mutex_destroy(&t->pool_lock);
    tok_strmap_free(&t->vocab);
    tok_strmap_free(&t->raw_vocab);
    tok_pairmap_free(&t->merges);
    for (int32_t i = 0; i < t->n_ids; i++) {
        free(t->id_str[i]);
        if (t->dec_bytes) free(t->dec_bytes[i]);
    }
    free(t->id_str);
    free(t->id_len);
    free(t->dec_bytes);
    free(t->dec_len);
    free(t->cont_prefix);
    free(t->eow_suffix);
    free(t->nf);
    free(t->pre);
    for (int i = 0; i < t->n_regexes; i++) tok_regex_free(t->regexes[i]);
    free(t->regexes);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    tok_matcher_free(&t->m_raw);
    tok_matcher_free(&t->m_norm);
    free(t->added_of_id);
    free(t->is_special);
    for (int i = 0; i < t->post.n_items; i++) free(t->post.items[i].ids);
    free(t->post.items);
    free(t->bos);
    free(t->eos);
    free(t->path);
    free(t->dir);
    free(t);
}

/* --------------------------------------------------------- small queries */

int32_t clens_tokenizer_token_to_id(const clens_tokenizer *t, const char *token)
{
    size_t n = strlen(token);
    int32_t a = added_find(t, token, n);
    if (a >= 0) return t->added[a].id;
    return tok_strmap_get(&t->vocab, token, n);
}

const char *clens_tokenizer_id_to_token(const clens_tokenizer *t, int32_t id)
{
    if (id < 0 || id >= t->n_ids) return NULL;
    return t->id_str[id];
}

int32_t clens_tokenizer_vocab_size(const clens_tokenizer *t)
{
    return t->n_ids;
}

int clens_tokenizer_is_special(const clens_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_ids && t->is_special[id];
}

int clens_tokenizer_get_info(const clens_tokenizer *t, clens_tokenizer_info *info)
{
    memset(info, 0, sizeof *info);
    info->path = t->path;
    info->dir = t->dir;
    info->bos_token = t->bos;
    info->eos_token = t->eos;
    info->bos_id = t->bos_id;
    info->eos_id = t->eos_id;
    info->vocab_size = t->n_ids;
    info->n_added = t->n_added;
    info->adds_bos = t->post.has_template && t->post.n_items > 0 && !t->post.items[0].is_seq;
    info->add_bos_token = t->add_bos_cfg;
    return CLENS_OK;
}
