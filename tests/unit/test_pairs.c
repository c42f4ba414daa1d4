/*
 * test_pairs.c: the arithmetic detector and the pair rules.
 *   - snippet_table: tests/data/pairs/snippets.jsonl, real solution snippets
 *     (each checked to be a verbatim substring of its source in
 *     $SHARED/data) with every candidate "lhs = n" the builder must see, its
 *     verdict and the exact lhs value, checked by hand; and for snippets that
 *     give a pair, the end of the clean prompt (site "last", default cut);
 *   - evaluator: exact rationals, LaTeX forms, overflow, irrational roots;
 *   - numbers: thousands separators versus tuples;
 *   - corruption: last-digit and plus-one (Python's str(float + 1));
 *   - cuts: line / sentence / clause / chars:N / chars-raw:N;
 *   - seeded choice: splitmix64 + FNV-1a as documented in pairs.c.
 */
#include "testutil.h"

#include <jansson.h>

#include "base/base.h"
#include "data/latex_arith.h"

/* The public calls return a status and *made; these give the old single
 * value the assertions below compare: 1 made, 0 no site, -status. */
static int from_text_made(const clens_pairs_params *prm, const char *id, const char *problem, const char *sol,
                          clens_pair *out, clens_pairs_stats *st, clens_error *err)
{
    int made = 0, rc = clens_pairs_from_text(prm, id, problem, sol, out, &made, st, err);
    return rc ? -rc : made;
}

static int from_generation_made(const clens_pairs_params *prm, const char *id, const char *problem,
                                const char *gen, const char *ref, clens_pair *out, clens_pairs_stats *st,
                                clens_error *err)
{
    int made = 0, rc = clens_pairs_from_generation(prm, id, problem, gen, ref, out, &made, st, err);
    return rc ? -rc : made;
}

static const char *root(void)
{
    const char *r = getenv("ROOT");
    return r && *r ? r : ".";
}

/* ------------------------------------------------------- helpers */

typedef struct got {
    char lines[256][400];
    int n;
} got;

static void collect(void *user, const clens_pairs_candidate *c)
{
    got *g = user;
    char val[200];
    if (g->n >= 256) return;
    snprintf(val, sizeof val, "%s%.*s", c->negative ? "-" : "",
             (int)(c->end - c->start), c->text + c->start);
    snprintf(g->lines[g->n++], sizeof g->lines[0], "%.*s | %s | %s | %s", (int)c->expr_len,
             c->expr, val, clens_pairs_reason_name(c->reason), c->lhs_value);
}

/* The text of a source row: MATH "split/algebra/N.json" or GSM8K "gsm8k/F:LINE". */
static char *source_text(const char *src)
{
    char path[4096], id[512];
    const char *colon = strrchr(src, ':');
    long want = 0;
    int gsm = strncmp(src, "gsm8k/", 6) == 0;
    if (gsm) {
        snprintf(path, sizeof path, "%s/data/%.*s", tu_shared(), (int)(colon - src), src);
        want = atol(colon + 1);
    } else {
        snprintf(path, sizeof path, "%s/data/math_algebra/%s.jsonl", tu_shared(),
                 strncmp(src, "test/", 5) == 0 ? "test" : "train");
        snprintf(id, sizeof id, "\"id\": \"%s\"", src);
    }
    char *data;
    size_t len;
    clens_error err = {0};
    if (clens_read_file(path, &data, &len, &err)) fail_msg("%s", err.msg);
    char *out = NULL;
    long line = 0;
    for (char *p = data; p && *p && !out;) {
        char *nl = strchr(p, '\n');
        line++;
        if (nl) *nl = 0;
        if ((gsm && line == want) || (!gsm && strstr(p, id))) {
            json_t *o = json_loads(p, 0, NULL);
            assert_non_null(o);
            const char *t = json_string_value(json_object_get(o, gsm ? "answer" : "solution"));
            assert_non_null(t);
            out = strdup(t);
            json_decref(o);
        }
        p = nl ? nl + 1 : NULL;
    }
    free(data);
    if (!out) fail_msg("source %s not found in %s", src, path);
    return out;
}

/* ----------------------------------------------------- snippet table */

