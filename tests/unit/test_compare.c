/*
 * test_compare.c: clens_compare_write (docs/compare.md) on a hand-made run
 * folder (3 pairs, resid_pre 0..3 of a 3-layer model, attn_out and z sites)
 * plus the seed fixture: hand-computed means, increments, resid_pre depth,
 * label, pairs.csv rows, final prompt tokens in report.html, every output
 * file present; errors name the file
 * and line. Also the C path the sanitizer pass exercises (ASan + UBSan).
 * The statistics against numpy are in tests/suites/70-compare.sh.
 */
#include "testutil.h"

#include <jansson.h>
#include <math.h>

#include "base/base.h"

static const char *SETTINGS =
    "{\"settings_hash\": \"x\", \"settings\": {\"model\": \"/m/tiny-run/\", \"metric\": \"logit_mean\",\n"
    " \"prompt\": \"raw\", \"filter\": \"seed\", \"site_types\": [\"resid_pre\", \"attn_out\", \"z\"],\n"
    " \"layers\": {\"resid_pre\": [0, 1, 2, 3], \"attn_out\": [0, 1], \"z\": [1]}, \"n_heads\": 2, \"n\": 3},\n"
    " \"provenance\": {\"n_layers\": 3}}\n";

/* clean 0, corr 10 (D = -10): recovery = 100 * (patched - 10) / -10 = 10 * (10 - patched). */
static const char *RECORDS =
    "{\"candidate\": 1, \"id\": \"b\", \"final_tokens\": {\"clean\": [\"=\", \" 5\", \"<x>\"], \"corrupted\": [\"=\", \" 6\", \"<x>\"]}, \"status\": \"kept\", \"metrics\": {\"logit_mean\": {\"clean\": 0, \"corr\": 10,"
    " \"patched\": {\"resid_pre\": [10, 9, 5, 0], \"attn_out\": [10, 8], \"z\": [[9, 10]]}}}}\n"
    "{\"candidate\": 0, \"id\": \"a\", \"status\": \"kept\", \"metrics\": {\"logit_mean\": {\"clean\": 0, \"corr\": 10,"
    " \"patched\": {\"resid_pre\": [10, 9, 4, 0], \"attn_out\": [10, 7], \"z\": [[8, 10]]}}}}\n"
    "{\"candidate\": 2, \"id\": \"c\", \"status\": \"dropped\", \"reason\": \"too_small\"}\n"
    "{\"candidate\": 3, \"id\": \"d\", \"status\": \"kept\", \"metrics\": {\"logit_mean\": {\"clean\": 0, \"corr\": 10,"
    " \"patched\": {\"resid_pre\": [10, 9, 3, null], \"attn_out\": [10, 6], \"z\": [[7, 10]]}}}}\n"
    "{\"candidate\": 4, \"id\": \"e\", \"status\": \"kept\", \"metrics\": {\"logit_mean\": {\"clean\": 0, \"corr\": 10,"
    " \"patched\": {\"resid_pre\": [0, 0, 0, 0], \"attn_out\": [0, 0], \"z\": [[0, 0]]}}}}\n";

static char g_run[4200], g_out[4200];

static void make_run(const char *records)
{
    const char *dir = tu_tmpdir("unit_compare");
    char p[4400];
    snprintf(g_run, sizeof g_run, "%s/run", dir);
    snprintf(g_out, sizeof g_out, "%s/out", dir);
    mkdir(g_run, 0755);
    snprintf(p, sizeof p, "%s/settings.json", g_run);
    tu_write(p, SETTINGS, strlen(SETTINGS));
    snprintf(p, sizeof p, "%s/records.jsonl", g_run);
    tu_write(p, records, strlen(records));
}

