/*
 * tok_unicode.h: the Unicode pieces of the tokenizer (internal API):
 * strict UTF-8 validation and WHATWG "replacement" decoding, the character
 * classes the reference tokenizer uses outside its regexes (White_Space, word
 * characters), and Unicode normalization (NFC, NFD, NFKC, NFKD) that tracks
 * where each output character came from, exactly as the Hugging Face
 * `tokenizers` NormalizedString does (Unicode 9.0.0 data, see
 * tools/tok_gen_unicode.py).
 */
#ifndef CLENS_TOK_UNICODE_H
#define CLENS_TOK_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- UTF-8 */

/* Decodes one code point of valid UTF-8 at s (s < end); returns its length. */
static inline int tok_utf8_dec(const unsigned char *s, uint32_t *cp)
{
    unsigned c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    if (c < 0xE0) { *cp = ((c & 0x1F) << 6) | (s[1] & 0x3F); return 2; }
    if (c < 0xF0) { *cp = ((c & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F); return 3; }
    *cp = ((c & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}

/* Encodes cp (a Unicode scalar value) at out; returns its length (1..4). */
static inline int tok_utf8_enc(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { o[0] = (unsigned char)(0xC0 | (cp >> 6)); o[1] = (unsigned char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12)); o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F)); return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18)); o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static inline int tok_utf8_len_lead(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* Length of the longest valid UTF-8 prefix of s[0..n) that is a whole
 * sequence: returns n if all valid, else the byte offset of the first byte of
 * the first invalid (or truncated) sequence. Rejects overlong forms,
 * surrogates and code points above U+10FFFF (Rust `str` / RFC 3629). */
size_t tok_utf8_valid_prefix(const char *s, size_t n);

/* Decodes s[0..n) with the WHATWG "replacement" rule (= Rust
 * String::from_utf8_lossy = Node Buffer.toString('utf8')): every maximal
 * subpart of an ill-formed sequence becomes U+FFFD. Writes a malloc'd,
 * NUL-terminated string to *out (length *out_len). Returns 0, or -1 when out
 * of memory. */
int tok_utf8_lossy(const char *s, size_t n, char **out, size_t *out_len);

/* Appends the lossy decoding of s[0..n) into buf (which must have room for
 * 3*n bytes: every input byte yields at most 3 output bytes); returns the
 * number of bytes written. */
size_t tok_utf8_lossy_into(const unsigned char *s, size_t n, char *buf);

/* ------------------------------------------------------- character classes */

/* Unicode White_Space (Rust char::is_whitespace, regex \s, Oniguruma \s). */
int tok_is_white_space(uint32_t cp);
/* Rust regex `\w`: Alphabetic | M | Nd | Pc | Join_Control (approximated
 * from utf8proc categories plus the Other_Alphabetic symbols). */
int tok_is_word_char(uint32_t cp);

/* ------------------------------------------------------------ normalization */

typedef enum { TOK_NF_NFC = 0, TOK_NF_NFD, TOK_NF_NFKC, TOK_NF_NFKD } tok_nf;

/* A piece of text with, for every byte, the original byte range it came from
 * (all bytes of one character share one range). */
typedef struct tok_text {
    char *s;            /* NUL-terminated */
    size_t len, cap;
    int32_t *al;        /* [2*len]: start, end; NULL = identity (see below) */
    size_t al_cap;
} tok_text;

/* 1 if normalizing s[0..n) with form f can change the text or its alignment
 * (a cheap scan; 0 for ASCII). */
int tok_nf_maybe(tok_nf f, const char *s, size_t n);

/* Normalizes in[0..n) (valid UTF-8) into out, replacing out's content. al_in
 * gives each input byte's original range (or NULL: byte i of a character at
 * [a,b) maps to [base+a, base+b)). out->al is always filled. Returns 0, or -1
 * when out of memory. The alignment of each output character follows the
 * reference: a character that fully decomposes to d1..dn yields d1 tagged 0
 * and the rest +1, canonical reordering moves tags with characters, composing
 * tags a and b yields a+b-1; tags are then consumed positionally (0 or -N:
 * takes the range of the next input character and skips N more; +1: takes the
 * range of the previous input character). */
int tok_normalize(tok_nf f, const char *in, size_t n, const int32_t *al_in, int32_t base,
                  tok_text *out);

void tok_text_free(tok_text *t);

/* ------------------------------------------------------ generated tables */

typedef struct { uint32_t lo, hi; uint8_t ccc; } tok_ccc_range;
typedef struct { uint32_t cp; uint32_t off; uint32_t len; } tok_decomp;
typedef struct { uint64_t key; uint32_t c; } tok_comp_pair;  /* key = a<<21 | b */

extern const tok_ccc_range tok_ccc_ranges[];
extern const int tok_n_ccc_ranges;
extern const tok_decomp tok_canon_decomp[];
extern const int tok_canon_decomp_n;
extern const uint32_t tok_canon_decomp_data[];
extern const tok_decomp tok_compat_decomp[];
extern const int tok_compat_decomp_n;
extern const uint32_t tok_compat_decomp_data[];
extern const tok_comp_pair tok_comp_pairs[];
extern const int tok_n_comp_pairs;
extern const uint32_t tok_maybe_nfc[][2];
extern const int tok_n_maybe_nfc;
extern const uint32_t tok_maybe_nfd[][2];
extern const int tok_n_maybe_nfd;
extern const uint32_t tok_maybe_nfkc[][2];
extern const int tok_n_maybe_nfkc;
extern const uint32_t tok_maybe_nfkd[][2];
extern const int tok_n_maybe_nfkd;

/* Regex class patches (see tools/tok_gen_unicode.py): the code points a
 * general category gained between Unicode 14.0 (PCRE2) and 16.0 (the
 * reference's Oniguruma), as PCRE2 class items. */
typedef struct { const char *cat; const char *extra; } tok_class_patch;
extern const tok_class_patch tok_class_patches[];
extern const int tok_n_class_patches;
extern const char tok_class_digit16[];   /* Oniguruma \d (Unicode 16 Nd) */
extern const char tok_class_word16[];    /* Oniguruma \w (Unicode 16 Word) */

#endif