static void snippet_table(void **state)
{
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/pairs/snippets.jsonl", root());
    char *data;
    size_t len;
    clens_error err = {0};
    if (clens_read_file(path, &data, &len, &err)) fail_msg("%s", err.msg);
    int n_math = 0, n_gsm = 0, reasons_seen[CLENS_PAIRS_MAX_REASONS] = {0}, line = 0;
    for (char *p = data; p && *p;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        line++;
        json_error_t je;
        json_t *o = json_loads(p, 0, &je);
        if (!o) fail_msg("%s:%d: %s", path, line, je.text);
        const char *src = json_string_value(json_object_get(o, "src"));
        const char *fmt = json_string_value(json_object_get(o, "format"));
        const char *text = json_string_value(json_object_get(o, "text"));
        json_t *expect = json_object_get(o, "expect");
        assert_non_null(src);
        assert_non_null(text);
        /* verbatim from the shared data */
        char *full = source_text(src);
        if (!strstr(full, text)) fail_msg("%s:%d: snippet is not in %s", path, line, src);
        free(full);

        clens_pairs_params prm = clens_pairs_default_params();
        got g;
        memset(&g, 0, sizeof g);
        prm.format = strcmp(fmt, "gsm8k") == 0 ? CLENS_PAIRS_GSM8K : CLENS_PAIRS_MATH;
        prm.site = CLENS_SITE_LAST;
        prm.on_candidate = collect;
        prm.on_candidate_user = &g;
        if (prm.format == CLENS_PAIRS_GSM8K) n_gsm++;
        else n_math++;
        clens_pair pair;
        clens_pairs_stats st;
        memset(&st, 0, sizeof st);
        int made = from_text_made(&prm, src, "", text, &pair, &st, &err);
        assert_true(made >= 0);
        if ((size_t)g.n != json_array_size(expect)) {
            for (int i = 0; i < g.n; i++) print_message("  got: %s\n", g.lines[i]);
            fail_msg("%s:%d (%s): %d candidates, expected %zu", path, line, src, g.n,
                     json_array_size(expect));
        }
        for (int i = 0; i < g.n; i++) {
            json_t *e = json_array_get(expect, (size_t)i);
            char want[400];
            snprintf(want, sizeof want, "%s | %s | %s | %s",
                     json_string_value(json_array_get(e, 0)), json_string_value(json_array_get(e, 1)),
                     json_string_value(json_array_get(e, 2)), json_string_value(json_array_get(e, 3)));
            if (strcmp(want, g.lines[i]) != 0)
                fail_msg("%s:%d (%s) candidate %d:\n  got  %s\n  want %s", path, line, src, i,
                         g.lines[i], want);
            for (int r = 0; r < clens_pairs_reason_count(); r++)
                if (strcmp(clens_pairs_reason_name(r), json_string_value(json_array_get(e, 2))) == 0)
                    reasons_seen[r]++;
        }
        assert_int_equal(st.candidates, g.n);
        const char *site = json_string_value(json_object_get(o, "last_site"));
        const char *tail = json_string_value(json_object_get(o, "last_tail"));
        assert_int_equal(made, site != NULL);
        if (made) {
            size_t lt = strlen(tail), lc = strlen(pair.clean_prefix);
            assert_string_equal(pair.site.clean_value, site);
            if (lc < lt || strcmp(pair.clean_prefix + lc - lt, tail) != 0)
                fail_msg("%s:%d (%s): clean prefix ends \"%s\", expected \"%s\"", path, line, src,
                         pair.clean_prefix + (lc > lt ? lc - lt : 0), tail);
            assert_int_equal(pair.site_index, pair.n_sites - 1);
            clens_pair_clear(&pair);
        }
        json_decref(o);
        p = nl ? nl + 1 : NULL;
    }
    free(data);
    assert_true(n_math >= 40);
    assert_true(n_gsm >= 5);
    /* every trap of the issue is in the table (overflow and annotation_text
     * do not occur in the shared data: see evaluator and gsm8k_rules) */
    const char *need[] = {"ok", "after_boxed", "rhs_not_number", "no_lhs", "tuple", "assignment",
                          "unknowns", "malformed", "not_rational", "trivial", "approximation",
                          "mismatch", "final_answer", "answer_in_step", "identity", "restated",
                          "more_math", "source_error"};
    for (size_t k = 0; k < sizeof need / sizeof *need; k++) {
        int found = 0;
        for (int r = 0; r < clens_pairs_reason_count(); r++)
            if (strcmp(clens_pairs_reason_name(r), need[k]) == 0) found = reasons_seen[r];
        if (!found) fail_msg("no snippet covers reason %s", need[k]);
    }
}