static double num(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

static void test_run_and_seed(void **state)
{
    (void)state;
    make_run(RECORDS);
    const char *inputs[] = {g_run, "data/seed_results.json"};
    clens_compare_params p = clens_compare_default_params();
    p.resamples = 200;
    const char *labels[] = {"run=Tiny"};
    p.labels = labels;
    p.n_labels = 1;
    clens_error err = {0};
    char *md = NULL;
    int rc = clens_compare_write(inputs, 2, &p, g_out, &md, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_non_null(md);
    assert_non_null(strstr(md, "| Tiny | unspecified | 3 | 3 |"));
    free(md);

    char path[4400];
    snprintf(path, sizeof path, "%s/comparison.json", g_out);
    json_error_t je;
    json_t *c = json_load_file(path, 0, &je);
    assert_non_null(c);
    json_t *ms = json_object_get(c, "models");
    assert_int_equal(json_array_size(ms), 5);
    json_t *m = json_array_get(ms, 0);
    assert_string_equal(json_string_value(json_object_get(m, "label")), "Tiny");
    assert_int_equal(json_integer_value(json_object_get(m, "n_pairs")), 3); /* a, b, d: the first n = 3 kept */
    json_t *prof = json_object_get(m, "profile");
    /* recoveries: L0 0,0,0; L1 10,10,10; L2 60,50,70; L3 100,100,(undefined) */
    double want_mean[] = {0, 10, 60, 100}, want_depth[] = {0, 1.0 / 3, 2.0 / 3, 1};
    for (int j = 0; j < 4; j++) {
        json_t *e = json_array_get(prof, (size_t)j);
        assert_true(fabs(num(e, "mean") - want_mean[j]) < 1e-12);
        assert_true(fabs(num(e, "depth") - want_depth[j]) < 1e-15);
        assert_int_equal(json_integer_value(json_object_get(e, "layer_resid_pre")), j);
    }
    assert_int_equal(json_integer_value(json_object_get(json_array_get(prof, 3), "n")), 2);
    assert_true(fabs(num(json_array_get(prof, 2), "delta") - 50) < 1e-12);
    assert_true(fabs(num(json_array_get(prof, 2), "sd") - sqrt(200.0 / 3)) < 1e-12);
    /* steps 0 -> 10 -> 60; the step into L3 is the last block (trivial): median of {10, 50} = 30;
     * +50 at d 2/3 with a CI inside [50 - 10, 50 + 10] excludes 30: a mid spike that is also the last
     * non-trivial step -> hybrid */
    json_t *lab = json_object_get(m, "profile_label");
    assert_string_equal(json_string_value(json_object_get(lab, "point")), "hybrid");
    assert_true(json_is_true(json_object_get(json_array_get(prof, 3), "trivial")));
    json_t *crit = json_object_get(m, "critical");
    assert_int_equal(json_integer_value(json_object_get(crit, "layer_resid_pre")), 2);
    /* the seed's DeepSeek: resid_post 18 -> resid_pre 19 of 28 */
    json_t *ds = json_object_get(json_array_get(ms, 1), "profile");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(ds, 9), "layer_resid_pre")), 19);
    assert_true(fabs(num(json_array_get(ds, 9), "depth") - 19.0 / 28) < 1e-15);
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(ms, 1), "profile_label"), "point")),
                        "hybrid");
    json_decref(c);

    /* pairs.csv: 3 pairs x (4 resid_pre + 2 attn_out + 2 heads) rows + header */
    snprintf(path, sizeof path, "%s/pairs.csv", g_out);
    char *csv = NULL;
    size_t n = 0;
    assert_int_equal(clens_read_file(path, &csv, &n, &err), 0);
    int lines = 0;
    for (size_t i = 0; i < n; i++) lines += csv[i] == '\n';
    assert_int_equal(lines, 1 + 3 * 8);
    assert_non_null(strstr(csv, "Tiny,a,z,1,0,0.0,10.0,8.0,20.0\n"));
    assert_non_null(strstr(csv, "Tiny,d,resid_pre,3,,0.0,10.0,,\n"));
    free(csv);
    /* report.html: final prompt tokens of the pair that has them, HTML-escaped */
    snprintf(path, sizeof path, "%s/report.html", g_out);
    char *html = NULL;
    assert_int_equal(clens_read_file(path, &html, &n, &err), 0);
    assert_non_null(strstr(html, "<span class=\"tok\">=</span><span class=\"tok diff\"> 5</span><span class=\"tok\">&lt;x&gt;</span>"));
    assert_non_null(strstr(html, "<span class=\"tok diff\"> 6</span>"));
    assert_null(strstr(html, "<script"));
    free(html);
    const char *files[] = {"comparison.md", "report.html", "recovery_depth.svg", "recovery_layer.svg", "delta_1.svg",
                           "delta_5.svg", "heads_1.svg"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s", g_out, files[i]);
        struct stat st;
        if (stat(path, &st) != 0 || st.st_size == 0) fail_msg("missing %s", path);
    }
}

static void test_errors(void **state)
{
    (void)state;
    make_run("{\"candidate\": 0, \"status\": \"kept\"}\nnot json\n");
    const char *inputs[] = {g_run};
    clens_error err = {0};
    assert_int_equal(clens_compare_write(inputs, 1, NULL, g_out, NULL, &err), CLENS_E_FORMAT);
    assert_non_null(strstr(err.msg, "records.jsonl:2"));
    const char *missing[] = {"/nonexistent/run"};
    assert_int_equal(clens_compare_write(missing, 1, NULL, g_out, NULL, &err), CLENS_E_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/run"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_and_seed),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
