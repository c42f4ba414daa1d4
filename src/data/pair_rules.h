/*
 * pair_rules.h: the rules of pair_rules.c (internal to the pair builder) and
 * the drop reasons the builder adds to latex_arith's.
 */
#ifndef CLENS_PAIR_RULES_H
#define CLENS_PAIR_RULES_H

#include <stddef.h>

#include "data/latex_arith.h"

/* Reasons beyond latex_arith's, in the order they are checked. */
#define R_ANSWER_IN_STEP (LA_REASON_COUNT)  /* no step end before the answer */
#define R_IDENTITY (LA_REASON_COUNT + 1)    /* one operation whose result is an operand: x*1, x/1, x+0 */
#define R_RESTATED (LA_REASON_COUNT + 2)    /* the value is already written earlier in the step */
#define R_MORE_MATH (LA_REASON_COUNT + 3)   /* more math follows the value in its formula */
#define R_SOURCE_ERROR (LA_REASON_COUNT + 4) /* the clean prefix holds a dataset error */
#define R_COUNT (LA_REASON_COUNT + 5)

/* "No cut": the site has no usable step end. */
#define NO_STEP ((size_t)-1)

/* End of the step holding the number that ends at e: the first newline or
 * sentence end; past limit (the answer), the first clause end before it;
 * NO_STEP if none. sp: the math segments (NULL, 0 for GSM8K). */
size_t pair_step_end(const char *t, size_t len, size_t e, const la_span *sp, size_t nsp,
                     size_t limit);

/* The --cut line cut of the number ending at e under the issue-22 rules, or
 * NO_STEP with *reason R_ANSWER_IN_STEP or R_MORE_MATH. sentences != 0 for
 * MATH reference solutions (a newline inside a sentence is no step end). */
size_t pair_line_cut(const char *t, size_t len, size_t e, const la_span *sp, size_t nsp,
                     size_t limit, int sentences, int *reason);

/* 1 if the numeral t[i, q) stands alone (a stated quantity, not an operand,
 * base, exponent, argument or tuple member); a, b bound the look-around. */
int pair_stands_alone(const char *t, size_t a, size_t b, size_t i, size_t q);

/* Numerals in t[a, b) (not starting in [skip_a, skip_b)) whose absolute
 * value is |v|; alone != 0: only those that stand alone. */
int pair_count_value(const char *t, size_t a, size_t b, size_t skip_a, size_t skip_b, la_rat v,
                     int alone);

/* 1 if expr (with ops operations) is an identity step with value v: one
 * operation on two numbers, the result one of them and the other 1 or 0. */
int pair_is_identity(const char *expr, size_t n, int ops, la_rat v);

/* Start of the sentence (MATH) / line holding position i. */
size_t pair_sentence_start(const char *t, size_t i);
size_t pair_line_start(const char *t, size_t i);

/* 1 if numerals a and b differ in exactly one digit (>= 2 digits). */
int pair_one_digit_typo(const char *a, size_t na, const char *b, size_t nb);

#endif
