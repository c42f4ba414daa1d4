/*
 * pairs.c: the pair builder. Turns MATH reference solutions (LaTeX) or GSM8K
 * answers (with <<expr=n>>n annotations) into (clean, corrupted) prompt pairs
 * that are identical except that one intermediate arithmetic result is wrong
 * in the corrupted one, cut right after that number (study.md §3.1, §5.3,
 * §5.5, §5.6; rulings R5, R6, R13). The detector is latex_arith.c, the
 * cut and "needs arithmetic" rules pair_rules.c; the rules with examples,
 * the drop reasons and the pairs.jsonl keys: docs/pairs.md.
 *
 * Decisions (defaults first, the seed's "fidelity" choice after it):
 *
 * Sites. A site is a verified intermediate arithmetic result: an "lhs = n"
 * whose lhs is purely numeric and evaluates exactly to n (latex_arith.c), that
 * lies before the final answer (MATH: before the first \boxed; GSM8K: the
 * annotations, which all precede "####") and whose value is not the final
 * answer (R6; compared by absolute value with every value of every \boxed{}
 * or the "####" number, see la_final_values). A GSM8K site is the number
 * written right after an annotation <<expr=n>>, which must equal n; the
 * annotations are removed from the text (the prompts never contain "<<").
 * A site must need arithmetic to be judged (issue 22, docs/pairs.md; not
 * applied under --site seed): not an identity (one operation whose result
 * is an operand, the other 1 or 0: "7*1 = 7", "5/1", "x+0"), not restated
 * (its value already stands alone earlier on its GSM8K line or in its MATH
 * sentence: "He runs 3000 yards in total because 200 x 15 = 3000"), with a
 * cut after which no more arithmetic follows (below), and no source error
 * before the cut (a wrong annotation or step, or "W because E = V" with W a
 * one-digit typo of V: "He has $3.65 because ... equals $3.45"). Of two
 * pairs with the same clean prompt the second is dropped (duplicates).
 *
 * One pair per problem. Among a problem's sites (in text order) one is
 * chosen: --site random (default) takes index floor(r * n_sites / 2^64), with
 * r the first output of splitmix64 seeded with seed XOR fnv1a64(id)
 * (splitmix64: state += 0x9E3779B97F4A7C15; z = state;
 * z = (z ^ z>>30) * 0xBF58476D1CE4E5B9; z = (z ^ z>>27) * 0x94D049BB133111EB;
 * r = z ^ z>>31; FNV-1a 64: offset 0xcbf29ce484222325, prime 0x100000001b3, over
 * the id's bytes). The choice depends only on (seed, id, sites), not on file
 * order, --limit or the machine, so the same seed gives a byte-identical file.
 * --site last takes the last site (the nearest valid analogue of the seed's
 * "last '= number' match").
 *
 * Candidate order is the file order: pairs.jsonl lines follow the dataset's
 * lines, candidate_index = 0, 1, 2 ... (consumers select by index; R13 shards
 * by index mod n). --limit N stops after N pairs.
 *
 * Text. "problem" is the problem / question. The prefix is the solution text
 * from its start (MATH: the reference solution as is; GSM8K: the answer with
 * its annotations stripped) through the cut; nothing is added (rendering per
 * model happens where pairs are used, R6).
 *
 * Corruption (of the number as written, without its sign). plus-minus-one
 * (default): +1 or -1 in the last place, digits changed in place with carry
 * or borrow so the digit count and separators stay ("3000" -> "3001" or
 * "2999", "20,000" -> "19,999"); the direction is drawn (the second
 * splitmix64 output of the site choice's stream), and the other one taken
 * when the drawn one changes the digit count, or gives the final answer or
 * a number already written on the site's line while the other does not.
 * plus-minus-sig: the same in the last nonzero digit ("3000" -> "2000" or
 * "4000", "4.50" -> "4.40"), so round values stay round. last-digit: the
 * last digit +1, or -1 if it is 9 ("74,592" -> "74,593", "19" -> "18").
 * plus-one (the seed's): the number + 1 printed like Python's str(int(x) + 1),
 * or str(float(x) + 1.0) when it has a decimal point ("2.50" -> "3.5"),
 * separators dropped ("1,\!000" -> "1001"); the digit count may change. The
 * seed's regex never includes a sign, so "-3" becomes "-4" there.
 *
 * Cut. line (default): after the number, through the end of its step: the
 * first newline (included), or the end of the first sentence, whichever comes
 * first. A sentence ends at '.', '?' or '!' followed by white space or the
 * end of the text, outside math; inside math, at a '.' that closes the math
 * segment ("=50.$$"), in which case the cut is after the closing delimiter. A
 * newline right after the sentence end is included. (A MATH "line" is usually
 * a whole paragraph with the boxed answer in it: on MATH algebra train about
 * 3/4 of the verified steps' lines run past \boxed, so the line alone would
 * put the final answer into the prompt.) When the step reaches the first \boxed (MATH) or "####"
 * (GSM8K), the step ends instead at the first clause end before it (',' or
 * ';' outside math, or one that closes a math segment: "$6/2 = 3,$ so" is
 * cut after the '$'); sites with none are dropped ("answer_in_step"), so no
 * prompt contains the final answer.
 * The error must be the last arithmetic in the prompt: that step end is
 * the cut only when what follows the number up to it holds no digit,
 * relation, operator or arithmetic macro, the cut is not inside open math
 * (a math segment, or an environment such as tabular), and (MATH reference
 * solutions) it is not a newline in the middle of a sentence. Otherwise the
 * cut is right after the number, its math segment's closing delimiter (when
 * only closing brackets and punctuation are left in the segment) and any
 * punctuation right after ("$64 - 4 = 60$, so $5a + 20 = 60$" is cut after
 * "= 60$,"); when more math follows inside the segment ("= 105\\" with a
 * row after it, "= 12, 12 + 1 = 13") the site is dropped ("more_math").
 * chars:N: N characters (Unicode code points) after the START of the number,
 * measured in the clean text; both prompts end at the same text boundary, so
 * when plus-one changes the number's length the corrupted prompt is longer
 * or shorter by that difference (never cut inside the number).
 * chars-raw:N (the seed's exactly): each prompt is cut N characters after the
 * start of the number in its own text, so the windows may end on different
 * characters (also never inside the number).
 * Except with chars-raw, both prompts share everything outside the site:
 * corrupted_prefix = clean_prefix[0, start) + corrupted_value + clean_prefix[end, ...).
 *
 * Output. One JSON object a line: the R5 keys in R5 order (id, source,
 * source_sha256, problem, clean_prefix, corrupted_prefix, site {start, end,
 * expr, clean_value, corrupted_value}, cut, corrupt, seed), then
 * candidate_index, format, line (1-based line in the dataset), answer,
 * n_sites, site_index, site_rule: enough to re-derive the pair from the
 * dataset (tests/data/pairs/check_pairs.py does). Offsets (site.start /
 * site.end) are bytes of clean_prefix (UTF-8), like the offsets of
 * `tokenize --json` (R5). A GSM8K row without "id" gets "<dir>/<file>:<line>".
 */
#include "base/rng.h"
#include "clens.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base.h"
#include "base/strbuf.h"
#include "data/latex_arith.h"
#include "data/pair_rules.h"
#include "data/pairs_internal.h"

_Static_assert(R_COUNT <= CLENS_PAIRS_MAX_REASONS, "too many reasons");

int clens_pairs_reason_count(void) { return R_COUNT; }

const char *clens_pairs_reason_name(int i)
{
    switch (i) {
    case R_ANSWER_IN_STEP: return "answer_in_step";
    case R_IDENTITY: return "identity";
    case R_RESTATED: return "restated";
    case R_MORE_MATH: return "more_math";
    case R_SOURCE_ERROR: return "source_error";
    default: return la_reason_name(i);
    }
}

clens_pairs_params clens_pairs_default_params(void)
{
    clens_pairs_params p;
    memset(&p, 0, sizeof p);
    p.format = CLENS_PAIRS_MATH;
    p.cut = CLENS_CUT_LINE;
    p.cut_chars = 20;
    p.corrupt = CLENS_CORRUPT_PLUS_MINUS_ONE;
    p.site = CLENS_SITE_RANDOM;
    return p;
}

/* ---------------------------------------------------------------- parse */