/* --------------------------------------------------------- evaluator */

static int eval(const char *s, int plain, char *out)
{
    la_rat v;
    int ops;
    int rc = la_eval(s, 0, strlen(s), plain, &v, &ops);
    if (rc == LA_OK) la_rat_str(v, out, 96);
    else snprintf(out, 96, "%s", la_reason_name(rc));
    return rc;
}

static void check_eval(const char *s, int plain, const char *want)
{
    char got[96];
    eval(s, plain, got);
    if (strcmp(got, want) != 0) fail_msg("la_eval(\"%s\") = %s, expected %s", s, got, want);
}

static void evaluator(void **state)
{
    (void)state;
    /* values */
    check_eval("120\\cdot30\\cdot\\frac{1}{100}", 0, "36");
    check_eval("\\frac62", 0, "3");
    check_eval("\\frac12+\\frac13", 0, "5/6");
    check_eval("\\dfrac{-1-7}{7-(-1)}", 0, "-1");
    check_eval("(15)(1500)", 0, "22500");
    check_eval("2(3+4)", 0, "14");
    check_eval("2\\sqrt{9}", 0, "6");
    check_eval("-3^2", 0, "-9");
    check_eval("(-3)^2", 0, "9");
    check_eval("2^{10}", 0, "1024");
    check_eval("2^{-2}", 0, "1/4");
    check_eval("8^{2/3}", 0, "4");
    check_eval("8^{\\frac{2}{3}}", 0, "4");
    check_eval("\\sqrt[3]{-27}", 0, "-3");
    check_eval("\\sqrt{\\frac{169}{36}}", 0, "13/6");
    check_eval("\\left(\\frac{1}{2}\\right)^{3}", 0, "1/8");
    check_eval("\\big(2+3\\big)\\cdot 4", 0, "20");
    check_eval("5!", 0, "120");
    check_eval("5\\%(\\$25,\\!000)", 0, "1250");
    check_eval("74,592 - 74,568", 0, "24");
    check_eval("0.1 \\times .5", 0, "1/20");
    check_eval("3 \\cdot -2", 0, "-6");
    check_eval("4 \\div 8", 0, "1/2");
    check_eval("{2}^{3}", 0, "8");
    /* reasons */
    check_eval("x", 0, "assignment");
    check_eval("a_1", 0, "assignment");
    check_eval("f(x)", 0, "assignment");
    check_eval("2x+3", 0, "unknowns");
    check_eval("\\pi r^2", 0, "unknowns");
    check_eval("6\\pm1", 0, "unknowns");
    check_eval("\\log_2 8", 0, "unknowns");
    check_eval("(1,125)", 0, "tuple");
    check_eval("\\{1,2\\}", 0, "tuple");
    check_eval("3\\frac12", 0, "malformed");   /* mixed number */
    check_eval("2 3", 0, "malformed");
    check_eval("2^10", 0, "malformed");        /* LaTeX: 2^1 then 0 */
    check_eval("\\frac123", 0, "malformed");
    check_eval("(2+3", 0, "malformed");
    check_eval("2^3^2", 0, "malformed");
    check_eval("\\sqrt{2}", 0, "not_rational");
    check_eval("\\frac{1}{0}", 0, "not_rational");
    check_eval("(-8)^{1/2}", 0, "not_rational");
    check_eval("0^{-1}", 0, "not_rational");
    check_eval("2.5!", 0, "not_rational");
    check_eval("10^{40}", 0, "overflow");
    check_eval("99999999999999999999\\cdot99999999999999999999", 0, "overflow");
    check_eval("123456789012345678901234567890123456789012345", 0, "overflow");
    check_eval("34!", 0, "overflow");
    check_eval("10^{38}-10^{38}", 0, "0");  /* 10^38 still fits */
    /* plain (GSM8K) */
    check_eval("16-3-4", 1, "9");
    check_eval("80000*1.5", 1, "120000");
    check_eval("-48+21+(-3)", 1, "-30");
    check_eval("50*10%", 1, "5");
    check_eval("560//10", 1, "malformed");
    check_eval("3*+6", 1, "malformed");
    check_eval("2(3)", 1, "malformed");       /* no implicit multiplication */
    check_eval("2^3", 1, "unknowns");
    check_eval("x*3", 1, "unknowns");
    /* trivial: no operation */
    la_rat v;
    int ops;
    assert_int_equal(la_eval("(12)", 0, 4, 0, &v, &ops), LA_OK);
    assert_int_equal(ops, 0);
}

