/*
 * test_compare.c: clens_compare_write (docs/compare.md) on a hand-made run
 * folder (3 pairs, resid_pre 0..3 of a 3-layer model, attn_out and z sites)
 * plus the seed fixture: hand-computed means, increments, resid_pre depth,
 * label, pairs.csv rows, final prompt tokens in report.html, every output
 * file present; probe / steering / AtP attachments on hand-made probe.json,
 * steer.json and AtP run (join, effect and control, correlations, flags,
 * refusals); errors name the file
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

/* ------------------------------------------- probe, steering and AtP beside patching */

static const char *EV_SETTINGS =
    "{\"settings\": {\"model\": \"/m/ev\", \"method\": \"%s\", \"metric\": \"logit_mean\", \"prompt\": \"%s\",\n"
    " \"pairs_sha256\": \"abc\", \"site_types\": [\"resid_pre\", \"attn_out\"],\n"
    " \"layers\": {\"resid_pre\": [0, 1, 2], \"attn_out\": [0, 1]}, \"n\": 2}, \"provenance\": {\"n_layers\": 2}}\n";

/* recovery = 10 * (10 - patched): exact resid_pre [0,50,100] / [0,70,100], attn_out [0,40] / [20,60] */
static const char *EV_EXACT =
    "{\"candidate\": 0, \"id\": \"a\", \"status\": \"kept\", \"metrics\": {\"logit_mean\": {\"clean\": 0, \"corr\": 10,"
    " \"patched\": {\"resid_pre\": [10, 5, 0], \"attn_out\": [10, 6]}}}}\n"
    "{\"candidate\": 1, \"id\": \"b\", \"status\": \"kept\", \"metrics\": {\"logit_mean\": {\"clean\": 0, \"corr\": 10,"
    " \"patched\": {\"resid_pre\": [10, 3, 0], \"attn_out\": [8, 4]}}}}\n";
/* AtP: resid_pre [0,60,70] / [0,80,70], attn_out [-10,30] / [0,70] */
static const char *EV_ATP =
    "{\"candidate\": 1, \"id\": \"b\", \"status\": \"kept\", \"metrics\": {\"logit_mean\": {\"clean\": 0, \"corr\": 10,"
    " \"patched\": {\"resid_pre\": [10, 2, 3], \"attn_out\": [10, 3]}}}}\n"
    "{\"candidate\": 0, \"id\": \"a\", \"status\": \"kept\", \"metrics\": {\"logit_mean\": {\"clean\": 0, \"corr\": 10,"
    " \"patched\": {\"resid_pre\": [10, 4, 3], \"attn_out\": [11, 7]}}}}\n";
static const char *EV_PROBE =
    "{\"n_layers\": 2, \"layers\": [{\"hook\": \"blocks.0.hook_resid_pre\", \"layer\": 0, \"logreg\": {\"auroc\": 0.5,"
    " \"auroc_ci95\": [0.4, 0.6]}, \"permutation_null\": {\"p95\": 0.6, \"p_value\": 0.5}},"
    " {\"hook\": \"blocks.1.hook_resid_post\", \"layer\": 1, \"logreg\": {\"auroc\": 0.9, \"auroc_ci95\": [0.8, 0.95]},"
    " \"permutation_null\": {\"p95\": 0.6, \"p_value\": 0.02}},"
    " {\"hook\": \"blocks.1.hook_attn_out\", \"layer\": 1, \"logreg\": {\"auroc\": 0.7}}]}\n";
/* alpha 1 (index 1): effect = v[5] - v[1]; control = mean over draws r = 1, 2 of v[2 + 2(2r + 1) + 1] - v[1] */
static const char *EV_STEER =
    "{\"hook\": \"resid_post\", \"mode\": \"ablate\", \"alphas\": [0, 1], \"layers\": [%s], \"n_random\": 2,"
    " \"pairs\": {\"metric\": \"logprob_mass\", \"per_pair\": ["
    "{\"values\": [0, -2, 0, -2, 0, -3, 0, -2, 0, -2.5, 0, -2, 0, -1.5]},"
    "{\"values\": [0, -1, 0, -1, 0, -4, 0, -1, 0, -1, 0, -1, 0, -2]}]}}\n";

#define PEARSON_REF 0.9176629354822472

