/*
 * tok_encode.c: encoding, following HF tokenizers (tokenizer/mod.rs
 * encode_single_sequence, added_vocabulary.rs extract_and_normalize,
 * pre_tokenizer.rs, normalizer.rs split, processors/):
 *   1. added tokens whose `normalized` flag is false are found in the raw
 *      text (leftmost-longest, with single_word / lstrip / rstrip) and become
 *      single tokens; the text between them is a segment;
 *   2. each segment is normalized (alignments kept for offsets), then added
 *      tokens with `normalized` true are found in the normalized text;
 *   3. the pre-tokenizer splits the rest into pieces (Split with its
 *      behaviour and invert flag; ByteLevel's optional prefix space and GPT-2
 *      regex); empty pieces are dropped;
 *   4. each piece goes through the BPE model (tok_bpe.c);
 *   5. with add_special, the post-processor's template adds its tokens;
 *      ByteLevel trim_offsets trims the offsets of tokens with spaces.
 * Offsets are byte offsets into the input text: a token made of part of a
 * character's bytes covers the whole character, as in the reference.
 */
#include "tokenizer/tok_internal.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

/* ---------------------------------------------------------------- states */

tok_state *tok_state_get(clens_tokenizer *t)
{
    pthread_mutex_lock(&t->pool_lock);
    tok_state *st = t->pool;
    if (st) t->pool = st->next_free;
    pthread_mutex_unlock(&t->pool_lock);
    if (st) return st;
    st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->md = calloc((size_t)(t->n_regexes ? t->n_regexes : 1), sizeof *st->md);
    st->mctx = pcre2_match_context_create(NULL);
    st->jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    if (!st->md || !st->mctx || !st->jit_stack) goto fail;
    pcre2_jit_stack_assign(st->mctx, NULL, st->jit_stack);
    for (int i = 0; i < t->n_regexes; i++)
        if (!(st->md[i] = pcre2_match_data_create_from_pattern(t->regexes[i]->code, NULL))) goto fail;
    return st;
fail:
    tok_state_free(t, st);
    return NULL;
}

void tok_state_put(clens_tokenizer *t, tok_state *st)
{
    if (!st) return;
    pthread_mutex_lock(&t->pool_lock);
    st->next_free = t->pool;
    t->pool = st;
    pthread_mutex_unlock(&t->pool_lock);
}

void tok_state_free(const clens_tokenizer *t, tok_state *st)
{
    if (!st) return;
    if (st->md)
        for (int i = 0; i < t->n_regexes; i++) pcre2_match_data_free(st->md[i]);
    free(st->md);
    pcre2_match_context_free(st->mctx);
    pcre2_jit_stack_free(st->jit_stack);
    tok_cache_free(&st->cache);
    tok_text_free(&st->norm);
    tok_text_free(&st->norm2);
    free(st->pieces);
    free(st->pieces2);
    free(st->word);
    free(st->tmp);
    free(st->sym_id);
    free(st->sym_len);
    free(st->sym_prev);
    free(st->sym_next);
    free(st->pair_rank);
    free(st->heap);
    free(st->wout);
    free(st->splits);
    free(st);
}

/* ------------------------------------------------------- added tokens */