static void numbers(void **state)
{
    (void)state;
    struct { const char *s; int tuple_ctx; const char *text; const char *value; int frac; } t[] = {
        {"74,592 - 1", 0, "74,592", "74592", 0},
        {"74,592", 1, "74", "74", 0},                 /* inside ( ): a tuple */
        {"1,\\!000", 1, "1,\\!000", "1000", 0},        /* \! always separates thousands */
        {"1{,}000", 0, "1{,}000", "1000", 0},
        {"999,999,999,998=", 0, "999,999,999,998", "999999999998", 0},
        {"12,34", 0, "12", "12", 0},
        {"1,2345", 0, "1", "1", 0},
        {"1234,567", 0, "1234", "1234", 0},
        {"16,\\!386.16", 0, "16,\\!386.16", "409654/25", 2},
        {".75)", 0, ".75", "3/4", 2},
        {"2.", 0, "2", "2", 0},
        {"18.\\overline{18}", 0, "18", "18", 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        la_num n;
        char buf[96];
        size_t e = la_lex_number(t[i].s, 0, strlen(t[i].s), t[i].tuple_ctx, &n);
        if (e != strlen(t[i].text) || strncmp(t[i].s, t[i].text, e) != 0)
            fail_msg("lex \"%s\": numeral \"%.*s\", expected \"%s\"", t[i].s, (int)e, t[i].s, t[i].text);
        assert_string_equal(la_rat_str(n.value, buf, sizeof buf), t[i].value);
        assert_int_equal(n.frac_digits, t[i].frac);
    }
    la_num n;
    la_lex_number("18.\\overline{18}", 0, 16, 0, &n);
    assert_true(n.repeating);
}

/* -------------------------------------------------------- corruption */

static void check_corrupt(const char *num, clens_corrupt_mode m, const char *want)
{
    char *c = NULL;
    assert_int_equal(clens_pairs_corrupt_value(num, m, &c, NULL), CLENS_OK);
    assert_non_null(c);
    if (strcmp(c, want) != 0) fail_msg("corrupt(\"%s\", %d) = \"%s\", expected \"%s\"", num, m, c, want);
    free(c);
}

static void corruption(void **state)
{
    (void)state;
    const clens_corrupt_mode L = CLENS_CORRUPT_LAST_DIGIT, P = CLENS_CORRUPT_PLUS_ONE;
    check_corrupt("36", L, "37");
    check_corrupt("19", L, "18");
    check_corrupt("9", L, "8");
    check_corrupt("74,592", L, "74,593");
    check_corrupt("1,\\!000", L, "1,\\!001");
    check_corrupt("2.5", L, "2.6");
    check_corrupt("0.0625", L, "0.0626");
    check_corrupt("2000000000000", L, "2000000000001");
    /* plus-one: Python str(int(x) + 1) / str(float(x) + 1.0), values from python3 */
    check_corrupt("9", P, "10");
    check_corrupt("99", P, "100");
    check_corrupt("007", P, "8");
    check_corrupt("1,\\!000", P, "1001");
    check_corrupt("999999999999999999999999", P, "1000000000000000000000000");
    check_corrupt("2.50", P, "3.5");
    check_corrupt("0.0625", P, "1.0625");
    check_corrupt("10920.25", P, "10921.25");
    check_corrupt("0.1", P, "1.1");
    check_corrupt("1.005", P, "2.005");
    check_corrupt("123456789.123456789", P, "123456790.12345679");
    check_corrupt(".75", P, "1.75");
    check_corrupt("9999999999999999.5", P, "1e+16");
    check_corrupt("0.00001", P, "1.00001");
}

/* --------------------------------------------------------------- cuts */

static clens_pair one(const char *sol, clens_pairs_params prm)
{
    clens_pair p;
    clens_error err = {0};
    int made = from_text_made(&prm, "t", "q", sol, &p, NULL, &err);
    if (made != 1) fail_msg("no pair from \"%s\" (%d, %s)", sol, made, err.msg);
    return p;
}

static void check_cut(const char *sol, clens_pairs_params prm, const char *clean, const char *corr)
{
    clens_pair p = one(sol, prm);
    if (strcmp(p.clean_prefix, clean) != 0 || strcmp(p.corrupted_prefix, corr) != 0)
        fail_msg("cut of \"%s\":\n  clean \"%s\" (want \"%s\")\n  corr  \"%s\" (want \"%s\")", sol,
                 p.clean_prefix, clean, p.corrupted_prefix, corr);
    clens_pair_clear(&p);
}

static void cuts(void **state)
{
    (void)state;
    clens_pairs_params m = clens_pairs_default_params();
    m.site = CLENS_SITE_LAST;
    m.corrupt = CLENS_CORRUPT_LAST_DIGIT; /* the cut is under test here */
    /* line: through the newline when the line ends a sentence ... */
    check_cut("We get $2+3=5$ apples.\nthen $\\boxed{7}$.", m, "We get $2+3=5$ apples.\n",
              "We get $2+3=6$ apples.\n");
    /* ... else (MATH) right after the number's math: the newline is mid-sentence */
    check_cut("We get $2+3=5$ apples\nthen $\\boxed{7}$.", m, "We get $2+3=5$",
              "We get $2+3=6$");
    /* sentence end before the newline; a following newline is included */
    check_cut("So $4\\cdot 5 = 20$. Then $20+1=21$ is $\\boxed{21}$.", m, "So $4\\cdot 5 = 20$.",
              "So $4\\cdot 5 = 21$.");
    check_cut("So $4\\cdot 5 = 20$.\nNext $\\boxed{3}$.", m, "So $4\\cdot 5 = 20$.\n",
              "So $4\\cdot 5 = 21$.\n");
    /* a decimal point is not a sentence end; "." closing display math cuts after $$ */
    check_cut("It is $$2.5\\cdot 2=5.$$ Then $\\boxed{1}$.", m, "It is $$2.5\\cdot 2=5.$$",
              "It is $$2.5\\cdot 2=6.$$");
    /* the sentence runs into the answer: the first clause end before it */
    check_cut("Thus $9 \\cdot 3 = 27$ tours, so $\\boxed{28}$.", m, "Thus $9 \\cdot 3 = 27$ tours,",
              "Thus $9 \\cdot 3 = 28$ tours,");
    check_cut("the product is $6/2 = 3,$ so it is $3^2 = \\boxed{9}.$", m,
              "the product is $6/2 = 3,$", "the product is $6/2 = 4,$");
    /* chars:N counts code points from the start of the number, same boundary in both */
    clens_pairs_params c = m;
    c.cut = CLENS_CUT_CHARS;
    c.cut_chars = 6; /* "9", "$", " ", "é", "€", " " */
    check_cut("so $3\\cdot 3=9$ é€ more\n$\\boxed{1}$", c, "so $3\\cdot 3=9$ é€ ",
              "so $3\\cdot 3=8$ é€ ");
    c.corrupt = CLENS_CORRUPT_PLUS_ONE; /* 9 -> 10: the corrupted prompt is one byte longer */
    check_cut("so $3\\cdot 3=9$ é€ more\n$\\boxed{1}$", c, "so $3\\cdot 3=9$ é€ ",
              "so $3\\cdot 3=10$ é€ ");
    /* chars-raw:N (the seed's): each text cut N characters after the start */
    c.cut = CLENS_CUT_CHARS_RAW;
    check_cut("so $3\\cdot 3=9$ é€ more\n$\\boxed{1}$", c, "so $3\\cdot 3=9$ é€ ",
              "so $3\\cdot 3=10$ é€");
    /* GSM8K: annotations removed, cut after the line */
    clens_pairs_params g = m;
    g.format = CLENS_PAIRS_GSM8K;
    check_cut("He has 3*4=<<3*4=12>>12 eggs. He sells them.\nSo 12+1=<<12+1=13>>13\n#### 13", g,
              "He has 3*4=12 eggs.", "He has 3*4=13 eggs.");
}

static void gsm8k_rules(void **state)
{
    (void)state;
    clens_pairs_params g = clens_pairs_default_params();
    got k;
    memset(&k, 0, sizeof k);
    g.format = CLENS_PAIRS_GSM8K;
    g.on_candidate = collect;
    g.on_candidate_user = &k;
    clens_pair p;
    clens_error err = {0};
    const char *ans = "A 2+3=<<2+3=5>>6 b.\nC 7*8=<<7*8=56>>56 d.\nE <<99999999999999999999*99999999999999999999="
                      "1>>1 f.\nG 10/4=<<10/4=2.5>>2.5 h.\nI 2/3=<<2/3=0.67>>0.67\nJ 1+1=<<1+1=2>>2\n#### 2";
    assert_int_equal(from_text_made(&g, "x", "q", ans, &p, NULL, &err), 1);
    assert_int_equal(k.n, 6);
    assert_string_equal(k.lines[0], "2+3 |  | annotation_text | ");
    assert_string_equal(k.lines[1], "7*8 | 56 | ok | 56");
    assert_string_equal(k.lines[2], "99999999999999999999*99999999999999999999 | 1 | overflow | ");
    assert_string_equal(k.lines[3], "10/4 | 2.5 | ok | 5/2");
    assert_string_equal(k.lines[4], "2/3 | 0.67 | approximation | 2/3");
    assert_string_equal(k.lines[5], "1+1 | 2 | final_answer | 2");
    assert_null(strstr(p.clean_prefix, "<<"));
    assert_int_equal(p.n_sites, 2);
    clens_pair_clear(&p);
}

/* ------------------------------------------------------ seeded choice */

static uint64_t ref_choice(uint64_t seed, const char *id, uint64_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *s = id; *s; s++) { h ^= (unsigned char)*s; h *= 0x100000001b3ULL; }
    uint64_t z = (seed ^ h) + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (uint64_t)(((unsigned __int128)z * n) >> 64);
}