int clens_pairs_parse_cut(clens_pairs_params *p, const char *s, clens_error *err)
{
    const char *num = NULL;
    clens_cut_mode m;
    if (strcmp(s, "line") == 0) { p->cut = CLENS_CUT_LINE; return 0; }
    if (strncmp(s, "chars:", 6) == 0) { m = CLENS_CUT_CHARS; num = s + 6; }
    else if (strncmp(s, "chars-raw:", 10) == 0) { m = CLENS_CUT_CHARS_RAW; num = s + 10; }
    else return clens_err(err, CLENS_E_ARG, "cut: expected line, chars:N or chars-raw:N, got '%s'", s);
    char *end;
    errno = 0;
    long n = strtol(num, &end, 10);
    if (end == num || *end || errno || n < 1 || n > 1000000)
        return clens_err(err, CLENS_E_ARG, "cut: expected N in [1, 1000000] in '%s'", s);
    p->cut = m;
    p->cut_chars = (int)n;
    return 0;
}

int clens_pairs_parse_corrupt(clens_pairs_params *p, const char *s, clens_error *err)
{
    if (strcmp(s, "plus-minus-one") == 0) p->corrupt = CLENS_CORRUPT_PLUS_MINUS_ONE;
    else if (strcmp(s, "plus-minus-sig") == 0) p->corrupt = CLENS_CORRUPT_PLUS_MINUS_SIG;
    else if (strcmp(s, "last-digit") == 0) p->corrupt = CLENS_CORRUPT_LAST_DIGIT;
    else if (strcmp(s, "plus-one") == 0) p->corrupt = CLENS_CORRUPT_PLUS_ONE;
    else return clens_err(err, CLENS_E_ARG,
                          "corrupt: expected plus-minus-one, plus-minus-sig, last-digit or plus-one, "
                          "got '%s'", s);
    return 0;
}

int clens_pairs_parse_site(clens_pairs_params *p, const char *s, clens_error *err)
{
    if (strcmp(s, "random") == 0) p->site = CLENS_SITE_RANDOM;
    else if (strcmp(s, "last") == 0) p->site = CLENS_SITE_LAST;
    else if (strcmp(s, "seed") == 0) p->site = CLENS_SITE_SEED;
    else return clens_err(err, CLENS_E_ARG, "site: expected random, last or seed, got '%s'", s);
    return 0;
}

int clens_pairs_parse_format(clens_pairs_params *p, const char *s, clens_error *err)
{
    if (strcmp(s, "math") == 0) p->format = CLENS_PAIRS_MATH;
    else if (strcmp(s, "gsm8k") == 0) p->format = CLENS_PAIRS_GSM8K;
    else return clens_err(err, CLENS_E_ARG, "format: expected math or gsm8k, got '%s'", s);
    return 0;
}

static const char *format_name(clens_pairs_format f) { return f == CLENS_PAIRS_GSM8K ? "gsm8k" : "math"; }

static const char *corrupt_name(clens_corrupt_mode c)
{
    return c == CLENS_CORRUPT_PLUS_ONE       ? "plus-one"
           : c == CLENS_CORRUPT_PLUS_MINUS_ONE ? "plus-minus-one"
           : c == CLENS_CORRUPT_PLUS_MINUS_SIG ? "plus-minus-sig"
                                               : "last-digit";
}

static void cut_name(const clens_pairs_params *p, char *buf, size_t n)
{
    if (p->cut == CLENS_CUT_LINE) snprintf(buf, n, "line");
    else snprintf(buf, n, "%s:%d", p->cut == CLENS_CUT_CHARS ? "chars" : "chars-raw", p->cut_chars);
}

/* -------------------------------------------------------------- helpers */

static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static char *dups(const char *s) { return dupn(s ? s : "", s ? strlen(s) : 0); }

static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}


/* Index of the byte N code points after pos (or len). */
static size_t utf8_advance(const char *s, size_t len, size_t pos, long n)
{
    while (n-- > 0 && pos < len) {
        pos++;
        while (pos < len && ((unsigned char)s[pos] & 0xC0) == 0x80) pos++;
    }
    return pos;
}

/* ----------------------------------------------------------- corruption */

/* Python's repr() of a double: shortest round-trip digits, fixed notation for
 * 1e-4 <= |d| < 1e16 with at least one decimal, else d.ddde+XX. */
static void py_float_repr(double d, char *out, size_t n)
{
    char buf[64], digits[40];
    int p;
    for (p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, d);
        if (strtod(buf, NULL) == d) break;
    }
    const char *q = buf;
    int neg = *q == '-';
    if (neg) q++;
    int nd = 0;
    for (; *q && *q != 'e'; q++)
        if (*q != '.') digits[nd++] = *q;
    int e10 = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    clens_sb b = {0};
    if (neg) clens_sb_put(&b, "-", 1);
    if (e10 >= -4 && e10 < 16) {
        int decpt = e10 + 1;
        if (decpt <= 0) {
            clens_sb_put(&b, "0.", 2);
            for (int i = 0; i < -decpt; i++) clens_sb_put(&b, "0", 1);
            clens_sb_put(&b, digits, nd);
        } else if (decpt >= nd) {
            clens_sb_put(&b, digits, nd);
            for (int i = nd; i < decpt; i++) clens_sb_put(&b, "0", 1);
            clens_sb_put(&b, ".0", 2);
        } else {
            clens_sb_put(&b, digits, decpt);
            clens_sb_put(&b, ".", 1);
            clens_sb_put(&b, digits + decpt, nd - decpt);
        }
    } else {
        char e[16];
        clens_sb_put(&b, digits, 1);
        if (nd > 1) { clens_sb_put(&b, ".", 1); clens_sb_put(&b, digits + 1, nd - 1); }
        snprintf(e, sizeof e, "e%c%02d", e10 < 0 ? '-' : '+', e10 < 0 ? -e10 : e10);
        clens_sb_put(&b, e, strlen(e));
    }
    snprintf(out, n, "%s", b.p ? b.p : "0.0");
    free(b.p);
}

/* The numeral +1 (dir > 0) or -1 (dir < 0) in its last place, digits
 * changed in place (carry / borrow) so the separators and the digit count
 * stay: "3000" -> "3001" / "2999", "0.0625" -> "0.0624", "20,000" -> "19,999".
 * 0 when that would change the digit count ("99" + 1, "10" - 1, "1,000" - 1)
 * or go below zero ("0" - 1); the result is in out (n + 1 bytes). */
static int step_numeral_at(const char *num, size_t n, int dir, int significant, char *out)
{
    memcpy(out, num, n);
    out[n] = 0;
    size_t first = n, i, at = n;
    if (significant) /* the last nonzero digit: 3000 -> 2000 / 4000, 4.50 -> 4.40 / 4.60 */
        for (i = n; i-- > 0;)
            if (out[i] >= '1' && out[i] <= '9') { at = i + 1; break; }
    for (i = 0; i < n; i++)
        if (out[i] >= '0' && out[i] <= '9') { first = i; break; }
    if (first == n) return 0;
    size_t int_digits = 0;
    for (i = first; i < n && out[i] != '.'; i++) int_digits += out[i] >= '0' && out[i] <= '9';
    int carry = 1;
    for (i = at; carry && i-- > 0;) {
        char c = out[i];
        if (c < '0' || c > '9') continue;
        if (dir > 0) {
            if (c == '9') out[i] = '0';
            else { out[i] = (char)(c + 1); carry = 0; }
        } else {
            if (c == '0') out[i] = '9';
            else { out[i] = (char)(c - 1); carry = 0; }
        }
    }
    if (carry) return 0;                                /* 99 + 1, 0 - 1 */
    if (int_digits > 1 && out[first] == '0') return 0;  /* 10 - 1 -> "09" */
    return 1;
}

static int step_numeral(const char *num, size_t n, int dir, char *out)
{
    return step_numeral_at(num, n, dir, 0, out);
}

int clens_pairs_corrupt_step(const char *numeral, int direction, char **out, clens_error *err)
{
    *out = NULL;
    size_t n = strlen(numeral);
    char *c = malloc(n + 1);
    if (!c) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    if (!step_numeral(numeral, n, direction, c)) {
        free(c); /* no such numeral: *out stays NULL */
        return CLENS_OK;
    }
    *out = c;
    return CLENS_OK;
}

