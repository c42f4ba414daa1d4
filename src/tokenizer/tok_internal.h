/*
 * tok_internal.h: the tokenizer's internal data structures, shared by the
 * loader (tokenizer.c), the encoder (tok_encode.c), the BPE model
 * (tok_bpe.c), the decoder (tok_decode.c) and the regex wrapper
 * (tok_regex.c). The pipeline mirrors Hugging Face `tokenizers`
 * (tokenizer/mod.rs): added tokens -> normalizer -> pre-tokenizer -> model ->
 * post-processor; decoding: ids -> token strings -> decoder.
 */
#ifndef CLENS_TOK_INTERNAL_H
#define CLENS_TOK_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "clens.h"
#include "tokenizer/tok_unicode.h"

/* ------------------------------------------------------------ hash maps */

static inline uint64_t tok_hash_bytes(const void *p, size_t n)
{
    /* FNV-1a over 8-byte words then a final mix: fast, good enough for keys
     * of token length. */
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ULL ^ (n * 0x9E3779B97F4A7C15ULL);
    while (n >= 8) {
        uint64_t w;
        __builtin_memcpy(&w, s, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) w |= (uint64_t)s[i] << (8 * i);
    h = (h ^ w) * 0x100000001b3ULL;
    h ^= h >> 32;
    h *= 0xD6E8FEB86659FD93ULL;
    h ^= h >> 32;
    return h;
}

/* Byte string -> int32. Keys are copied into an arena. */
typedef struct tok_strmap {
    uint32_t *slots;      /* entry index + 1, 0 = empty; capacity mask+1 */
    uint32_t mask;
    struct tok_strent { uint64_t hash; uint32_t off, len; int32_t val; } *ents;
    uint32_t n, cap;
    char *arena;
    size_t arena_len, arena_cap;
} tok_strmap;

int tok_strmap_init(tok_strmap *m, uint32_t expected);
void tok_strmap_free(tok_strmap *m);
/* Returns the value or -1. */
int32_t tok_strmap_get(const tok_strmap *m, const char *k, size_t n);
/* Inserts or overwrites. 0 ok, -1 out of memory. */
int tok_strmap_put(tok_strmap *m, const char *k, size_t n, int32_t val);
static inline const char *tok_strmap_key(const tok_strmap *m, uint32_t e) { return m->arena + m->ents[e].off; }

/* (id, id) -> (rank, new id) */
typedef struct tok_pairmap {
    struct tok_pairent { uint64_t key; int32_t rank, id; } *slots; /* key 0 unused: ids +1 */
    uint64_t mask;
    uint32_t n;
} tok_pairmap;

static inline const struct tok_pairent *tok_pair_get(const tok_pairmap *m, int32_t a, int32_t b)
{
    uint64_t key = ((uint64_t)(uint32_t)(a + 1) << 32) | (uint32_t)(b + 1);
    uint64_t h = key * 0x9E3779B97F4A7C15ULL;
    h ^= h >> 29;
    for (uint64_t i = h & m->mask;; i = (i + 1) & m->mask) {
        const struct tok_pairent *e = &m->slots[i];
        if (e->key == key) return e;
        if (e->key == 0) return NULL;
    }
}

/* ------------------------------------------------------------ components */

typedef enum { TOK_SPLIT_REMOVED, TOK_SPLIT_ISOLATED, TOK_SPLIT_MERGED_PREV,
               TOK_SPLIT_MERGED_NEXT, TOK_SPLIT_CONTIGUOUS } tok_split_behavior;

typedef struct tok_regex {
    pcre2_code *code;
    char *source;   /* the pattern as written in the tokenizer file */
    int index;      /* index into the per-state match-data array */
} tok_regex;

typedef enum { TOK_PRE_SPLIT, TOK_PRE_BYTELEVEL } tok_pre_type;

typedef struct tok_pre {
    tok_pre_type type;
    tok_regex *re;              /* SPLIT: the pattern; BYTELEVEL with use_regex: GPT-2 regex */
    tok_split_behavior behavior;
    int invert;
    int add_prefix_space;       /* BYTELEVEL */
    int use_regex;              /* BYTELEVEL */
} tok_pre;

typedef struct tok_added {
    char *content;
    int len;
    int32_t id;
    unsigned special : 1, normalized : 1, lstrip : 1, rstrip : 1, single_word : 1;
} tok_added;

/* Leftmost-longest matcher over a set of added tokens (aho-corasick
 * MatchKind::LeftmostLongest semantics): at the leftmost position where any
 * pattern matches, the longest pattern wins. */
typedef struct tok_matcher {
    int n;
    char **pat;        /* pattern bytes (normalized content for normalized tokens) */
    int *pat_len;
    int *tok;          /* pattern -> index into clens_tokenizer.added */
    int *idx;          /* patterns grouped by first byte, longest first */
    int start[257];    /* group of first byte b: idx[start[b] .. start[b+1]) */
    uint8_t first[256];
} tok_matcher;

typedef struct tok_tpl_item { int is_seq; int32_t *ids; int n_ids; } tok_tpl_item;

typedef struct tok_post {
    int has_template;
    tok_tpl_item *items; int n_items;   /* single-sequence template */
    int trim_offsets;                   /* ByteLevel post-processor */
    int trim_add_prefix_space;
} tok_post;

/* -------------------------------------------------------- per-thread state */

typedef struct tok_cache {
    uint32_t *slots;    /* entry + 1 */
    uint32_t mask;
    struct tok_cent { uint64_t hash; uint32_t koff, klen, voff, vlen; } *ents;
    uint32_t n, cap;
    char *keys; size_t keys_len, keys_cap;
    int32_t *vals; size_t vals_len, vals_cap;   /* (id, units) pairs */
} tok_cache;

typedef struct tok_piece { int32_t a, b; int32_t pre_space; } tok_piece;

typedef struct tok_state {
    struct tok_state *next_free;
    pcre2_match_data **md;       /* one per regex */
    pcre2_jit_stack *jit_stack;
    tok_cache cache;
    tok_text norm, norm2;        /* normalized segment (two for normalizer sequences) */
    pcre2_match_context *mctx;
    void *splits; size_t splits_cap, n_splits_used;   /* added-token splits */
    tok_piece *pieces, *pieces2;
    size_t n_pieces_cap, n_pieces2_cap;
    char *word; size_t word_cap; /* piece bytes (with the virtual prefix space) */
    char *tmp; size_t tmp_cap;
    /* BPE scratch */
    int32_t *sym_id, *sym_len, *sym_prev, *sym_next, *pair_rank;
    size_t sym_cap;
    struct tok_heapent { int32_t rank, pos, id; } *heap;
    size_t heap_cap;
    int32_t *wout; size_t wout_cap;  /* (id, units) of the current word */
} tok_state;

/* -------------------------------------------------------------- tokenizer */

struct clens_tokenizer {
    char *path;                  /* tokenizer.json or folder, as resolved */
    char *dir;                   /* folder holding the files */
    /* model */
    tok_strmap vocab;            /* token string -> id */
    char **id_str;               /* id -> token string (model vocab or added), NULL = none */
    int32_t *id_len;
    int32_t n_ids;               /* max id + 1 */
    tok_pairmap merges;
    int ignore_merges;
    int byte_fallback, fuse_unk;
    int32_t unk_id;              /* -1 none */
    char *cont_prefix, *eow_suffix;   /* NULL = none */
    int byte_level;              /* pre-tokenizer maps bytes through the GPT-2 table */
    int32_t byte_id[256];        /* byte -> id of its mapped char, -1 if not in vocab */
    tok_strmap raw_vocab;        /* byte-level: raw bytes -> id (for ignore_merges) */
    /* normalizer: a sequence of forms */
    tok_nf *nf; int n_nf;
    /* pre-tokenizer */
    tok_pre *pre; int n_pre;
    tok_regex **regexes; int n_regexes;
    /* added tokens */
    tok_added *added; int n_added;
    tok_matcher m_raw, m_norm;
    int32_t *added_of_id;        /* id -> index into added, -1 (size n_ids) */
    uint8_t *is_special;         /* id -> token string is a special added token */
    /* post-processor */
    tok_post post;
    /* decoder */
    int dec_byte_level;          /* else tokens joined with " " */
    char **dec_bytes; int32_t *dec_len;  /* id -> decoded bytes (byte-level) */
    /* tokenizer_config.json */
    char *bos, *eos;             /* strings or NULL */
    int32_t bos_id, eos_id;
    int add_bos_cfg;             /* add_bos_token as written: -1 absent, 0, 1 */
    /* thread states */
    pthread_mutex_t pool_lock;
    tok_state *pool;
};

/* tok_regex.c */
/* Compiles an Oniguruma-syntax pattern (as HF tokenizers would) with PCRE2 in
 * UTF + UCP mode, translating \s / \S to the White_Space set. */
int tok_regex_compile(tok_regex **out, const char *pattern, int literal, int index, clens_error *err);
void tok_regex_free(tok_regex *re);
/* Finds all matches in s[0..n) with rust-onig's find_iter semantics (empty
 * matches right after a match are skipped). Calls cb(user, start, end) for
 * each; returns 0, or -1 on a matching error (message in err). */
typedef int (*tok_match_cb)(void *user, size_t s, size_t e);
int tok_regex_find_all(const tok_regex *re, tok_state *st, const char *s, size_t n,
                       tok_match_cb cb, void *user, clens_error *err);

/* tok_bpe.c */
int tok_pairmap_init(tok_pairmap *m, uint32_t expected);
void tok_pairmap_free(tok_pairmap *m);
/* Inserts or overwrites (a later merge of the same pair wins, like HF). */
int tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t id);
/* Runs the BPE merges on symbols st->sym_id[0..n) with unit lengths
 * st->sym_len; leaves the result in place and returns the new count. */