int tok_matcher_build(tok_matcher *m, const clens_tokenizer *t, int normalized)
{
    memset(m, 0, sizeof *m);
    int n = 0;
    for (int i = 0; i < t->n_added; i++)
        if ((int)t->added[i].normalized == normalized && t->added[i].len > 0) n++;
    m->n = n;
    m->pat = calloc((size_t)(n ? n : 1), sizeof *m->pat);
    m->pat_len = calloc((size_t)(n ? n : 1), sizeof *m->pat_len);
    m->tok = calloc((size_t)(n ? n : 1), sizeof *m->tok);
    m->idx = calloc((size_t)(n ? n : 1), sizeof *m->idx);
    if (!m->pat || !m->pat_len || !m->tok || !m->idx) return -1;
    int k = 0;
    for (int i = 0; i < t->n_added; i++) {
        const tok_added *a = &t->added[i];
        if ((int)a->normalized != normalized || a->len == 0) continue;
        /* normalized tokens are matched by their normalized form */
        tok_text cur = {0};
        const char *s = a->content;
        size_t len = (size_t)a->len;
        for (int f = 0; normalized && f < t->n_nf; f++) {
            tok_text nx = {0};
            if (tok_normalize(t->nf[f], s, len, NULL, 0, &nx)) { tok_text_free(&cur); return -1; }
            tok_text_free(&cur);
            cur = nx;
            s = cur.s;
            len = cur.len;
        }
        m->pat[k] = malloc(len + 1);
        if (!m->pat[k]) { tok_text_free(&cur); return -1; }
        memcpy(m->pat[k], s, len);
        m->pat[k][len] = 0;
        m->pat_len[k] = (int)len;
        m->tok[k] = i;
        tok_text_free(&cur);
        if (len == 0) { m->pat_len[k] = 0; }
        k++;
    }
    /* group by first byte, longest first */
    int cnt[257] = {0};
    for (int i = 0; i < n; i++)
        if (m->pat_len[i] > 0) cnt[(unsigned char)m->pat[i][0] + 1]++;
    for (int b = 0; b < 256; b++) cnt[b + 1] += cnt[b];
    memcpy(m->start, cnt, sizeof m->start);
    int fill[256];
    for (int b = 0; b < 256; b++) fill[b] = cnt[b];
    for (int i = 0; i < n; i++)
        if (m->pat_len[i] > 0) m->idx[fill[(unsigned char)m->pat[i][0]]++] = i;
    for (int b = 0; b < 256; b++) {
        int a0 = m->start[b], a1 = m->start[b + 1];
        for (int x = a0 + 1; x < a1; x++)
            for (int y = x; y > a0 && m->pat_len[m->idx[y - 1]] < m->pat_len[m->idx[y]]; y--) {
                int tt = m->idx[y]; m->idx[y] = m->idx[y - 1]; m->idx[y - 1] = tt;
            }
        m->first[b] = a1 > a0;
    }
    return 0;
}

void tok_matcher_free(tok_matcher *m)
{
    for (int i = 0; i < m->n && m->pat; i++) free(m->pat[i]);
    free(m->pat);
    free(m->pat_len);
    free(m->tok);
    free(m->idx);
    memset(m, 0, sizeof *m);
}

static int utf8_last_cp(const char *s, size_t n, uint32_t *cp)
{
    if (!n) return 0;
    size_t i = n - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    tok_utf8_dec((const unsigned char *)s + i, cp);
    return 1;
}

/* A split of a segment: [s, e) and an added-token id (or -1). */
typedef struct tok_split { int32_t s, e, id; } tok_split;

static int push_split(tok_state *st, size_t *n, int32_t s, int32_t e, int32_t id)
{
    if (*n == st->splits_cap) {
        size_t nc = st->splits_cap ? st->splits_cap * 2 : 32;
        tok_split *ns = realloc(st->splits, nc * sizeof *ns);
        if (!ns) return -1;
        st->splits = ns;
        st->splits_cap = nc;
    }
    tok_split *x = (tok_split *)st->splits + (*n)++;
    x->s = s;
    x->e = e;
    x->id = id;
    return 0;
}

/* HF AddedVocabulary::find_matches. Appends splits of s[0..n) to st->splits
 * starting at index *ns (offsets relative to s). */
static int find_added(const clens_tokenizer *t, const tok_matcher *m, tok_state *st,
                      const char *s, size_t n, size_t *ns)
{
    if (n == 0) return push_split(st, ns, 0, 0, -1);
    size_t start_offset = 0, i = 0;
    const unsigned char *u = (const unsigned char *)s;
    while (i < n) {
        if (!m->first[u[i]]) { i++; continue; }
        int best = -1;
        for (int g = m->start[u[i]]; g < m->start[u[i] + 1]; g++) {
            int k = m->idx[g];
            size_t pl = (size_t)m->pat_len[k];
            if (pl <= n - i && memcmp(s + i, m->pat[k], pl) == 0) { best = k; break; }
        }
        if (best < 0) { i++; continue; }
        size_t start = i, stop = i + (size_t)m->pat_len[best];
        i = stop; /* the matcher continues after the raw match */
        const tok_added *a = &t->added[m->tok[best]];
        if (a->single_word) {
            uint32_t c;
            int start_space = start == 0 || !(utf8_last_cp(s, start, &c) && tok_is_word_char(c));
            int stop_space = stop == n;
            if (!stop_space) { tok_utf8_dec(u + stop, &c); stop_space = !tok_is_word_char(c); }
            if (!start_space || !stop_space) continue;
        }
        if (a->lstrip) {
            size_t ns2 = start;
            uint32_t c;
            while (ns2 > 0 && utf8_last_cp(s, ns2, &c) && tok_is_white_space(c)) {
                size_t k = ns2 - 1;
                while (k > 0 && (u[k] & 0xC0) == 0x80) k--;
                ns2 = k;
            }
            start = ns2 > start_offset ? ns2 : start_offset;
        }
        if (a->rstrip) {
            uint32_t c;
            while (stop < n) {
                int l = tok_utf8_dec(u + stop, &c);
                if (!tok_is_white_space(c)) break;
                stop += (size_t)l;
            }
        }
        if (start_offset < start && push_split(st, ns, (int32_t)start_offset, (int32_t)start, -1)) return -1;
        if (push_split(st, ns, (int32_t)start, (int32_t)stop, a->id)) return -1;
        start_offset = stop;
    }
    if (start_offset != n && push_split(st, ns, (int32_t)start_offset, (int32_t)n, -1)) return -1;
    return 0;
}

