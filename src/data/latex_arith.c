/*
 * latex_arith.c: finds and verifies "lhs = n" arithmetic steps in LaTeX
 * (MATH reference solutions) and evaluates plain GSM8K annotation expressions.
 *
 * Exact arithmetic. Values are rationals with 128-bit numerator and
 * denominator, kept reduced; every add / multiply goes through
 * __builtin_*_overflow, so a result that does not fit is reported as
 * LA_OVERFLOW instead of wrapping. Roots and fractional powers are exact or
 * LA_NOT_RATIONAL (sqrt(2) is never approximated).
 *
 * Where math is (la_find_steps). Only inside $..$, $$..$$, \[..\], \(..\) and
 * the align / equation / gather / multline / eqnarray environments; "\$" is an
 * escaped dollar, and [asy]..[/asy] blocks are skipped. (On the shared MATH
 * algebra data, one "a = n" occurs outside math in 2,931 solutions.)
 *
 * Chains. A math segment is split at top level (outside every {}, (), [],
 * \left..\right) into terms separated by relations ("=", "<", "\le",
 * "\approx", "\Rightarrow", ...) and separators ("," ";" ":" "." that is not a
 * decimal point, "\quad", "\text{..}", "\mathrm{..}", "\begin/\end{..}",
 * "\\"). A line break "\\" followed by "&=" (or "=", or another relation)
 * continues the chain, so in "a &= 3\cdot4 \\ &= 12" the lhs of "12" is
 * "3\cdot4". Every "=" whose right term starts with a number (after an
 * optional "-" / "\$" / "\boxed{") is a candidate; its lhs is the term just
 * before it (in "x = 3\cdot4 = 12" the lhs of 12 is "3\cdot4").
 *
 * Numbers. "74,592" and "1,\!000" / "1{,}000" are one number (groups of 3
 * after a first group of 1-3 digits); a plain comma inside (), [] or \{\} is
 * a tuple separator ("(25,625)" is a pair), "\!" and "{,}" always separate
 * thousands. Decimals "2.5", ".5". "18.\overline{18}" and "3.14\ldots" are
 * not plain numbers.
 *
 * Grammar of a numeric lhs (la_eval; whitespace, "&", "\,", "\;", "\!",
 * "\$", "\displaystyle", "\left", "\right", "\big(" .. are ignored):
 *   expr    := ['-'|'+'] product (('+'|'-') product)*
 *   product := unary (('\cdot'|'\times'|'*'|'\ast'|'\div'|'/') unary | implicit unary)*
 *   unary   := '-' unary | power
 *   power   := postfix ['^' arg]
 *   postfix := primary ('!' | '\%')*
 *   primary := number | '(' expr ')' | '[' expr ']' | '{' expr '}'
 *            | ('\frac'|'\dfrac'|'\tfrac'|'\cfrac') arg arg | '\sqrt' ['[' expr ']'] arg
 *   arg     := '{' expr '}' | one digit | primary      (so "\frac12" = 1/2; "2^10", which
 *              LaTeX reads as "2^1" then "0", is LA_MALFORMED)
 * Implicit multiplication ("(15)(1500)", "2(3+4)", "2\sqrt{9}") is a
 * product, except a bare number followed by a number ("2 3") or by a fraction
 * ("3\frac12", a mixed number in MATH's word problems): both are LA_MALFORMED.
 * "\%" divides by 100, "!" is the factorial. Plain mode (GSM8K) accepts only
 * digits, "+ - * / ( ) ." and "%" (percent), no implicit multiplication.
 *
 * Before evaluating, the lhs is classified: a comma left over after reading
 * numbers, or a set "\{", is LA_TUPLE; letters, Greek letters, subscripts and
 * any macro not listed above make it LA_ASSIGNMENT (a bare name: no digit and
 * no operator outside subscripts, e.g. "x", "a_1", "f(x)") or LA_UNKNOWNS.
 * A lone number ("12 = 12", no operation) is LA_TRIVIAL. When lhs != rhs, the
 * step is LA_APPROXIMATION if rhs is lhs rounded or truncated to rhs's
 * decimals (|lhs-rhs| < one unit in rhs's last place: "\frac{988}{6} = 164",
 * "452\div1.98 = 228.29"), else LA_MISMATCH (e.g. test/algebra/351:
 * "(-4)^2 + 4 \cdot 1 \cdot (-1) = 20" is 12).
 */
#include "data/latex_arith.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LA_MAX ((la_i128)(((unsigned __int128)1 << 127) - 1))
#define LA_MIN (-LA_MAX - 1)

static const char *const reason_names[LA_REASON_COUNT] = {
    "ok", "after_boxed", "rhs_not_number", "no_lhs", "tuple", "assignment", "unknowns",
    "malformed", "not_rational", "overflow", "trivial", "approximation", "mismatch",
    "final_answer", "annotation_text", "too_deep",
};

const char *la_reason_name(int reason)
{
    return reason >= 0 && reason < LA_REASON_COUNT ? reason_names[reason] : "?";
}

/* ------------------------------------------------------------- rationals */

