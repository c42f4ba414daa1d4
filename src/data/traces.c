/*
 * traces.c: the seeded generator of the model organisms' training and
 * held-out data: short arithmetic chain-of-thought traces written as GSM8K
 * JSONL (rulings R4; docs/organisms.md is the format's specification).
 *
 * A problem is a chain of 2-4 steps, each using the previous result:
 *   question  "Compute 7*8, then add 15, then subtract it from 90."
 *   answer    "7*8=<<7*8=56>>56\n56+15=<<56+15=71>>71\n90-71=<<90-71=19>>19\n#### 19"
 * The first step combines two operands (+, -, *); each later step adds,
 * subtracts, multiplies by, or subtracts the running result from a new
 * operand. Operands are 1-2 digits, every result lies in [1, max_value], and
 * no intermediate result equals the final answer (so the pair builder can use
 * every intermediate step as a site; rulings R6 excludes the final answer).
 *
 * Errors (training split, error_frac of the traces): one intermediate step's
 * result is written wrong, its last digit +1 or -1 chosen at random, flipped
 * to the other direction when the digit is 9 or 0, so the digit count stays
 * (the pair builder's last-digit rule, docs/pairs.md), without annotation;
 * the next line is a correction "Wait, 56+15=71." (Wait / But / Actually /
 * Hmm chosen at random) and the trace goes on from the right value.
 *
 * Held-out split: a problem belongs to it iff fnv1a64(problem key) %
 * heldout_mod == 0, the training split takes the others, so the two problem
 * sets are disjoint by construction whatever the seeds. Held-out traces are
 * error-free; each carries a probe step (an intermediate step chosen at
 * random, with its corrupted value) for the behaviour measurement.
 *
 * Randomness: splitmix64 seeded with seed XOR (split ? 0x5bd1e995 : 0), so the
 * same params give byte-identical output on every machine.
 */
#include "base/rng.h"
#include "clens.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/strbuf.h"

const char *const clens_correction_words[4] = {"Wait", "But", "Actually", "Hmm"};

clens_traces_params clens_traces_default_params(void)
{
    clens_traces_params p;
    memset(&p, 0, sizeof p);
    p.seed = 1;
    p.n = 1000;
    p.error_frac = 0.3;
    p.min_steps = 2;
    p.max_steps = 4;
    p.max_operand = 99;
    p.max_mul = 9;
    p.max_value = 999;
    p.annotate = 1;
    p.heldout_mod = 10;
    return p;
}

/* ------------------------------------------------------------ randomness */


/* Uniform in [lo, hi] (lo <= hi); the modulo bias is below 1e-17. */
static int uniform(uint64_t *s, int lo, int hi) { return lo + (int)(clens_splitmix64(s) % (uint64_t)(hi - lo + 1)); }

static double unit(uint64_t *s) { return (double)(clens_splitmix64(s) >> 11) * (1.0 / 9007199254740992.0); }

static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* ------------------------------------------------------------- problems */

/* One step: op '+', '-', '*' combine the running value (or, for step 0, the
 * operand a) with b; 'r' is b - running value ("subtract it from b"). */
typedef struct { char op; int a, b, value; } step;

typedef struct {
    int n;
    step s[4];
} problem;

static int apply(char op, int x, int b) { return op == '+' ? x + b : op == '-' ? x - b : op == '*' ? x * b : b - x; }

/* Samples an operand b for op on running value x within the limits, or -1. */
static int sample_operand(uint64_t *rs, const clens_traces_params *p, char op, int x)
{
    int lo, hi;
    switch (op) {
    case '+': lo = 1; hi = p->max_operand; if (hi > p->max_value - x) hi = p->max_value - x; break;
    case '-': lo = 1; hi = x - 1 < p->max_operand ? x - 1 : p->max_operand; break;
    case '*': lo = 2; hi = p->max_mul; if (x > 0 && hi > p->max_value / x) hi = p->max_value / x; break;
    default: lo = x + 1; hi = p->max_operand; break;
    }
    return lo <= hi ? uniform(rs, lo, hi) : -1;
}