/* ---------------------------------------------------------------- output */

typedef struct enc_out {
    int32_t *ids;
    size_t n, cap;
    size_t *offs;      /* 2 per token, or NULL */
    int want_offs;
    int want_toks;     /* record token strings of added tokens (HF Encoding.tokens) */
    int64_t *tok_off;  /* per token: offset into tarena, or -1 for the vocabulary string */
    int32_t *tok_len;
    char *tarena;
    size_t tlen, tcap;
    int oom;
} enc_out;

static void enc_out_free(enc_out *o)
{
    free(o->ids);
    free(o->offs);
    free(o->tok_off);
    free(o->tok_len);
    free(o->tarena);
    memset(o, 0, sizeof *o);
}

/* Appends a token; str (len slen) is its string when it is not the
 * vocabulary's (added tokens: the matched text), else NULL. */
static int emit_str(enc_out *o, int32_t id, size_t s, size_t e, const char *str, size_t slen)
{
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 64;
        int32_t *ni = realloc(o->ids, nc * sizeof *ni);
        if (!ni) return o->oom = -1;
        o->ids = ni;
        if (o->want_offs) {
            size_t *no = realloc(o->offs, 2 * nc * sizeof *no);
            if (!no) return o->oom = -1;
            o->offs = no;
        }
        if (o->want_toks) {
            int64_t *nt = realloc(o->tok_off, nc * sizeof *nt);
            if (!nt) return o->oom = -1;
            o->tok_off = nt;
            int32_t *nl = realloc(o->tok_len, nc * sizeof *nl);
            if (!nl) return o->oom = -1;
            o->tok_len = nl;
        }
        o->cap = nc;
    }
    o->ids[o->n] = id;
    if (o->want_offs) {
        o->offs[2 * o->n] = s;
        o->offs[2 * o->n + 1] = e;
    }
    if (o->want_toks) {
        o->tok_off[o->n] = -1;
        o->tok_len[o->n] = 0;
        if (str) {
            if (o->tlen + slen > o->tcap) {
                size_t nc = (o->tcap + slen) * 2 + 64;
                char *na = realloc(o->tarena, nc);
                if (!na) return o->oom = -1;
                o->tarena = na;
                o->tcap = nc;
            }
            memcpy(o->tarena + o->tlen, str, slen);
            o->tok_off[o->n] = (int64_t)o->tlen;
            o->tok_len[o->n] = (int32_t)slen;
            o->tlen += slen;
        }
    }
    o->n++;
    return 0;
}

static int emit(enc_out *o, int32_t id, size_t s, size_t e)
{
    return emit_str(o, id, s, e, NULL, 0);
}

/* ------------------------------------------------------------- segments */

/* The normalized view of a segment: bytes s[0..n); al (2 per byte) or NULL
 * for identity, in which case byte i is text[base + i]. */
typedef struct seg_view {
    const char *text;   /* whole input (for identity offsets) */
    size_t text_len;
    size_t base;
    const char *s;
    size_t n;
    const int32_t *al;
} seg_view;

static size_t char_start(const seg_view *v, size_t nb)
{
    if (v->al) return (size_t)v->al[2 * nb];
    size_t p = v->base + nb;
    while (p > 0 && ((unsigned char)v->text[p] & 0xC0) == 0x80) p--;
    return p;
}

static size_t char_end(const seg_view *v, size_t nb)
{
    if (v->al) return (size_t)v->al[2 * nb + 1];
    size_t p = v->base + nb + 1;
    while (p < v->text_len && ((unsigned char)v->text[p] & 0xC0) == 0x80) p++;
    return p;
}

/* pieces */
static int piece_push(tok_piece **arr, size_t *cap, size_t *n, int32_t a, int32_t b, int32_t ps)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        tok_piece *np = realloc(*arr, nc * sizeof *np);
        if (!np) return -1;
        *arr = np;
        *cap = nc;
    }
    (*arr)[*n].a = a;
    (*arr)[*n].b = b;
    (*arr)[*n].pre_space = ps;
    (*n)++;
    return 0;
}