static la_i128 gcd128(la_i128 a, la_i128 b)
{
    if (a < 0) a = -a;
    if (b < 0) b = -b;
    while (b) {
        la_i128 t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Builds num/den reduced. 0 or a reason. */
static int rat_make(la_i128 num, la_i128 den, la_rat *out)
{
    if (den == 0) return LA_NOT_RATIONAL;
    if (num == LA_MIN || den == LA_MIN) return LA_OVERFLOW;
    if (den < 0) { num = -num; den = -den; }
    la_i128 g = gcd128(num, den);
    if (g > 1) { num /= g; den /= g; }
    out->num = num;
    out->den = den;
    return 0;
}

static la_rat rat_int(la_i128 v)
{
    la_rat r = {v, 1};
    return r;
}

static int rat_add(la_rat a, la_rat b, la_rat *out)
{
    la_i128 g = gcd128(a.den, b.den), n1, n2, n, d;
    if (__builtin_mul_overflow(a.num, b.den / g, &n1) ||
        __builtin_mul_overflow(b.num, a.den / g, &n2) ||
        __builtin_add_overflow(n1, n2, &n) ||
        __builtin_mul_overflow(a.den, b.den / g, &d))
        return LA_OVERFLOW;
    return rat_make(n, d, out);
}

static int rat_neg(la_rat a, la_rat *out)
{
    if (a.num == LA_MIN) return LA_OVERFLOW;
    out->num = -a.num;
    out->den = a.den;
    return 0;
}

static int rat_sub(la_rat a, la_rat b, la_rat *out)
{
    la_rat nb;
    int rc = rat_neg(b, &nb);
    return rc ? rc : rat_add(a, nb, out);
}

static int rat_mul(la_rat a, la_rat b, la_rat *out)
{
    la_i128 g1 = gcd128(a.num, b.den), g2 = gcd128(b.num, a.den), n, d;
    if (g1 == 0) g1 = 1;
    if (g2 == 0) g2 = 1;
    if (__builtin_mul_overflow(a.num / g1, b.num / g2, &n) ||
        __builtin_mul_overflow(a.den / g2, b.den / g1, &d))
        return LA_OVERFLOW;
    return rat_make(n, d, out);
}

static int rat_div(la_rat a, la_rat b, la_rat *out)
{
    if (b.num == 0) return LA_NOT_RATIONAL;
    la_rat inv;
    int rc = rat_make(b.den, b.num, &inv);
    return rc ? rc : rat_mul(a, inv, out);
}

/* a^e for an integer e. */
static int rat_pow_int(la_rat a, la_i128 e, la_rat *out)
{
    if (e < 0) {
        if (a.num == 0) return LA_NOT_RATIONAL;
        int rc = rat_make(a.den, a.num, &a);
        if (rc) return rc;
        e = -e;
    }
    if (e == 0) { *out = rat_int(1); return 0; }
    if (a.num == 0 || (a.den == 1 && (a.num == 1 || a.num == -1))) {
        *out = (a.num == -1 && (e & 1) == 0) ? rat_int(1) : a;
        return 0;
    }
    if (e > 128) return LA_OVERFLOW; /* |a| != 0, 1 needs > 127 bits */
    la_rat r = rat_int(1);
    while (e) {
        int rc;
        if (e & 1 && (rc = rat_mul(r, a, &r))) return rc;
        e >>= 1;
        if (e && (rc = rat_mul(a, a, &a))) return rc;
    }
    *out = r;
    return 0;
}

/* x^n for unsigned x, saturating at UINT128_MAX. */
static unsigned __int128 upow_sat(unsigned __int128 x, int n)
{
    unsigned __int128 r = 1;
    for (int i = 0; i < n; i++) {
        if (x != 0 && r > (~(unsigned __int128)0) / x) return ~(unsigned __int128)0;
        r *= x;
    }
    return r;
}

/* Exact integer n-th root of x >= 0, or -1 if x is not an n-th power. */
static la_i128 iroot_exact(la_i128 x, int n)
{
    if (x < 2) return x;
    unsigned __int128 ux = (unsigned __int128)x, lo = 1, hi = 2;
    while (upow_sat(hi, n) <= ux) { lo = hi; hi *= 2; }
    while (hi - lo > 1) { /* upow(lo) <= x < upow(hi) */
        unsigned __int128 mid = lo + (hi - lo) / 2;
        if (upow_sat(mid, n) <= ux) lo = mid; else hi = mid;
    }
    return upow_sat(lo, n) == ux ? (la_i128)lo : -1;
}

/* The n-th root of a, exact or LA_NOT_RATIONAL. */
static int rat_root(la_rat a, la_i128 n, la_rat *out)
{
    if (n < 1 || n > 127) return LA_NOT_RATIONAL;
    if (n == 1) { *out = a; return 0; }
    int neg = a.num < 0;
    if (neg && (n & 1) == 0) return LA_NOT_RATIONAL;
    la_i128 rn = iroot_exact(neg ? -a.num : a.num, (int)n), rd = iroot_exact(a.den, (int)n);
    if (rn < 0 || rd < 0) return LA_NOT_RATIONAL;
    return rat_make(neg ? -rn : rn, rd, out);
}

static int rat_pow(la_rat a, la_rat e, la_rat *out)
{
    if (e.den == 1) return rat_pow_int(a, e.num, out);
    la_rat r;
    int rc = rat_root(a, e.den, &r);
    return rc ? rc : rat_pow_int(r, e.num, out);
}

static int rat_fact(la_rat a, la_rat *out)
{
    if (a.den != 1 || a.num < 0) return LA_NOT_RATIONAL;
    if (a.num > 33) return LA_OVERFLOW;
    la_i128 r = 1;
    for (la_i128 i = 2; i <= a.num; i++) r *= i;
    *out = rat_int(r);
    return 0;
}

int la_rat_eq(la_rat a, la_rat b)
{
    return a.num == b.num && a.den == b.den;
}

static char *i128_str(la_i128 v, char *p)
{
    char tmp[64];
    int n = 0, neg = v < 0;
    unsigned __int128 u = neg ? (unsigned __int128)0 - (unsigned __int128)v : (unsigned __int128)v;
    do { tmp[n++] = (char)('0' + (int)(u % 10)); u /= 10; } while (u);
    if (neg) *p++ = '-';
    while (n) *p++ = tmp[--n];
    *p = 0;
    return p;
}

char *la_rat_str(la_rat a, char *buf, size_t n)
{
    char tmp[96];
    char *p = i128_str(a.num, tmp);
    if (a.den != 1) { *p++ = '/'; i128_str(a.den, p); }
    snprintf(buf, n, "%s", tmp);
    return buf;
}

/* --------------------------------------------------------------- lexing */

static int starts(const char *s, size_t i, size_t end, const char *lit)
{
    size_t n = strlen(lit);
    return i + n <= end && memcmp(s + i, lit, n) == 0;
}

/* Length of the macro name at s[i] == '\\': letters, or one other char.
 * Returns the total length including the backslash (1 if at the end). */
static size_t macro_len(const char *s, size_t i, size_t end)
{
    size_t j = i + 1;
    if (j >= end) return 1;
    if (!isalpha((unsigned char)s[j])) return 2;
    while (j < end && isalpha((unsigned char)s[j])) j++;
    return j - i;
}

/* 1 if the macro at s[i] is exactly \name. */
static int macro_is(const char *s, size_t i, size_t end, const char *name)
{
    size_t n = macro_len(s, i, end);
    return s[i] == '\\' && n - 1 == strlen(name) && memcmp(s + i + 1, name, n - 1) == 0;
}

static int macro_in(const char *s, size_t i, size_t end, const char *const *names)
{
    for (; *names; names++)
        if (macro_is(s, i, end, *names)) return 1;
    return 0;
}

static const char *const M_FRAC[] = {"frac", "dfrac", "tfrac", "cfrac", NULL};
static const char *const M_SIZE[] = {"big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr",
                                     "biggl", "biggr", "Biggl", "Biggr", "left", "right", NULL};
static const char *const M_IGNORE[] = {"displaystyle", "textstyle", "limits", "nolimits",
                                       "notag", "nonumber", NULL};
static const char *const M_MUL[] = {"cdot", "times", "ast", NULL};
static const char *const M_GREEK[] = {
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta",
    "vartheta", "iota", "kappa", "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau",
    "upsilon", "phi", "varphi", "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda",
    "Xi", "Pi", "Sigma", "Phi", "Psi", "Omega", NULL};

static int is_digit(char c) { return c >= '0' && c <= '9'; }

size_t la_lex_number(const char *s, size_t i, size_t end, int tuple_ctx, la_num *o)
{
    memset(o, 0, sizeof *o);
    o->start = o->end = i;
    size_t p = i;
    if (!(p < end && (is_digit(s[p]) || (s[p] == '.' && p + 1 < end && is_digit(s[p + 1])))))
        return i;
    la_i128 acc = 0;
    int ovf = 0, first_group = 0;
    while (p < end && is_digit(s[p])) {
        if (__builtin_mul_overflow(acc, 10, &acc) || __builtin_add_overflow(acc, s[p] - '0', &acc))
            ovf = 1;
        first_group++;
        p++;
    }
    /* thousands separators */
    int ngroups = 0;
    while (first_group >= 1 && first_group <= 3 && p < end) {
        size_t q;
        int strong = 0;
        if (s[p] == ',') {
            q = p + 1;
            if (starts(s, q, end, "\\!")) { q += 2; strong = 1; }
        } else if (starts(s, p, end, "{,}")) {
            q = p + 3;
            strong = 1;
        } else {
            break;
        }
        if (!strong && tuple_ctx) break;
        if (!(q + 3 <= end && is_digit(s[q]) && is_digit(s[q + 1]) && is_digit(s[q + 2]) &&
              !(q + 3 < end && is_digit(s[q + 3]))))
            break;
        for (int k = 0; k < 3; k++)
            if (__builtin_mul_overflow(acc, 10, &acc) ||
                __builtin_add_overflow(acc, s[q + k] - '0', &acc))
                ovf = 1;
        p = q + 3;
        ngroups++;
    }
    o->has_sep = ngroups > 0;
    la_i128 den = 1;
    if (p + 1 < end && s[p] == '.' && is_digit(s[p + 1])) {
        p++;
        while (p < end && is_digit(s[p])) {
            if (__builtin_mul_overflow(acc, 10, &acc) ||
                __builtin_add_overflow(acc, s[p] - '0', &acc) ||
                __builtin_mul_overflow(den, 10, &den))
                ovf = 1;
            o->frac_digits++;
            p++;
        }
    }
    size_t q = p;
    if (q < end && s[q] == '.') q++;
    if (starts(s, q, end, "\\overline") || starts(s, q, end, "\\dot{") ||
        starts(s, q, end, "\\dot "))
        o->repeating = 1;
    o->end = p;
    o->overflow = ovf;
    if (!ovf) rat_make(acc, den, &o->value);
    return p;
}

/* Skips what does not change a value: spaces, '&', '~', thin spaces, "\$",
 * size modifiers (\left, \big ...; "\left." / "\right." entirely). */
static size_t skip_ws(const char *s, size_t p, size_t end, int plain)
{
    for (;;) {
        if (p >= end) return end;
        char c = s[p];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') { p++; continue; }
        if (plain) return p;
        if (c == '&' || c == '~') { p++; continue; }
        if (c != '\\') return p;
        if (p + 1 < end && strchr(",;:! $", s[p + 1])) { p += 2; continue; }
        if (macro_in(s, p, end, M_IGNORE)) { p += macro_len(s, p, end); continue; }
        if (macro_in(s, p, end, M_SIZE)) {
            size_t q = p + macro_len(s, p, end);
            while (q < end && s[q] == ' ') q++;
            if (q < end && s[q] == '.') q++;
            p = q;
            continue;
        }
        return p;
    }
}

/* ------------------------------------------------------- classification */

/* Pre-scan of a term: tuple / bare name / unknown symbols, else LA_OK. */
static int classify(const char *s, size_t a, size_t b, int plain)
{
    int var = 0, unknown = 0, tuple = 0, digit = 0, op = 0, paren = 0;
    size_t p = a;
    while (p < b) {
        char c = s[p];
        if (is_digit(c) || (c == '.' && p + 1 < b && is_digit(s[p + 1]))) {
            la_num n;
            p = la_lex_number(s, p, b, paren > 0, &n);
            digit = 1;
            continue;
        }
        if (c == '\\') {
            size_t n = macro_len(s, p, b);
            if (plain) unknown = 1;
            else if (n == 2) {
                char d = s[p + 1];
                if (d == '{') { tuple = 1; paren++; }
                else if (d == '}') paren--;
                else if (d == '%') op = 1;
                else if (!strchr(",;:! $", d)) unknown = 1;
            } else if (macro_in(s, p, b, M_FRAC) || macro_is(s, p, b, "sqrt") ||
                       macro_in(s, p, b, M_MUL) || macro_is(s, p, b, "div")) {
                op = 1;
            } else if (macro_in(s, p, b, M_GREEK)) {
                var = 1;
            } else if (macro_in(s, p, b, M_SIZE)) {
                size_t q = p + n; /* "\left." / "\right." are invisible */
                while (q < b && s[q] == ' ') q++;
                if (q < b && s[q] == '.') n = q + 1 - p;
            } else if (!macro_in(s, p, b, M_IGNORE)) {
                unknown = 1;
            }
            p += n;
            continue;
        }
        if (isalpha((unsigned char)c) || c == '\'') { var = 1; p++; continue; }
        if (c == '_' && !plain) {
            /* subscript: a name; its digits are not values */
            var = 1;
            p = skip_ws(s, p + 1, b, 0);
            if (p < b && s[p] == '{') {
                int d = 0;
                for (; p < b; p++) {
                    if (s[p] == '{') d++;
                    else if (s[p] == '}' && --d == 0) { p++; break; }
                }
            } else if (p < b) {
                p += s[p] == '\\' ? macro_len(s, p, b) : 1;
            }
            continue;
        }
        switch (c) {
        case ',': tuple = 1; break;
        case '(': case '[': paren++; break;
        case ')': case ']': paren--; break;
        case '+': case '-': case '*': case '/': op = 1; break;
        case '^': case '!': if (plain) unknown = 1; else op = 1; break;
        case '%': if (plain) op = 1; else unknown = 1; break;
        case '{': case '}': case '&': case '~': if (plain) unknown = 1; break;
        case ' ': case '\t': case '\n': case '\r': break;
        default: unknown = 1; break; /* | = < > ? " non-ASCII ... */
        }
        p++;
    }
    if (tuple) return LA_TUPLE;
    if (var && !unknown && !digit && !op) return LA_ASSIGNMENT;
    if (var || unknown) return LA_UNKNOWNS;
    return LA_OK;
}

/* --------------------------------------------------------------- parser */

typedef struct lp {
    const char *s;
    size_t p, end;
    int plain;
    int paren;   /* depth of ( and [: plain commas are tuple commas there */
    int err;     /* first failure, 0 = none */
    int ops;     /* arithmetic operations seen */
    int depth;   /* nesting of primaries and unary minuses (LA_MAX_DEPTH) */
} lp;

static la_rat lp_fail(lp *P, int reason)
{
    if (!P->err) P->err = reason;
    return rat_int(0);
}

static void lp_ws(lp *P) { P->p = skip_ws(P->s, P->p, P->end, P->plain); }

static la_rat lp_expr(lp *P);
static la_rat lp_unary(lp *P, int *bare);
static la_rat lp_primary(lp *P, int *bare, int *is_frac);

static int lp_num_start(lp *P)
{
    const char *s = P->s;
    size_t p = P->p;
    return p < P->end && (is_digit(s[p]) || (s[p] == '.' && p + 1 < P->end && is_digit(s[p + 1])));
}

/* 1 if the next thing starts a primary (for implicit multiplication). */
static int lp_primary_start(lp *P, int *is_num, int *is_frac)
{
    lp_ws(P);
    *is_num = *is_frac = 0;
    if (P->p >= P->end) return 0;
    char c = P->s[P->p];
    if (lp_num_start(P)) { *is_num = 1; return 1; }
    if (c == '(' || c == '[' || c == '{') return 1;
    if (c == '\\' && !P->plain) {
        if (macro_in(P->s, P->p, P->end, M_FRAC)) { *is_frac = 1; return 1; }
        if (macro_is(P->s, P->p, P->end, "sqrt")) return 1;
    }
    return 0;
}

static void lp_apply(lp *P, int rc)
{
    if (rc) lp_fail(P, rc);
}

/* A macro argument: {expr}, a single digit, or a primary. When the argument
 * is the macro's last, a single digit followed by another digit ("2^10",
 * "\frac123") reads in LaTeX as the digit and then a separate number:
 * LA_MALFORMED rather than a silent product. */
static la_rat lp_arg(lp *P, int last)
{
    lp_ws(P);
    if (P->p >= P->end) return lp_fail(P, LA_MALFORMED);
    char c = P->s[P->p];
    if (c == '{') {
        P->p++;
        int save = P->paren;
        P->paren = 0;
        la_rat v = lp_expr(P);
        P->paren = save;
        lp_ws(P);
        if (P->p >= P->end || P->s[P->p] != '}') return lp_fail(P, LA_MALFORMED);
        P->p++;
        return v;
    }
    if (is_digit(c)) {
        P->p++;
        if (last && P->p < P->end && is_digit(P->s[P->p])) return lp_fail(P, LA_MALFORMED);
        return rat_int(c - '0');
    }
    if (c == '\\') {
        int bare, fr;
        return lp_primary(P, &bare, &fr);
    }
    return lp_fail(P, LA_MALFORMED);
}

static la_rat lp_group(lp *P, char close, int paren)
{
    P->p++;
    P->paren += paren;
    la_rat v = lp_expr(P);
    P->paren -= paren;
    lp_ws(P);
    if (P->p >= P->end || P->s[P->p] != close) return lp_fail(P, LA_MALFORMED);
    P->p++;
    return v;
}

static la_rat lp_primary_at(lp *P, int *bare, int *is_frac);

/* Every recursion of the parser goes through lp_primary or lp_unary, so
 * bounding their nesting bounds the stack: 8,000 nested "(" or 10,000
 * nested "\frac{" in one dataset line used to overflow it. */
static la_rat lp_primary(lp *P, int *bare, int *is_frac)
{
    *bare = *is_frac = 0;
    if (++P->depth > LA_MAX_DEPTH) return lp_fail(P, LA_TOO_DEEP);
    la_rat v = lp_primary_at(P, bare, is_frac);
    P->depth--;
    return v;
}

static la_rat lp_primary_at(lp *P, int *bare, int *is_frac)
{
    *bare = *is_frac = 0;
    lp_ws(P);
    if (P->err || P->p >= P->end) return lp_fail(P, LA_MALFORMED);
    const char *s = P->s;
    char c = s[P->p];
    if (lp_num_start(P)) {
        la_num n;
        P->p = la_lex_number(s, P->p, P->end, P->paren > 0, &n);
        if (n.overflow) return lp_fail(P, LA_OVERFLOW);
        if (n.repeating) return lp_fail(P, LA_UNKNOWNS);
        *bare = 1;
        return n.value;
    }
    if (c == '(') return lp_group(P, ')', 1);
    if (c == '[' && !P->plain) return lp_group(P, ']', 1);
    if (c == '{' && !P->plain) return lp_group(P, '}', 0);
    if (c == '\\' && !P->plain) {
        if (macro_in(s, P->p, P->end, M_FRAC)) {
            P->p += macro_len(s, P->p, P->end);
            la_rat a = lp_arg(P, 0), b = lp_arg(P, 1), r = rat_int(0);
            P->ops++;
            *is_frac = 1;
            if (!P->err) lp_apply(P, rat_div(a, b, &r));
            return r;
        }
        if (macro_is(s, P->p, P->end, "sqrt")) {
            P->p += macro_len(s, P->p, P->end);
            la_rat idx = rat_int(2), r = rat_int(0);
            lp_ws(P);
            if (P->p < P->end && s[P->p] == '[') idx = lp_group(P, ']', 1);
            la_rat x = lp_arg(P, 1);
            P->ops++;
            if (!P->err) {
                if (idx.den != 1) lp_fail(P, LA_NOT_RATIONAL);
                else lp_apply(P, rat_root(x, idx.num, &r));
            }
            return r;
        }
    }
    return lp_fail(P, LA_MALFORMED);
}

static la_rat lp_power(lp *P, int *bare, int *is_frac)
{
    la_rat v = lp_primary(P, bare, is_frac);
    for (;;) { /* postfix */
        lp_ws(P);
        if (P->err || P->p >= P->end) return v;
        if (P->s[P->p] == '!' && !P->plain) {
            P->p++;
            P->ops++;
            *bare = 0;
            lp_apply(P, rat_fact(v, &v));
        } else if ((P->plain && P->s[P->p] == '%') || (!P->plain && starts(P->s, P->p, P->end, "\\%"))) {
            P->p += P->plain ? 1 : 2;
            P->ops++;
            *bare = 0;
            lp_apply(P, rat_div(v, rat_int(100), &v));
        } else {
            break;
        }
    }
    if (P->p < P->end && P->s[P->p] == '^' && !P->plain) {
        P->p++;
        la_rat e = lp_arg(P, 1);
        P->ops++;
        *bare = 0;
        if (!P->err) lp_apply(P, rat_pow(v, e, &v));
        lp_ws(P);
        if (P->p < P->end && P->s[P->p] == '^') lp_fail(P, LA_MALFORMED); /* double superscript */
    }
    return v;
}

static la_rat lp_unary(lp *P, int *bare)
{
    lp_ws(P);
    int fr;
    if (P->p < P->end && P->s[P->p] == '-') {
        P->p++;
        if (++P->depth > LA_MAX_DEPTH) return lp_fail(P, LA_TOO_DEEP);
        la_rat v = lp_unary(P, bare);
        P->depth--;
        *bare = 0;
        if (!P->err) lp_apply(P, rat_neg(v, &v));
        return v;
    }
    return lp_power(P, bare, &fr);
}

static la_rat lp_product(lp *P)
{
    int bare;
    la_rat v = lp_unary(P, &bare);
    while (!P->err) {
        lp_ws(P);
        if (P->p >= P->end) break;
        const char *s = P->s;
        int is_num, is_frac, div = 0;
        if (s[P->p] == '*' || (!P->plain && macro_in(s, P->p, P->end, M_MUL))) {
            P->p += s[P->p] == '*' ? 1 : macro_len(s, P->p, P->end);
        } else if (s[P->p] == '/' || (!P->plain && macro_is(s, P->p, P->end, "div"))) {
            P->p += s[P->p] == '/' ? 1 : macro_len(s, P->p, P->end);
            div = 1;
        } else if (!P->plain && lp_primary_start(P, &is_num, &is_frac)) {
            if (bare && (is_num || is_frac)) { lp_fail(P, LA_MALFORMED); break; }
        } else {
            break;
        }
        P->ops++;
        la_rat w = lp_unary(P, &bare);
        if (P->err) break;
        lp_apply(P, div ? rat_div(v, w, &v) : rat_mul(v, w, &v));
    }
    return v;
}

static la_rat lp_expr(lp *P)
{
    lp_ws(P);
    int neg = 0;
    if (P->p < P->end && (P->s[P->p] == '-' || P->s[P->p] == '+')) {
        neg = P->s[P->p] == '-';
        P->p++;
    }
    la_rat v = lp_product(P);
    if (neg && !P->err) lp_apply(P, rat_neg(v, &v));
    while (!P->err) {
        lp_ws(P);
        if (P->p >= P->end || (P->s[P->p] != '+' && P->s[P->p] != '-')) break;
        int sub = P->s[P->p] == '-';
        P->p++;
        P->ops++;
        la_rat w = lp_product(P);
        if (P->err) break;
        lp_apply(P, sub ? rat_sub(v, w, &v) : rat_add(v, w, &v));
    }
    return v;
}

int la_eval(const char *s, size_t start, size_t end, int plain, la_rat *value, int *n_ops)
{
    int c = classify(s, start, end, plain);
    *n_ops = 0;
    if (c != LA_OK) return c;
    lp P = {s, start, end, plain, 0, 0, 0, 0};
    la_rat v = lp_expr(&P);
    lp_ws(&P);
    if (!P.err && P.p != end) P.err = LA_MALFORMED;
    if (P.err) return P.err;
    *value = v;
    *n_ops = P.ops;
    return LA_OK;
}

/* ------------------------------------------------------- math segments */


typedef struct vec {
    void *data;
    size_t n, cap, elt;
} vec;

static void *vec_push(vec *v)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        void *d = realloc(v->data, cap * v->elt);
        if (!d) return NULL;
        v->data = d;
        v->cap = cap;
    }
    return (char *)v->data + v->elt * v->n++;
}