/* The corrupted form of a numeral as written. malloc'd, NULL when out of memory. */
static char *corrupt_numeral(const char *num, size_t n, clens_corrupt_mode mode)
{
    if (mode == CLENS_CORRUPT_PLUS_MINUS_ONE || mode == CLENS_CORRUPT_PLUS_MINUS_SIG) {
        /* no direction given: +1 if it keeps the digits */
        int sig = mode == CLENS_CORRUPT_PLUS_MINUS_SIG;
        char *c = malloc(n + 1);
        if (c && (step_numeral_at(num, n, 1, sig, c) || step_numeral_at(num, n, -1, sig, c))) return c;
        free(c);
        mode = CLENS_CORRUPT_LAST_DIGIT;
    }
    if (mode == CLENS_CORRUPT_LAST_DIGIT) {
        char *c = dupn(num, n);
        if (!c) return NULL;
        for (size_t i = n; i-- > 0;)
            if (c[i] >= '0' && c[i] <= '9') {
                c[i] = c[i] == '9' ? '8' : (char)(c[i] + 1);
                break;
            }
        return c;
    }
    /* plus-one: separators dropped */
    char plain[128];
    size_t k = 0;
    int dot = 0;
    for (size_t i = 0; i < n && k + 1 < sizeof plain; i++) {
        char ch = num[i];
        if ((ch >= '0' && ch <= '9') || ch == '.') {
            plain[k++] = ch;
            dot |= ch == '.';
        }
    }
    plain[k] = 0;
    if (dot) {
        char out[64];
        py_float_repr(strtod(plain, NULL) + 1.0, out, sizeof out);
        return dups(out);
    }
    /* integer + 1 with carry, then like str(int(...)): no leading zeros */
    char *c = malloc(k + 2);
    if (!c) return NULL;
    c[0] = '0';
    memcpy(c + 1, plain, k + 1);
    for (size_t i = k + 1; i-- > 0;) {
        if (c[i] == '9') { c[i] = '0'; continue; }
        c[i]++;
        break;
    }
    size_t z = 0;
    while (c[z] == '0' && c[z + 1]) z++;
    memmove(c, c + z, k + 2 - z);
    return c;
}

int clens_pairs_corrupt_value(const char *numeral, clens_corrupt_mode mode, char **out, clens_error *err)
{
    *out = corrupt_numeral(numeral, strlen(numeral), mode);
    return *out ? CLENS_OK : clens_err(err, CLENS_E_NOMEM, "out of memory");
}

/* ---------------------------------------------------------------- sites */

typedef struct psite {
    size_t start, end;      /* numeral in the prompt text */
    const char *expr;       /* lhs as written: expr[0, expr_len) */
    size_t expr_len;
    la_rat value;           /* signed */
    size_t cut;             /* --cut line: where the prompts end */
} psite;

/* A solution prepared for cutting: the prompt text, its sites, the answer. */
typedef struct prepared {
    char *text;             /* MATH: the solution; GSM8K: annotations removed */
    size_t len;
    char *expr_src;         /* GSM8K: the raw answer (exprs point into it) */
    psite *sites;
    size_t n_sites, cap;
    char *answer;
    la_span *spans;         /* MATH math segments of text */
    size_t n_spans;
    size_t limit;           /* where the answer starts (first \boxed, "####") */
    la_rat *fin;            /* final-answer values (a corruption never takes one) */
    size_t n_fin;
} prepared;

static void prepared_free(prepared *p)
{
    free(p->text);
    free(p->expr_src);
    free(p->sites);
    free(p->answer);
    free(p->spans);
    free(p->fin);
    memset(p, 0, sizeof *p);
}

static int push_site(prepared *P, size_t s, size_t e, const char *expr, size_t elen, la_rat v,
                     size_t cut)
{
    if (P->n_sites == P->cap) {
        size_t cap = P->cap ? P->cap * 2 : 8;
        psite *d = realloc(P->sites, cap * sizeof *d);
        if (!d) return -1;
        P->sites = d;
        P->cap = cap;
    }
    psite *x = &P->sites[P->n_sites++];
    x->start = s;
    x->end = e;
    x->expr = expr;
    x->expr_len = elen;
    x->value = v;
    x->cut = cut;
    return 0;
}

static la_rat rat_abs(la_rat a)
{
    if (a.num < 0) a.num = -a.num;
    return a;
}

static int is_final(la_rat v, const la_rat *fin, size_t nfin)
{
    la_rat a = rat_abs(v);
    for (size_t i = 0; i < nfin; i++)
        if (la_rat_eq(a, rat_abs(fin[i]))) return 1;
    return 0;
}

/* Who is being prepared, for the candidate callback. */
typedef struct pctx {
    const clens_pairs_params *prm;
    const char *id;
    int64_t line;
    clens_pairs_stats *st;
} pctx;

static void count(const pctx *C, const prepared *P, int reason, size_t s, size_t e, int neg,
                  const char *expr, size_t elen, const la_rat *lhs)
{
    C->st->candidates++;
    if (reason == LA_OK) C->st->sites++;
    else C->st->drops[reason]++;
    if (C->prm->on_candidate) {
        char val[100] = "";
        if (lhs) la_rat_str(*lhs, val, sizeof val);
        clens_pairs_candidate c = {C->id, C->line, P->text, P->len, (int64_t)s, (int64_t)e,
                                   neg, expr, elen, reason, val};
        C->prm->on_candidate(C->prm->on_candidate_user, &c);
    }
}

/* Content of the last \boxed{..} (or \fbox), "" if none. */
static char *math_answer(const char *t, size_t len)
{
    size_t best_a = 0, best_b = 0, i = 0;
    for (;;) {
        const char *p = NULL;
        for (size_t k = i; k + 5 <= len; k++)
            if (t[k] == '\\' && ((k + 6 <= len && memcmp(t + k, "\\boxed", 6) == 0) ||
                                 memcmp(t + k, "\\fbox", 5) == 0)) { p = t + k; break; }
        if (!p) break;
        size_t a = (size_t)(p - t) + (p[1] == 'b' ? 6 : 5);
        while (a < len && t[a] == ' ') a++;
        if (a >= len || t[a] != '{') { i = a; continue; }
        int d = 0;
        size_t b = a;
        for (; b < len; b++) {
            if (t[b] == '\\') { b++; continue; }
            if (t[b] == '{') d++;
            else if (t[b] == '}' && --d == 0) break;
        }
        if (b >= len) break;
        best_a = a + 1;
        best_b = b;
        i = b;
    }
    return dupn(t + best_a, best_b - best_a);
}

/* Appends the final-answer values of a text: every \boxed value (see
 * la_final_values) and the number after "####". 0 or -1. */
static int add_final_values(const char *t, size_t len, la_rat **fin, size_t *nf)
{
    la_rat *v = NULL;
    size_t n = 0;
    if (la_final_values(t, len, &v, &n)) return -1;
    la_rat *d = realloc(*fin, (*nf + n + 1) * sizeof *d);
    if (!d) { free(v); return -1; }
    *fin = d;
    if (n) memcpy(d + *nf, v, n * sizeof *v);
    *nf += n;
    free(v);
    const char *h = NULL;
    for (size_t i = 0; i + 4 <= len; i++)
        if (memcmp(t + i, "####", 4) == 0) { h = t + i; break; }
    if (h) {
        size_t a = (size_t)(h - t) + 4;
        while (a < len && strchr(" \t$", t[a])) a++;
        if (a < len && t[a] == '-') a++;
        la_num num;
        if (la_lex_number(t, a, len, 0, &num) > a && !num.overflow) d[(*nf)++] = num.value;
    }
    return 0;
}

/* A MATH solution (LaTeX), or with generated != 0 a model-written one
 * (on-policy): prose with LaTeX, plain-text steps included
 * (la_find_steps_text), whose answer is excluded both as the text's own
 * (\boxed, "####") and as the dataset's reference answer (R6). */
