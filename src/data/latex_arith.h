/*
 * latex_arith.h: the arithmetic-step detector of the pair builder (internal).
 *
 * Finds "lhs = n" steps in LaTeX (MATH reference solutions) and in plain
 * expressions (GSM8K <<expr=n>> annotations), evaluates lhs exactly with a
 * small rational type (128-bit numerator and denominator, every operation
 * overflow-checked) and says why a step cannot be used. See latex_arith.c for
 * the grammar and the rules, and pairs.c for how steps become pairs.
 */
#ifndef CLENS_LATEX_ARITH_H
#define CLENS_LATEX_ARITH_H

#include <stddef.h>
#include <stdint.h>

__extension__ typedef __int128 la_i128;

/* An exact rational: den > 0, gcd(|num|, den) == 1. */
typedef struct la_rat {
    la_i128 num, den;
} la_rat;

/* Why a step is not a usable injection site. LA_OK = verified arithmetic.
 * The order is the order in which the checks are made: a step gets the first
 * reason that applies. Names: la_reason_name(). */
typedef enum {
    LA_OK = 0,
    LA_AFTER_BOXED,     /* number at or after the first \boxed (MATH), or in the "####" line */
    LA_RHS_NOT_NUMBER,  /* "= 12x", "= 2^3", "= 5\%", "= 0.\overline{3}": rhs is not a bare number */
    LA_NO_LHS,          /* nothing numeric before the "=" (start of a chain, "$=5$") */
    LA_TUPLE,           /* lhs is a tuple / set / list: "(1,125)", "\{1,343\}" */
    LA_ASSIGNMENT,      /* lhs is a bare name: "x = 2", "a_1 = 5", "f(x) = 3" */
    LA_UNKNOWNS,        /* lhs has variables or non-arithmetic symbols: "2x+3", "\pi r^2", "\pm" */
    LA_MALFORMED,       /* lhs does not parse (unbalanced, "3\frac12" mixed number, "2 3") */
    LA_NOT_RATIONAL,    /* irrational root, division by zero, fractional power of a negative */
    LA_OVERFLOW,        /* an intermediate value does not fit in 128 bits */
    LA_TRIVIAL,         /* lhs is a lone number, no operation: "12 = 12" */
    LA_APPROXIMATION,   /* rhs is lhs rounded or cut ("\frac{1}{3} = 0.33", "3.14\ldots") */
    LA_MISMATCH,        /* lhs evaluates to something else: an error in the source */
    LA_FINAL_ANSWER,    /* verified, but the value equals the final answer (rulings R6) */
    LA_ANNOTATION_TEXT, /* GSM8K: the text after <<expr=n>> is not the number n */
    LA_TOO_DEEP,        /* lhs nests deeper than LA_MAX_DEPTH groups / fractions / signs */
    LA_REASON_COUNT
} la_reason;

const char *la_reason_name(int reason);

/* How deep la_eval follows nested groups, fractions, roots and signs; deeper
 * is LA_TOO_DEEP (a bound on the parser's recursion, so on its stack). */
#define LA_MAX_DEPTH 100

/* A numeral as written: digits with optional thousands separators ("74,592",
 * "1,\!000", "1{,}000") and an optional decimal part. No sign. */
typedef struct la_num {
    size_t start, end;   /* byte span in the text */
    la_rat value;
    int frac_digits;     /* digits after the decimal point */
    int has_sep;         /* thousands separators present */
    int overflow;        /* too many digits for 128 bits */
    int repeating;       /* "18.\overline{18}": the numeral is only the start */
} la_num;

/* Lexes a numeral starting at s[i] (a digit, or '.' followed by a digit), not
 * reading past end. Plain commas ("74,592") count as separators only when
 * tuple_ctx is 0 (not inside parentheses / brackets / a set); "1,\!000" and
 * "1{,}000" always do. Returns the index after the numeral (== i if none). */
size_t la_lex_number(const char *s, size_t i, size_t end, int tuple_ctx, la_num *out);

/* One "lhs = n" candidate. */
typedef struct la_step {
    size_t lhs_start, lhs_end;   /* byte span of the lhs term, trimmed (empty if none) */
    la_num rhs;                  /* the rhs numeral (the injection site) */
    int negative;                /* the rhs is written "-n" */
    int reason;                  /* la_reason */
    int evaluated;               /* lhs_value is valid (OK, APPROXIMATION, MISMATCH) */
    la_rat lhs_value;
} la_step;

/* Evaluates s[start, end) as a numeric LaTeX expression (plain != 0: GSM8K
 * syntax, no macros). Returns LA_OK and the value, or the reason it cannot
 * (TUPLE, ASSIGNMENT, UNKNOWNS, MALFORMED, NOT_RATIONAL, OVERFLOW). *n_ops is
 * the number of arithmetic operations (0 for a lone number). */
int la_eval(const char *s, size_t start, size_t end, int plain, la_rat *value, int *n_ops);

/* Finds every candidate "lhs = n" in the math of a MATH solution (inside $..$,
 * $$..$$, \[..\], \(..\) and align-like environments; [asy] blocks are
 * skipped), in text order, each with its reason: LA_OK (verified), or one of
 * RHS_NOT_NUMBER .. MISMATCH, or AFTER_BOXED. The final-answer rule is not
 * applied here (see la_final_values). *out is malloc'd (caller frees; NULL
 * when *n == 0). Returns 0, or -1 when out of memory. */
int la_find_steps(const char *text, size_t len, la_step **out, size_t *n);

/* A math segment: content s[a, b); the closing delimiter ends at next. */
typedef struct la_span {
    size_t a, b, next;
    size_t open;                 /* where the opening delimiter starts */
} la_span;

/* The math segments of a MATH solution, in order (see la_find_steps). *out is
 * malloc'd (caller frees). Returns 0, or -1 when out of memory. */
int la_math_spans(const char *text, size_t len, la_span **out, size_t *n);

/* Text mode, for generated solutions (on-policy pairs): free prose with
 * LaTeX math. Math segments as la_find_steps finds them, except that an
 * inline "$" follows pandoc's rule (opens before a non-space, closes after a
 * non-space and not before a digit, within a paragraph) so currency stays
 * prose; plus plain-text steps in the prose ("16 - 3 - 4 = 9 eggs",
 * "12 × 5 = 60": GSM8K syntax with "×", "÷", "·", "−" and "$" allowed).
 * Steps at or after la_text_limit are AFTER_BOXED. */
int la_find_steps_text(const char *text, size_t len, la_step **out, size_t *n);
int la_math_spans_mode(const char *text, size_t len, int text_mode, la_span **out, size_t *n);
/* The first "\boxed" / "\fbox" or "####" in text, or len. */
size_t la_text_limit(const char *text, size_t len);

/* Position of the first "\boxed" (or "\fbox") in text, or len if none. */
size_t la_first_boxed(const char *text, size_t len);

/* The final-answer values of a MATH solution: the value of each \boxed{...}
 * that evaluates to a number, else every numeral written inside it (so a site
 * equal to any number of a non-numeric answer such as "(2,3)" or "x=5" is
 * excluded, conservatively). *vals is malloc'd (caller frees). Returns 0 or -1. */
int la_final_values(const char *text, size_t len, la_rat **vals, size_t *n);

/* Rational helpers. */
int la_rat_eq(la_rat a, la_rat b);
/* Formats a as "n" or "n/d" into buf (at least 96 bytes). Returns buf. */
char *la_rat_str(la_rat a, char *buf, size_t n);

#endif