static const char *const MATH_ENVS[] = {
    "align", "align*", "aligned", "equation", "equation*", "eqnarray", "eqnarray*", "gather",
    "gather*", "multline", "multline*", "alignat", "alignat*", "flalign", "flalign*",
    "displaymath", "math", NULL};

/* Index of the first occurrence of lit in s[i, end) that is not escaped by a
 * backslash (pairs "\x" are skipped), or end. */
static size_t find_unescaped(const char *s, size_t i, size_t end, const char *lit)
{
    size_t n = strlen(lit);
    while (i < end) {
        if (i + n <= end && memcmp(s + i, lit, n) == 0) return i;
        i += (s[i] == '\\' && lit[0] != '\\') ? 2 : 1;
    }
    return end;
}

static size_t find_lit(const char *s, size_t i, size_t end, const char *lit)
{
    size_t n = strlen(lit);
    for (; i + n <= end; i++)
        if (memcmp(s + i, lit, n) == 0) return i;
    return end;
}

/* Text mode (generated prose): a single "$" opens inline math only if a
 * non-space follows it, and closes only if a non-space precedes it and no
 * digit follows it, within the paragraph (pandoc's rule), so the currency in
 * "costs $2, so 9 * 2 = 18" stays prose. Returns the closing index or end. */
static size_t text_dollar_close(const char *s, size_t i, size_t end)
{
    if (i + 1 >= end || strchr(" \t\r\n", s[i + 1])) return end;
    for (size_t j = i + 1; j < end; j++) {
        if (s[j] == '\\') { j++; continue; }
        if (s[j] == '\n' && j + 1 < end && s[j + 1] == '\n') return end;
        if (s[j] == '$' && j > i + 1 && !strchr(" \t\r\n", s[j - 1]) &&
            !(j + 1 < end && is_digit(s[j + 1])))
            return j;
    }
    return end;
}