typedef struct split_ctx {
    tok_state *st;
    size_t *n_out;
    int32_t base;          /* normalized offset of the piece (or of its temp copy) */
    int pre_space;         /* the subject starts with a virtual space (ByteLevel regex) */
    /* pending (offsets, is_match) list for the behaviours */
    struct { int32_t s, e; int m; } *ev;
    size_t nev, evcap;
    int invert;
} split_ctx;

static int on_match(void *user, size_t s, size_t e)
{
    split_ctx *c = user;
    size_t prev = c->nev ? (size_t)c->ev[c->nev - 1].e : 0;
    for (int k = 0; k < 2; k++) {
        if (c->nev + 2 > c->evcap) {
            size_t nc = c->evcap ? c->evcap * 2 : 64;
            void *ne = realloc(c->ev, nc * sizeof *c->ev);
            if (!ne) return -1;
            c->ev = ne;
            c->evcap = nc;
        }
    }
    if (prev != s) {
        c->ev[c->nev].s = (int32_t)prev;
        c->ev[c->nev].e = (int32_t)s;
        c->ev[c->nev++].m = 0;
    }
    c->ev[c->nev].s = (int32_t)s;
    c->ev[c->nev].e = (int32_t)e;
    c->ev[c->nev++].m = 1;
    return 0;
}

/* Emits a split [s,e) of the subject as a piece. */
static int out_piece(split_ctx *c, int32_t s, int32_t e)
{
    if (e <= s) return 0; /* empty splits are dropped */
    tok_state *st = c->st;
    if (c->pre_space) {
        int ps = s == 0;
        int32_t a = c->base + (s == 0 ? 0 : s - 1), b = c->base + e - 1;
        return piece_push(&st->pieces2, &st->n_pieces2_cap, c->n_out, a, b, ps);
    }
    return piece_push(&st->pieces2, &st->n_pieces2_cap, c->n_out, c->base + s, c->base + e, 0);
}

/* NormalizedString::split with Pattern::find_matches output in c->ev. */
static int apply_behavior(split_ctx *c, tok_split_behavior beh, size_t subject_len)
{
    /* complete the list: trailing non-match; empty subject -> one non-match */
    size_t prev = c->nev ? (size_t)c->ev[c->nev - 1].e : 0;
    if (subject_len == 0) {
        if (c->nev + 1 > c->evcap) {
            void *ne = realloc(c->ev, (c->evcap + 8) * sizeof *c->ev);
            if (!ne) return -1;
            c->ev = ne;
            c->evcap += 8;
        }
        c->ev[c->nev].s = 0; c->ev[c->nev].e = 0; c->ev[c->nev++].m = 0;
    } else if (prev != subject_len) {
        if (c->nev + 1 > c->evcap) {
            void *ne = realloc(c->ev, (c->evcap + 8) * sizeof *c->ev);
            if (!ne) return -1;
            c->ev = ne;
            c->evcap += 8;
        }
        c->ev[c->nev].s = (int32_t)prev; c->ev[c->nev].e = (int32_t)subject_len; c->ev[c->nev++].m = 0;
    }
    if (c->invert)
        for (size_t i = 0; i < c->nev; i++) c->ev[i].m = !c->ev[i].m;
    switch (beh) {
    case TOK_SPLIT_ISOLATED:
        for (size_t i = 0; i < c->nev; i++)
            if (out_piece(c, c->ev[i].s, c->ev[i].e)) return -1;
        return 0;
    case TOK_SPLIT_REMOVED:
        for (size_t i = 0; i < c->nev; i++)
            if (!c->ev[i].m && out_piece(c, c->ev[i].s, c->ev[i].e)) return -1;
        return 0;
    case TOK_SPLIT_CONTIGUOUS: {
        int prev_m = 0, have = 0;
        int32_t s = 0, e = 0;
        for (size_t i = 0; i < c->nev; i++) {
            if (c->ev[i].m == prev_m && have) e = c->ev[i].e;
            else if (c->ev[i].m == prev_m && !have) { s = c->ev[i].s; e = c->ev[i].e; have = 1; }
            else {
                if (have && out_piece(c, s, e)) return -1;
                s = c->ev[i].s; e = c->ev[i].e; have = 1;
            }
            prev_m = c->ev[i].m;
        }
        if (have && out_piece(c, s, e)) return -1;
        return 0;
    }
    case TOK_SPLIT_MERGED_PREV: {
        int prev_m = 0, have = 0;
        int32_t s = 0, e = 0;
        for (size_t i = 0; i < c->nev; i++) {
            if (c->ev[i].m && !prev_m) {
                if (have) e = c->ev[i].e;
                else { s = c->ev[i].s; e = c->ev[i].e; have = 1; }
            } else {
                if (have && out_piece(c, s, e)) return -1;
                s = c->ev[i].s; e = c->ev[i].e; have = 1;
            }
            prev_m = c->ev[i].m;
        }
        if (have && out_piece(c, s, e)) return -1;
        return 0;
    }
    case TOK_SPLIT_MERGED_NEXT: {
        /* walk backwards, then emit in forward order */
        size_t m = c->nev;
        struct { int32_t s, e; } *acc = malloc((m ? m : 1) * sizeof *acc);
        if (!acc) return -1;
        size_t na = 0;
        int prev_m = 0;
        for (size_t k = m; k-- > 0;) {
            if (c->ev[k].m && !prev_m && na) acc[na - 1].s = c->ev[k].s;
            else if (c->ev[k].m && !prev_m) { acc[na].s = c->ev[k].s; acc[na++].e = c->ev[k].e; }
            else { acc[na].s = c->ev[k].s; acc[na++].e = c->ev[k].e; }
            prev_m = c->ev[k].m;
        }
        int rc = 0;
        for (size_t k = na; k-- > 0 && !rc;) rc = out_piece(c, acc[k].s, acc[k].e);
        free(acc);
        return rc;
    }
    }
    return 0;
}