static int prepare_math(const char *sol, int generated, const char *reference, prepared *P,
                        const pctx *C)
{
    P->len = strlen(sol);
    P->text = dupn(sol, P->len);
    la_step *steps = NULL;
    la_rat *fin = NULL;
    size_t ns = 0, nf = 0;
    int rc = -1;
    if (!P->text ||
        (generated ? la_find_steps_text(P->text, P->len, &steps, &ns)
                   : la_find_steps(P->text, P->len, &steps, &ns)) ||
        (generated ? add_final_values(P->text, P->len, &fin, &nf)
                   : la_final_values(P->text, P->len, &fin, &nf)) ||
        (reference && add_final_values(reference, strlen(reference), &fin, &nf)) ||
        la_math_spans_mode(P->text, P->len, generated, &P->spans, &P->n_spans) ||
        !(P->answer = math_answer(P->text, P->len)))
        goto done;
    size_t limit = P->limit = generated ? la_text_limit(P->text, P->len)
                                        : la_first_boxed(P->text, P->len);
    const int rules = C->prm->site != CLENS_SITE_SEED; /* the seed's rule set stays as it was */
    size_t first_error = P->len; /* the first step of the text that is wrong in the source */
    for (size_t i = 0; i < ns; i++)
        if (steps[i].reason == LA_MISMATCH && steps[i].rhs.start < first_error)
            first_error = steps[i].rhs.start;
    for (size_t i = 0; i < ns; i++) {
        la_step *s = &steps[i];
        la_rat v = s->rhs.value;
        if (s->negative) v.num = -v.num;
        int reason = s->reason;
        const char *expr = P->text + s->lhs_start;
        size_t elen = s->lhs_end - s->lhs_start, cut = NO_STEP;
        if (reason == LA_OK && is_final(v, fin, nf)) reason = LA_FINAL_ANSWER;
        if (reason == LA_OK && rules) {
            la_rat lv;
            int ops = 0;
            la_eval(P->text, s->lhs_start, s->lhs_end, 0, &lv, &ops);
            if (pair_is_identity(expr, elen, ops, v)) reason = R_IDENTITY;
            else if (pair_count_value(P->text, pair_sentence_start(P->text, s->lhs_start),
                                      s->rhs.start, s->lhs_start, s->lhs_end, v, 1) > 0)
                reason = R_RESTATED;
        }
        if (reason == LA_OK) {
            if (rules && C->prm->cut == CLENS_CUT_LINE)
                cut = pair_line_cut(P->text, P->len, s->rhs.end, P->spans, P->n_spans, limit,
                                    !generated, &reason);
            else if (pair_step_end(P->text, P->len, s->rhs.end, P->spans, P->n_spans, limit) ==
                     NO_STEP)
                reason = R_ANSWER_IN_STEP;
        }
        if (reason == LA_OK && rules && first_error < (cut == NO_STEP ? s->rhs.end : cut))
            reason = R_SOURCE_ERROR;
        count(C, P, reason, s->rhs.start, s->rhs.end, s->negative, expr, elen,
              s->evaluated ? &s->lhs_value : NULL);
        if (reason == LA_OK && push_site(P, s->rhs.start, s->rhs.end, expr, elen, v, cut))
            goto done;
    }
    P->fin = fin;
    P->n_fin = nf;
    fin = NULL;
    rc = 0;
done:
    free(steps);
    free(fin);
    return rc;
}

/* GSM8K: strips the <<expr=n>> annotations, each a candidate whose site is
 * the number written right after it. */
static int prepare_gsm8k(const char *ans, prepared *P, const pctx *C)
{
    size_t len = strlen(ans);
    clens_sb out = {0};
    typedef struct { size_t s, e, ea, eb; la_rat v, lv; int reason, evaluated, neg, ops; } cand;
    cand *c = NULL;
    size_t nc = 0, cap = 0;
    int rc = -1;
    if (!(P->expr_src = dupn(ans, len))) goto done;
    for (size_t i = 0; i < len;) {
        const char *open = strstr(ans + i, "<<");
        const char *close = open ? strstr(open + 2, ">>") : NULL;
        if (!open || !close) {
            clens_sb_put(&out, ans + i, len - i);
            break;
        }
        size_t o = (size_t)(open - ans), cl = (size_t)(close - ans);
        clens_sb_put(&out, ans + i, o - i);
        i = cl + 2;
        cand k;
        memset(&k, 0, sizeof k);
        k.s = k.e = out.len;
        /* expr = n */
        size_t eq = cl;
        while (eq > o + 2 && ans[eq - 1] != '=') eq--;
        if (eq == o + 2) {
            k.reason = LA_MALFORMED;
        } else {
            k.ea = o + 2;
            k.eb = eq - 1;
            size_t p = eq;
            int neg = 0;
            while (p < cl && ans[p] == ' ') p++;
            if (p < cl && ans[p] == '-') { neg = 1; p++; }
            la_num n;
            size_t q = la_lex_number(ans, p, cl, 1, &n);
            while (q < cl && ans[q] == ' ') q++;
            if (q == p || q != cl || n.overflow) {
                k.reason = n.overflow ? LA_OVERFLOW : LA_RHS_NOT_NUMBER;
            } else {
                la_rat nv = n.value;
                if (neg) nv.num = -nv.num;
                k.neg = neg;
                /* the visible number after ">>" */
                size_t vp = i;
                int vneg = 0;
                if (vp < len && ans[vp] == '-') { vneg = 1; vp++; }
                la_num vis;
                size_t vq = la_lex_number(ans, vp, len, 0, &vis);
                la_rat vv = vis.value;
                if (vneg) vv.num = -vv.num;
                if (vq == vp || vis.overflow || vis.repeating || !la_rat_eq(vv, nv)) {
                    k.reason = LA_ANNOTATION_TEXT;
                } else {
                    k.s = out.len + (size_t)(vp - i);
                    k.e = out.len + (size_t)(vq - i);
                    int ops;
                    la_rat lv = {0, 1};
                    k.v = nv;
                    k.reason = la_eval(ans, k.ea, k.eb, 1, &lv, &ops);
                    k.ops = ops;
                    if (k.reason == LA_OK && ops == 0) k.reason = LA_TRIVIAL;
                    k.lv = lv;
                    k.evaluated = k.reason == LA_OK;
                    if (k.reason == LA_OK && !la_rat_eq(lv, nv)) {
                        /* approximation: |lv - nv| below one unit of n's last place */
                        long double d = (long double)lv.num / (long double)lv.den -
                                        (long double)nv.num / (long double)nv.den;
                        long double unit = 1;
                        for (int f = 0; f < n.frac_digits; f++) unit /= 10;
                        k.reason = (d < 0 ? -d : d) < unit ? LA_APPROXIMATION : LA_MISMATCH;
                    }
                }
            }
        }
        if (nc == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            cand *d = realloc(c, ncap * sizeof *d);
            if (!d) goto done;
            c = d;
            cap = ncap;
        }
        c[nc++] = k;
    }
    if (out.oom) goto done;
    P->text = out.p ? out.p : dups("");
    out.p = NULL;
    if (!P->text) goto done;
    P->len = strlen(P->text);
    /* final answer: the number after "####" */
    const char *h = strstr(P->text, "####");
    size_t hpos = P->limit = h ? (size_t)(h - P->text) : P->len;
    la_rat fin = {0, 1};
    int has_fin = 0;
    if (h) {
        size_t a = hpos + 4, b = P->len;
        while (a < b && strchr(" \t$", P->text[a])) a++;
        while (b > a && strchr(" \t\r\n", P->text[b - 1])) b--;
        if (!(P->answer = dupn(P->text + a, b - a))) goto done;
        if (a < b && P->text[a] == '-') a++;
        la_num n;
        if (la_lex_number(P->text, a, b, 0, &n) > a && !n.overflow) { fin = n.value; has_fin = 1; }
    } else if (!(P->answer = dups(""))) {
        goto done;
    }
    if (has_fin) {
        if (!(P->fin = malloc(sizeof *P->fin))) goto done;
        P->fin[0] = fin;
        P->n_fin = 1;
    }
    const int rules = C->prm->site != CLENS_SITE_SEED; /* the seed's rule set stays as it was */
    /* Errors of the source before a cut: an annotation whose value is wrong,
     * or a "W because E = V" line whose stated W is a one-digit typo of the
     * verified V ("He has $3.65 because 2 plus .6 plus .7 plus .15 equals
     * $3.45"; a W that differs more is usually another quantity: "He sold 11
     * lego sets because 11 x 15 = 165"). */
    size_t first_error = P->len;
    for (size_t i = 0; i < nc; i++) {
        if (c[i].reason == LA_MISMATCH && c[i].s < first_error) first_error = c[i].s;
        if (!c[i].evaluated || c[i].s == c[i].e || !la_rat_eq(c[i].lv, c[i].v)) continue;
        size_t ls = pair_line_start(P->text, c[i].s), b = ls, w = NO_STEP;
        while (b + 7 <= c[i].s && memcmp(P->text + b, "because", 7) != 0) b++;
        if (b + 7 > c[i].s) continue;
        la_num wn = {0};
        for (size_t q = ls; q < b;) { /* the last numeral before "because" */
            if (P->text[q] < '0' || P->text[q] > '9') { q++; continue; }
            la_num t;
            size_t r = la_lex_number(P->text, q, b, 0, &t);
            if (r <= q) { q++; continue; }
            w = q;
            wn = t;
            q = r;
        }
        if (w != NO_STEP && !wn.overflow && w < first_error &&
            pair_stands_alone(P->text, ls, b, w, wn.end) &&
            pair_one_digit_typo(P->text + w, wn.end - w, P->text + c[i].s, c[i].e - c[i].s))
            first_error = w;
    }
    for (size_t i = 0; i < nc; i++) {
        int reason = c[i].reason;
        const char *expr = P->expr_src + c[i].ea;
        size_t elen = c[i].eb - c[i].ea, cut = NO_STEP;
        if (reason == LA_OK && c[i].s >= hpos) reason = LA_AFTER_BOXED;
        if (reason == LA_OK && has_fin && is_final(c[i].v, &fin, 1)) reason = LA_FINAL_ANSWER;
        if (reason == LA_OK && rules) {
            if (pair_is_identity(expr, elen, c[i].ops, c[i].v)) reason = R_IDENTITY;
            else if (pair_count_value(P->text, pair_line_start(P->text, c[i].s), c[i].s, 0, 0,
                                      c[i].v, 1) > 0)
                reason = R_RESTATED;
        }
        if (reason == LA_OK) {
            if (rules && C->prm->cut == CLENS_CUT_LINE)
                cut = pair_line_cut(P->text, P->len, c[i].e, NULL, 0, hpos, 0, &reason);
            else if (pair_step_end(P->text, P->len, c[i].e, NULL, 0, hpos) == NO_STEP)
                reason = R_ANSWER_IN_STEP;
        }
        if (reason == LA_OK && rules && first_error < (cut == NO_STEP ? c[i].e : cut))
            reason = R_SOURCE_ERROR;
        count(C, P, reason, c[i].s, c[i].e, c[i].neg, expr, elen,
              c[i].evaluated ? &c[i].lv : NULL);
        if (reason == LA_OK && push_site(P, c[i].s, c[i].e, expr, elen, c[i].v, cut))
            goto done;
    }
    rc = 0;
done:
    free(out.p);
    free(c);
    return rc;
}