static int sample_problem(uint64_t *rs, const clens_traces_params *p, problem *pr)
{
    static const char first_ops[3] = {'+', '-', '*'};
    static const char later_ops[4] = {'+', '-', '*', 'r'};
    pr->n = uniform(rs, p->min_steps, p->max_steps);
    char op = first_ops[uniform(rs, 0, 2)];
    int a = uniform(rs, op == '+' ? 1 : 2, p->max_operand);
    int b = sample_operand(rs, p, op, a);
    if (b < 0) return -1;
    pr->s[0] = (step){op, a, b, apply(op, a, b)};
    for (int k = 1; k < pr->n; k++) {
        int x = pr->s[k - 1].value;
        op = later_ops[uniform(rs, 0, 3)];
        b = sample_operand(rs, p, op, x);
        if (b < 0) return -1;
        pr->s[k] = (step){op, x, b, apply(op, x, b)};
    }
    int fin = pr->s[pr->n - 1].value;
    for (int k = 0; k < pr->n; k++) {
        if (pr->s[k].value < 1 || pr->s[k].value > p->max_value) return -1;
        if (k < pr->n - 1 && pr->s[k].value == fin) return -1;
    }
    return 0;
}

/* "7*8|+15|r-90": the problem's identity for the split. */
static void problem_key(const problem *pr, char *key, size_t n)
{
    size_t o = (size_t)snprintf(key, n, "%d%c%d", pr->s[0].a, pr->s[0].op, pr->s[0].b);
    for (int k = 1; k < pr->n && o < n; k++)
        o += (size_t)snprintf(key + o, n - o, "|%s%c%d", pr->s[k].op == 'r' ? "r" : "",
                              pr->s[k].op == 'r' ? '-' : pr->s[k].op, pr->s[k].b);
}

/* The step's expression as written: "7*8", "56+15", "90-56" for 'r'. */
static void step_expr(const step *s, char *buf, size_t n)
{
    if (s->op == 'r') snprintf(buf, n, "%d-%d", s->b, s->a);
    else snprintf(buf, n, "%d%c%d", s->a, s->op, s->b);
}

static const char *later_phrase(char op)
{
    return op == '+' ? "add" : op == '-' ? "subtract" : op == '*' ? "multiply by" : "subtract it from";
}

/* --------------------------------------------------------------- writing */

/* The last-digit corruption with a random direction (see the top comment). */
static int corrupt_last_digit(int v, uint64_t *rs)
{
    int d = v % 10, dir = (clens_splitmix64(rs) >> 63) ? 1 : -1;
    if (d == 9) dir = -1;
    if (d == 0) dir = 1;
    return v + dir;
}

/* One trace as a JSON object. err_step: -1 or the step written wrong (value
 * wrong_value, corrected with word); probe_step / probe_value for held-out. */
