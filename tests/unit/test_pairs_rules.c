/*
 * test_pairs_rules.c: the pair rules of issue 22 item 3 and the failures of
 * issue 23 items 1 and 2, each on constructed inputs with the expected value
 * written out by hand:
 *   - deep_nesting: 8,000 nested "(" in a GSM8K annotation and 10,000 nested
 *     "\frac{" in a MATH solution used to overflow the parser's stack; now
 *     a "too_deep" candidate (and 100 levels still evaluate);
 *   - last_arithmetic: the cut is right after the value when more math, a
 *     restatement, open math or a mid-sentence newline follows; more_math
 *     when nothing closes the value;
 *   - identity / restated / source_error / duplicates: the drops by reason;
 *   - plus_minus_one: +-1 in the last place, digits kept, the seeded
 *     direction (recomputed here from the documented splitmix64 / FNV-1a),
 *     never the final answer or a number already on the line when the
 *     other direction is not;
 *   - data_files: a BOM is skipped, an empty file and a folder are errors;
 *   - output_check: devices, FIFOs, links, an output equal to an input
 *     (also through a hard link), a missing folder, two equal outputs.
 */
#include "testutil.h"

#include <errno.h>
#include <unistd.h>

#include "base/base.h"

/* The public calls return a status and *made; these give the old single
 * value the assertions below compare: 1 made, 0 no site, -status. */
static int from_text_made(const clens_pairs_params *prm, const char *id, const char *problem, const char *sol,
                          clens_pair *out, clens_pairs_stats *st, clens_error *err)
{
    int made = 0, rc = clens_pairs_from_text(prm, id, problem, sol, out, &made, st, err);
    return rc ? -rc : made;
}

/* ------------------------------------------------------------ helpers */

typedef struct reasons {
    char names[64][32];
    int n;
} reasons;

static void collect(void *user, const clens_pairs_candidate *c)
{
    reasons *r = user;
    if (r->n < 64) snprintf(r->names[r->n++], 32, "%s", clens_pairs_reason_name(c->reason));
}

/* The pair of the last site of text (MATH or GSM8K), candidates' reasons in *r. */
static int last_pair(const char *text, int gsm, clens_pair *p, reasons *r)
{
    clens_pairs_params prm = clens_pairs_default_params();
    clens_error err = {0};
    prm.format = gsm ? CLENS_PAIRS_GSM8K : CLENS_PAIRS_MATH;
    prm.site = CLENS_SITE_LAST;
    prm.corrupt = CLENS_CORRUPT_LAST_DIGIT;
    memset(r, 0, sizeof *r);
    prm.on_candidate = collect;
    prm.on_candidate_user = r;
    int made = from_text_made(&prm, "t", "q", text, p, NULL, &err);
    assert_true(made >= 0);
    return made;
}

static void expect_cut(const char *text, int gsm, const char *clean)
{
    clens_pair p;
    reasons r;
    if (last_pair(text, gsm, &p, &r) != 1) fail_msg("no pair from \"%s\"", text);
    if (strcmp(p.clean_prefix, clean) != 0)
        fail_msg("cut of \"%s\":\n  got  \"%s\"\n  want \"%s\"", text, p.clean_prefix, clean);
    clens_pair_clear(&p);
}

/* The reasons of every candidate of text, joined with spaces. */
static void expect_reasons(const char *text, int gsm, const char *want)
{
    clens_pair p;
    reasons r;
    char got[2048] = "";
    if (last_pair(text, gsm, &p, &r) == 1) clens_pair_clear(&p);
    for (int i = 0; i < r.n; i++) {
        if (i) strcat(got, " ");
        strcat(got, r.names[i]);
    }
    if (strcmp(got, want) != 0) fail_msg("reasons of \"%s\":\n  got  %s\n  want %s", text, got, want);
}

/* ------------------------------------------------------- deep nesting */

static char *nested(const char *open, const char *mid, const char *close, int n, const char *head,
                    const char *tail)
{
    size_t lo = strlen(open), lm = strlen(mid), lc = strlen(close);
    char *s = malloc(strlen(head) + n * (lo + lc) + lm + strlen(tail) + 1), *p = s;
    p += sprintf(p, "%s", head);
    for (int i = 0; i < n; i++) { memcpy(p, open, lo); p += lo; }
    memcpy(p, mid, lm);
    p += lm;
    for (int i = 0; i < n; i++) { memcpy(p, close, lc); p += lc; }
    sprintf(p, "%s", tail);
    return s;
}

