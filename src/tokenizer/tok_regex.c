/*
 * tok_regex.c: the pre-tokenizer regexes. The reference compiles them with
 * Oniguruma (HF tokenizers utils/onig.rs, Ruby syntax, UTF-8); clens uses
 * PCRE2 in UTF + UCP mode with JIT. The constructs used by real tokenizers
 * (alternation, (?i:...), \p{L}, \p{N}, classes, lookahead, {m,n}) mean the
 * same in both, except for the character sets, which are rewritten here:
 *   \s  Oniguruma: Unicode White_Space (incl. U+0085 NEL); PCRE2 UCP: Z + HT..CR
 *       (no U+0085). Rewritten as the explicit White_Space set.
 *   \p{X} Oniguruma has Unicode 16.0 tables, PCRE2 10.42 Unicode 14.0: for a
 *       general category X, the code points X gained since 14.0 are appended
 *       (tok_class_patches, generated). Other properties (scripts) are left
 *       to PCRE2.
 *   \d, \w  Oniguruma's Unicode-16 Digit and Word sets.
 *   \h  Oniguruma: hexadecimal digit; PCRE2: horizontal space.
 *   Negated forms (\S, \P{X}, \p{^X}, \D, \W, \H) are supported outside
 *   character classes; inside one they are rejected as unsupported.
 * Matches are enumerated with rust-onig's FindMatches rules: search from the
 * end of the last match; an empty match ending where the last match ended is
 * skipped by advancing one character.
 */
#include "tokenizer/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/strbuf.h"

#define WS_SET "\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
#define HEX_SET "0-9A-Fa-f"

/* General-category long names -> short names (Oniguruma ignores case,
 * spaces, '_' and '-'). */
static const char *const GC_ALIASES[][2] = {
    {"letter", "L"}, {"uppercaseletter", "Lu"}, {"lowercaseletter", "Ll"}, {"titlecaseletter", "Lt"},
    {"modifierletter", "Lm"}, {"otherletter", "Lo"}, {"mark", "M"}, {"combiningmark", "M"},
    {"nonspacingmark", "Mn"}, {"spacingmark", "Mc"}, {"enclosingmark", "Me"}, {"number", "N"},
    {"decimalnumber", "Nd"}, {"letternumber", "Nl"}, {"othernumber", "No"}, {"punctuation", "P"},
    {"connectorpunctuation", "Pc"}, {"dashpunctuation", "Pd"}, {"openpunctuation", "Ps"},
    {"closepunctuation", "Pe"}, {"initialpunctuation", "Pi"}, {"finalpunctuation", "Pf"},
    {"otherpunctuation", "Po"}, {"symbol", "S"}, {"mathsymbol", "Sm"}, {"currencysymbol", "Sc"},
    {"modifiersymbol", "Sk"}, {"othersymbol", "So"}, {"separator", "Z"}, {"spaceseparator", "Zs"},
    {"lineseparator", "Zl"}, {"paragraphseparator", "Zp"}, {"other", "C"}, {"control", "Cc"},
    {"format", "Cf"}, {"privateuse", "Co"},
};

/* Appends the class items of property name[0..n) (e.g. "L", "Letter") to b:
 * "\p{L}" plus the Unicode-16 additions. */
