/*
 * tok_unicode.c: UTF-8 validation and replacement decoding, White_Space and
 * word-character classes, and Unicode normalization with alignment tracking.
 *
 * Normalization follows UAX #15 (full decomposition, canonical ordering by
 * stable sort of non-starter runs, canonical composition), with the data of
 * Unicode 9.0.0 because that is what the reference (HF tokenizers 0.22 through
 * the crate unicode-normalization-alignments 0.1.12) uses. The alignment
 * rules (tags) are the reference's; they decide the offsets of tokens that
 * come out of normalized text. Tables: tok_unicode_tables.c (generated).
 */
#include "tokenizer/tok_unicode.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ------------------------------------------------------------------ UTF-8 */

/* Length of the well-formed sequence starting at s[i], or 0 if ill-formed;
 * *sub gets the length of the maximal subpart to replace when ill-formed. */
static int utf8_seq(const unsigned char *s, size_t i, size_t n, size_t *sub)
{
    unsigned c = s[i];
    int need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        *sub = 1;
        return 0;
    }
    size_t j = i + 1;
    for (int k = 0; k < need; k++, j++) {
        if (j >= n || s[j] < lo || s[j] > hi) {
            *sub = j - i;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

size_t tok_utf8_valid_prefix(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        /* fast ASCII run */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ULL) break;
            i += 8;
        }
        if (i >= n) break;
        if (s[i] < 0x80) { i++; continue; }
        size_t sub;
        int l = utf8_seq(s, i, n, &sub);
        if (!l) return i;
        i += (size_t)l;
    }
    return n;
}

size_t tok_utf8_lossy_into(const unsigned char *s, size_t n, char *buf)
{
    size_t i = 0, o = 0;
    while (i < n) {
        if (s[i] < 0x80) { buf[o++] = (char)s[i++]; continue; }
        size_t sub;
        int l = utf8_seq(s, i, n, &sub);
        if (l) {
            memcpy(buf + o, s + i, (size_t)l);
            o += (size_t)l;
            i += (size_t)l;
        } else {
            buf[o++] = (char)0xEF; buf[o++] = (char)0xBF; buf[o++] = (char)0xBD;
            i += sub;
        }
    }
    return o;
}

int tok_utf8_lossy(const char *s, size_t n, char **out, size_t *out_len)
{
    char *b = malloc(3 * n + 1);
    if (!b) return -1;
    size_t o = tok_utf8_lossy_into((const unsigned char *)s, n, b);
    b[o] = 0;
    *out = b;
    *out_len = o;
    return 0;
}

/* ------------------------------------------------------- character classes */

int tok_is_white_space(uint32_t c)
{
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

int tok_is_word_char(uint32_t c)
{
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (c == 0x200C || c == 0x200D) return 1;                 /* Join_Control */
    if ((c >= 0x24B6 && c <= 0x24E9) || (c >= 0x1F130 && c <= 0x1F149) ||
        (c >= 0x1F150 && c <= 0x1F169) || (c >= 0x1F170 && c <= 0x1F189))
        return 1;                                             /* Other_Alphabetic So */
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_PC:
        return 1;
    default:
        return 0;
    }
}

/* ------------------------------------------------------------ normalization */

static int ccc_of(uint32_t c)
{
    if (c < 0x300) return 0;
    int lo = 0, hi = tok_n_ccc_ranges - 1;
    while (lo <= hi) {
        int m = (lo + hi) / 2;
        if (c < tok_ccc_ranges[m].lo) hi = m - 1;
        else if (c > tok_ccc_ranges[m].hi) lo = m + 1;
        else return tok_ccc_ranges[m].ccc;
    }
    return 0;
}

static int in_ranges(const uint32_t (*r)[2], int n, uint32_t c)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int m = (lo + hi) / 2;
        if (c < r[m][0]) hi = m - 1;
        else if (c > r[m][1]) lo = m + 1;
        else return 1;
    }
    return 0;
}