static void seeded_choice(void **state)
{
    (void)state;
    const char *sol = "$1+1=2$, $2+1=3$, $3+1=4$, $4+1=5$, $5+1=6$, $6+1=7$, $7+1=8$. So $\\boxed{100}$.";
    clens_pairs_params prm = clens_pairs_default_params();
    int seen[7] = {0};
    for (uint64_t seed = 0; seed < 64; seed++) {
        prm.seed = seed;
        char id[32];
        snprintf(id, sizeof id, "p%llu", (unsigned long long)(seed % 5));
        clens_pair p;
        clens_error err = {0};
        assert_int_equal(from_text_made(&prm, id, "", sol, &p, NULL, &err), 1);
        assert_int_equal(p.n_sites, 7);
        assert_int_equal(p.site_index, (int)ref_choice(seed, id, 7));
        seen[p.site_index]++;
        char want[16];
        snprintf(want, sizeof want, "%d", p.site_index + 2);
        assert_string_equal(p.site.clean_value, want);
        clens_pair_clear(&p);
    }
    for (int i = 0; i < 7; i++) assert_true(seen[i] > 0);
}

/* Generated solutions (on-policy): prose steps, currency, LaTeX segments,
 * the text's own and the reference answer excluded. Each case lists every
 * candidate as "expr | value | reason | lhs value". */