static int math_segments(const char *s, size_t len, int text_mode, vec *out)
{
    size_t i = 0;
    while (i < len) {
        size_t a, b, next;
        if (starts(s, i, len, "[asy]")) {
            size_t j = find_lit(s, i, len, "[/asy]");
            i = j < len ? j + 6 : len;
            continue;
        }
        char c = s[i];
        if (c == '\\' && i + 1 < len) {
            char d = s[i + 1];
            if (d == '[' || d == '(') {
                a = i + 2;
                b = find_lit(s, a, len, d == '[' ? "\\]" : "\\)");
                next = b < len ? b + 2 : len;
            } else if (starts(s, i, len, "\\begin{")) {
                size_t q = i + 7, r = q;
                while (r < len && s[r] != '}') r++;
                int math = 0;
                for (const char *const *e = MATH_ENVS; *e; e++)
                    if (r - q == strlen(*e) && memcmp(s + q, *e, r - q) == 0) math = 1;
                if (!math || r >= len) { i = r; continue; }
                char endtag[64];
                snprintf(endtag, sizeof endtag, "\\end{%.*s}", (int)(r - q), s + q);
                a = r + 1;
                b = find_lit(s, a, len, endtag);
                next = b < len ? b + strlen(endtag) : len;
            } else {
                i += 2;
                continue;
            }
        } else if (c == '$') {
            if (i + 1 < len && s[i + 1] == '$') {
                a = i + 2;
                b = find_unescaped(s, a, len, "$$");
                next = b < len ? b + 2 : len;
            } else if (text_mode) {
                a = i + 1;
                b = text_dollar_close(s, i, len);
                if (b >= len) { i++; continue; }
                next = b + 1;
            } else {
                a = i + 1;
                b = find_unescaped(s, a, len, "$");
                next = b < len ? b + 1 : len;
            }
        } else {
            i++;
            continue;
        }
        la_span *sp = vec_push(out);
        if (!sp) return -1;
        sp->open = i;
        sp->a = a;
        sp->b = b;
        sp->next = next;
        i = next;
    }
    return 0;
}