int tok_nf_maybe(tok_nf f, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    const uint32_t (*r)[2];
    int nr;
    switch (f) {
    case TOK_NF_NFC: r = tok_maybe_nfc; nr = tok_n_maybe_nfc; break;
    case TOK_NF_NFD: r = tok_maybe_nfd; nr = tok_n_maybe_nfd; break;
    case TOK_NF_NFKC: r = tok_maybe_nfkc; nr = tok_n_maybe_nfkc; break;
    default: r = tok_maybe_nfkd; nr = tok_n_maybe_nfkd; break;
    }
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) { i++; continue; }
        uint32_t c;
        i += (size_t)tok_utf8_dec(s + i, &c);
        if (c >= r[0][0] && in_ranges(r, nr, c)) return 1;
    }
    return 0;
}

static const tok_decomp *find_decomp(const tok_decomp *t, int n, uint32_t c)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int m = (lo + hi) / 2;
        if (c < t[m].cp) hi = m - 1;
        else if (c > t[m].cp) lo = m + 1;
        else return &t[m];
    }
    return NULL;
}

#define HANGUL_S 0xAC00u
#define HANGUL_L 0x1100u
#define HANGUL_V 0x1161u
#define HANGUL_T 0x11A7u
#define HANGUL_NS 11172u

static uint32_t compose(uint32_t a, uint32_t b)
{
    if (a >= HANGUL_L && a < HANGUL_L + 19 && b >= HANGUL_V && b < HANGUL_V + 21)
        return HANGUL_S + ((a - HANGUL_L) * 21 + (b - HANGUL_V)) * 28;
    if (a >= HANGUL_S && a < HANGUL_S + HANGUL_NS && (a - HANGUL_S) % 28 == 0 &&
        b > HANGUL_T && b < HANGUL_T + 28)
        return a + (b - HANGUL_T);
    uint64_t key = ((uint64_t)a << 21) | b;
    int lo = 0, hi = tok_n_comp_pairs - 1;
    while (lo <= hi) {
        int m = (lo + hi) / 2;
        if (key < tok_comp_pairs[m].key) hi = m - 1;
        else if (key > tok_comp_pairs[m].key) lo = m + 1;
        else return tok_comp_pairs[m].c;
    }
    return 0;
}

typedef struct { uint32_t c; int32_t tag; int ccc; } nf_item;

typedef struct { nf_item *v; size_t n, cap; } nf_vec;

static int nf_push(nf_vec *v, uint32_t c, int32_t tag)
{
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 64;
        nf_item *nv = realloc(v->v, nc * sizeof *nv);
        if (!nv) return -1;
        v->v = nv;
        v->cap = nc;
    }
    v->v[v->n].c = c;
    v->v[v->n].tag = tag;
    v->v[v->n].ccc = ccc_of(c);
    v->n++;
    return 0;
}

static int text_reserve(tok_text *t, size_t len)
{
    if (len + 1 > t->cap) {
        size_t nc = t->cap ? t->cap : 64;
        while (nc < len + 1) nc *= 2;
        char *ns = realloc(t->s, nc);
        if (!ns) return -1;
        t->s = ns;
        t->cap = nc;
    }
    if (2 * len > t->al_cap) {
        size_t nc = t->al_cap ? t->al_cap : 128;
        while (nc < 2 * len) nc *= 2;
        int32_t *na = realloc(t->al, nc * sizeof *na);
        if (!na) return -1;
        t->al = na;
        t->al_cap = nc;
    }
    return 0;
}

void tok_text_free(tok_text *t)
{
    free(t->s);
    free(t->al);
    memset(t, 0, sizeof *t);
}

