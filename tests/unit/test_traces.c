/*
 * test_traces.c: the organism trace generator and tokenizer (docs/organisms.md).
 * Determinism (same params, same bytes; another seed, other bytes), every
 * trace's arithmetic re-evaluated from its own text, the error rule (last
 * digit +-1, same digit count, the next line a correction with the right
 * value), the question -> key parser against the generator's key, the
 * held-out split disjoint from training, parameter checks, and the
 * tokenizer: correction words single tokens with and without a leading space,
 * single digits, the eos id. The Python / HF-tokenizers references are in
 * tests/suites/61-organism.sh.
 */
#include "testutil.h"

#include <jansson.h>

#include "clens.h"

static char *gen(clens_traces_params p, size_t *len)
{
    clens_error err = {0};
    char *s = NULL;
    if (clens_traces_generate(&p, &s, len, &err)) fail_msg("generate: %s", err.msg);
    return s;
}

static void determinism(void **state)
{
    (void)state;
    clens_traces_params p = clens_traces_default_params();
    p.n = 300;
    size_t a_len, b_len, c_len;
    char *a = gen(p, &a_len), *b = gen(p, &b_len);
    assert_int_equal(a_len, b_len);
    assert_memory_equal(a, b, a_len);
    p.seed = 2;
    char *c = gen(p, &c_len);
    assert_true(c_len != a_len || memcmp(a, c, a_len) != 0);
    free(a);
    free(b);
    free(c);
}

/* Evaluates "a<op>b" as written. */
static long eval_expr(const char *e)
{
    long a, b;
    char op;
    if (sscanf(e, "%ld%c%ld", &a, &op, &b) != 3) fail_msg("bad expression '%s'", e);
    if (!strchr("+-*", op)) fail_msg("bad op in '%s'", e);
    return op == '+' ? a + b : op == '-' ? a - b : a * b;
}

/* Checks one training trace's plain text line by line; returns 1 if it has an error step. */
static int check_text(const char *text, json_t *meta)
{
    char *t = strdup(text), *save = NULL;
    int n_err = 0, expect_correction = 0, steps = 0;
    long wrong_value = 0, last = -1;
    char wrong_expr[64] = "";
    for (char *line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "#### ", 5) == 0) {
            assert_false(expect_correction);
            assert_int_equal(atol(line + 5), last);
            continue;
        }
        char *eq = strchr(line, '=');
        assert_non_null(eq);
        if (expect_correction) {
            /* "Word, expr=value." with the right value */
            int ok = 0;
            for (int w = 0; w < 4; w++) {
                size_t wl = strlen(clens_correction_words[w]);
                if (strncmp(line, clens_correction_words[w], wl) == 0 && strncmp(line + wl, ", ", 2) == 0) {
                    char expr[64];
                    snprintf(expr, sizeof expr, "%.*s", (int)(eq - line - wl - 2), line + wl + 2);
                    assert_string_equal(expr, wrong_expr);
                    long v = atol(eq + 1);
                    assert_int_equal(v, eval_expr(expr));
                    assert_int_equal(line[strlen(line) - 1], '.');
                    /* wrong value: last digit +-1, same digit count */
                    assert_true(labs(wrong_value - v) == 1);
                    assert_true(wrong_value / 10 == v / 10);
                    char a[32], b[32];
                    snprintf(a, sizeof a, "%ld", wrong_value);
                    snprintf(b, sizeof b, "%ld", v);
                    assert_int_equal(strlen(a), strlen(b));
                    last = v;
                    ok = 1;
                }
            }
            assert_true(ok);
            expect_correction = 0;
            steps++;
            continue;
        }
        char expr[64];
        snprintf(expr, sizeof expr, "%.*s", (int)(eq - line), line);
        long v = atol(eq + 1), want = eval_expr(expr);
        if (last >= 0) {
            /* the step uses the previous result */
            char prev[32];
            snprintf(prev, sizeof prev, "%ld", last);
            assert_true(strstr(expr, prev) != NULL);
        }
        if (v != want) {
            n_err++;
            expect_correction = 1;
            wrong_value = v;
            snprintf(wrong_expr, sizeof wrong_expr, "%s", expr);
        } else {
            last = v;
            steps++;
        }
    }
    assert_false(expect_correction);
    assert_true(n_err <= 1);
    json_t *er = json_object_get(meta, "error");
    assert_int_equal(n_err, json_is_object(er));
    assert_true(steps >= 2 && steps <= 4);
    assert_int_equal(steps, (int)json_array_size(json_object_get(meta, "steps")));
    free(t);
    return n_err;
}