/* ----------------------------------------------------------- chains */

enum { IT_TERM, IT_EQ, IT_REL, IT_SEP };
typedef struct item { int kind; size_t a, b; } item;

static const char *const M_REL[] = {
    "le", "leq", "ge", "geq", "ne", "neq", "approx", "equiv", "sim", "simeq", "cong",
    "propto", "lt", "gt", "ll", "gg", "Rightarrow", "Leftarrow", "Leftrightarrow", "implies",
    "impliedby", "iff", "rightarrow", "leftarrow", "to", "longrightarrow", "Longrightarrow",
    "Longleftrightarrow", "mapsto", "leqslant", "geqslant", "neq", "not", NULL};
static const char *const M_SEP_ARG[] = {
    "text", "textbf", "textit", "textrm", "textnormal", "textsf", "texttt", "mbox", "hbox",
    "mathrm", "mathbf", "mathit", "operatorname", "label", "tag", "hspace", "vspace",
    "intertext", "emph", "begin", "end", NULL};
static const char *const M_SEP[] = {"quad", "qquad", "enspace", "hfill", "newline", NULL};

/* Skips one brace group at s[p] (after spaces), returning the index after it. */
static size_t skip_group(const char *s, size_t p, size_t end)
{
    size_t q = p;
    while (q < end && s[q] == ' ') q++;
    if (q >= end || s[q] != '{') return p;
    int d = 0;
    for (; q < end; q++) {
        if (s[q] == '\\') { q++; continue; }
        if (s[q] == '{') d++;
        else if (s[q] == '}' && --d == 0) return q + 1;
    }
    return end;
}