static void deep_nesting(void **state)
{
    (void)state;
    /* the red-team's inputs (issue 23 F1): a GSM8K annotation with 8,000 nested
     * parentheses, then a usable step */
    char *g = nested("(", "1", ")", 8000, "B 2+3=<<", "=1>>1 y.\nC 2+3=<<2+3=5>>5 y.\n#### 9");
    expect_reasons(g, 1, "too_deep ok");
    free(g);
    /* a MATH solution with 10,000 nested \frac{ */
    char *m = nested("\\frac{", "1", "}{2}", 10000, "$", " = 4$ $\\boxed{9}$");
    expect_reasons(m, 0, "too_deep");
    free(m);
    /* unary minus chains recurse too */
    char *u = nested("-", "1", "", 20000, "B <<", "=1>>1 y.\n#### 9");
    expect_reasons(u, 1, "too_deep");
    free(u);
    /* within the bound, nesting still evaluates: 50 levels of (..) around 6 */
    char *ok = nested("(", "2*3", ")", 50, "B <<", "=6>>6 y.\n#### 9");
    expect_reasons(ok, 1, "ok");
    free(ok);
}

/* ------------------------------------------------- the last arithmetic */

static void last_arithmetic(void **state)
{
    (void)state;
    /* nothing but prose after the value: the whole sentence */
    expect_cut("So $30 \\cdot 3 = 90$ meters in a minute. Then $\\boxed{1}$.", 0,
               "So $30 \\cdot 3 = 90$ meters in a minute.");
    /* the sentence restates the value / computes on: cut after "$," */
    expect_cut("But this is also $64 - 4 = 60$, so $5a + 20 = 60$. So $a=\\boxed{8}$.", 0,
               "But this is also $64 - 4 = 60$,");
    expect_cut("Since $7^2 = 49$, it follows $\\log_x 49 = 2$. So $x = \\boxed{7}$.", 0,
               "Since $7^2 = 49$,");
    /* a number in the prose after it also counts as more arithmetic */
    expect_cut("So $2^{12}=4096$, the first power of 2 over 500. So $\\boxed{12}$.", 0,
               "So $2^{12}=4096$,");
    /* display math closed by ",\]" and a line that goes on mid-sentence */
    expect_cut("Then\n\\[\\frac{14}{7} = 2,\\]so the expression becomes\n\\[x = \\boxed{16}.\\]", 0,
               "Then\n\\[\\frac{14}{7} = 2,\\]");
    /* a sentence that ends with the line keeps the newline */
    expect_cut("So $4\\cdot 5 = 20$.\nNext $\\boxed{3}$.", 0, "So $4\\cdot 5 = 20$.\n");
    /* more math after the value inside its own formula: no clean cut */
    expect_reasons("\\begin{align*}\n4x &= 265-97=168\\\\\nx &= 42.\n\\end{align*} So $\\boxed{42}$.", 0,
                   "rhs_not_number more_math assignment");
    expect_reasons("So $3\\cdot 4 = 12, 12 + 1 = 13$. Then $\\boxed{2}$.", 0, "more_math ok");
    /* inside a tabular (not math to the detector) with rows after it */
    expect_reasons("\\begin{tabular}{c}\n$2+3=5$ \\\\\n$x$\n\\end{tabular} So $\\boxed{2}$.", 0,
                   "more_math");
    /* GSM8K: the line, or the number and its punctuation when digits follow */
    expect_cut("He eats 5*3 = <<5*3=15>>15 cookies.\nSo 1+1=<<1+1=2>>2\n#### 7", 1,
               "He eats 5*3 = 15 cookies.\nSo 1+1=2\n");
    expect_cut("He has 12 + 3 = <<12+3=15>>15, then 2 more.\n#### 7", 1, "He has 12 + 3 = 15,");
    expect_cut("Half is 50% = <<50/100*40=20>>20% of 40 hours\n#### 7", 1, "Half is 50% = 20%");
    /* nothing closes the number: the prompts would end in different digits */
    expect_reasons("There are 60 x 2/3 = <<60*2/3=40>>40 students and 20 teachers\n#### 7", 1,
                   "more_math");
}

/* ----------------------------------------------------- drops by reason */

