/*
 * pair_rules.c: whether a verified step makes a pair that needs arithmetic
 * to judge (issue 22; docs/pairs.md "A pair must need arithmetic"): where
 * the prompt ends (the step end, or right after the value when more math,
 * open math or a mid-sentence newline would follow; pair_line_cut), and
 * which steps give their value away without arithmetic (an identity step, a
 * value already written on the line, a one-digit typo of the value in the
 * source). pairs.c applies them in prepare_math / prepare_gsm8k.
 */
#include "data/pair_rules.h"

#include <string.h>

/* The math segment holding i, if any (k walks forward over sorted spans). */
static int in_math(const la_span *sp, size_t nsp, size_t *k, size_t i)
{
    while (*k < nsp && sp[*k].next <= i) (*k)++;
    return *k < nsp && sp[*k].a <= i && i < sp[*k].b;
}

/* End of the step that contains position e (see the decisions above): the
 * first newline or sentence end; if that lies beyond limit (the answer), the
 * first ',' or ';' outside math before limit; NO_STEP if there is none. */
size_t pair_step_end(const char *t, size_t len, size_t e, const la_span *sp, size_t nsp,
                     size_t limit)
{
    size_t j = len, k = 0;
    for (size_t i = e; i < len; i++) {
        char c = t[i];
        if (c == '\n') { j = i + 1; break; }
        if (c != '.' && c != '?' && c != '!') continue;
        if (in_math(sp, nsp, &k, i)) {
            if (c != '.') continue;
            j = i + 1;
            while (j < sp[k].b && strchr(" \t\r\n", t[j])) j++;
            if (j < sp[k].b) continue;
            j = sp[k].next;
        } else {
            if (c == '.' && i > 0 && i + 1 < len && t[i - 1] >= '0' && t[i - 1] <= '9' &&
                t[i + 1] >= '0' && t[i + 1] <= '9')
                continue;
            if (i + 1 < len && !strchr(" \t\r\n", t[i + 1])) continue;
            j = i + 1;
        }
        if (j < len && t[j] == '\n') j++;
        break;
    }
    if (j <= limit) return j;
    k = 0;
    for (size_t i = e; i < limit; i++) {
        if (t[i] != ',' && t[i] != ';') continue;
        if (!in_math(sp, nsp, &k, i)) return i + 1;
        j = i + 1; /* "=3,$ so": a comma that closes the math segment */
        while (j < sp[k].b && strchr(" \t\r\n", t[j])) j++;
        if (j == sp[k].b && sp[k].next <= limit) return sp[k].next;
    }
    return NO_STEP;
}

/* 1 if t[i, j) holds more arithmetic: a digit, a relation or operator sign,
 * an arithmetic / relation macro, or the start of a display or environment.
 * Prose, units, closing delimiters and punctuation are not. */
static int has_math(const char *t, size_t i, size_t j)
{
    static const char *const macros[] = {"frac", "dfrac", "tfrac", "cfrac", "cdot", "times",
                                         "div", "sqrt", "le", "ge", "leq", "geq", "lt", "gt",
                                         "ne", "neq", "approx", "pm", "Rightarrow", "implies",
                                         "begin", NULL};
    for (; i < j; i++) {
        char c = t[i];
        if ((c >= '0' && c <= '9') || strchr("=<>+*^", c)) return 1;
        if (c != '\\' || i + 1 >= j) continue;
        if (t[i + 1] == '[') return 1;
        size_t k = i + 1;
        while (k < j && ((t[k] >= 'a' && t[k] <= 'z') || (t[k] >= 'A' && t[k] <= 'Z'))) k++;
        for (int m = 0; macros[m]; m++)
            if (strlen(macros[m]) == k - i - 1 && memcmp(t + i + 1, macros[m], k - i - 1) == 0)
                return 1;
        if (k > i + 1) i = k - 1;
    }
    return 0;
}

/* 1 if position cut lies inside a math segment (after its opening delimiter,
 * before the end of its closing one), or inside an environment that is
 * not math to the detector but holds math ("\\begin{tabular}" with "$..$"
 * cells, "\\begin{array}"): the prompt would end in open math. */
static int in_open_math(const char *t, const la_span *sp, size_t nsp, size_t cut)
{
    for (size_t k = 0; k < nsp; k++)
        if (sp[k].open < cut && cut < sp[k].next) return 1;
    long depth = 0;
    for (size_t i = 0; i + 5 < cut; i++) {
        if (t[i] != '\\') continue;
        if (i + 7 <= cut && memcmp(t + i, "\\begin{", 7) == 0) depth++;
        else if (memcmp(t + i, "\\end{", 5) == 0) depth--;
    }
    return nsp > 0 && depth > 0;
}