/* --------------------------------------------------------------- pairs */

void clens_pair_clear(clens_pair *p)
{
    if (!p) return;
    free(p->id);
    free(p->source);
    free(p->source_sha256);
    free(p->problem);
    free(p->clean_prefix);
    free(p->corrupted_prefix);
    free(p->site.expr);
    free(p->site.clean_value);
    free(p->site.corrupted_value);
    free(p->cut);
    free(p->corrupt);
    free(p->format);
    free(p->answer);
    free(p->solution_source);
    free(p->generator);
    memset(p, 0, sizeof *p);
}

void clens_pairs_free(clens_pair *pairs, size_t n)
{
    for (size_t i = 0; pairs && i < n; i++) clens_pair_clear(&pairs[i]);
    free(pairs);
}

/* plus-minus-one: the direction is the top bit of the second output of the
 * site choice's splitmix64 stream (state seed ^ fnv1a64(id)): 0 -> +1,
 * 1 -> -1. The other direction is taken when the drawn one would change the
 * digit count or go below zero, or would give a value that a reader can
 * take from elsewhere while the other does not: a final-answer value (by
 * absolute value) or a number written earlier on the site's line (a MATH
 * line is a paragraph), as in "less than $\sqrt{168}$. Since $13^2=168$".
 * malloc'd, NULL when out of memory. */
static int value_taken(const prepared *P, size_t site, const char *num, size_t n)
{
    la_num x;
    la_lex_number(num, 0, n, 0, &x);
    if (x.overflow) return 0;
    return is_final(x.value, P->fin, P->n_fin) ||
           pair_count_value(P->text, pair_line_start(P->text, site), site, 0, 0, x.value, 0) > 0;
}

static char *corrupt_plus_minus(const clens_pairs_params *prm, const char *id, const char *num,
                                size_t n, const prepared *P, size_t site)
{
    uint64_t state = prm->seed ^ fnv1a64(id);
    clens_splitmix64(&state);
    int dir = (clens_splitmix64(&state) >> 63) ? -1 : 1;
    char *a = malloc(n + 1), *b = malloc(n + 1);
    if (!a || !b) { free(a); free(b); return NULL; }
    int sig = prm->corrupt == CLENS_CORRUPT_PLUS_MINUS_SIG;
    int oka = step_numeral_at(num, n, dir, sig, a), okb = step_numeral_at(num, n, -dir, sig, b);
    if (oka && okb && value_taken(P, site, a, n) && !value_taken(P, site, b, n)) oka = 0;
    if (oka) { free(b); return a; }
    if (okb) { free(a); return b; }
    free(a);
    free(b);
    return corrupt_numeral(num, n, CLENS_CORRUPT_LAST_DIGIT);
}

/* Makes the pair of site k of a prepared text. 0 or -1 (out of memory). */
static int make_pair(const clens_pairs_params *prm, const char *id, const char *problem,
                     const prepared *P, size_t k, clens_pair *out)
{
    const psite *s = &P->sites[k];
    const char *t = P->text;
    size_t len = P->len;
    char cutbuf[48];
    memset(out, 0, sizeof *out);
    char *cv = prm->corrupt == CLENS_CORRUPT_PLUS_MINUS_ONE || prm->corrupt == CLENS_CORRUPT_PLUS_MINUS_SIG
                   ? corrupt_plus_minus(prm, id, t + s->start, s->end - s->start, P, s->start)
                   : corrupt_numeral(t + s->start, s->end - s->start, prm->corrupt);
    if (!cv) return -1;
    size_t cvn = strlen(cv), cut;
    clens_sb clean = {0}, corr = {0};
    if (prm->cut == CLENS_CUT_LINE) {
        cut = s->cut != NO_STEP ? s->cut
                                : pair_step_end(t, len, s->end, P->spans, P->n_spans, P->limit);
    } else {
        cut = utf8_advance(t, len, s->start, prm->cut_chars);
        if (cut < s->end) cut = s->end;
    }
    clens_sb_put(&clean, t, cut);
    clens_sb_put(&corr, t, s->start);
    clens_sb_put(&corr, cv, cvn);
    if (prm->cut == CLENS_CUT_CHARS_RAW) {
        /* the corrupted text cut N characters after the number's start in its own text */
        size_t rest = utf8_advance(cv, cvn, 0, prm->cut_chars);
        if (rest >= cvn) {
            long used = 0;
            for (size_t i = 0; i < cvn; i++) used += ((unsigned char)cv[i] & 0xC0) != 0x80;
            size_t c2 = utf8_advance(t, len, s->end, prm->cut_chars - used);
            clens_sb_put(&corr, t + s->end, c2 - s->end);
        }
    } else {
        clens_sb_put(&corr, t + s->end, cut - s->end);
    }
    cut_name(prm, cutbuf, sizeof cutbuf);
    out->id = dups(id);
    out->source = dups("");
    out->source_sha256 = dups("");
    out->problem = dups(problem);
    out->clean_prefix = clean.p ? clean.p : dups("");
    out->corrupted_prefix = corr.p ? corr.p : dups("");
    out->site.start = (int64_t)s->start;
    out->site.end = (int64_t)s->end;
    out->site.expr = dupn(s->expr, s->expr_len);
    out->site.clean_value = dupn(t + s->start, s->end - s->start);
    out->site.corrupted_value = cv;
    out->cut = dups(cutbuf);
    out->corrupt = dups(corrupt_name(prm->corrupt));
    out->seed = prm->seed;
    out->format = dups(format_name(prm->format));
    out->answer = dups(P->answer);
    out->n_sites = (int)P->n_sites;
    out->site_index = (int)k;
    out->site_rule = prm->site;
    out->solution_source = dups("reference");
    if (!out->solution_source || clean.oom || corr.oom || !out->id || !out->source || !out->source_sha256 ||
        !out->problem || !out->clean_prefix || !out->corrupted_prefix || !out->site.expr ||
        !out->site.clean_value || !out->cut || !out->corrupt || !out->format || !out->answer) {
        if (clean.oom) free(clean.p);
        if (corr.oom) free(corr.p);
        if (clean.oom) out->clean_prefix = NULL;
        if (corr.oom) out->corrupted_prefix = NULL;
        clens_pair_clear(out);
        return -1;
    }
    return 0;
}