static void drops(void **state)
{
    (void)state;
    /* identity: one operation whose result is an operand and the other 1 or 0 */
    expect_reasons("A 1*7 = <<1*7=7>>7 b\nC 5/1 = <<5/1=5>>5 d\nE 7+0=<<7+0=7>>7 f\n"
                   "G 4-2 = <<4-2=2>>2 h\n#### 99", 1, "identity identity identity ok");
    expect_reasons("So $2^1 = 2$ and $(-1)^2 = 1$ and $1(4) = 4$. So $\\boxed{9}$.", 0,
                   "identity ok identity");
    /* restated: the value already written in the line (GSM8K) / sentence (MATH) */
    expect_reasons("He runs 3000 yards in total because 200 x 15 = <<200*15=3000>>3000\n"
                   "He runs 10 - 5 = <<10-5=5>>5 laps\n#### 99", 1, "restated ok");
    expect_reasons("The slopes are $\\frac31=3$, $\\frac42=2$, and $\\frac93=3$. So $\\boxed{9}$.", 0,
                   "ok ok restated");
    /* source error: a wrong annotation, or a one-digit typo of the verified value,
     * is in every prompt cut after it; earlier sites stay */
    expect_reasons("A 2+2=<<2+2=4>>4 b\nHe has $3.65 because 2 plus 1.45 equals $<<2+1.45=3.45>>3.45\n"
                   "C 3*3=<<3*3=9>>9 d\n#### 99", 1, "ok source_error source_error");
    expect_reasons("A 2+2=<<2+2=4>>4 b\nB 2+3=<<2+3=6>>6 c\nC 3*3=<<3*3=9>>9 d\n#### 99", 1,
                   "ok mismatch source_error");
    /* "He sold 11 lego sets because 11 x 15 = 165": another quantity, not a typo */
    expect_reasons("He sold 11 lego sets because 11 x 15 = <<11*15=165>>165\n#### 99", 1, "ok");

    /* duplicates: two problems whose prompts are the same text */
    const char *data =
        "{\"id\": \"a\", \"problem\": \"p\", \"solution\": \"We get $2+3=5$. So $\\\\boxed{9}$.\"}\n"
        "{\"id\": \"b\", \"problem\": \"q\", \"solution\": \"We get $2+3=5$. So $\\\\boxed{7}$.\"}\n"
        "{\"id\": \"c\", \"problem\": \"r\", \"solution\": \"We get $2+4=6$. So $\\\\boxed{7}$.\"}\n";
    clens_pairs_params prm = clens_pairs_default_params();
    clens_pair *pairs;
    size_t n;
    clens_pairs_stats st;
    clens_error err = {0};
    assert_int_equal(clens_pairs_build_buffer(&prm, data, strlen(data), &pairs, &n, &st, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(pairs[0].id, "a");
    assert_string_equal(pairs[1].id, "c");
    assert_int_equal(pairs[1].candidate_index, 1);
    assert_int_equal(st.duplicates, 1);
    assert_int_equal(st.problems_with_site, 3);
    clens_pairs_free(pairs, n);
    /* the seed's rule set keeps them (fidelity) */
    clens_pairs_parse_site(&prm, "seed", &err);
    assert_int_equal(clens_pairs_build_buffer(&prm, data, strlen(data), &pairs, &n, &st, &err), 0);
    assert_int_equal(n, 3);
    clens_pairs_free(pairs, n);
}

/* ------------------------------------------------------ plus-minus-one */

static uint64_t direction_draw(uint64_t seed, const char *id)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *s = id; *s; s++) { h ^= (unsigned char)*s; h *= 0x100000001b3ULL; }
    uint64_t st = seed ^ h, z = 0;
    for (int k = 0; k < 2; k++) { /* the second output: the first chose the site */
        z = (st += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
    }
    return z >> 63;
}

static void check_step(const char *num, int dir, const char *want)
{
    char *c = NULL;
    assert_int_equal(clens_pairs_corrupt_step(num, dir, &c, NULL), CLENS_OK);
    if (!want) {
        if (c) fail_msg("step(\"%s\", %d) = \"%s\", expected impossible", num, dir, c);
        return;
    }
    if (!c || strcmp(c, want) != 0)
        fail_msg("step(\"%s\", %d) = \"%s\", expected \"%s\"", num, dir, c ? c : "(null)", want);
    free(c);
}

static void plus_minus_one(void **state)
{
    (void)state;
    check_step("3000", 1, "3001");
    check_step("3000", -1, "2999");
    check_step("20,000", -1, "19,999");
    check_step("1,\\!000", 1, "1,\\!001");
    check_step("1,\\!000", -1, NULL); /* 999: one digit fewer */
    check_step("0.0625", -1, "0.0624");
    check_step("2.50", -1, "2.49");
    check_step("9", 1, NULL);
    check_step("9", -1, "8");
    check_step("99", 1, NULL);
    check_step("10", -1, NULL); /* "09" */
    check_step("0", -1, NULL);
    check_step("0", 1, "1");
    check_step("1", -1, "0");
    check_step("0.1", -1, "0.0");
    /* plus-minus-sig: in the last nonzero digit (no direction given: +1 when possible) */
    const char *sig[][2] = {{"3000", "4000"}, {"4.50", "4.60"}, {"120,000", "130,000"},
                            {"90", "80"}, {"0.0625", "0.0626"}, {"0", "1"}, {"10", "20"}};
    for (size_t i = 0; i < sizeof sig / sizeof *sig; i++) {
        char *c = NULL;
        assert_int_equal(clens_pairs_corrupt_value(sig[i][0], CLENS_CORRUPT_PLUS_MINUS_SIG, &c, NULL), CLENS_OK);
        if (!c || strcmp(c, sig[i][1]) != 0) fail_msg("sig(%s) = %s, want %s", sig[i][0], c, sig[i][1]);
        free(c);
    }
    /* the drawn direction, per pair, and both directions over many ids */
    clens_pairs_params prm = clens_pairs_default_params();
    assert_int_equal(prm.corrupt, CLENS_CORRUPT_PLUS_MINUS_ONE);
    int up = 0, down = 0, zeros = 0;
    for (int i = 0; i < 200; i++) {
        char id[16];
        clens_pair p;
        clens_error err = {0};
        snprintf(id, sizeof id, "id%d", i);
        prm.seed = (uint64_t)i % 3;
        assert_int_equal(from_text_made(&prm, id, "q", "So $4\\cdot 5=20$. So $\\boxed{3}$.",
                                               &p, NULL, &err), 1);
        const char *want = direction_draw(prm.seed, id) ? "19" : "21";
        assert_string_equal(p.site.corrupted_value, want);
        up += want[0] == '2';
        down += want[0] == '1';
        clens_pair_clear(&p);
        /* 31 -> 30 or 32: a corrupted value can end in 0 */
        assert_int_equal(from_text_made(&prm, id, "q", "So $4\\cdot 8-1=31$. So $\\boxed{3}$.",
                                               &p, NULL, &err), 1);
        zeros += strcmp(p.site.corrupted_value, "30") == 0;
        clens_pair_clear(&p);
    }
    assert_true(up > 60 && down > 60 && zeros > 60);
    /* never the final answer when the other direction is not: 20 -> 21 (answer 19) */
    for (int i = 0; i < 50; i++) {
        char id[16];
        clens_pair p;
        clens_error err = {0};
        snprintf(id, sizeof id, "f%d", i);
        assert_int_equal(from_text_made(&prm, id, "q", "So $4\\cdot 5=20$. So $\\boxed{19}$.",
                                               &p, NULL, &err), 1);
        assert_string_equal(p.site.corrupted_value, "21");
        clens_pair_clear(&p);
        /* nor a number written before it on its line: 169 -> 170 (168 is there) */
        assert_int_equal(from_text_made(&prm, id, "q", "So $b^2<168$. Since $13^2=169$, "
                                               "we get $\\boxed{12}$.", &p, NULL, &err), 1);
        assert_string_equal(p.site.corrupted_value, "170");
        clens_pair_clear(&p);
    }
}

/* ------------------------------------------------------- data files */

static void data_files(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("pairs_rules_data");
    char path[4200];
    clens_pairs_params prm = clens_pairs_default_params();
    clens_pair *pairs;
    size_t n;
    clens_pairs_stats st;
    clens_error err = {0};
    /* a UTF-8 BOM before line 1 is skipped (the sha256 stays the file's) */
    const char bom[] = "\xEF\xBB\xBF{\"id\": \"a\", \"problem\": \"p\", \"solution\": \"We get $2+3=5$. So $\\\\boxed{9}$.\"}\n";
    snprintf(path, sizeof path, "%s/bom.jsonl", d);
    tu_write(path, bom, strlen(bom));
    prm.data_path = path;
    if (clens_pairs_build(&prm, &pairs, &n, &st, &err)) fail_msg("%s", err.msg);
    assert_int_equal(n, 1);
    char sha[65];
    clens_sha256_hex(bom, strlen(bom), sha);
    assert_string_equal(pairs[0].source_sha256, sha);
    clens_pairs_free(pairs, n);
    /* an empty file, or blank lines only: an error naming the file */
    snprintf(path, sizeof path, "%s/empty.jsonl", d);
    tu_write(path, "\n  \n", 4);
    assert_int_equal(clens_pairs_build(&prm, &pairs, &n, &st, &err), CLENS_E_FORMAT);
    assert_non_null(strstr(err.msg, "empty.jsonl: no rows"));
    /* a folder: said so (it used to be "out of memory") */
    prm.data_path = d;
    assert_int_equal(clens_pairs_build(&prm, &pairs, &n, &st, &err), CLENS_E_IO);
    assert_non_null(strstr(err.msg, "is a folder, not a file"));
}

/* ------------------------------------------------------ output check */

static void output_check(void **state)
{
    (void)state;
    const char *d0 = tu_tmpdir("pairs_rules_out");
    char d[4200], in[4300], out[4300], lnk[4300], fifo[4300], hard[4300], dev[4300], other[4300];
    clens_error err = {0};
    snprintf(d, sizeof d, "%s", d0);
    snprintf(in, sizeof in, "%s/in.jsonl", d);
    snprintf(out, sizeof out, "%s/out.jsonl", d);
    snprintf(lnk, sizeof lnk, "%s/link.jsonl", d);
    snprintf(fifo, sizeof fifo, "%s/fifo", d);
    snprintf(hard, sizeof hard, "%s/hard.jsonl", d);
    snprintf(dev, sizeof dev, "%s/null", d);
    snprintf(other, sizeof other, "%s/missing/o.jsonl", d);
    tu_write(in, "x\n", 2);
    const char *inputs[] = {in, NULL};
    /* absent, or a regular file that is no input: fine */
    assert_int_equal(clens_output_check(out, inputs, 2, &err), CLENS_OK);
    tu_write(out, "old\n", 4);
    assert_int_equal(clens_output_check(out, inputs, 2, &err), CLENS_OK);
    /* the input itself, by its path, through "./", and through a hard link */
    assert_int_equal(clens_output_check(in, inputs, 2, &err), CLENS_E_ARG);
    assert_non_null(strstr(err.msg, "same file as the input"));
    assert_int_equal(link(in, hard), 0);
    assert_int_equal(clens_output_check(hard, inputs, 2, &err), CLENS_E_ARG);
    /* a symbolic link (even to a fresh file), a FIFO, a folder */
    assert_int_equal(symlink("out.jsonl", lnk), 0);
    assert_int_equal(clens_output_check(lnk, inputs, 2, &err), CLENS_E_IO);
    assert_non_null(strstr(err.msg, "a symbolic link"));
    assert_int_equal(mkfifo(fifo, 0644), 0);
    assert_int_equal(clens_output_check(fifo, inputs, 2, &err), CLENS_E_IO);
    assert_non_null(strstr(err.msg, "a FIFO"));
    assert_int_equal(clens_output_check(d, inputs, 2, &err), CLENS_E_IO);
    assert_non_null(strstr(err.msg, "a directory"));
    /* a character device: /dev/null itself, never written */
    assert_int_equal(clens_output_check("/dev/null", inputs, 2, &err), CLENS_E_IO);
    assert_non_null(strstr(err.msg, "a character device"));
    /* a missing folder is named (not the temp file) */
    assert_int_equal(clens_output_check(other, inputs, 2, &err), CLENS_E_IO);
    assert_non_null(strstr(err.msg, "does not exist"));
    /* two outputs with one name, before either exists */
    char o2[4300], o2b[4400];
    snprintf(o2, sizeof o2, "%s/new.jsonl", d);
    snprintf(o2b, sizeof o2b, "%s/./new.jsonl", d);
    const char *outs[] = {in, o2};
    assert_int_equal(clens_output_check(o2b, outs, 2, &err), CLENS_E_ARG);
    assert_non_null(strstr(err.msg, "same path"));
    (void)dev;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(deep_nesting), cmocka_unit_test(last_arithmetic),
        cmocka_unit_test(drops),        cmocka_unit_test(plus_minus_one),
        cmocka_unit_test(data_files),   cmocka_unit_test(output_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
