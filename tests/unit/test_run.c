/*
 * test_run.c: the pieces of the run engine that need no model
 * (src/interp/run_filter.c, run_records.c, run_settings.c): the keep/drop
 * filter on constructed metric values, the JSON line of a record (kept,
 * dropped, non-finite), the append that undoes a short write (a file-size
 * limit stands in for a full disk: both make write() stop part way), and the
 * resume scan that drops a torn last line and rejects foreign lines.
 */
#include "testutil.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/base.h"
#include "interp/run_internal.h"

/* The expected reasons are written from the rule in docs/patch-output.md
 * (D = m_clean - m_corr in logit_mean), not from the code. */
static void filter_table(void **state)
{
    (void)state;
    const struct {
        clens_filter_kind f;
        double min_diff, clean, corr;
        const char *want; /* NULL = kept */
    } cases[] = {
        /* default: keep if m_corr - m_clean >= min_diff */
        {CLENS_FILTER_DEFAULT, 3, 10, 14, NULL},
        {CLENS_FILTER_DEFAULT, 3, 10, 13, NULL},          /* exactly min_diff: kept */
        {CLENS_FILTER_DEFAULT, 3, 11, 13, "too_small"},
        {CLENS_FILTER_DEFAULT, 3, 14, 10, "wrong_sign"},
        {CLENS_FILTER_DEFAULT, 3, 13, 10, "wrong_sign"},  /* D = +3 */
        {CLENS_FILTER_DEFAULT, 3, 12.5, 10, "too_small"}, /* D = +2.5: small, not wrong sign */
        {CLENS_FILTER_DEFAULT, 3, 10, 10, "too_small"},
        {CLENS_FILTER_DEFAULT, 0, 10, 14, NULL},          /* min_diff 0 keeps any difference */
        {CLENS_FILTER_DEFAULT, 0, 14, 10, NULL},
        {CLENS_FILTER_DEFAULT, 0, 10, 10, "too_small"},
        {CLENS_FILTER_DEFAULT, 3, NAN, 14, "non_finite"},
        {CLENS_FILTER_DEFAULT, 0, 10, INFINITY, "non_finite"},
        {CLENS_FILTER_DEFAULT, 0, -INFINITY, -INFINITY, "non_finite"},
        /* seed: |D| >= min_diff either way */
        {CLENS_FILTER_SEED, 3, 10, 14, NULL},
        {CLENS_FILTER_SEED, 3, 14, 10, NULL},
        {CLENS_FILTER_SEED, 3, 13, 10, NULL},
        {CLENS_FILTER_SEED, 3, 10, 12, "too_small"},
        {CLENS_FILTER_SEED, 3, 12, 10, "too_small"},
        {CLENS_FILTER_SEED, 3, 10, 10, "too_small"},
        {CLENS_FILTER_SEED, 0, 12, 10, NULL},
        {CLENS_FILTER_SEED, 3, 10, NAN, "non_finite"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = clens_filter_decide(cases[i].f, cases[i].min_diff, cases[i].clean, cases[i].corr);
        int ok = cases[i].want ? got && strcmp(got, cases[i].want) == 0 : got == NULL;
        if (!ok)
            fail_msg("case %zu: filter %s, min_diff %g, clean %g, corr %g: got %s, want %s", i,
                     clens_filter_name(cases[i].f), cases[i].min_diff, cases[i].clean, cases[i].corr,
                     got ? got : "kept", cases[i].want ? cases[i].want : "kept");
    }
    clens_filter_kind f;
    assert_int_equal(clens_filter_parse("seed", &f), CLENS_OK);
    assert_int_equal(f, CLENS_FILTER_SEED);
    assert_int_equal(clens_filter_parse("default", &f), CLENS_OK);
    assert_int_equal(f, CLENS_FILTER_DEFAULT);
    assert_int_equal(clens_filter_parse("wrong_sign", &f), CLENS_E_ARG);
    assert_string_equal(clens_filter_name(CLENS_FILTER_SEED), "seed");
}

static json_t *parse(const char *line)
{
    json_t *j = json_loads(line, 0, NULL);
    if (!j) fail_msg("not JSON: %s", line);
    return j;
}

static void record_lines(void **state)
{
    (void)state;
    const clens_hook_point types[2] = {CLENS_HOOK_RESID_PRE, CLENS_HOOK_ATTN_Z};
    const clens_site sites[4] = {{CLENS_HOOK_RESID_PRE, 0, -1}, {CLENS_HOOK_RESID_PRE, 2, -1},
                                 {CLENS_HOOK_ATTN_Z, 1, 0}, {CLENS_HOOK_ATTN_Z, 1, 1}};
    /* [metric][clean, corr, 4 sites] */
    double vals[12] = {-4, 0, -1, -2, -3, -3.5, 10, 20, 11, 12, 13, 14};
    static const char *const names[2] = {"logprob_mass", "logit_mean"};
    run_record r = {7, "p/7", NULL, 21, 19, 1, vals, 6, sites, 4, types, 2, 1.23456, NULL, NULL, NULL, 0, 0, names, 2}; /* no tokenizer: no final_tokens */
    char *line = run_record_line(&r);
    json_t *j = parse(line);
    assert_int_equal(json_integer_value(json_object_get(j, "candidate")), 7);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "kept");
    assert_true(json_is_null(json_object_get(j, "reason")));
    json_t *lm = json_object_get(json_object_get(j, "metrics"), "logit_mean");
    assert_true(json_real_value(json_object_get(lm, "corr")) == 20);
    json_t *pre = json_object_get(json_object_get(lm, "patched"), "resid_pre");
    assert_int_equal(json_array_size(pre), 2);
    assert_true(json_real_value(json_array_get(pre, 1)) == 12);
    json_t *z = json_object_get(json_object_get(lm, "patched"), "z");
    assert_int_equal(json_array_size(z), 1);
    assert_true(json_real_value(json_array_get(json_array_get(z, 0), 1)) == 14);
    assert_true(json_real_value(json_object_get(j, "seconds")) == 1.235);
    json_decref(j);
    free(line);

    /* non-finite: dropped, the bad values written as null, no patched */
    vals[0] = NAN;
    vals[7] = INFINITY;
    r.reason = "non_finite";
    line = run_record_line(&r);
    j = parse(line);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "dropped");
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "non_finite");
    json_t *lp = json_object_get(json_object_get(j, "metrics"), "logprob_mass");
    assert_true(json_is_null(json_object_get(lp, "clean")));
    assert_true(json_real_value(json_object_get(lp, "corr")) == 0);
    assert_null(json_object_get(lp, "patched"));
    lm = json_object_get(json_object_get(j, "metrics"), "logit_mean");
    assert_true(json_is_null(json_object_get(lm, "corr")));
    json_decref(j);
    free(line);

    /* dropped before the model ran: no metrics */
    r.ran_model = 0;
    r.reason = "too_long";
    line = run_record_line(&r);
    j = parse(line);
    assert_null(json_object_get(j, "metrics"));
    json_decref(j);
    free(line);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) ? -1 : (long)st.st_size;
}