int tok_normalize(tok_nf f, const char *in, size_t n, const int32_t *al_in, int32_t base,
                  tok_text *out)
{
    const unsigned char *s = (const unsigned char *)in;
    int compat = f == TOK_NF_NFKC || f == TOK_NF_NFKD;
    int recompose = f == TOK_NF_NFC || f == TOK_NF_NFKC;
    nf_vec d = {0};
    /* input character ranges, one per input char */
    int32_t *inr = malloc((2 * n + 2) * sizeof *inr);
    size_t nin = 0;
    int rc = -1;
    if (!inr) goto done;

    /* 1. full decomposition, tags 0 then +1 */
    for (size_t i = 0; i < n;) {
        uint32_t c;
        int l = tok_utf8_dec(s + i, &c);
        if (al_in) { inr[2 * nin] = al_in[2 * i]; inr[2 * nin + 1] = al_in[2 * i + 1]; }
        else { inr[2 * nin] = base + (int32_t)i; inr[2 * nin + 1] = base + (int32_t)(i + (size_t)l); }
        nin++;
        i += (size_t)l;
        if (c >= HANGUL_S && c < HANGUL_S + HANGUL_NS) {
            uint32_t si = c - HANGUL_S, t = HANGUL_T + si % 28;
            if (nf_push(&d, HANGUL_L + si / 588, 0) || nf_push(&d, HANGUL_V + (si % 588) / 28, 1)) goto done;
            if (t != HANGUL_T && nf_push(&d, t, 1)) goto done;
            continue;
        }
        const tok_decomp *dc = NULL;
        if (c >= 0xA0) {
            dc = compat ? find_decomp(tok_compat_decomp, tok_compat_decomp_n, c)
                        : find_decomp(tok_canon_decomp, tok_canon_decomp_n, c);
        }
        if (!dc) {
            if (nf_push(&d, c, 0)) goto done;
            continue;
        }
        const uint32_t *data = compat ? tok_compat_decomp_data : tok_canon_decomp_data;
        for (uint32_t k = 0; k < dc->len; k++)
            if (nf_push(&d, data[dc->off + k], k ? 1 : 0)) goto done;
    }

    /* 2. canonical ordering: stable sort of every run of non-starters */
    for (size_t i = 0; i < d.n;) {
        if (d.v[i].ccc == 0) { i++; continue; }
        size_t j = i;
        while (j < d.n && d.v[j].ccc != 0) j++;
        for (size_t a = i + 1; a < j; a++) {
            nf_item x = d.v[a];
            size_t b = a;
            while (b > i && d.v[b - 1].ccc > x.ccc) { d.v[b] = d.v[b - 1]; b--; }
            d.v[b] = x;
        }
        i = j;
    }

    /* 3. canonical composition (in place) */
    size_t no = d.n;
    if (recompose) {
        size_t w = 0;
        long starter = -1;
        int last = -1; /* ccc of the last char kept after the starter; -1 none */
        for (size_t i = 0; i < d.n; i++) {
            nf_item it = d.v[i];
            if (starter >= 0 && (last < 0 || last < it.ccc)) {
                uint32_t r = compose(d.v[starter].c, it.c);
                if (r) {
                    d.v[starter].c = r;
                    d.v[starter].tag = d.v[starter].tag + it.tag - 1;
                    continue;
                }
            }
            if (it.ccc == 0) { starter = (long)w; last = -1; }
            else if (starter >= 0) last = it.ccc;
            d.v[w++] = it;
        }
        no = w;
    }

    /* 4. output text and alignments, tags consumed positionally */
    size_t olen = 0;
    for (size_t i = 0; i < no; i++) {
        uint32_t c = d.v[i].c;
        olen += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    }
    if (text_reserve(out, olen)) goto done;
    size_t o = 0, idx = 0;
    for (size_t i = 0; i < no; i++) {
        int32_t a0, a1;
        int32_t tag = d.v[i].tag;
        if (tag > 0) {
            if (idx == 0) { a0 = a1 = base; }
            else { a0 = inr[2 * (idx - 1)]; a1 = inr[2 * (idx - 1) + 1]; }
        } else {
            size_t j = idx < nin ? idx : nin - 1;
            a0 = inr[2 * j];
            a1 = inr[2 * j + 1];
            idx += 1 + (size_t)(-tag);
        }
        int l = tok_utf8_enc(d.v[i].c, out->s + o);
        for (int k = 0; k < l; k++) { out->al[2 * (o + k)] = a0; out->al[2 * (o + k) + 1] = a1; }
        o += (size_t)l;
    }
    out->s[o] = 0;
    out->len = o;
    rc = 0;
done:
    free(d.v);
    free(inr);
    return rc;
}