/* 1 if the cut ends at a newline that does not end a sentence: the text
 * before it (white space skipped) ends in neither '.', '?', '!', ':' nor a
 * math segment whose content ends in one of them ("so the expression
 * becomes\n"). */
static int mid_sentence_newline(const char *t, size_t cut, const la_span *sp, size_t nsp)
{
    if (cut == 0 || t[cut - 1] != '\n') return 0;
    size_t j = cut - 1;
    while (j > 0 && strchr(" \t\r\n", t[j - 1])) j--;
    if (j == 0) return 0;
    if (strchr(".?!:", t[j - 1])) return 0;
    for (size_t k = 0; k < nsp; k++)
        if (sp[k].next == j) {
            size_t b = sp[k].b;
            while (b > sp[k].a && strchr(" \t\r\n", t[b - 1])) b--;
            return !(b > sp[k].a && strchr(".?!:", t[b - 1]));
        }
    return 1;
}

/* The short cut: right after the value and what closes it. Inside math the
 * rest of the segment may hold only white space, closing brackets and
 * punctuation ("= 3,\]"), and the cut goes after the closing delimiter;
 * then directly following punctuation (or a '%' right after a GSM8K number)
 * is kept. NO_STEP if more math follows in the segment ("= 105\\" in an
 * align*, "= 12, 12 + 1 = 13"), or if nothing closes the number (the
 * prompts would end in the differing digits). */
static size_t short_end(const char *t, size_t len, size_t e, const la_span *sp, size_t nsp)
{
    size_t j = e;
    for (size_t k = 0; k < nsp; k++) {
        if (!(sp[k].a <= e && e <= sp[k].b)) continue;
        while (j < sp[k].b) {
            if (strchr(" \t\r\n}])),.;", t[j])) { j++; continue; }
            if (t[j] == '\\' && j + 1 < sp[k].b && strchr(",;! ", t[j + 1])) { j += 2; continue; }
            if (t[j] == '\\' && j + 6 < sp[k].b && memcmp(t + j, "\\right", 6) == 0 &&
                strchr(").]|", t[j + 6])) { j += 7; continue; }
            return NO_STEP;
        }
        j = sp[k].next;
        break;
    }
    if (nsp == 0 && j < len && t[j] == '%') j++;
    while (j < len && strchr(".,;:!?", t[j])) j++;
    /* a prompt that would end in the number itself ends in different tokens
     * in the two prompts ("= 40 students and 20 ..." cut at "= 40"): no cut */
    return j > e ? j : NO_STEP;
}

/* The cut of a site under --cut line: the end of its step (step_end) when
 * nothing but prose, units and punctuation follows the value up to it, the
 * cut is not in open math and (with sentences != 0: MATH reference
 * solutions, whose lines are paragraphs) does not fall at a mid-sentence
 * newline; else the short cut (short_end); else NO_STEP with *reason
 * R_ANSWER_IN_STEP (no step end before the answer) or R_MORE_MATH. GSM8K
 * and generated lines are steps: a newline ends them. */
size_t pair_line_cut(const char *t, size_t len, size_t e, const la_span *sp, size_t nsp,
                     size_t limit, int sentences, int *reason)
{
    size_t full = pair_step_end(t, len, e, sp, nsp, limit);
    if (full != NO_STEP && !has_math(t, e, full) && !in_open_math(t, sp, nsp, full) &&
        !(sentences && mid_sentence_newline(t, full, sp, nsp)))
        return full;
    size_t sh = short_end(t, len, e, sp, nsp);
    if (sh != NO_STEP && sh <= limit && !in_open_math(t, sp, nsp, sh)) return sh;
    *reason = full == NO_STEP ? R_ANSWER_IN_STEP : R_MORE_MATH;
    return NO_STEP;
}

/* 1 if the numeral t[i, q) stands alone, as a stated quantity ("He runs
 * 3000 yards", "$x = 12$"), not as an operand, base, exponent or argument:
 * the nearest characters around it (spaces and '$' skipped) are no operator,
 * bracket or macro ("2^3", "(4, 9)", "\\frac{2}{3}", "5 \\cdot 2"). */