/* Trims spaces and '&' from a span. */
static void trim(const char *s, size_t *a, size_t *b)
{
    while (*a < *b && strchr(" \t\r\n&~", s[*a])) (*a)++;
    while (*b > *a && strchr(" \t\r\n&~", s[*b - 1])) (*b)--;
}

static int push_item(vec *v, int kind, size_t a, size_t b)
{
    item *it = vec_push(v);
    if (!it) return -1;
    it->kind = kind;
    it->a = a;
    it->b = b;
    return 0;
}

/* Splits a math segment into terms, relations and separators. */
static int split_chain(const char *s, size_t a, size_t b, vec *items)
{
    size_t i = a, ts = a;
    int depth = 0, skip_empty = 0;
#define END_TERM(at)                                                                   \
    do {                                                                               \
        size_t x = ts, y = (at);                                                       \
        trim(s, &x, &y);                                                               \
        if (!(skip_empty && x == y) && push_item(items, IT_TERM, x, y)) return -1;     \
        skip_empty = 0;                                                                \
    } while (0)
    while (i < b) {
        char c = s[i];
        if (depth == 0 && (is_digit(c) || (c == '.' && i + 1 < b && is_digit(s[i + 1])))) {
            la_num n;
            i = la_lex_number(s, i, b, 0, &n);
            if (n.repeating && i < b && s[i] == '.') i++; /* "18.\overline{18}" is one term */
            continue;
        }
        if (c == '\\') {
            size_t n = macro_len(s, i, b);
            if (n == 2 && s[i + 1] == '\\') { /* line break */
                size_t j = i + 2, k;
                if (depth == 0) {
                    END_TERM(i);
                    k = j;
                    for (;;) {
                        k = skip_ws(s, k, b, 0);
                        if (k < b && s[k] == '[') { /* \\[2pt] */
                            size_t r = k;
                            while (r < b && s[r] != ']') r++;
                            if (r < b && r - k < 12) { k = r + 1; j = k; continue; }
                        }
                        break;
                    }
                    int cont = k < b && (s[k] == '=' || s[k] == '<' || s[k] == '>' ||
                                         (s[k] == '\\' && macro_in(s, k, b, M_REL)));
                    if (cont) skip_empty = 1;
                    else if (push_item(items, IT_SEP, i, j)) return -1;
                    ts = j;
                }
                i = j;
                continue;
            }
            if (macro_in(s, i, b, M_SEP_ARG)) {
                size_t j = skip_group(s, i + n, b);
                if (macro_is(s, i, b, "begin")) j = skip_group(s, j, b); /* {array}{cc} */
                if (depth == 0) {
                    END_TERM(i);
                    if (push_item(items, IT_SEP, i, j)) return -1;
                    ts = j;
                }
                i = j;
                continue;
            }
            if (depth == 0 && (macro_in(s, i, b, M_SEP) || macro_in(s, i, b, M_REL))) {
                END_TERM(i);
                if (push_item(items, macro_in(s, i, b, M_SEP) ? IT_SEP : IT_REL, i, i + n)) return -1;
                i += n;
                ts = i;
                continue;
            }
            if (macro_is(s, i, b, "left") || macro_is(s, i, b, "right")) {
                depth += s[i + 1] == 'l' ? 1 : -1;
                if (depth < 0) depth = 0;
                size_t j = i + n;
                while (j < b && s[j] == ' ') j++;
                if (j < b) j += s[j] == '\\' ? macro_len(s, j, b) : 1;
                i = j;
                continue;
            }
            if (n == 2 && s[i + 1] == '{') depth++;
            else if (n == 2 && s[i + 1] == '}' && depth > 0) depth--;
            i += n;
            continue;
        }
        if (c == '{' || c == '(' || c == '[') { depth++; i++; continue; }
        if (c == '}' || c == ')' || c == ']') { if (depth > 0) depth--; i++; continue; }
        if (depth == 0) {
            int kind = -1;
            if (c == '=') kind = IT_EQ;
            else if (c == '<' || c == '>') kind = IT_REL;
            else if (strchr(",;:.?", c)) kind = IT_SEP;
            if (kind >= 0) {
                END_TERM(i);
                if (push_item(items, kind, i, i + 1)) return -1;
                ts = i + 1;
            }
        }
        i++;
    }
    END_TERM(b);
#undef END_TERM
    return 0;
}

int la_math_spans_mode(const char *text, size_t len, int text_mode, la_span **out, size_t *n)
{
    vec segs = {NULL, 0, 0, sizeof(la_span)};
    if (math_segments(text, len, text_mode, &segs)) {
        free(segs.data);
        *out = NULL;
        *n = 0;
        return -1;
    }
    *out = segs.data;
    *n = segs.n;
    return 0;
}

int la_math_spans(const char *text, size_t len, la_span **out, size_t *n)
{
    return la_math_spans_mode(text, len, 0, out, n);
}

size_t la_first_boxed(const char *text, size_t len)
{
    size_t b = find_lit(text, 0, len, "\\boxed"), f = find_lit(text, 0, len, "\\fbox");
    return b < f ? b : f;
}