static void ev_dir(const char *dir, const char *name, const char *file, const char *text)
{
    char p[4400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/%s/%s", dir, name, file);
    tu_write(p, text, strlen(text));
}

static void test_evidence(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("unit_compare_ev");
    char buf[2048], a[4400], b[4400], c[4400], d[4400], e[4400], out[4400];
    snprintf(buf, sizeof buf, EV_SETTINGS, "fast", "raw");
    ev_dir(dir, "exact", "settings.json", buf);
    ev_dir(dir, "exact", "records.jsonl", EV_EXACT);
    snprintf(buf, sizeof buf, EV_SETTINGS, "atp", "raw");
    ev_dir(dir, "atp", "settings.json", buf);
    ev_dir(dir, "atp", "records.jsonl", EV_ATP);
    snprintf(buf, sizeof buf, EV_SETTINGS, "atp", "chat");
    ev_dir(dir, "atp-chat", "settings.json", buf);
    ev_dir(dir, "atp-chat", "records.jsonl", EV_ATP);
    ev_dir(dir, "probe", "probe.json", EV_PROBE);
    snprintf(buf, sizeof buf, EV_STEER, "0");
    ev_dir(dir, "steer", "steer.json", buf);
    snprintf(buf, sizeof buf, EV_STEER, "0, 1");
    ev_dir(dir, "steer2", "steer.json", buf);
    char in[4400];
    snprintf(in, sizeof in, "%s/exact", dir);
    snprintf(a, sizeof a, "exact=%s/probe", dir);
    snprintf(b, sizeof b, "exact=%s/steer", dir);
    snprintf(c, sizeof c, "exact=%s/atp", dir);
    snprintf(d, sizeof d, "exact=%s/atp-chat", dir);
    snprintf(e, sizeof e, "exact=%s/steer2", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    const char *inputs[] = {in}, *probes[] = {a}, *steers[] = {b}, *atps[] = {c};
    clens_compare_params p = clens_compare_default_params();
    p.resamples = 0;
    p.probes = probes; p.n_probes = 1;
    p.steers = steers; p.n_steers = 1;
    p.atps = atps; p.n_atps = 1;
    clens_error err = {0};
    if (clens_compare_write(inputs, 1, &p, out, NULL, &err)) fail_msg("%s", err.msg);
    char path[4500];
    snprintf(path, sizeof path, "%s/comparison.json", out);
    json_error_t je;
    json_t *cj = json_load_file(path, 0, &je);
    assert_non_null(cj);
    json_t *ev = json_object_get(json_array_get(json_object_get(cj, "models"), 0), "evidence");
    json_t *rows = json_object_get(ev, "layers");
    assert_int_equal(json_array_size(rows), 3); /* resid_pre 0, 1 (steer resid_post 0), 2 (probe resid_post 1) */
    json_t *r0 = json_array_get(rows, 0), *r1 = json_array_get(rows, 1), *r2 = json_array_get(rows, 2);
    assert_true(num(json_object_get(r0, "probe"), "auroc") == 0.5);
    assert_true(json_is_null(json_object_get(r1, "probe")));
    assert_true(num(json_object_get(r2, "probe"), "auroc") == 0.9); /* not the attn_out hook's 0.7 */
    assert_true(num(json_object_get(r1, "recovery"), "mean") == 60.0);
    json_t *st = json_object_get(r1, "steer");
    assert_true(fabs(num(st, "effect") - (-2.0)) < 1e-12);
    assert_true(fabs(num(st, "control") - (-0.25)) < 1e-12);
    assert_true(num(st, "alpha") == 1.0);
    assert_non_null(strstr(json_string_value(json_object_get(ev, "agreement")),
                           "from resid_pre 2, only after the causal layer"));
    json_t *types = json_object_get(json_object_get(ev, "atp"), "site_types");
    assert_int_equal(json_array_size(types), 2);
    json_t *rp = json_array_get(types, 0), *ao = json_array_get(types, 1);
    assert_true(fabs(num(rp, "pearson") - PEARSON_REF) < 1e-12); /* numpy corrcoef([0,60,100], [0,70,70]) */
    assert_true(fabs(num(rp, "spearman") - 0.8660254037844387) < 1e-12); /* average ranks: [1,2,3] vs [1,2.5,2.5] */
    assert_true(json_is_null(json_object_get(ao, "pearson"))); /* 2 sites */
    json_t *sites = json_object_get(rp, "sites");
    assert_true(json_is_null(json_object_get(json_array_get(sites, 1), "flag")));  /* 60 vs 70: exactly 10, not more */
    assert_string_equal(json_string_value(json_object_get(json_array_get(sites, 2), "flag")), "magnitude"); /* 100 vs 70 */
    assert_int_equal(num(rp, "n_flagged"), 1);
    sites = json_object_get(ao, "sites"); /* exact 10 vs AtP -5: opposite signs, both >= 1 point */
    assert_string_equal(json_string_value(json_object_get(json_array_get(sites, 0), "flag")), "sign");
    assert_true(json_is_null(json_object_get(json_array_get(sites, 1), "flag"))); /* 50 vs 50 */
    json_decref(cj);
    /* refusals: an AtP run with another prompt (naming the key); a steer run over two layers */
    const char *atps2[] = {d}, *steers2[] = {e};
    p.atps = atps2;
    snprintf(out, sizeof out, "%s/out2", dir);
    assert_int_not_equal(clens_compare_write(inputs, 1, &p, out, NULL, &err), 0);
    assert_non_null(strstr(err.msg, "settings.prompt is \"chat\" there but \"raw\""));
    p.atps = atps;
    p.steers = steers2;
    snprintf(out, sizeof out, "%s/out3", dir);
    assert_int_not_equal(clens_compare_write(inputs, 1, &p, out, NULL, &err), 0);
    assert_non_null(strstr(err.msg, "steers 2 layers at once"));
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
        cmocka_unit_test(test_evidence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