static void prop_items(clens_sb *b, const char *name, size_t n)
{
    char norm[64], shortn[8] = "";
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < sizeof norm; i++) {
        char c = name[i];
        if (c == ' ' || c == '_' || c == '-') continue;
        norm[k++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    norm[k] = 0;
    if (k <= 2) {
        if (k >= 1) { shortn[0] = (char)(norm[0] - 32); shortn[1] = k == 2 ? norm[1] : 0; shortn[2] = 0; }
    } else {
        for (size_t i = 0; i < sizeof GC_ALIASES / sizeof *GC_ALIASES; i++)
            if (strcmp(norm, GC_ALIASES[i][0]) == 0) { snprintf(shortn, sizeof shortn, "%s", GC_ALIASES[i][1]); break; }
    }
    clens_sb_puts(b, "\\p{");
    clens_sb_put(b, name, n);
    clens_sb_puts(b, "}");
    for (int i = 0; shortn[0] && i < tok_n_class_patches; i++)
        if (strcmp(tok_class_patches[i].cat, shortn) == 0) { clens_sb_puts(b, tok_class_patches[i].extra); break; }
}

/* Returns a malloc'd PCRE2 pattern, or NULL with err set. */
static char *translate(const char *pat, clens_error *err)
{
    clens_sb b = {0};
    int in_class = 0;
    size_t n = strlen(pat);
    clens_sb_put(&b, "", 0);
    for (size_t i = 0; i < n; i++) {
        char c = pat[i];
        if (c == '\\' && i + 1 < n) {
            char d = pat[i + 1];
            i++;
            int neg = 0;
            clens_sb items = {0};
            clens_sb_put(&items, "", 0);
            if (d == 's' || d == 'S') { clens_sb_puts(&items, WS_SET); neg = d == 'S'; }
            else if (d == 'h' || d == 'H') { clens_sb_puts(&items, HEX_SET); neg = d == 'H'; }
            else if (d == 'd' || d == 'D') { clens_sb_puts(&items, tok_class_digit16); neg = d == 'D'; }
            else if (d == 'w' || d == 'W') { clens_sb_puts(&items, tok_class_word16); neg = d == 'W'; }
            else if (d == 'p' || d == 'P') {
                const char *nm;
                size_t nl;
                neg = d == 'P';
                if (i + 1 < n && pat[i + 1] == '{') {
                    const char *end = strchr(pat + i + 2, '}');
                    if (!end) { free(items.p); free(b.p); clens_err(err, CLENS_E_FORMAT, "regex '%s': unterminated \\%c{", pat, d); return NULL; }
                    nm = pat + i + 2;
                    nl = (size_t)(end - nm);
                    i = (size_t)(end - pat);
                    if (nl && nm[0] == '^') { neg = !neg; nm++; nl--; }
                } else if (i + 1 < n) {
                    nm = pat + i + 1;
                    nl = 1;
                    i++;
                } else {
                    free(items.p); free(b.p);
                    clens_err(err, CLENS_E_FORMAT, "regex '%s': \\%c without a property name", pat, d);
                    return NULL;
                }
                prop_items(&items, nm, nl);
            } else {
                free(items.p);
                char e[2] = {c, d};
                clens_sb_put(&b, e, 2);
                continue;
            }
            if (items.oom) { free(items.p); free(b.p); clens_err(err, CLENS_E_NOMEM, "out of memory"); return NULL; }
            if (in_class && neg) {
                free(items.p); free(b.p);
                clens_err(err, CLENS_E_UNSUPPORTED, "regex '%s': a negated escape (\\%c) inside a character class is not supported", pat, d);
                return NULL;
            }
            if (in_class) clens_sb_puts(&b, items.p);
            else { clens_sb_puts(&b, neg ? "[^" : "["); clens_sb_puts(&b, items.p); clens_sb_puts(&b, "]"); }
            free(items.p);
            continue;
        }
        if (!in_class && c == '[') {
            in_class = 1;
            clens_sb_put(&b, &c, 1);
            /* a leading ^ and a leading ] belong to the class */
            if (i + 1 < n && pat[i + 1] == '^') { clens_sb_put(&b, "^", 1); i++; }
            if (i + 1 < n && pat[i + 1] == ']') { clens_sb_put(&b, "]", 1); i++; }
            continue;
        }
        if (in_class && c == '[' && i + 1 < n && pat[i + 1] == ':') {
            const char *end = strstr(pat + i + 2, ":]");
            if (end) {
                clens_sb_put(&b, pat + i, (size_t)(end + 2 - (pat + i)));
                i = (size_t)(end + 1 - pat);
                continue;
            }
        }
        if (in_class && c == '[') {
            free(b.p);
            clens_err(err, CLENS_E_UNSUPPORTED, "regex '%s': nested character classes are not supported", pat);
            return NULL;
        }
        if (in_class && c == ']') in_class = 0;
        clens_sb_put(&b, &c, 1);
    }
    if (b.oom) {
        free(b.p);
        clens_err(err, CLENS_E_NOMEM, "out of memory");
        return NULL;
    }
    return b.p;
}

int tok_regex_compile(tok_regex **out, const char *pattern, int literal, int index, clens_error *err)
{
    *out = NULL;
    tok_regex *re = calloc(1, sizeof *re);
    if (!re || !(re->source = strdup(pattern))) {
        free(re);
        return clens_err(err, CLENS_E_NOMEM, "out of memory");
    }
    re->index = index;
    char *p = literal ? strdup(pattern) : translate(pattern, err);
    if (!p) {
        int code = literal ? clens_err(err, CLENS_E_NOMEM, "out of memory") : (err ? err->code : CLENS_E_FORMAT);
        tok_regex_free(re);
        return code ? code : CLENS_E_FORMAT;
    }
    int ec;
    PCRE2_SIZE eo;
    uint32_t opts = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    re->code = pcre2_compile((PCRE2_SPTR)p, PCRE2_ZERO_TERMINATED, opts, &ec, &eo, NULL);
    free(p);
    if (!re->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        clens_err(err, CLENS_E_UNSUPPORTED, "regex '%.200s': %s (at offset %zu)", pattern, (char *)msg, (size_t)eo);
        tok_regex_free(re);
        return CLENS_E_UNSUPPORTED;
    }
    pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if JIT is unavailable */
    *out = re;
    return CLENS_OK;
}

void tok_regex_free(tok_regex *re)
{
    if (!re) return;
    pcre2_code_free(re->code);
    free(re->source);
    free(re);
}

int tok_regex_find_all(const tok_regex *re, tok_state *st, const char *s, size_t n,
                       tok_match_cb cb, void *user, clens_error *err)
{
    pcre2_match_data *md = st->md[re->index];
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t last_end = 0;
    int have_last = 0;
    size_t last_match_end = 0;
    while (last_end <= n) {
        int rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, last_end, PCRE2_NO_UTF_CHECK, md, st->mctx);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT)
            rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, last_end, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return clens_err(err, CLENS_E_UNSUPPORTED, "regex '%.120s' failed on a %zu-byte piece: %s",
                             re->source, n, (char *)msg);
        }
        size_t ms = ov[0], me = ov[1];
        if (me == ms && have_last && last_match_end == me) {
            last_end += last_end < n ? (size_t)tok_utf8_len_lead((unsigned char)s[last_end]) : 1;
            continue;
        }
        last_end = me;
        last_match_end = me;
        have_last = 1;
        if (cb(user, ms, me)) return -1;
    }
    return 0;
}