/* Checks the rhs term: a bare number (optionally "-", "\$", "\boxed{..}").
 * Returns -1 if the term does not start with a number (not a candidate), else
 * LA_OK or a reason, with the numeral in st. */
static int rhs_number(const char *s, size_t a, size_t b, la_step *st)
{
    size_t p = skip_ws(s, a, b, 0);
    int boxed = 0;
    if (macro_is(s, p, b, "boxed")) {
        p = skip_ws(s, p + 6, b, 0);
        if (p >= b || s[p] != '{') return -1;
        p = skip_ws(s, p + 1, b, 0);
        boxed = 1;
    }
    if (p < b && s[p] == '-') { st->negative = 1; p = skip_ws(s, p + 1, b, 0); }
    size_t q = la_lex_number(s, p, b, 0, &st->rhs);
    if (q == p) return -1;
    if (st->rhs.overflow) return LA_OVERFLOW;
    if (st->rhs.repeating) return LA_RHS_NOT_NUMBER;
    q = skip_ws(s, q, b, 0);
    if (boxed) {
        if (q >= b || s[q] != '}') return LA_RHS_NOT_NUMBER;
        q = skip_ws(s, q + 1, b, 0);
    }
    if (q < b) {
        if (macro_is(s, q, b, "ldots") || macro_is(s, q, b, "dots")) return LA_APPROXIMATION;
        return LA_RHS_NOT_NUMBER;
    }
    return LA_OK;
}

/* 1 if |x - y| < 10^-k: y is x rounded or truncated to k decimals. */
static int rounds_to(la_rat x, la_rat y, int k)
{
    la_rat d, unit;
    if (rat_sub(x, y, &d)) return 0;
    if (d.num < 0) d.num = -d.num;
    if (rat_pow_int(rat_int(10), -k, &unit)) return 0;
    /* d < unit  <=>  d.num * unit.den < unit.num * d.den */
    la_i128 l, r;
    if (__builtin_mul_overflow(d.num, unit.den, &l) || __builtin_mul_overflow(unit.num, d.den, &r))
        return 0;
    return l < r;
}

/* Gives a candidate its reason, checks made in la_reason order. On entry
 * st->reason is rhs_number's verdict (APPROXIMATION: "3.14\ldots"). */
static void judge(const char *s, la_step *st, size_t boxed)
{
    int n_ops, ellipsis = st->reason == LA_APPROXIMATION;
    la_rat rhs = st->rhs.value;
    if (st->negative) rhs.num = -rhs.num;
    if (st->rhs.start >= boxed) { st->reason = LA_AFTER_BOXED; return; }
    if (st->reason && !ellipsis) return;
    if (st->lhs_start == st->lhs_end) { st->reason = LA_NO_LHS; return; }
    int rc = la_eval(s, st->lhs_start, st->lhs_end, 0, &st->lhs_value, &n_ops);
    if (rc) { st->reason = rc; return; }
    if (n_ops == 0) { st->reason = LA_TRIVIAL; return; }
    st->evaluated = 1;
    if (ellipsis) { st->reason = LA_APPROXIMATION; return; }
    if (la_rat_eq(st->lhs_value, rhs)) { st->reason = LA_OK; return; }
    st->reason = rounds_to(st->lhs_value, rhs, st->rhs.frac_digits) ? LA_APPROXIMATION : LA_MISMATCH;
}

static int prose_steps(const char *s, size_t a, size_t b, size_t limit, vec *steps);

static int find_steps(const char *text, size_t len, int text_mode, la_step **out, size_t *n)
{
    vec segs = {NULL, 0, 0, sizeof(la_span)}, items = {NULL, 0, 0, sizeof(item)},
        steps = {NULL, 0, 0, sizeof(la_step)};
    size_t boxed = text_mode ? la_text_limit(text, len) : la_first_boxed(text, len);
    *out = NULL;
    *n = 0;
    if (math_segments(text, len, text_mode, &segs)) goto fail;
    for (size_t k = 0; k <= segs.n; k++) {
        if (text_mode) { /* the prose before segment k (or after the last) */
            size_t g0 = k ? ((la_span *)segs.data)[k - 1].next : 0;
            size_t g1 = k < segs.n ? ((la_span *)segs.data)[k].a : len;
            if (k < segs.n) g1 = ((la_span *)segs.data)[k].open;
            if (g1 > g0 && prose_steps(text, g0, g1, boxed, &steps)) goto fail;
        }
        if (k == segs.n) break;
        la_span *sp = (la_span *)segs.data + k;
        items.n = 0;
        if (split_chain(text, sp->a, sp->b, &items)) goto fail;
        item *it = items.data;
        for (size_t j = 0; j + 1 < items.n; j++) {
            if (it[j].kind != IT_EQ || it[j + 1].kind != IT_TERM) continue;
            la_step st;
            memset(&st, 0, sizeof st);
            int rc = rhs_number(text, it[j + 1].a, it[j + 1].b, &st);
            if (rc < 0) continue;
            st.reason = rc;
            if (j > 0 && it[j - 1].kind == IT_TERM) {
                st.lhs_start = it[j - 1].a;
                st.lhs_end = it[j - 1].b;
            } else {
                st.lhs_start = st.lhs_end = it[j].a;
            }
            judge(text, &st, boxed);
            la_step *dst = vec_push(&steps);
            if (!dst) goto fail;
            *dst = st;
        }
    }
    free(segs.data);
    free(items.data);
    *out = steps.data;
    *n = steps.n;
    return 0;
fail:
    free(segs.data);
    free(items.data);
    free(steps.data);
    return -1;
}

int la_find_steps(const char *text, size_t len, la_step **out, size_t *n)
{
    return find_steps(text, len, 0, out, n);
}

int la_find_steps_text(const char *text, size_t len, la_step **out, size_t *n)
{
    return find_steps(text, len, 1, out, n);
}

size_t la_text_limit(const char *text, size_t len)
{
    size_t b = la_first_boxed(text, len), h = find_lit(text, 0, len, "####");
    return b < h ? b : h;
}

/* ------------------------------------------------------------ prose */

/* Bytes of an arithmetic character of prose at s[i] (0 if none): digits,
 * spaces, ". , + - * / ( ) % $" and the UTF-8 signs x-times, division,
 * middle dot and minus. */
static size_t prose_arith_len(const char *s, size_t i, size_t end)
{
    unsigned char c = (unsigned char)s[i];
    if (is_digit((char)c) || strchr(" \t.,+-*/()%$", c)) return c ? 1 : 0;
    if (c == 0xC3 && i + 1 < end && ((unsigned char)s[i + 1] == 0x97 || (unsigned char)s[i + 1] == 0xB7))
        return 2;
    if (c == 0xC2 && i + 1 < end && (unsigned char)s[i + 1] == 0xB7) return 2;
    if (c == 0xE2 && i + 2 < end && (unsigned char)s[i + 1] == 0x88 && (unsigned char)s[i + 2] == 0x92)
        return 3;
    return 0;
}