static void rules_and_split(void **state)
{
    (void)state;
    clens_traces_params p = clens_traces_default_params();
    p.n = 2000;
    p.error_frac = 0.3;
    size_t len;
    char *train = gen(p, &len);
    p.heldout = 1;
    p.error_frac = 0;
    p.seed = 2;
    p.n = 500;
    char *held = gen(p, &len);
    /* keys of training problems, checked against held-out ones */
    char (*keys)[128] = malloc(2000 * sizeof *keys);
    int nk = 0, n_err = 0;
    for (int split = 0; split < 2; split++) {
        char *save = NULL, *buf = strdup(split ? held : train);
        for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            json_error_t je;
            json_t *o = json_loads(line, 0, &je);
            assert_non_null(o);
            json_t *meta = json_object_get(o, "organism");
            const char *q = json_string_value(json_object_get(o, "question"));
            const char *ans = json_string_value(json_object_get(o, "answer"));
            const char *text = json_string_value(json_object_get(meta, "text"));
            const char *key = json_string_value(json_object_get(meta, "key"));
            char k2[128];
            assert_int_equal(clens_traces_problem_key(q, k2, sizeof k2), 0);
            assert_string_equal(k2, key);
            assert_non_null(strstr(ans, "<<"));
            int e = check_text(text, meta);
            n_err += e;
            if (split == 0) {
                snprintf(keys[nk++], 128, "%s", key);
            } else {
                assert_int_equal(e, 0);
                for (int i = 0; i < nk; i++)
                    if (strcmp(keys[i], key) == 0) fail_msg("held-out problem %s is also a training problem", key);
                /* probe: an intermediate step, corrupted value +-1 in the last digit */
                json_t *pb = json_object_get(meta, "probe");
                int step = (int)json_integer_value(json_object_get(pb, "step"));
                assert_true(step < (int)json_array_size(json_object_get(meta, "steps")) - 1);
                long cv = atol(json_string_value(json_object_get(pb, "clean_value")));
                long rv = atol(json_string_value(json_object_get(pb, "corrupted_value")));
                assert_true(labs(cv - rv) == 1 && cv / 10 == rv / 10);
                size_t s = (size_t)json_integer_value(json_object_get(pb, "start"));
                size_t en = (size_t)json_integer_value(json_object_get(pb, "end"));
                assert_int_equal(strtol(text + s, NULL, 10), cv);
                assert_int_equal(text[en], '\n');
            }
            json_decref(o);
        }
        free(buf);
    }
    /* about 30% of 2000 training traces carry an error */
    assert_true(n_err > 500 && n_err < 700);
    free(keys);
    free(train);
    free(held);
}

static void bad_params(void **state)
{
    (void)state;
    clens_error err = {0};
    char *s = NULL;
    size_t len;
    clens_traces_params p = clens_traces_default_params();
    p.heldout = 1; /* error_frac 0.3: refused */
    assert_int_not_equal(clens_traces_generate(&p, &s, &len, &err), 0);
    assert_non_null(strstr(err.msg, "error-free"));
    p = clens_traces_default_params();
    p.min_steps = 1;
    assert_int_not_equal(clens_traces_generate(&p, &s, &len, &err), 0);
    p = clens_traces_default_params();
    p.max_operand = 100;
    assert_int_not_equal(clens_traces_generate(&p, &s, &len, &err), 0);
    char key[64];
    assert_int_equal(clens_traces_problem_key("Compute 7*8, then divide by 2.", key, sizeof key), CLENS_E_FORMAT);
    assert_int_equal(clens_traces_problem_key("Compute 7*8, then subtract it from 90.", key, sizeof key), 0);
    assert_string_equal(key, "7*8|r-90");
}

static void tokenizer_words(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("organism_tok");
    clens_error err = {0};
    if (clens_organism_tokenizer_write(dir, &err)) fail_msg("%s", err.msg);
    clens_tokenizer *tok = NULL;
    if (clens_tokenizer_open(&tok, dir, &err)) fail_msg("%s", err.msg);
    int32_t *ids = NULL;
    int n = 0;
    assert_int_equal(clens_correction_ids(tok, &ids, &n, &err), 0);
    assert_int_equal(n, 16); /* 4 words x {as written, lower} x {no space, space}, all single tokens */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++) assert_int_not_equal(ids[i], ids[j]);
    free(ids);
    /* digits one token each */
    int32_t *t = NULL;
    int k = 0;
    assert_int_equal(clens_tokenize(tok, "7*8=56\n", 7, 0, &t, &k, NULL, &err), 0);
    assert_int_equal(k, 7);
    assert_int_equal(t[0], '7');
    assert_int_equal(t[4], '5');
    free(t);
    clens_tokenizer_info info;
    assert_int_equal(clens_tokenizer_get_info(tok, &info), 0);
    assert_int_equal(info.eos_id, 305);
    assert_int_equal(info.adds_bos, 0);
    assert_int_equal(clens_tokenizer_vocab_size(tok), 306);
    assert_int_equal(clens_tokenizer_token_to_id(tok, "<|endoftext|>"), 305);
    clens_tokenizer_free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(determinism),
        cmocka_unit_test(rules_and_split),
        cmocka_unit_test(bad_params),
        cmocka_unit_test(tokenizer_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