/* Runs one regex step over every current piece. */
static int split_step(const clens_tokenizer *t, tok_state *st, const tok_pre *p, const seg_view *v,
                      size_t *np, int is_bytelevel, clens_error *err)
{
    size_t n_out = 0;
    split_ctx c = {0};
    c.st = st;
    c.n_out = &n_out;
    int rc = 0;
    for (size_t i = 0; i < *np && !rc; i++) {
        tok_piece pc = st->pieces[i];
        const char *subj = v->s + pc.a;
        size_t len = (size_t)(pc.b - pc.a);
        c.nev = 0;
        c.base = pc.a;
        c.pre_space = 0;
        c.invert = is_bytelevel ? 0 : p->invert;
        if (pc.pre_space) {
            if (st->tmp_cap < len + 2) {
                size_t nc = 2 * len + 16;
                char *nt = realloc(st->tmp, nc);
                if (!nt) { rc = -1; break; }
                st->tmp = nt;
                st->tmp_cap = nc;
            }
            st->tmp[0] = ' ';
            memcpy(st->tmp + 1, subj, len);
            subj = st->tmp;
            len += 1;
            c.pre_space = 1;
        }
        rc = tok_regex_find_all(p->re, st, subj, len, on_match, &c, err);
        if (rc > 0 && err && t->path) { /* name the tokenizer whose pre-tokenizer regex failed */
            char m[sizeof err->msg];
            snprintf(m, sizeof m, "%s", err->msg);
            clens_err(err, rc, "%s: %s", t->path, m);
        }
        if (!rc) rc = apply_behavior(&c, is_bytelevel ? TOK_SPLIT_ISOLATED : p->behavior, len);
    }
    free(c.ev);
    (void)t;
    if (rc) return rc;
    tok_piece *tp = st->pieces;
    st->pieces = st->pieces2;
    st->pieces2 = tp;
    size_t tc = st->n_pieces_cap;
    st->n_pieces_cap = st->n_pieces2_cap;
    st->n_pieces2_cap = tc;
    *np = n_out;
    return 0;
}