int pair_stands_alone(const char *t, size_t a, size_t b, size_t i, size_t q)
{
    size_t j = i;
    while (j > a && strchr(" $~", t[j - 1])) j--;
    if (j > a) {
        char c = t[j - 1];
        if (strchr("+-*/^(_{[|", c)) return 0;
        if (c == ',' && j >= a + 2 && ((t[j - 2] >= '0' && t[j - 2] <= '9') || t[j - 2] == ')'))
            return 0; /* "(4, 9)"; but "stripes, 40%" stands alone */
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            size_t k = j - 1;
            while (k > a && ((t[k - 1] >= 'a' && t[k - 1] <= 'z') || (t[k - 1] >= 'A' && t[k - 1] <= 'Z'))) k--;
            if (k > a && t[k - 1] == '\\') return 0; /* "\\cdot 5" */
        }
    }
    j = q;
    while (j < b && strchr(" $~", t[j])) j++;
    if (j < b && strchr("+-*/^)}]!\\", t[j])) return 0;
    if (j + 1 < b && t[j] == ',' && t[j + 1] != ' ') return 0; /* "(4,9)" */
    return 1;
}

/* How many numerals in t[a, b), not starting in [skip_a, skip_b), have the
 * absolute value of v (numbers as written: "3,000", "0.60", ".5"); with
 * alone != 0 only those that stand alone (stands_alone). */
int pair_count_value(const char *t, size_t a, size_t b, size_t skip_a, size_t skip_b, la_rat v,
                     int alone)
{
    int n = 0;
    if (v.num < 0) v.num = -v.num;
    for (size_t i = a; i < b;) {
        int digit = t[i] >= '0' && t[i] <= '9';
        int dot = t[i] == '.' && i + 1 < b && t[i + 1] >= '0' && t[i + 1] <= '9' &&
                  !(i > a && t[i - 1] >= '0' && t[i - 1] <= '9');
        if (!digit && !dot) { i++; continue; }
        la_num num;
        size_t q = la_lex_number(t, i, b, 0, &num);
        if (q <= i) { i++; continue; }
        if (!num.overflow && !(i >= skip_a && i < skip_b) && la_rat_eq(num.value, v) &&
            (!alone || pair_stands_alone(t, a, b, i, q)))
            n++;
        i = q;
    }
    return n;
}

/* Identity step: exactly one operation on two numbers, whose result is one
 * of them and the other 1 or 0 ("7*1 = 7", "5/1 = 5", "1(4) = 4", "0+12 =
 * 12", "2^1 = 2"): the value is copied, not computed. ("4-2 = 2" and
 * "(-1)^2 = 1" are kept.) */
int pair_is_identity(const char *expr, size_t n, int ops, la_rat v)
{
    la_rat vals[3];
    int k = 0;
    if (ops != 1) return 0;
    for (size_t i = 0; i < n;) {
        if (!(expr[i] >= '0' && expr[i] <= '9') &&
            !(expr[i] == '.' && i + 1 < n && expr[i + 1] >= '0' && expr[i + 1] <= '9')) { i++; continue; }
        la_num num;
        size_t q = la_lex_number(expr, i, n, 1, &num);
        if (q <= i || num.overflow || k == 3) return 0;
        vals[k++] = num.value;
        i = q;
    }
    if (k != 2) return 0;
    la_rat a = v, zero = {0, 1}, one = {1, 1};
    if (a.num < 0) a.num = -a.num;
    for (int x = 0; x < 2; x++)
        if (la_rat_eq(vals[x], a) && (la_rat_eq(vals[1 - x], one) || la_rat_eq(vals[1 - x], zero)))
            return 1;
    return 0;
}

/* Start of the sentence holding position i (MATH): after the previous
 * newline, or after a '.', '?' or '!' followed by white space. */
size_t pair_sentence_start(const char *t, size_t i)
{
    while (i > 0) {
        char c = t[i - 1];
        if (c == '\n') break;
        if (i >= 2 && strchr(".?!", t[i - 2]) && strchr(" \t", c)) break;
        i--;
    }
    return i;
}

size_t pair_line_start(const char *t, size_t i)
{
    while (i > 0 && t[i - 1] != '\n') i--;
    return i;
}

/* 1 if numerals a and b are written alike but for one digit, with at least
 * two digits ("3.65" / "3.45"): a typo rather than another quantity. */
int pair_one_digit_typo(const char *a, size_t na, const char *b, size_t nb)
{
    size_t diff = 0, digits = 0;
    if (na != nb) return 0;
    for (size_t i = 0; i < na; i++) {
        int da = a[i] >= '0' && a[i] <= '9';
        if (da != (b[i] >= '0' && b[i] <= '9')) return 0;
        digits += da;
        diff += a[i] != b[i];
    }
    return digits >= 2 && diff == 1;
}