static void check_generated(const char *text, const char *reference, const char *const *want, int n_want)
{
    got g;
    memset(&g, 0, sizeof g);
    clens_pairs_params prm = clens_pairs_default_params();
    prm.on_candidate = collect;
    prm.on_candidate_user = &g;
    clens_pair p;
    clens_error err = {0};
    int made = from_generation_made(&prm, "g", "q", text, reference, &p, NULL, &err);
    assert_true(made >= 0);
    int ok = g.n == n_want;
    for (int i = 0; ok && i < n_want; i++) ok = strcmp(g.lines[i], want[i]) == 0;
    if (!ok) {
        for (int i = 0; i < g.n; i++) print_message("  got:  %s\n", g.lines[i]);
        for (int i = 0; i < n_want; i++) print_message("  want: %s\n", want[i]);
        fail_msg("generated text \"%s\"", text);
    }
    if (made) {
        assert_string_equal(p.solution_source, "on-policy");
        clens_pair_clear(&p);
    }
}

static void generated_text(void **state)
{
    (void)state;
    static const char *const a[] = {
        "16 - 3 - 4 | 9 | ok | 9",
        "9 * 2 | 18 | final_answer | 18",
    };
    check_generated("Janet has 16 eggs. She eats 3 and bakes 4, so 16 - 3 - 4 = 9 eggs remain. "
                    "Each sells for $2, so 9 * 2 = 18 dollars.\n\nThe answer is 18.",
                    "She makes 9 * 2 = $<<9*2=18>>18 every day.\n#### 18", a, 2);
    static const char *const b[] = {
        "12 \u00d7 5 | 60 | ok | 60",
        "+ 2 + 3 | 5 | unknowns | ",
        "$60 / 4 | 15 | more_math | 15", /* "= $15 each, and 3.5 * 2 = 7": no cut but at the digit */
        "3.5 * 2 | 7 | ok | 7",
        "2 + 2 | 5 | mismatch | 4",
        "10 / 3 | 3.33 | approximation | 10/3",
        "4 * 3 | 12 | rhs_not_number | ",
        "7 + 1 | 8 | after_boxed | ",
    };
    check_generated("First, 12 \u00d7 5 = 60. If x + 2 + 3 = 5 then x is 0.\n"
                    "Split: $60 / 4 = $15 each, and 3.5 * 2 = 7, but 2 + 2 = 5? Also 10 / 3 = 3.33 "
                    "and 4 * 3 = 12x.\nSo \\boxed{99}, and 7 + 1 = 8.",
                    NULL, b, 8);
    /* LaTeX math keeps its rules inside the prose; a currency "$" does not open math */
    static const char *const c[] = {
        "20 \\cdot 3 | 60 | ok | 60",
        "5 + 5 | 10 | ok | 10",
        "60+10 | 70 | final_answer | 70",
    };
    check_generated("We have \\(20 \\cdot 3 = 60\\) apples and $5 + 5 = 10$ pears.\n"
                    "It costs $3 and $4, total \\[60+10 = 70\\]", "\\boxed{70}", c, 3);
    /* chained prose: the second "=" has the first's rhs as its lhs */
    static const char *const d[] = {
        "3 + 4 | 7 | rhs_not_number | ",
        "7 + 1 | 8 | ok | 8",
    };
    check_generated("Then 3 + 4 = 7 + 1 = 8.\nDone.", NULL, d, 2);
}