/* Pre-tokenizes and tokenizes the normalized range [a, b) of v. */
static int encode_normalized(const clens_tokenizer *t, tok_state *st, const seg_view *v, int32_t a, int32_t b,
                             enc_out *o, clens_error *err)
{
    size_t np = 0;
    if (b <= a) return 0;
    if (piece_push(&st->pieces, &st->n_pieces_cap, &np, a, b, 0)) return -1;
    for (int k = 0; k < t->n_pre; k++) {
        const tok_pre *p = &t->pre[k];
        if (p->type == TOK_PRE_SPLIT) {
            if (split_step(t, st, p, v, &np, 0, err)) return -1;
        } else {
            if (p->add_prefix_space)
                for (size_t i = 0; i < np; i++)
                    if (!st->pieces[i].pre_space && v->s[st->pieces[i].a] != ' ') st->pieces[i].pre_space = 1;
            if (p->use_regex && split_step(t, st, p, v, &np, 1, err)) return -1;
        }
    }
    for (size_t i = 0; i < np; i++) {
        tok_piece pc = st->pieces[i];
        int nt = tok_bpe_word(t, st, v->s + pc.a, (size_t)(pc.b - pc.a), pc.pre_space);
        if (nt < 0) return -1;
        int32_t u = 0;
        for (int k = 0; k < nt; k++) {
            int32_t id = st->wout[2 * k], ul = st->wout[2 * k + 1];
            size_t s = 0, e = 0;
            if (o->want_offs) {
                /* unit -> normalized byte */
                int32_t u0 = u, u1 = u + ul - 1;
                if (ul <= 0) u1 = u0;
                int32_t b0 = pc.pre_space ? (u0 == 0 ? pc.a : pc.a + u0 - 1) : pc.a + u0;
                int32_t b1 = pc.pre_space ? (u1 == 0 ? pc.a : pc.a + u1 - 1) : pc.a + u1;
                if (pc.b == pc.a) { b0 = b1 = pc.a; }
                if (b0 >= (int32_t)v->n) b0 = (int32_t)v->n - 1;
                if (b1 >= (int32_t)v->n) b1 = (int32_t)v->n - 1;
                if (b0 < 0 || b1 < 0) { s = e = v->base; }
                else { s = char_start(v, (size_t)b0); e = char_end(v, (size_t)b1); }
                if (ul <= 0) e = s;
            }
            if (emit(o, id, s, e)) return -1;
            u += ul;
        }
    }
    return 0;
}

/* One segment of the raw text (between added tokens): original [s, e). */
static int encode_segment(const clens_tokenizer *t, tok_state *st, const char *text, size_t text_len,
                          size_t s, size_t e, enc_out *o, clens_error *err)
{
    seg_view v = {text, text_len, s, text + s, e - s, NULL};
    /* 1. normalizers */
    int cur = 0; /* 0: identity view, 1: st->norm, 2: st->norm2 */
    for (int f = 0; f < t->n_nf; f++) {
        if (!tok_nf_maybe(t->nf[f], v.s, v.n)) continue;
        tok_text *dst = cur == 1 ? &st->norm2 : &st->norm;
        if (tok_normalize(t->nf[f], v.s, v.n, v.al, (int32_t)s, dst)) return -1;
        v.s = dst->s;
        v.n = dst->len;
        v.al = dst->al;
        cur = cur == 1 ? 2 : 1;
    }
    /* 2. normalized added tokens */
    if (t->m_norm.n > 0) {
        size_t first = st->n_splits_used, ns = first;
        if (find_added(t, &t->m_norm, st, v.s, v.n, &ns)) return -1;
        st->n_splits_used = ns;
        int rc = 0;
        for (size_t i = first; i < ns && !rc; i++) {
            tok_split sp = ((tok_split *)st->splits)[i];
            if (sp.id >= 0) {
                size_t os = 0, oe = 0;
                if (o->want_offs && sp.e > sp.s) { os = char_start(&v, (size_t)sp.s); oe = char_end(&v, (size_t)sp.e - 1); }
                rc = emit_str(o, sp.id, os, oe, v.s + sp.s, (size_t)(sp.e - sp.s));
            } else {
                rc = encode_normalized(t, st, &v, sp.s, sp.e, o, err);
            }
        }
        st->n_splits_used = first;
        return rc;
    }
    return encode_normalized(t, st, &v, 0, (int32_t)v.n, o, err);
}

/* ByteLevel post-processor offset trimming (processors byte_level.rs
 * process_offsets). */
static void trim_offsets(const clens_tokenizer *t, enc_out *o)
{
    for (size_t i = 0; i < o->n; i++) {
        int32_t id = o->ids[i];
        if (id < 0 || id >= t->n_ids || !t->id_str[id]) continue;
        const unsigned char *s = (const unsigned char *)t->id_str[id];
        size_t n = (size_t)t->id_len[id], lead = 0, trail = 0, p = 0;
        uint32_t c;
        while (p < n) {
            int l = tok_utf8_dec(s + p, &c);
            if (c != 0x120 && !tok_is_white_space(c)) break;
            lead++;
            p += (size_t)l;
        }
        size_t q = n;
        while (q > 0) {
            size_t k = q - 1;
            while (k > 0 && (s[k] & 0xC0) == 0x80) k--;
            tok_utf8_dec(s + k, &c);
            if (c != 0x120 && !tok_is_white_space(c)) break;
            trail++;
            q = k;
        }
        size_t *of = o->offs + 2 * i;
        if (lead > 0) {
            int is_first = i == 0 || of[0] == 0;
            if (is_first && t->post.trim_add_prefix_space && lead == 1) lead = 0;
            of[0] = of[0] + lead < of[1] ? of[0] + lead : of[1];
        }
        if (trail > 0 && of[1] >= trail) of[1] = of[1] - trail > of[0] ? of[1] - trail : of[0];
    }
}