static const char *site_rule_name(clens_site_mode m)
{
    return m == CLENS_SITE_LAST ? "last" : m == CLENS_SITE_SEED ? "seed" : "random";
}

/* The seed's injection point (study.md §3.1 step 3): the last match of
 * "=", spaces, an optional "$", then a decimal number \d+(\.\d+)? in the
 * text, with no check of what precedes the "=". Sets *s, *e (the number) and
 * returns the number of matches. */
static size_t seed_matches(const char *t, size_t len, size_t *s, size_t *e)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (t[i] != '=') continue;
        size_t p = i + 1;
        while (p < len && strchr(" \t\r\n\f\v", t[p])) p++;
        if (p < len && t[p] == '$') p++;
        size_t a = p;
        while (p < len && t[p] >= '0' && t[p] <= '9') p++;
        if (p == a) continue;
        if (p + 1 < len && t[p] == '.' && t[p + 1] >= '0' && t[p + 1] <= '9') {
            p++;
            while (p < len && t[p] >= '0' && t[p] <= '9') p++;
        }
        *s = a;
        *e = p;
        n++;
        i = p - 1;
    }
    return n;
}

static size_t choose_site(const clens_pairs_params *prm, const char *id, size_t n)
{
    if (prm->site == CLENS_SITE_LAST) return n - 1;
    uint64_t state = prm->seed ^ fnv1a64(id);
    uint64_t r = clens_splitmix64(&state);
    return (size_t)(((unsigned __int128)r * n) >> 64);
}

/* generated: the solution is model-written prose (prepare_text), with the
 * dataset's reference solution / answer in reference. */
static int from_text(const clens_pairs_params *params, const char *id, int64_t line,
                     const char *problem, const char *solution, int generated,
                     const char *reference, clens_pair *out, clens_pairs_stats *stats,
                     clens_error *err)
{
    prepared P;
    clens_pairs_stats local;
    memset(&P, 0, sizeof P);
    memset(&local, 0, sizeof local);
    if (!stats) stats = &local;
    memset(out, 0, sizeof *out);
    pctx C = {params, id, line, stats};
    int rc = params->format == CLENS_PAIRS_GSM8K && !generated
                 ? prepare_gsm8k(solution, &P, &C)
                 : prepare_math(solution, generated, reference, &P, &C);
    if (rc) {
        prepared_free(&P);
        return -clens_err(err, CLENS_E_NOMEM, "pairs: out of memory on problem %s", id);
    }
    stats->problems_with_site += P.n_sites > 0;
    if (params->site == CLENS_SITE_SEED) {
        /* the seed's rule: the last "= n" whatever the detector's verdict */
        size_t ms = 0, me = 0, nm = seed_matches(P.text, P.len, &ms, &me);
        int verified = 0;
        for (size_t i = 0; i < P.n_sites; i++) verified |= P.sites[i].start == ms;
        if (nm == 0) {
            prepared_free(&P);
            return 0;
        }
        size_t line0 = ms; /* expr: the text before "=" on its line, as written */
        while (line0 > 0 && P.text[line0 - 1] != '\n') line0--;
        size_t eq = ms;
        while (eq > line0 && P.text[eq - 1] != '=') eq--;
        size_t x0 = eq > line0 + 81 ? eq - 81 : line0; /* at most 80 bytes of it */
        while (x0 > line0 && ((unsigned char)P.text[x0] & 0xC0) == 0x80) x0--;
        psite one = {ms, me, P.text + x0, eq > x0 ? eq - 1 - x0 : 0, {0, 1}, NO_STEP};
        psite *keep = P.sites;
        size_t keep_n = P.n_sites;
        P.sites = &one;
        P.n_sites = 1;
        P.limit = P.len; /* no answer rule: the cut may run into the answer */
        rc = make_pair(params, id, problem, &P, 0, out);
        P.sites = keep;
        P.n_sites = keep_n;
        if (!rc) {
            out->n_sites = (int)nm;
            out->site_index = (int)nm - 1;
            out->site_verified = verified;
        }
    } else {
        if (P.n_sites == 0) {
            prepared_free(&P);
            return 0;
        }
        size_t k = choose_site(params, id, P.n_sites);
        rc = make_pair(params, id, problem, &P, k, out);
        if (!rc) out->site_verified = 1;
    }
    prepared_free(&P);
    if (rc) return -clens_err(err, CLENS_E_NOMEM, "pairs: out of memory on problem %s", id);
    out->line = line;
    return 1;
}

/* The internal builders return 1 (made), 0 (no usable site) or -status;
 * the public calls return the status and the first two in *made. */
static int made_status(int r, int *made)
{
    *made = r > 0;
    return r < 0 ? -r : CLENS_OK;
}

int clens_pairs_from_text(const clens_pairs_params *params, const char *id, const char *problem,
                          const char *solution, clens_pair *out, int *made, clens_pairs_stats *stats,
                          clens_error *err)
{
    return made_status(from_text(params, id, 0, problem, solution, 0, NULL, out, stats, err), made);
}

int clens_pairs_from_generation(const clens_pairs_params *params, const char *id,
                                const char *problem, const char *generated,
                                const char *reference, clens_pair *out, int *made,
                                clens_pairs_stats *stats, clens_error *err)
{
    pairs_row row = {(char *)id, (char *)problem, (char *)reference, 0};
    return made_status(pairs_from_row(params, &row, generated, out, stats, err), made);
}

/* "dir/base" of a path (the last two components). */
static void short_source(const char *path, char *buf, size_t n)
{
    const char *e = path + strlen(path), *p = e;
    int slashes = 0;
    while (p > path) {
        if (p[-1] == '/' && ++slashes == 2) break;
        p--;
    }
    snprintf(buf, n, "%s", p);
}

/* The dataset as named in messages and in each pair's "source". */
static const char *source_label(const clens_pairs_params *params)
{
    return params->source_name ? params->source_name : params->data_path ? params->data_path : "data";
}

void pairs_rows_free(pairs_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) {
        free(rows[i].id);
        free(rows[i].problem);
        free(rows[i].reference);
    }
    free(rows);
}