/* --site seed: the last "= n" match whatever it is (the seed's rule), with
 * the detector's verdict kept in site_verified. */
static void seed_rule(void **state)
{
    (void)state;
    clens_pairs_params prm = clens_pairs_default_params();
    clens_error err = {0};
    assert_int_equal(clens_pairs_parse_site(&prm, "seed", &err), 0);
    assert_int_equal(clens_pairs_parse_corrupt(&prm, "plus-one", &err), 0);
    assert_int_equal(clens_pairs_parse_cut(&prm, "chars-raw:20", &err), 0);
    clens_pair p;
    /* the last match is the boxed answer's "x = 2.50" (not verified): 2.50 -> 3.5 */
    const char *t = "We have $3+4=7$ and so $x = $2.50 is \\boxed{2.50}.";
    assert_int_equal(from_text_made(&prm, "s", "q", t, &p, NULL, &err), 1);
    assert_string_equal(p.site.clean_value, "2.50");
    assert_string_equal(p.site.corrupted_value, "3.5");
    assert_int_equal(p.site_verified, 0);
    assert_int_equal(p.n_sites, 2);
    assert_int_equal(p.site_index, 1);
    assert_int_equal(p.site_rule, CLENS_SITE_SEED);
    char *j = NULL;
    assert_int_equal(clens_pair_to_json(&p, &j, NULL), CLENS_OK);
    assert_non_null(strstr(j, "\"site_rule\":\"seed\",\"site_verified\":false"));
    free(j);
    clens_pair_clear(&p);
    /* a verified last match; "74,592" is "74" for the regex */
    t = "So $7\\cdot 8=56$, then the sum is 74,592 = 74,592 and $6\\cdot 7=42$.\nEnd";
    assert_int_equal(from_text_made(&prm, "s", "q", t, &p, NULL, &err), 1);
    assert_string_equal(p.site.clean_value, "42");
    assert_string_equal(p.site.corrupted_value, "43");
    assert_int_equal(p.site_verified, 1);
    assert_int_equal(p.n_sites, 3);
    assert_string_equal(p.corrupted_prefix, "So $7\\cdot 8=56$, then the sum is 74,592 = 74,592 and $6\\cdot 7=43$.\nEnd");
    clens_pair_clear(&p);
    /* no "= n" at all: no pair */
    assert_int_equal(from_text_made(&prm, "s", "q", "x = y and =z", &p, NULL, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(snippet_table), cmocka_unit_test(evaluator), cmocka_unit_test(numbers),
        cmocka_unit_test(corruption),    cmocka_unit_test(cuts),      cmocka_unit_test(gsm8k_rules),
        cmocka_unit_test(seeded_choice), cmocka_unit_test(generated_text), cmocka_unit_test(seed_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