static int encode_text(clens_tokenizer *t, tok_state *st, const char *text, size_t len, int add_special,
                       enc_out *o, clens_error *err)
{
    size_t ns = 0;
    st->n_splits_used = 0;
    if (t->m_raw.n > 0) {
        if (find_added(t, &t->m_raw, st, text, len, &ns)) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    } else {
        if (push_split(st, &ns, 0, (int32_t)len, -1)) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    }
    st->n_splits_used = ns;
    for (size_t i = 0; i < ns; i++) {
        tok_split sp = ((tok_split *)st->splits)[i];
        int rc;
        if (sp.id >= 0) rc = emit_str(o, sp.id, (size_t)sp.s, (size_t)sp.e, text + sp.s, (size_t)(sp.e - sp.s));
        else rc = encode_segment(t, st, text, len, (size_t)sp.s, (size_t)sp.e, o, err);
        if (rc) {
            if (err && err->code) return err->code;
            return clens_err(err, CLENS_E_NOMEM, "out of memory");
        }
    }
    if (o->want_offs && t->post.trim_offsets) trim_offsets(t, o);
    if (add_special && t->post.has_template) {
        /* rebuild: template items around the sequence */
        enc_out r = {0};
        r.want_offs = o->want_offs;
        r.want_toks = o->want_toks;
        for (int k = 0; k < t->post.n_items; k++) {
            const tok_tpl_item *it = &t->post.items[k];
            if (it->is_seq) {
                for (size_t i = 0; i < o->n; i++) {
                    const char *ts = o->want_toks && o->tok_off[i] >= 0 ? o->tarena + o->tok_off[i] : NULL;
                    emit_str(&r, o->ids[i], o->want_offs ? o->offs[2 * i] : 0, o->want_offs ? o->offs[2 * i + 1] : 0,
                             ts, ts ? (size_t)o->tok_len[i] : 0);
                }
            } else {
                for (int i = 0; i < it->n_ids; i++) emit(&r, it->ids[i], 0, 0);
            }
        }
        if (r.oom) {
            enc_out_free(&r);
            return clens_err(err, CLENS_E_NOMEM, "out of memory");
        }
        enc_out_free(o);
        *o = r;
    }
    return 0;
}

/* ------------------------------------------------------------ public API */

size_t clens_utf8_check(const char *s, size_t n)
{
    return tok_utf8_valid_prefix(s, n);
}

int clens_utf8_lossy(const char *s, size_t n, char **out, size_t *out_len)
{
    return tok_utf8_lossy(s, n, out, out_len) ? CLENS_E_NOMEM : CLENS_OK;
}

static int check_text(const char *text, size_t len, clens_error *err)
{
    if (len > (size_t)INT32_MAX - 16)
        return clens_err(err, CLENS_E_ARG, "text of %zu bytes is too long (limit 2 GiB)", len);
    size_t bad = tok_utf8_valid_prefix(text, len);
    if (bad != len)
        return clens_err(err, CLENS_E_ARG, "invalid UTF-8 at byte offset %zu (byte 0x%02X)", bad,
                         (unsigned char)text[bad]);
    return 0;
}

static int tokenize_common(const clens_tokenizer *tok, const char *text, size_t len, int add_special,
                           enc_out *o, clens_error *err)
{
    clens_tokenizer *t = (clens_tokenizer *)tok; /* only the state pool is touched */
    int rc = check_text(text ? text : "", text ? len : 0, err);
    if (rc) return rc;
    tok_state *st = tok_state_get(t);
    if (!st) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    rc = encode_text(t, st, text ? text : "", text ? len : 0, add_special, o, err);
    tok_state_put(t, st);
    if (!rc && o->oom) rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
    if (!rc && !o->ids && !(o->ids = malloc(sizeof(int32_t)))) rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
    if (!rc && o->want_offs && !o->offs && !(o->offs = malloc(2 * sizeof(size_t))))
        rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
    if (rc) enc_out_free(o);
    return rc;
}

int clens_tokenize(const clens_tokenizer *tok, const char *text, size_t len, int add_special,
                   int32_t **ids, int *n, size_t **offsets, clens_error *err)
{
    *ids = NULL;
    *n = 0;
    if (offsets) *offsets = NULL;
    enc_out o = {0};
    o.want_offs = offsets != NULL;
    int rc = tokenize_common(tok, text, len, add_special, &o, err);
    if (rc) return rc;
    *ids = o.ids;
    *n = (int)o.n;
    if (offsets) *offsets = o.offs;
    else free(o.offs);
    return CLENS_OK;
}