int pairs_read_rows(const clens_pairs_params *params, const char *data, size_t len,
                    pairs_row **rows_out, size_t *n_out, char sha[65], clens_error *err)
{
    const char *src = source_label(params);
    const int gsm = params->format == CLENS_PAIRS_GSM8K;
    const char *kp = gsm ? "question" : "problem", *ks = gsm ? "answer" : "solution";
    char shortsrc[512];
    pairs_row *rows = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    *rows_out = NULL;
    *n_out = 0;
    clens_sha256_hex(data, len, sha);
    short_source(src, shortsrc, sizeof shortsrc);
    long lineno = 0;
    size_t pos = 0;
    /* a UTF-8 byte order mark (as some editors write) is not part of line 1;
     * the sha256 stays the file's */
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) pos = 3;
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - data) : len, next = nl ? end + 1 : len;
        lineno++;
        size_t a = pos, b = end;
        pos = next;
        while (a < b && strchr(" \t\r", data[a])) a++;
        while (b > a && strchr(" \t\r", data[b - 1])) b--;
        if (a == b) continue;
        json_error_t je;
        json_t *o = json_loadb(data + a, b - a, 0, &je);
        if (!o || !json_is_object(o)) {
            rc = o ? clens_err(err, CLENS_E_FORMAT, "%s:%ld: expected a JSON object", src, lineno)
                   : clens_err(err, CLENS_E_FORMAT, "%s:%ld: invalid JSON: %s (column %d)", src,
                               lineno, je.text, je.column);
            json_decref(o);
            goto fail;
        }
        const char *prob = json_string_value(json_object_get(o, kp));
        const char *sol = json_string_value(json_object_get(o, ks));
        const char *idv = json_string_value(json_object_get(o, "id"));
        if (!prob || !sol) {
            rc = clens_err(err, CLENS_E_FORMAT,
                           "%s:%ld: expected string fields \"%s\" and \"%s\" (--format %s)", src,
                           lineno, kp, ks, format_name(params->format));
            json_decref(o);
            goto fail;
        }
        char idbuf[600];
        if (!idv) {
            snprintf(idbuf, sizeof idbuf, "%s:%ld", shortsrc, lineno);
            idv = idbuf;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            pairs_row *d = realloc(rows, nc * sizeof *d);
            if (!d) {
                json_decref(o);
                rc = clens_err(err, CLENS_E_NOMEM, "pairs: out of memory");
                goto fail;
            }
            rows = d;
            cap = nc;
        }
        pairs_row *r = &rows[n++];
        r->id = dups(idv);
        r->problem = dups(prob);
        r->reference = dups(sol);
        r->line = lineno;
        json_decref(o);
        if (!r->id || !r->problem || !r->reference) {
            rc = clens_err(err, CLENS_E_NOMEM, "pairs: out of memory");
            goto fail;
        }
    }
    if (n == 0)
        return clens_err(err, CLENS_E_FORMAT,
                         "%s: no rows: the file is empty or has only blank lines", src);
    *rows_out = rows;
    *n_out = n;
    return 0;
fail:
    pairs_rows_free(rows, n);
    return rc;
}

int pairs_finish(clens_pair *p, const clens_pairs_params *params, const char *sha, int64_t index)
{
    const char *src = source_label(params);
    free(p->source);
    free(p->source_sha256);
    p->source = dups(src);
    p->source_sha256 = dups(sha);
    p->candidate_index = index;
    return p->source && p->source_sha256 ? 0 : -1;
}

int pairs_from_row(const clens_pairs_params *params, const pairs_row *row, const char *generated,
                   clens_pair *out, clens_pairs_stats *stats, clens_error *err)
{
    if (!generated)
        return from_text(params, row->id, row->line, row->problem, row->reference, 0, NULL, out,
                         stats, err);
    int rc = from_text(params, row->id, row->line, row->problem, generated, 1, row->reference, out,
                       stats, err);
    if (rc == 1) {
        free(out->solution_source);
        if (!(out->solution_source = dups("on-policy"))) {
            clens_pair_clear(out);
            return -clens_err(err, CLENS_E_NOMEM, "pairs: out of memory on problem %s", row->id);
        }
    }
    return rc;
}

int clens_pairs_build_buffer(const clens_pairs_params *params, const char *data, size_t len,
                             clens_pair **pairs_out, size_t *n_out, clens_pairs_stats *stats_out,
                             clens_error *err)
{
    char sha[65];
    clens_pairs_stats st;
    clens_pair *pairs = NULL;
    pairs_row *rows = NULL;
    uint64_t *hashes = NULL; /* fnv1a64 of each kept pair's clean prefix */
    size_t n = 0, nrows = 0;
    int rc = 0;
    memset(&st, 0, sizeof st);
    *pairs_out = NULL;
    *n_out = 0;
    if (params->seed > (uint64_t)INT64_MAX)
        return clens_err(err, CLENS_E_ARG, "pairs: seed must be at most 2^63-1");
    if ((rc = pairs_read_rows(params, data, len, &rows, &nrows, sha, err))) return rc;
    if (nrows && (!(pairs = calloc(nrows, sizeof *pairs)) ||
                  !(hashes = calloc(nrows, sizeof *hashes)))) {
        pairs_rows_free(rows, nrows);
        free(pairs);
        return clens_err(err, CLENS_E_NOMEM, "pairs: out of memory");
    }
    for (size_t i = 0; i < nrows; i++) {
        if (params->limit > 0 && (long)n >= params->limit) break;
        st.problems++;
        int got = pairs_from_row(params, &rows[i], NULL, &pairs[n], &st, err);
        if (got < 0) { rc = -got; goto fail; }
        if (got == 0) continue;
        /* a duplicate: the same clean prompt as an earlier pair (two problems
         * whose solutions open alike; the corruption may differ) adds nothing.
         * The seed's rule set keeps them (fidelity). */
        uint64_t h = fnv1a64(pairs[n].clean_prefix);
        int dup = 0;
        for (size_t j = 0; j < n && !dup && params->site != CLENS_SITE_SEED; j++)
            dup = hashes[j] == h && strcmp(pairs[j].clean_prefix, pairs[n].clean_prefix) == 0;
        if (dup) {
            clens_pair_clear(&pairs[n]);
            st.duplicates++;
            continue;
        }
        hashes[n] = h;
        if (pairs_finish(&pairs[n], params, sha, (int64_t)n)) {
            n++;
            rc = clens_err(err, CLENS_E_NOMEM, "pairs: out of memory");
            goto fail;
        }
        n++;
    }
    pairs_rows_free(rows, nrows);
    free(hashes);
    st.pairs = (long)n;
    memcpy(st.source_sha256, sha, sizeof sha);
    *pairs_out = pairs;
    *n_out = n;
    if (stats_out) *stats_out = st;
    return 0;
fail:
    pairs_rows_free(rows, nrows);
    free(hashes);
    clens_pairs_free(pairs, n);
    return rc;
}

int clens_pairs_build(const clens_pairs_params *params, clens_pair **pairs, size_t *n,
                      clens_pairs_stats *stats, clens_error *err)
{
    char *data;
    size_t len;
    *pairs = NULL;
    *n = 0;
    if (!params->data_path) return clens_err(err, CLENS_E_ARG, "pairs: no data file given");
    /* clens_read_file refuses a folder, FIFO or device by name (base/infile.c) */
    int rc = clens_read_file(params->data_path, &data, &len, err);
    if (rc) return rc;
    rc = clens_pairs_build_buffer(params, data, len, pairs, n, stats, err);
    free(data);
    return rc;
}

/* ----------------------------------------------------------------- JSON */

static json_t *jstr(const char *s) { return json_string(s ? s : ""); }

int clens_pair_to_json(const clens_pair *p, char **out, clens_error *err)
{
    *out = NULL;
    json_t *o = json_object(), *site = json_object();
    if (!o || !site) { json_decref(o); json_decref(site); return clens_err(err, CLENS_E_NOMEM, "out of memory"); }
    int bad = 0;
    bad |= json_object_set_new(o, "id", jstr(p->id));
    bad |= json_object_set_new(o, "source", jstr(p->source));
    bad |= json_object_set_new(o, "source_sha256", jstr(p->source_sha256));
    bad |= json_object_set_new(o, "problem", jstr(p->problem));
    bad |= json_object_set_new(o, "clean_prefix", jstr(p->clean_prefix));
    bad |= json_object_set_new(o, "corrupted_prefix", jstr(p->corrupted_prefix));
    bad |= json_object_set_new(site, "start", json_integer(p->site.start));
    bad |= json_object_set_new(site, "end", json_integer(p->site.end));
    bad |= json_object_set_new(site, "expr", jstr(p->site.expr));
    bad |= json_object_set_new(site, "clean_value", jstr(p->site.clean_value));
    bad |= json_object_set_new(site, "corrupted_value", jstr(p->site.corrupted_value));
    bad |= json_object_set_new(o, "site", site);
    bad |= json_object_set_new(o, "cut", jstr(p->cut));
    bad |= json_object_set_new(o, "corrupt", jstr(p->corrupt));
    bad |= json_object_set_new(o, "seed", json_integer((json_int_t)p->seed));
    bad |= json_object_set_new(o, "candidate_index", json_integer(p->candidate_index));
    bad |= json_object_set_new(o, "format", jstr(p->format));
    bad |= json_object_set_new(o, "line", json_integer(p->line));
    bad |= json_object_set_new(o, "answer", jstr(p->answer));
    bad |= json_object_set_new(o, "n_sites", json_integer(p->n_sites));
    bad |= json_object_set_new(o, "site_index", json_integer(p->site_index));
    bad |= json_object_set_new(o, "site_rule",
                               json_string(site_rule_name(p->site_rule)));
    bad |= json_object_set_new(o, "site_verified", json_boolean(p->site_verified));
    if (p->solution_source)
        bad |= json_object_set_new(o, "solution_source", jstr(p->solution_source));
    if (p->generator) {
        json_error_t je;
        json_t *g = json_loads(p->generator, 0, &je);
        bad |= !g || json_object_set_new(o, "generator", g);
    }
    /* jansson refuses a string that is not UTF-8, or fails to allocate: both
     * show as a failed set; a failed dump is out of memory */
    *out = bad ? NULL : json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (bad)
        return clens_err(err, CLENS_E_FORMAT, "pair %s cannot be written as JSON (invalid UTF-8 in a string?)",
                         p->id ? p->id : "?");
    return *out ? CLENS_OK : clens_err(err, CLENS_E_NOMEM, "out of memory");
}