/* A write that stops part way is undone: the file keeps only whole lines. */
static void append_short_write(void **state)
{
    (void)state;
    char path[4400];
    snprintf(path, sizeof path, "%s/records.jsonl", tu_tmpdir("run-append"));
    clens_error err = {0};
    assert_int_equal(run_record_append(path, "{\"candidate\": 0}", &err), CLENS_OK);
    const long before = file_size(path);
    assert_int_equal(before, 17);
    char big[400];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    memcpy(big, "{\"candidate\": 1, \"pad\": \"", 25);
    big[sizeof big - 3] = '"';
    big[sizeof big - 2] = '}';

    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)before + 100; /* the line stops after 100 bytes */
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = run_record_append(path, big, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    assert_int_equal(rc, CLENS_E_IO);
    printf("    short write: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "records.jsonl"));
    assert_non_null(strstr(err.msg, strerror(EFBIG)));
    assert_non_null(strstr(err.msg, "after 100 of 400 bytes"));
    assert_non_null(strstr(err.msg, "partial line was removed"));
    assert_int_equal(file_size(path), before);
    /* and the next append works */
    assert_int_equal(run_record_append(path, "{\"candidate\": 1}", &err), CLENS_OK);
    assert_int_equal(file_size(path), 34);
}

static void scan_torn_line(void **state)
{
    (void)state;
    char path[4400];
    snprintf(path, sizeof path, "%s/records.jsonl", tu_tmpdir("run-scan"));
    const char *text = "{\"candidate\": 0, \"status\": \"kept\"}\n\n"
                       "{\"candidate\": 2, \"status\": \"dropped\"}\n"
                       "{\"candidate\": 4, \"sta";
    tu_write(path, text, strlen(text));
    run_records_scan sc;
    clens_error err = {0};
    assert_int_equal(run_records_scan_file(path, 6, 0, 2, &sc, &err), CLENS_OK);
    assert_int_equal(sc.n_done, 2);
    assert_int_equal(sc.n_kept, 1);
    assert_int_equal(sc.torn_bytes, strlen("{\"candidate\": 4, \"sta"));
    assert_true(sc.done[0] && !sc.done[1] && sc.done[2] && !sc.done[4]);
    free(sc.done);
    /* the torn line is gone from the file: the next append starts a fresh line */
    assert_int_equal(file_size(path), (long)(strlen(text) - strlen("{\"candidate\": 4, \"sta")));
    assert_int_equal(run_records_scan_file(path, 6, 0, 2, &sc, &err), CLENS_OK);
    assert_int_equal(sc.torn_bytes, 0);
    free(sc.done);

    /* a bad line with its newline is not a torn line: an error naming it */
    const char *bad = "{\"candidate\": 0, \"status\": \"kept\"}\n{\"cand\n";
    tu_write(path, bad, strlen(bad));
    assert_int_equal(run_records_scan_file(path, 6, 0, 1, &sc, &err), CLENS_E_FORMAT);
    assert_non_null(strstr(err.msg, "records.jsonl:2: not a record line"));
    free(sc.done);
    /* a candidate of another shard, or beyond the pairs file */
    const char *other = "{\"candidate\": 1, \"status\": \"kept\"}\n";
    tu_write(path, other, strlen(other));
    assert_int_equal(run_records_scan_file(path, 6, 0, 2, &sc, &err), CLENS_E_FORMAT);
    assert_non_null(strstr(err.msg, "does not belong to shard 0 of 2"));
    free(sc.done);
    assert_int_equal(run_records_scan_file(path, 1, 0, 1, &sc, &err), CLENS_E_FORMAT);
    assert_non_null(strstr(err.msg, "the pairs file has 1"));
    free(sc.done);
}

static void first_difference(void **state)
{
    (void)state;
    json_t *a = json_pack("{s:s, s:i, s:[i,i]}", "model", "m", "max_tokens", 512, "ids", 1, 2);
    json_t *b = json_pack("{s:s, s:i, s:[i,i]}", "model", "m", "max_tokens", 1024, "ids", 1, 2);
    assert_string_equal(run_json_first_difference(a, b), "max_tokens");
    json_object_set_new(b, "max_tokens", json_integer(512));
    assert_null(run_json_first_difference(a, b));
    json_object_set_new(b, "extra", json_true());
    assert_string_equal(run_json_first_difference(a, b), "extra");
    char *s = run_json_brief(json_object_get(a, "ids"));
    assert_string_equal(s, "[1,2]");
    free(s);
    assert_int_equal(run_provenance_key_is_identity("kernel"), 1);
    assert_int_equal(run_provenance_key_is_identity("template_sha256"), 1);
    assert_int_equal(run_provenance_key_is_identity("host_cpu"), 0);
    json_decref(a);
    json_decref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(filter_table),
        cmocka_unit_test(record_lines),
        cmocka_unit_test(append_short_write),
        cmocka_unit_test(scan_torn_line),
        cmocka_unit_test(first_difference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