int clens_tokenize_full(const clens_tokenizer *tok, const char *text, size_t len, int add_special,
                        clens_encoding *out, clens_error *err)
{
    memset(out, 0, sizeof *out);
    enc_out o = {0};
    o.want_offs = 1;
    o.want_toks = 1;
    int rc = tokenize_common(tok, text, len, add_special, &o, err);
    if (rc) return rc;
    size_t bytes = 0;
    for (size_t i = 0; i < o.n; i++) {
        if (o.tok_off[i] >= 0) bytes += (size_t)o.tok_len[i] + 1;
        else {
            const char *v = clens_tokenizer_id_to_token(tok, o.ids[i]);
            bytes += (v ? strlen(v) : 0) + 1;
        }
    }
    char **tk = malloc((o.n ? o.n : 1) * sizeof(char *) + bytes + 1);
    if (!tk) {
        enc_out_free(&o);
        return clens_err(err, CLENS_E_NOMEM, "out of memory");
    }
    char *p = (char *)(tk + (o.n ? o.n : 1));
    for (size_t i = 0; i < o.n; i++) {
        const char *src;
        size_t l;
        if (o.tok_off[i] >= 0) { src = o.tarena + o.tok_off[i]; l = (size_t)o.tok_len[i]; }
        else { src = clens_tokenizer_id_to_token(tok, o.ids[i]); l = src ? strlen(src) : 0; }
        tk[i] = p;
        if (l) memcpy(p, src, l);
        p[l] = 0;
        p += l + 1;
    }
    out->ids = o.ids;
    out->offsets = o.offs;
    out->tokens = tk;
    out->n = (int)o.n;
    free(o.tok_off);
    free(o.tok_len);
    free(o.tarena);
    return CLENS_OK;
}

void clens_encoding_free(clens_encoding *e)
{
    if (!e) return;
    free(e->ids);
    free(e->offsets);
    free(e->tokens);
    memset(e, 0, sizeof *e);
}

int clens_tokenize_batch(const clens_tokenizer *tok, const char *const *texts, const size_t *lens, int n_texts,
                         int add_special, int n_threads, int32_t **ids, int *n, clens_error *err)
{
    clens_tokenizer *t = (clens_tokenizer *)tok;
    for (int i = 0; i < n_texts; i++) { ids[i] = NULL; n[i] = 0; }
    for (int i = 0; i < n_texts; i++) {
        clens_error e2 = {0};
        if (check_text(texts[i] ? texts[i] : "", texts[i] ? lens[i] : 0, &e2))
            return clens_err(err, CLENS_E_ARG, "text %d: %s", i, e2.msg);
    }
    if (n_threads <= 0) n_threads = omp_get_max_threads();
    if (n_threads > n_texts) n_threads = n_texts > 0 ? n_texts : 1;
    int fail_idx = -1;
    clens_error first = {0};
#pragma omp parallel num_threads(n_threads)
    {
        tok_state *st = tok_state_get(t);
#pragma omp for schedule(dynamic, 8)
        for (int i = 0; i < n_texts; i++) {
            enc_out o = {0};
            clens_error e2 = {0};
            int rc = st ? encode_text(t, st, texts[i] ? texts[i] : "", texts[i] ? lens[i] : 0, add_special, &o, &e2)
                        : clens_err(&e2, CLENS_E_NOMEM, "out of memory");
            if (!rc && o.oom) rc = clens_err(&e2, CLENS_E_NOMEM, "out of memory");
            if (!rc && !o.ids && !(o.ids = malloc(sizeof(int32_t)))) rc = clens_err(&e2, CLENS_E_NOMEM, "out of memory");
            if (rc) {
                enc_out_free(&o);
#pragma omp critical(clens_tok_batch_err)
                if (fail_idx < 0 || i < fail_idx) { fail_idx = i; first = e2; }
            }
            free(o.offs);
            ids[i] = o.ids;
            n[i] = (int)o.n;
        }
        tok_state_put(t, st);
    }
    if (fail_idx >= 0) {
        for (int i = 0; i < n_texts; i++) { free(ids[i]); ids[i] = NULL; n[i] = 0; }
        return clens_err(err, first.code ? first.code : CLENS_E_NOMEM, "text %d: %s", fail_idx, first.msg);
    }
    return CLENS_OK;
}