int clens_pairs_write_jsonl(const char *path, const clens_pair *pairs, size_t n, clens_error *err)
{
    clens_sb b = {0};
    clens_sb_put(&b, "", 0);
    for (size_t i = 0; i < n; i++) {
        char *line;
        clens_error e2 = {0};
        int rc = clens_pair_to_json(&pairs[i], &line, &e2);
        if (rc) {
            free(b.p);
            return clens_err(err, rc, "%s: pair %zu: %s", path, i, e2.msg);
        }
        clens_sb_put(&b, line, strlen(line));
        clens_sb_put(&b, "\n", 1);
        free(line);
    }
    if (b.oom) {
        free(b.p);
        return clens_err(err, CLENS_E_NOMEM, "%s: out of memory", path);
    }
    int rc = clens_write_file_atomic(path, b.p ? b.p : "", b.len, err);
    free(b.p);
    return rc;
}

/* Reads one string field; NULL if missing or not a string. */
static const char *get_str(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static int get_int(json_t *o, const char *k, int64_t *v)
{
    json_t *x = json_object_get(o, k);
    if (!json_is_integer(x)) return -1;
    *v = (int64_t)json_integer_value(x);
    return 0;
}

/* Parses one pairs.jsonl line into p. 0, or fills why. */
static int parse_pair(json_t *o, clens_pair *p, size_t index, char *why, size_t nwhy)
{
    static const char *const keys[] = {"id", "source", "source_sha256", "problem", "clean_prefix",
                                       "corrupted_prefix", "cut", "corrupt"};
    static const char *const skeys[] = {"expr", "clean_value", "corrupted_value"};
    json_t *site = json_object_get(o, "site");
    int64_t start, end, seed, v;
    memset(p, 0, sizeof *p);
    if (!json_is_object(o)) { snprintf(why, nwhy, "expected a JSON object"); return -1; }
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (!get_str(o, keys[i])) {
            snprintf(why, nwhy, "expected a string \"%s\"", keys[i]);
            return -1;
        }
    if (!json_is_object(site)) { snprintf(why, nwhy, "expected an object \"site\""); return -1; }
    for (size_t i = 0; i < sizeof skeys / sizeof *skeys; i++)
        if (!get_str(site, skeys[i])) {
            snprintf(why, nwhy, "expected a string \"site.%s\"", skeys[i]);
            return -1;
        }
    if (get_int(site, "start", &start) || get_int(site, "end", &end)) {
        snprintf(why, nwhy, "expected integers \"site.start\" and \"site.end\"");
        return -1;
    }
    if (get_int(o, "seed", &seed) || seed < 0) {
        snprintf(why, nwhy, "expected a non-negative integer \"seed\"");
        return -1;
    }
    const char *clean = get_str(o, "clean_prefix"), *corr = get_str(o, "corrupted_prefix");
    const char *cv = get_str(site, "clean_value"), *xv = get_str(site, "corrupted_value");
    size_t lc = strlen(clean), lx = strlen(corr), lcv = strlen(cv), lxv = strlen(xv);
    if (start < 0 || end < start || (size_t)end > lc || (size_t)(end - start) != lcv ||
        memcmp(clean + start, cv, lcv) != 0) {
        snprintf(why, nwhy, "site [%lld, %lld) is not \"%s\" in clean_prefix", (long long)start,
                 (long long)end, cv);
        return -1;
    }
    if ((size_t)start + lxv > lx || memcmp(corr + start, xv, lxv) != 0 ||
        memcmp(clean, corr, (size_t)start) != 0) {
        snprintf(why, nwhy, "corrupted_prefix does not hold \"%s\" at %lld after the shared text",
                 xv, (long long)start);
        return -1;
    }
    p->id = dups(get_str(o, "id"));
    p->source = dups(get_str(o, "source"));
    p->source_sha256 = dups(get_str(o, "source_sha256"));
    p->problem = dups(get_str(o, "problem"));
    p->clean_prefix = dups(clean);
    p->corrupted_prefix = dups(corr);
    p->site.start = start;
    p->site.end = end;
    p->site.expr = dups(get_str(site, "expr"));
    p->site.clean_value = dups(cv);
    p->site.corrupted_value = dups(xv);
    p->cut = dups(get_str(o, "cut"));
    p->corrupt = dups(get_str(o, "corrupt"));
    p->seed = (uint64_t)seed;
    p->candidate_index = get_int(o, "candidate_index", &v) ? (int64_t)index : v;
    p->format = dups(get_str(o, "format"));
    p->answer = dups(get_str(o, "answer"));
    p->line = get_int(o, "line", &v) ? 0 : v;
    p->n_sites = get_int(o, "n_sites", &v) ? 0 : (int)v;
    p->site_index = get_int(o, "site_index", &v) ? 0 : (int)v;
    const char *rule = get_str(o, "site_rule");
    p->site_rule = rule && strcmp(rule, "last") == 0   ? CLENS_SITE_LAST
                   : rule && strcmp(rule, "seed") == 0 ? CLENS_SITE_SEED
                                                       : CLENS_SITE_RANDOM;
    json_t *sv = json_object_get(o, "site_verified");
    p->site_verified = sv ? json_is_true(sv) : 1;
    const char *src = get_str(o, "solution_source");
    p->solution_source = dups(src ? src : "reference");
    json_t *gen = json_object_get(o, "generator");
    if (json_is_object(gen)) p->generator = json_dumps(gen, JSON_COMPACT | JSON_SORT_KEYS);
    if (!p->id || !p->source || !p->source_sha256 || !p->problem || !p->clean_prefix ||
        !p->corrupted_prefix || !p->site.expr || !p->site.clean_value ||
        !p->site.corrupted_value || !p->cut || !p->corrupt || !p->format || !p->answer ||
        !p->solution_source) {
        clens_pair_clear(p);
        snprintf(why, nwhy, "out of memory");
        return -1;
    }
    return 0;
}

int clens_pairs_read_jsonl(const char *path, clens_pair **pairs_out, size_t *n_out, clens_error *err)
{
    char *data;
    size_t len, n = 0, cap = 0;
    clens_pair *pairs = NULL;
    *pairs_out = NULL;
    *n_out = 0;
    int rc = clens_read_file(path, &data, &len, err);
    if (rc) return rc;
    long lineno = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - data) : len, a = pos, b = end;
        pos = nl ? end + 1 : len;
        lineno++;
        while (a < b && strchr(" \t\r", data[a])) a++;
        while (b > a && strchr(" \t\r", data[b - 1])) b--;
        if (a == b) continue;
        json_error_t je;
        json_t *o = json_loadb(data + a, b - a, 0, &je);
        if (!o) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s:%ld: invalid JSON: %s (column %d)", path,
                           lineno, je.text, je.column);
            goto fail;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            clens_pair *d = realloc(pairs, nc * sizeof *d);
            if (!d) {
                json_decref(o);
                rc = clens_err(err, CLENS_E_NOMEM, "%s: out of memory", path);
                goto fail;
            }
            pairs = d;
            cap = nc;
        }
        char why[512];
        int bad = parse_pair(o, &pairs[n], n, why, sizeof why);
        json_decref(o);
        if (bad) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s:%ld: %s", path, lineno, why);
            goto fail;
        }
        n++;
    }
    free(data);
    *pairs_out = pairs;
    *n_out = n;
    return 0;
fail:
    free(data);
    clens_pairs_free(pairs, n);
    return rc;
}