/* The prose lhs s[a, b) in GSM8K syntax: "$" dropped, the UTF-8 signs
 * replaced by their ASCII operators. buf holds at least b - a + 1 bytes. */
static size_t prose_normalize(const char *s, size_t a, size_t b, char *buf)
{
    size_t n = 0;
    for (size_t i = a; i < b;) {
        size_t k = prose_arith_len(s, i, b);
        if (k == 0) k = 1;
        unsigned char c = (unsigned char)s[i];
        if (c == '$') { i++; continue; }
        if (k == 1) buf[n++] = (char)c;
        else if (c == 0xC3 && (unsigned char)s[i + 1] == 0xB7) buf[n++] = '/';
        else if (c == 0xE2) buf[n++] = '-';
        else buf[n++] = '*';
        i += k;
    }
    buf[n] = 0;
    return n;
}

/* Plain-text steps "12*5 = 60" in prose s[a, b) (text mode). The lhs is the
 * run of arithmetic characters before the "=" (it stops at a letter, a
 * newline, a colon ...); one that starts with an operator right after a word
 * ("x + 2 + 3 = 5") has unknowns. The rhs is a number, optionally "$" or
 * "-" first, not followed by a letter, digit or another operator. */
static int prose_steps(const char *s, size_t a, size_t b, size_t limit, vec *steps)
{
    for (size_t i = a; i < b; i++) {
        if (s[i] != '=') continue;
        if ((i + 1 < b && s[i + 1] == '=') || (i > a && strchr("=<>!", s[i - 1]))) continue;
        la_step st;
        memset(&st, 0, sizeof st);
        size_t p = i + 1;
        while (p < b && (s[p] == ' ' || s[p] == '\t')) p++;
        if (p < b && s[p] == '$') p++;
        if (p < b && s[p] == '-') { st.negative = 1; p++; }
        size_t q = la_lex_number(s, p, b, 0, &st.rhs);
        if (q == p) continue;
        /* a trailing sentence comma or period is not part of the number */
        size_t r = q;
        while (r < b && (s[r] == ' ' || s[r] == '\t')) r++;
        int more = r < b && (isalnum((unsigned char)s[q]) || s[q] == '_' || s[q] == '%' ||
                             (strchr("+-*/^(", s[r]) && s[r]) || prose_arith_len(s, r, b) > 1);
        if (st.rhs.overflow) st.reason = LA_OVERFLOW;
        else if (st.rhs.repeating || more) st.reason = LA_RHS_NOT_NUMBER;
        size_t x = i;
        while (x > a) {
            size_t k = 1;
            while (k < 3 && x - k > a && ((unsigned char)s[x - k] & 0xC0) == 0x80) k++;
            if (prose_arith_len(s, x - k, i) != k) break;
            x -= k;
        }
        size_t y = i;
        while (x < y && strchr(" \t,", s[x])) x++;
        while (y > x && (s[y - 1] == ' ' || s[y - 1] == '\t')) y--;
        if (x < y && s[x] == '.' && !(x + 1 < y && is_digit(s[x + 1]))) {
            x++;
            while (x < y && (s[x] == ' ' || s[x] == '\t')) x++;
        }
        st.lhs_start = x;
        st.lhs_end = y;
        if (st.rhs.start >= limit) st.reason = LA_AFTER_BOXED;
        else if (!st.reason && x == y) st.reason = LA_NO_LHS;
        else if (!st.reason) {
            size_t w = x; /* the word right before the run */
            while (w > a && (s[w - 1] == ' ' || s[w - 1] == '\t')) w--;
            int after_word = w > a && (isalnum((unsigned char)s[w - 1]) || s[w - 1] == '_' ||
                                       ((unsigned char)s[w - 1] & 0x80));
            int lead_op = strchr("+*/", s[x]) || prose_arith_len(s, x, y) > 1 ||
                          (s[x] == '-' && after_word);
            if (lead_op || (after_word && s[x] == '(' && w == x)) {
                st.reason = LA_UNKNOWNS;
            } else {
                char *buf = malloc(y - x + 1);
                if (!buf) return -1;
                size_t nb = prose_normalize(s, x, y, buf);
                int n_ops;
                la_rat rhs = st.rhs.value;
                if (st.negative) rhs.num = -rhs.num;
                int rc = la_eval(buf, 0, nb, 1, &st.lhs_value, &n_ops);
                free(buf);
                if (rc) st.reason = rc;
                else if (n_ops == 0) st.reason = LA_TRIVIAL;
                else {
                    st.evaluated = 1;
                    st.reason = la_rat_eq(st.lhs_value, rhs) ? LA_OK
                                : rounds_to(st.lhs_value, rhs, st.rhs.frac_digits) ? LA_APPROXIMATION
                                                                                  : LA_MISMATCH;
                }
            }
        }
        la_step *dst = vec_push(steps);
        if (!dst) return -1;
        *dst = st;
        i = q - 1;
    }
    return 0;
}

int la_final_values(const char *text, size_t len, la_rat **vals, size_t *n)
{
    vec v = {NULL, 0, 0, sizeof(la_rat)};
    size_t i = 0;
    *vals = NULL;
    *n = 0;
    for (;;) {
        size_t p = find_lit(text, i, len, "\\boxed"), f = find_lit(text, i, len, "\\fbox");
        if (f < p) p = f;
        if (p >= len) break;
        size_t a = p + macro_len(text, p, len);
        while (a < len && text[a] == ' ') a++;
        size_t b = skip_group(text, a, len);
        if (b == a) { i = a; continue; }
        a++;       /* inside the braces */
        size_t e = b - 1;
        if (e < a) e = a;
        la_rat val;
        int ops, nnum = 0;
        la_rat first = rat_int(0);
        int ok = la_eval(text, a, e, 0, &val, &ops) == LA_OK;
        if (ok) {
            la_rat *d = vec_push(&v);
            if (!d) goto fail;
            *d = val;
        }
        /* numerals written inside */
        for (size_t q = a; q < e;) {
            la_num num;
            size_t r = la_lex_number(text, q, e, 0, &num);
            if (r == q) {
                q += text[q] == '\\' ? macro_len(text, q, e) : 1;
                continue;
            }
            q = r;
            if (num.overflow) continue;
            if (nnum++ == 0) first = num.value;
            if (!ok) {
                la_rat *d = vec_push(&v);
                if (!d) goto fail;
                *d = num.value;
            }
        }
        if (ok && nnum == 1) {
            la_rat *d = vec_push(&v);
            if (!d) goto fail;
            *d = first;
        }
        i = b;
    }
    *vals = v.data;
    *n = v.n;
    return 0;
fail:
    free(v.data);
    return -1;
}