int tok_bpe_merge(const clens_tokenizer *t, tok_state *st, int n);
/* The naive and heap algorithms, exposed for the unit test. */
int tok_bpe_merge_naive(const clens_tokenizer *t, tok_state *st, int n);
int tok_bpe_merge_heap(const clens_tokenizer *t, tok_state *st, int n);
/* Tokenizes one pre-tokenized word (bytes w[0..n) of the normalized text, with
 * a virtual leading space if pre_space) into st->wout (pairs id, units);
 * returns the number of tokens, or -1 when out of memory. Units: the virtual
 * space is unit 0 (when present), then one unit per byte of w. */
int tok_bpe_word(const clens_tokenizer *t, tok_state *st, const char *w, size_t n, int pre_space);
void tok_cache_free(tok_cache *c);
int tok_state_reserve_syms(tok_state *st, size_t n);

/* tok_encode.c */
tok_state *tok_state_get(clens_tokenizer *t);
void tok_state_put(clens_tokenizer *t, tok_state *st);
void tok_state_free(const clens_tokenizer *t, tok_state *st);
int tok_matcher_build(tok_matcher *m, const clens_tokenizer *t, int normalized);
void tok_matcher_free(tok_matcher *m);

/* tokenizer.c: the GPT-2 byte <-> unicode map */
int tok_cp_to_byte(uint32_t cp);    /* code point -> byte, or -1 */
uint32_t tok_byte_to_cp(unsigned b);

#endif