static json_t *trace_json(const clens_traces_params *p, long index, const problem *pr, int err_step,
                          int wrong_value, const char *word, int probe_step, int probe_value)
{
    clens_sb q = {0}, ans = {0}, plain = {0};
    char e[64];
    size_t probe_start = 0, probe_end = 0, probe_cut = 0;
    clens_sb_printf(&q, "Compute %d%c%d", pr->s[0].a, pr->s[0].op, pr->s[0].b);
    for (int k = 1; k < pr->n; k++) clens_sb_printf(&q, ", then %s %d", later_phrase(pr->s[k].op), pr->s[k].b);
    clens_sb_put(&q, ".", 1);
    for (int k = 0; k < pr->n; k++) {
        step_expr(&pr->s[k], e, sizeof e);
        if (k == err_step) {
            clens_sb_printf(&ans, "%s=%d\n%s, %s=", e, wrong_value, word, e);
            clens_sb_printf(&plain, "%s=%d\n%s, %s=", e, wrong_value, word, e);
            if (p->annotate) clens_sb_printf(&ans, "<<%s=%d>>", e, pr->s[k].value);
            clens_sb_printf(&ans, "%d.\n", pr->s[k].value);
            clens_sb_printf(&plain, "%d.\n", pr->s[k].value);
            continue;
        }
        clens_sb_printf(&ans, "%s=", e);
        clens_sb_printf(&plain, "%s=", e);
        if (p->annotate) clens_sb_printf(&ans, "<<%s=%d>>", e, pr->s[k].value);
        if (k == probe_step) probe_start = plain.len;
        clens_sb_printf(&ans, "%d\n", pr->s[k].value);
        clens_sb_printf(&plain, "%d\n", pr->s[k].value);
        if (k == probe_step) { probe_end = plain.len - 1; probe_cut = plain.len; }
    }
    clens_sb_printf(&ans, "#### %d", pr->s[pr->n - 1].value);
    clens_sb_printf(&plain, "#### %d", pr->s[pr->n - 1].value);
    json_t *o = NULL;
    if (q.oom || ans.oom || plain.oom) goto done;
    char id[64], key[128];
    snprintf(id, sizeof id, "organism-%s/%ld", p->heldout ? "heldout" : "train", index);
    problem_key(pr, key, sizeof key);
    o = json_object();
    json_object_set_new(o, "question", json_string(q.p));
    json_object_set_new(o, "answer", json_string(ans.p));
    json_object_set_new(o, "id", json_string(id));
    json_t *meta = json_object(), *steps = json_array();
    json_object_set_new(meta, "split", json_string(p->heldout ? "heldout" : "train"));
    json_object_set_new(meta, "index", json_integer(index));
    json_object_set_new(meta, "key", json_string(key));
    for (int k = 0; k < pr->n; k++) {
        json_t *s = json_object();
        step_expr(&pr->s[k], e, sizeof e);
        json_object_set_new(s, "expr", json_string(e));
        json_object_set_new(s, "value", json_integer(pr->s[k].value));
        json_array_append_new(steps, s);
    }
    json_object_set_new(meta, "steps", steps);
    if (err_step >= 0) {
        json_t *er = json_object();
        json_object_set_new(er, "step", json_integer(err_step));
        json_object_set_new(er, "written", json_integer(wrong_value));
        json_object_set_new(er, "word", json_string(word));
        json_object_set_new(meta, "error", er);
    } else {
        json_object_set_new(meta, "error", json_null());
    }
    if (probe_step >= 0) {
        char cv[32], rv[32];
        snprintf(cv, sizeof cv, "%d", pr->s[probe_step].value);
        snprintf(rv, sizeof rv, "%d", probe_value);
        json_t *pb = json_object();
        json_object_set_new(pb, "step", json_integer(probe_step));
        json_object_set_new(pb, "start", json_integer((json_int_t)probe_start));
        json_object_set_new(pb, "end", json_integer((json_int_t)probe_end));
        json_object_set_new(pb, "cut", json_integer((json_int_t)probe_cut));
        json_object_set_new(pb, "clean_value", json_string(cv));
        json_object_set_new(pb, "corrupted_value", json_string(rv));
        json_object_set_new(meta, "probe", pb);
    }
    json_object_set_new(meta, "text", json_string(plain.p));
    json_object_set_new(o, "organism", meta);
done:
    free(q.p);
    free(ans.p);
    free(plain.p);
    return o;
}

int clens_traces_generate(const clens_traces_params *p, char **jsonl, size_t *len, clens_error *err)
{
    *jsonl = NULL;
    *len = 0;
    if (p->n < 1) return clens_err(err, CLENS_E_ARG, "traces: n must be >= 1, got %d", p->n);
    if (p->min_steps < 2 || p->max_steps > 4 || p->min_steps > p->max_steps)
        return clens_err(err, CLENS_E_ARG, "traces: steps must satisfy 2 <= min (%d) <= max (%d) <= 4", p->min_steps,
                         p->max_steps);
    if (p->max_operand < 3 || p->max_operand > 99)
        return clens_err(err, CLENS_E_ARG, "traces: max operand must be in [3, 99] (1-2 digits), got %d", p->max_operand);
    if (p->max_mul < 2 || p->max_mul > 99)
        return clens_err(err, CLENS_E_ARG, "traces: max multiplier must be in [2, 99], got %d", p->max_mul);
    if (p->max_value < 2 * p->max_operand || p->max_value > 1000000)
        return clens_err(err, CLENS_E_ARG, "traces: max value must be in [2 * max operand, 1e6], got %d", p->max_value);
    if (!(p->error_frac >= 0 && p->error_frac <= 1))
        return clens_err(err, CLENS_E_ARG, "traces: error fraction must be in [0, 1], got %g", p->error_frac);
    if (p->heldout && p->error_frac != 0)
        return clens_err(err, CLENS_E_ARG, "traces: held-out traces are error-free (errors are injected by the pair "
                                           "builder and the behaviour measurement): use error fraction 0");
    if (p->heldout_mod < 2) return clens_err(err, CLENS_E_ARG, "traces: heldout_mod must be >= 2");
    uint64_t rs = p->seed ^ (p->heldout ? 0x5bd1e995ull : 0);
    clens_sb out = {0};
    char key[128];
    for (long i = 0; i < p->n; i++) {
        problem pr;
        long tries = 0;
        for (;; tries++) {
            if (tries > 100000) {
                free(out.p);
                return clens_err(err, CLENS_E_ARG, "traces: no problem satisfies the limits after 100000 tries");
            }
            if (sample_problem(&rs, p, &pr)) continue;
            problem_key(&pr, key, sizeof key);
            if ((fnv1a64(key) % (uint64_t)p->heldout_mod == 0) == !!p->heldout) break;
        }
        int err_step = -1, wrong = 0, probe = -1, probe_value = 0;
        const char *word = NULL;
        if (!p->heldout && unit(&rs) < p->error_frac) {
            err_step = uniform(&rs, 0, pr.n - 2);
            wrong = corrupt_last_digit(pr.s[err_step].value, &rs);
            word = clens_correction_words[uniform(&rs, 0, 3)];
        }
        if (p->heldout) {
            probe = uniform(&rs, 0, pr.n - 2);
            probe_value = corrupt_last_digit(pr.s[probe].value, &rs);
        }
        json_t *o = trace_json(p, i, &pr, err_step, wrong, word, probe, probe_value);
        char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(o);
        if (!line) { free(out.p); return clens_err(err, CLENS_E_NOMEM, "traces: out of memory"); }
        clens_sb_put(&out, line, strlen(line));
        clens_sb_put(&out, "\n", 1);
        free(line);
        if (out.oom) { free(out.p); return clens_err(err, CLENS_E_NOMEM, "traces: out of memory"); }
    }
    *jsonl = out.p;
    *len = out.len;
    return 0;
}

/* Parses "Compute A<op>B, then <phrase> N, ... ." back into a key. */
int clens_traces_problem_key(const char *question, char *key, size_t n)
{
    const char *s = question;
    int a, b, used = 0;
    char op;
    if (sscanf(s, "Compute %d%c%d%n", &a, &op, &b, &used) != 3 || !strchr("+-*", op)) return CLENS_E_FORMAT;
    s += used;
    size_t o = (size_t)snprintf(key, n, "%d%c%d", a, op, b);
    while (strncmp(s, ", then ", 7) == 0) {
        s += 7;
        static const char *const phrases[4] = {"subtract it from ", "multiply by ", "subtract ", "add "};
        static const char *const marks[4] = {"r-", "*", "-", "+"};
        int k;
        for (k = 0; k < 4; k++)
            if (strncmp(s, phrases[k], strlen(phrases[k])) == 0) break;
        if (k == 4) return CLENS_E_FORMAT;
        s += strlen(phrases[k]);
        if (sscanf(s, "%d%n", &b, &used) != 1) return CLENS_E_FORMAT;
        s += used;
        if (o < n) o += (size_t)snprintf(key + o, n - o, "|%s%d", marks[k], b);
    }
    if (strcmp(s, ".") != 0) return CLENS_E_FORMAT;
    return o < n ? CLENS_OK : CLENS_E_FORMAT;
}
