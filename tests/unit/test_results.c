/*
 * test_results.c: results.json / results.md from settings.json + records.jsonl
 * (docs/patch-output.md): hand-computed statistics, R13 selection (first N kept
 * pairs in candidate order), counts, undefined pairs, malformed / duplicate /
 * missing records, input-order independence, and `clens merge` of 3 shards
 * giving the single run's results.json byte for byte (without "timing").
 */
#include "testutil.h"

#include <jansson.h>
#include <math.h>

#include "base/base.h"
#include "report/report.h"

#define HASH "5f1c0a0e0d9b7d1e6b3f0c2a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d"

static void assert_near_at(double a, double b, double eps, const char *what, int line)
{
    if (!(fabs(a - b) <= eps)) fail_msg("line %d: %s = %.17g, expected %.17g", line, what, a, b);
}
#define assert_near(a, b, eps) assert_near_at((a), (b), (eps), #a, __LINE__)

/* ------------------------------------------------------------ fixtures */

static char g_settings[4096];

static const char *settings_text(int n, int resamples, int seed, int shard_index, int shard_count,
                                 const char *host)
{
    snprintf(g_settings, sizeof g_settings,
             "{\n  \"clens_version\": \"0.1.0\",\n  \"settings_hash\": \"" HASH "\",\n"
             "  \"settings\": {\"model\": \"/models/tiny-qwen/\", \"method\": \"fast\", \"prompt\": \"raw\",\n"
             "    \"metric\": \"logprob_mass\",\n"
             "    \"metrics\": {\"logprob_mass\": {\"ids\": [5, 6], \"tokens\": [\"Wait\", \" Wait\"]},\n"
             "                \"logit_mean\": {\"ids\": [5, 6], \"tokens\": [\"Wait\", \" Wait\"]}},\n"
             "    \"site_types\": [\"resid_pre\", \"attn_out\", \"z\"],\n"
             "    \"layers\": {\"resid_pre\": [0, 1, 2], \"attn_out\": [0, 1], \"z\": [0, 1]},\n"
             "    \"n_heads\": 2, \"filter\": \"default\", \"min_diff\": 3.0, \"n\": %d,\n"
             "    \"bootstrap\": {\"resamples\": %d, \"seed\": %d},\n"
             "    \"pairs_file\": \"pairs.jsonl\", \"pairs_sha256\": \"00ff\", \"matmul\": \"default\"},\n"
             "  \"shard\": {\"index\": %d, \"count\": %d},\n"
             "  \"provenance\": {\"config_sha256\": \"c1\", \"weights_index_sha256\": \"w1\", "
             "\"tokenizer_sha256\": \"t1\", \"template_sha256\": null, \"dtype\": \"float32\", "
             "\"kernel\": \"portable\", \"arch\": \"qwen2\", \"n_layers\": 2, \"host_cpu\": \"%s\"}\n}\n",
             n, resamples, seed, shard_index, shard_count, host);
    return g_settings;
}

/* The hand example: primary metric logprob_mass; logit_mean carries other
 * numbers that must not be used.
 *   c0 kept: clean -4, corr 0 -> resid_pre r = [0, 25, 100], attn_out [50, 25], z [[25, 0], [100, 50]]
 *   c1 dropped too_small
 *   c2 kept: clean -2, corr 1 -> resid_pre [0, 100, 100], attn_out [0, 0], z zeros
 *   c3 kept: clean 0, corr 5  -> resid_pre [0, -10, 100], attn_out [0, 100], z zeros
 *   c4 kept (beyond n = 3), c5 dropped length_mismatch */
static const char *hand_lines[6] = {
    "{\"candidate\": 0, \"id\": \"p/0\", \"status\": \"kept\", \"reason\": null, \"n_tokens\": 20, "
    "\"shared_prefix\": 18, \"metrics\": {\"logprob_mass\": {\"clean\": -4, \"corr\": 0.0, \"patched\": "
    "{\"resid_pre\": [0, -1, -4], \"attn_out\": [-2, -1], \"z\": [[-1, 0], [-4, -2]]}}, "
    "\"logit_mean\": {\"clean\": 10, \"corr\": 20, \"patched\": {\"resid_pre\": [11, 12, 13], "
    "\"attn_out\": [1, 1], \"z\": [[1, 1], [1, 1]]}}}, \"seconds\": 1.5}",
    "{\"candidate\": 1, \"id\": \"p/1\", \"status\": \"dropped\", \"reason\": \"too_small\", \"metrics\": "
    "{\"logprob_mass\": {\"clean\": 1, \"corr\": 1.5}}, \"seconds\": 0.25}",
    "{\"candidate\": 2, \"id\": \"p/2\", \"status\": \"kept\", \"reason\": null, \"metrics\": {\"logprob_mass\": "
    "{\"clean\": -2, \"corr\": 1, \"patched\": {\"resid_pre\": [1, -2, -2], \"attn_out\": [1, 1], "
    "\"z\": [[1, 1], [1, 1]]}}}, \"seconds\": 1.25}",
    "{\"candidate\": 3, \"id\": \"p/3\", \"status\": \"kept\", \"reason\": null, \"metrics\": {\"logprob_mass\": "
    "{\"clean\": 0, \"corr\": 5, \"patched\": {\"resid_pre\": [5, 5.5, 0], \"attn_out\": [5, 0], "
    "\"z\": [[5, 5], [5, 5]]}}}, \"seconds\": 1.0}",
    "{\"candidate\": 4, \"id\": \"p/4\", \"status\": \"kept\", \"reason\": null, \"metrics\": {\"logprob_mass\": "
    "{\"clean\": -9, \"corr\": 1, \"patched\": {\"resid_pre\": [1, 1, 1], \"attn_out\": [1, 1], "
    "\"z\": [[1, 1], [1, 1]]}}}, \"seconds\": 2.0}",
    "{\"candidate\": 5, \"id\": \"p/5\", \"status\": \"dropped\", \"reason\": \"length_mismatch\", "
    "\"seconds\": 0.0}",
};

static char *join(const char *const *lines, const int *order, int n, const char *sep)
{
    clens_sb b = {0};
    for (int i = 0; i < n; i++) {
        clens_sb_puts(&b, lines[order ? order[i] : i]);
        clens_sb_puts(&b, sep);
    }
    return clens_sb_take(&b);
}

static json_t *load(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j) fail_msg("results.json does not parse: %d:%d %s", je.line, je.column, je.text);
    return j;
}

static double num(json_t *root, const char *path)
{
    /* path like "layer_stats/1/mean_recovery" or "pairs/0/D" */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *v = root;
    for (char *tok = strtok(buf, "/"); tok; tok = strtok(NULL, "/")) {
        if (json_is_array(v)) v = json_array_get(v, (size_t)atoi(tok));
        else v = json_object_get(v, tok);
    }
    if (!json_is_number(v)) fail_msg("%s: not a number", path);
    return json_number_value(v);
}

static json_t *at(json_t *root, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *v = root;
    for (char *tok = strtok(buf, "/"); tok; tok = strtok(NULL, "/")) {
        if (json_is_array(v)) v = json_array_get(v, (size_t)atoi(tok));
        else v = json_object_get(v, tok);
    }
    return v;
}

/* ---------------------------------------------------------------- tests */

static void hand_computed(void **state)
{
    (void)state;
    char *recs = join(hand_lines, NULL, 6, "\n");
    char *js = NULL, *md = NULL;
    clens_error err = {0};
    int rc = clens_results_build(settings_text(3, 200, 7, 0, 1, "cpu A"), recs, strlen(recs), &js, &md, &err);
    if (rc) fail_msg("%s", err.msg);
    json_t *r = load(js);
    assert_string_equal(json_string_value(at(r, "site_type")), "resid_pre");
    assert_string_equal(json_string_value(at(r, "model")), "tiny-qwen");
    assert_string_equal(json_string_value(at(r, "metric")), "logprob_mass");
    assert_int_equal(num(r, "n_pairs"), 3);
    assert_int_equal(json_array_size(at(r, "layers")), 3);
    /* R13: pairs 0, 2, 3 (candidate 4 is the 4th kept pair) */
    assert_int_equal(json_array_size(at(r, "pairs")), 3);
    assert_int_equal(num(r, "pairs/0/candidate"), 0);
    assert_int_equal(num(r, "pairs/1/candidate"), 2);
    assert_int_equal(num(r, "pairs/2/candidate"), 3);
    assert_string_equal(json_string_value(at(r, "pairs/1/id")), "p/2");
    assert_near(num(r, "pairs/0/D"), -4.0, 0);
    assert_near(num(r, "pairs/1/D"), -3.0, 0);
    assert_near(num(r, "pairs/2/D"), -5.0, 0);
    assert_near(num(r, "pairs/2/recovery/resid_pre/1"), -10.0, 0);
    assert_near(num(r, "pairs/0/recovery/z/1/1"), 50.0, 0);
    /* counts up to and including candidate 3 */
    assert_int_equal(num(r, "counts/attempted"), 4);
    assert_int_equal(num(r, "counts/kept"), 3);
    assert_int_equal(json_object_size(at(r, "counts/dropped")), 1);
    assert_int_equal(num(r, "counts/dropped/too_small"), 1);
    /* layer 1: recoveries 25, 100, -10 */
    assert_near(num(r, "layer_stats/1/mean_recovery"), 115.0 / 3.0, 1e-12);
    assert_near(num(r, "layer_stats/1/std_recovery"), 45.886332993120675, 1e-12);
    assert_near(num(r, "layer_stats/1/median"), 25.0, 0);
    assert_near(num(r, "layer_stats/1/ratio_of_sums"), 350.0 / 12.0, 1e-12);
    assert_int_equal(num(r, "layer_stats/1/n_samples"), 3);
    assert_int_equal(num(r, "layer_stats/1/n_undefined"), 0);
    double lo = num(r, "layer_stats/1/ci95/0"), hi = num(r, "layer_stats/1/ci95/1");
    assert_true(lo <= 115.0 / 3.0 && 115.0 / 3.0 <= hi && lo >= -10.0 && hi <= 100.0);
    /* layer 0: patched = corrupted -> 0; layer 2: patched = clean -> 100 */
    assert_near(num(r, "layer_stats/0/mean_recovery"), 0.0, 0);
    assert_near(num(r, "layer_stats/0/ratio_of_sums"), 0.0, 0);
    assert_near(num(r, "layer_stats/2/mean_recovery"), 100.0, 0);
    assert_near(num(r, "layer_stats/2/std_recovery"), 0.0, 0);
    assert_near(num(r, "layer_stats/2/ratio_of_sums"), 100.0, 0);
    assert_near(num(r, "layer_stats/2/ci95/0"), 100.0, 0);
    /* increments */
    assert_true(json_is_null(at(r, "layer_stats/0/delta")));
    assert_true(json_is_null(at(r, "layer_stats/0/delta_ci95")));
    assert_near(num(r, "layer_stats/1/delta"), 115.0 / 3.0, 1e-12);
    assert_near(num(r, "layer_stats/2/delta"), 100.0 - 115.0 / 3.0, 1e-12);
    assert_true(num(r, "layer_stats/2/delta_ci95/0") <= num(r, "layer_stats/2/delta_ci95/1"));
    assert_near(num(r, "best_layer"), 2, 0);
    assert_near(num(r, "best_recovery"), 100.0, 0);
    /* other site types */
    assert_near(num(r, "sites/attn_out/0/mean_recovery"), 50.0 / 3.0, 1e-12);
    assert_near(num(r, "sites/attn_out/1/mean_recovery"), 125.0 / 3.0, 1e-12);
    assert_near(num(r, "sites/attn_out/1/delta"), 25.0, 1e-12);
    assert_near(num(r, "sites/z/1.0/mean_recovery"), 100.0 / 3.0, 1e-12);
    assert_near(num(r, "sites/z/1.1/mean_recovery"), 50.0 / 3.0, 1e-12);
    assert_null(at(r, "sites/z/1.1/delta"));
    assert_null(at(r, "sites/resid_pre"));
    /* copied through */
    assert_string_equal(json_string_value(at(r, "settings_hash")), HASH);
    assert_string_equal(json_string_value(at(r, "provenance/host_cpu")), "cpu A");
    assert_int_equal(num(r, "settings/n"), 3);
    /* which clens wrote it, just before "timing" */
    assert_string_equal(json_string_value(at(r, "clens_version")), CLENS_VERSION);
    assert_non_null(strstr(js, ",\n  \"clens_version\": \"" CLENS_VERSION "\",\n  \"timing\": {"));
    /* timing sums every record's seconds */
    assert_near(num(r, "timing/seconds_total"), 6.0, 1e-12);
    assert_near(num(r, "timing/seconds_per_pair"), 2.0, 1e-12);
    json_decref(r);
    /* seed-compatible field order */
    assert_true(strncmp(js, "{\n  \"site_type\": \"resid_pre\",\n  \"model\": \"tiny-qwen\",\n  \"n_pairs\": 3,", 68) == 0);
    assert_non_null(strstr(js, "\"1\": {\"mean_recovery\": 38.333333333333336, \"std_recovery\": 45.886332993120675, "
                               "\"n_samples\": 3, \"ratio_of_sums\": 29.166666666666668, \"median\": 25.0, \"ci95\": ["));
    /* markdown */
    assert_non_null(strstr(md, "| Layer | Recovery % | Δ | 95% CI | ratio of sums | median | n |"));
    assert_non_null(strstr(md, "| 1 | 38.3 | +38.3 | ["));
    assert_non_null(strstr(md, "| **2** | **100.0** | +61.7 | [100.0, 100.0] | 100.0 | 100.0 | 3 |"));
    assert_non_null(strstr(md, "Candidates attempted: 4; kept: 3; dropped: 1 (too_small 1)."));
    assert_non_null(strstr(md, "## Site type `z`"));
    free(js);
    free(md);

    /* any line order, CRLF, blank lines: the same bytes */
    char *js2 = NULL;
    const int order[6] = {5, 3, 0, 4, 2, 1};
    char *recs2 = join(hand_lines, order, 6, "\r\n\n");
    assert_int_equal(clens_results_build(settings_text(3, 200, 7, 0, 1, "cpu A"), recs2, strlen(recs2), &js2, NULL, &err), 0);
    rc = clens_results_build(settings_text(3, 200, 7, 0, 1, "cpu A"), recs, strlen(recs), &js, NULL, &err);
    assert_int_equal(rc, 0);
    assert_string_equal(js, js2);
    free(js2);
    /* another bootstrap seed changes only the CIs */
    assert_int_equal(clens_results_build(settings_text(3, 200, 8, 0, 1, "cpu A"), recs, strlen(recs), &js2, NULL, &err), 0);
    assert_string_not_equal(js, js2);
    json_t *a = load(js), *b = load(js2);
    assert_true(json_equal(at(a, "layer_stats/1/mean_recovery"), at(b, "layer_stats/1/mean_recovery")));
    assert_true(num(a, "layer_stats/1/ci95/0") != num(b, "layer_stats/1/ci95/0") ||
                num(a, "layer_stats/1/ci95/1") != num(b, "layer_stats/1/ci95/1"));
    json_decref(a);
    json_decref(b);
    free(js2);
    free(js);
    free(recs2);
    free(recs);
}

static void fewer_than_n_kept(void **state)
{
    (void)state;
    char *recs = join(hand_lines, NULL, 6, "\n");
    char *js = NULL;
    clens_error err = {0};
    assert_int_equal(clens_results_build(settings_text(10, 50, 0, 0, 1, "x"), recs, strlen(recs), &js, NULL, &err), 0);
    json_t *r = load(js);
    assert_int_equal(num(r, "n_pairs"), 4);
    assert_int_equal(num(r, "counts/attempted"), 6);
    assert_int_equal(num(r, "counts/kept"), 4);
    assert_int_equal(num(r, "counts/dropped/too_small"), 1);
    assert_int_equal(num(r, "counts/dropped/length_mismatch"), 1);
    /* keys of "dropped" in byte order */
    assert_non_null(strstr(js, "\"dropped\": {\"length_mismatch\": 1, \"too_small\": 1}"));
    assert_int_equal(num(r, "pairs/3/candidate"), 4);
    json_decref(r);
    free(js);
    free(recs);
}

static void undefined_pair(void **state)
{
    (void)state;
    const char *lines[3] = {
        hand_lines[0],
        "{\"candidate\": 1, \"id\": \"same\", \"status\": \"kept\", \"metrics\": {\"logprob_mass\": {\"clean\": 2.5, "
        "\"corr\": 2.5, \"patched\": {\"resid_pre\": [2.5, 3, 2.5], \"attn_out\": [1, 1], \"z\": [[1, 1], [1, 1]]}}}}",
        hand_lines[2],
    };
    char *recs = join(lines, NULL, 3, "\n");
    char *js = NULL, *md = NULL;
    clens_error err = {0};
    int rc = clens_results_build(settings_text(3, 100, 0, 0, 1, "x"), recs, strlen(recs), &js, &md, &err);
    if (rc) fail_msg("%s", err.msg);
    json_t *r = load(js);
    assert_int_equal(num(r, "n_pairs"), 3);
    assert_int_equal(num(r, "layer_stats/1/n_samples"), 2);
    assert_int_equal(num(r, "layer_stats/1/n_undefined"), 1);
    assert_int_equal(num(r, "sites/z/0.1/n_undefined"), 1);
    /* layer 1 over pairs 0 and 2: (25 + 100) / 2 */
    assert_near(num(r, "layer_stats/1/mean_recovery"), 62.5, 0);
    assert_near(num(r, "layer_stats/1/std_recovery"), 37.5, 0);
    assert_near(num(r, "layer_stats/1/ratio_of_sums"), 100.0 * (-1.0 - 3.0) / (-4.0 - 3.0), 1e-12);
    assert_near(num(r, "pairs/1/D"), 0.0, 0);
    assert_true(json_is_null(at(r, "pairs/1/recovery/resid_pre/1")));
    assert_true(json_is_null(at(r, "pairs/1/recovery/z/1/0")));
    assert_null(strstr(js, "NaN"));
    assert_null(strstr(js, "nan,"));
    assert_null(strstr(js, "nan]"));
    assert_non_null(strstr(md, "| 2 (+1 undefined) |"));
    json_decref(r);
    free(js);
    free(md);
    free(recs);
}

static void bad_records(void **state)
{
    (void)state;
    clens_error err = {0};
    char *js = NULL;
    const char *S = settings_text(3, 10, 0, 0, 1, "x");
    /* malformed JSON on line 3 */
    const char *l1[3] = {hand_lines[0], hand_lines[1], "{\"candidate\": 2, \"status\": "};
    char *recs = join(l1, NULL, 3, "\n");
    assert_int_equal(clens_results_build(S, recs, strlen(recs), &js, NULL, &err), CLENS_E_FORMAT);
    assert_non_null(strstr(err.msg, "records.jsonl:3:"));
    free(recs);
    /* wrong number of layers on line 2 */
    const char *l2[2] = {hand_lines[0],
                         "{\"candidate\": 1, \"status\": \"kept\", \"metrics\": {\"logprob_mass\": {\"clean\": 1, "
                         "\"corr\": 2, \"patched\": {\"resid_pre\": [1, 2], \"attn_out\": [1, 1], \"z\": [[1, 1], [1, 1]]}}}}"};
    recs = join(l2, NULL, 2, "\n");
    assert_int_equal(clens_results_build(S, recs, strlen(recs), &js, NULL, &err), CLENS_E_FORMAT);
    assert_non_null(strstr(err.msg, "records.jsonl:2:"));
    assert_non_null(strstr(err.msg, "patched.resid_pre"));
    free(recs);
    /* bad status, missing primary metric, z of the wrong width */
    const char *l3[1] = {"{\"candidate\": 0, \"status\": \"maybe\"}"};
    recs = join(l3, NULL, 1, "\n");
    assert_int_equal(clens_results_build(S, recs, strlen(recs), &js, NULL, &err), CLENS_E_FORMAT);
    assert_non_null(strstr(err.msg, "records.jsonl:1:"));
    free(recs);
    const char *l4[2] = {hand_lines[1], "{\"candidate\": 0, \"status\": \"kept\", \"metrics\": {\"logit_mean\": {}}}"};
    recs = join(l4, NULL, 2, "\n");
    assert_int_equal(clens_results_build(S, recs, strlen(recs), &js, NULL, &err), CLENS_E_FORMAT);
    assert_non_null(strstr(err.msg, "records.jsonl:2: candidate 0: kept pair without metrics.logprob_mass"));
    free(recs);
    /* duplicate candidate */
    const char *l5[4] = {hand_lines[0], hand_lines[2], hand_lines[1], hand_lines[2]};
    recs = join(l5, NULL, 4, "\n");
    assert_int_equal(clens_results_build(S, recs, strlen(recs), &js, NULL, &err), CLENS_E_FORMAT);
    assert_non_null(strstr(err.msg, "candidate 2 recorded twice: records.jsonl:2 and records.jsonl:4"));
    free(recs);
    /* a gap below the last pair used */
    const char *l6[3] = {hand_lines[0], hand_lines[2], hand_lines[3]};
    recs = join(l6, NULL, 3, "\n");
    assert_int_equal(clens_results_build(S, recs, strlen(recs), &js, NULL, &err), CLENS_E_STATE);
    assert_non_null(strstr(err.msg, "candidate 1 has no record"));
    free(recs);
    /* bad settings */
    assert_int_equal(clens_results_build("{\"settings\": {}}", "", 0, &js, NULL, &err), CLENS_E_FORMAT);
    assert_non_null(strstr(err.msg, "settings.json"));
    assert_int_equal(clens_results_build("{\"settings\": ", "", 0, &js, NULL, &err), CLENS_E_FORMAT);
    assert_non_null(strstr(err.msg, "settings.json:1:"));
    assert_null(js);
}

static void number_format(void **state)
{
    (void)state;
    char b[40];
    assert_string_equal(clens_fmt_double(b, sizeof b, 0.1), "0.1");
    assert_string_equal(clens_fmt_double(b, sizeof b, 100.0), "100.0");
    assert_string_equal(clens_fmt_double(b, sizeof b, -0.0), "0.0");
    assert_string_equal(clens_fmt_double(b, sizeof b, 1.0 / 3.0), "0.3333333333333333");
    assert_string_equal(clens_fmt_double(b, sizeof b, 115.0 / 3.0), "38.333333333333336");
    assert_string_equal(clens_fmt_double(b, sizeof b, 1e20), "1e+20");
    assert_string_equal(clens_fmt_double(b, sizeof b, NAN), "null");
    assert_string_equal(clens_fmt_double(b, sizeof b, 1e-7), "1e-07");
}

/* ------------------------------------------------------------------ merge */

/* Record line of candidate c of the synthetic 30-candidate pool. */
static char *synth_line(int c)
{
    char buf[4096];
    double clean = -2.0 - (c % 4) * 0.75 - c * 0.01, corr = 0.5 + (c % 3) * 0.3;
    if (c == 8) clean = corr; /* identical runs: undefined recovery */
    if (c % 7 == 4) {
        snprintf(buf, sizeof buf, "{\"candidate\": %d, \"id\": \"s/%d\", \"status\": \"dropped\", \"reason\": "
                                  "\"length_mismatch\", \"seconds\": 0.01}", c, c);
        return strdup(buf);
    }
    if (c % 5 == 1) {
        snprintf(buf, sizeof buf, "{\"candidate\": %d, \"id\": \"s/%d\", \"status\": \"dropped\", \"reason\": "
                                  "\"too_small\", \"metrics\": {\"logprob_mass\": {\"clean\": %.17g, \"corr\": %.17g}}, "
                                  "\"seconds\": 0.5}", c, c, clean, corr);
        return strdup(buf);
    }
    clens_sb b = {0};
    clens_sb_printf(&b, "{\"candidate\": %d, \"id\": \"s/%d\", \"status\": \"kept\", \"reason\": null, \"metrics\": {", c, c);
    for (int m = 0; m < 2; m++) {
        double cl = m ? clean * 3 : clean, co = m ? corr * 3 + 1 : corr;
        clens_sb_printf(&b, "%s\"%s\": {\"clean\": %.17g, \"corr\": %.17g, \"patched\": {\"resid_pre\": [", m ? ", " : "",
                        m ? "logit_mean" : "logprob_mass", cl, co);
        for (int L = 0; L < 3; L++) {
            double noise = ((c * 7 + L * 3) % 11 - 5) * 0.02;
            clens_sb_printf(&b, "%s%.17g", L ? ", " : "", co + (L / 2.0) * (cl - co) + noise);
        }
        clens_sb_puts(&b, "], \"attn_out\": [");
        for (int L = 0; L < 2; L++) clens_sb_printf(&b, "%s%.17g", L ? ", " : "", co + 0.1 * L * (cl - co) + c * 0.001);
        clens_sb_puts(&b, "], \"z\": [");
        for (int L = 0; L < 2; L++)
            clens_sb_printf(&b, "%s[%.17g, %.17g]", L ? ", " : "", co + 0.05 * (cl - co) * (L + 1), co - 0.01 * c);
        clens_sb_puts(&b, "]}}");
    }
    clens_sb_printf(&b, "}, \"seconds\": %.17g}", 1.0 + c * 0.01);
    return clens_sb_take(&b);
}

/* Records of a run over the candidates c = index (mod count), stopping at n kept. */
static char *run_records(int n, int index, int count, int pool)
{
    clens_sb b = {0};
    int kept = 0;
    for (int c = index; c < pool && kept < n; c += count) {
        char *l = synth_line(c);
        kept += strstr(l, "\"kept\"") != NULL;
        clens_sb_puts(&b, l);
        clens_sb_puts(&b, "\n");
        free(l);
    }
    return clens_sb_take(&b);
}

static void write_dir(const char *dir, const char *settings, const char *records)
{
    char p[4300];
    snprintf(p, sizeof p, "mkdir -p '%s'", dir);
    assert_int_equal(system(p), 0);
    snprintf(p, sizeof p, "%s/settings.json", dir);
    tu_write(p, settings, strlen(settings));
    snprintf(p, sizeof p, "%s/records.jsonl", dir);
    tu_write(p, records, strlen(records));
}

static char *read_text(const char *dir, const char *name)
{
    char p[4300];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    char *d;
    size_t n;
    clens_error err = {0};
    if (clens_read_file(p, &d, &n, &err)) fail_msg("%s", err.msg);
    return d;
}

static void strip_timing(char *js)
{
    char *t = strstr(js, ",\n  \"timing\"");
    assert_non_null(t);
    *t = '\0';
}

static void merge_three_shards(void **state)
{
    (void)state;
    const int N = 6, POOL = 30;
    char base[4096], d[4][4200], out[4200];
    snprintf(base, sizeof base, "%s", tu_tmpdir("results_merge"));
    clens_error err = {0};

    /* the single run */
    char *single = run_records(N, 0, 1, POOL);
    char *js1 = NULL, *md1 = NULL;
    int rc = clens_results_build(settings_text(N, 300, 11, 0, 1, "cpu A"), single, strlen(single), &js1, &md1, &err);
    if (rc) fail_msg("%s", err.msg);
    json_t *r = load(js1);
    assert_int_equal(num(r, "n_pairs"), N);
    assert_int_equal(num(r, "layer_stats/0/n_undefined"), 1); /* candidate 8 */
    int attempted = (int)num(r, "counts/attempted");
    json_decref(r);

    /* the same run via clens_results_write on a folder */
    snprintf(d[3], sizeof d[3], "%s/single", base);
    write_dir(d[3], settings_text(N, 300, 11, 0, 1, "cpu A"), single);
    assert_int_equal(clens_results_write(d[3], NULL, &err), 0);
    char *w = read_text(d[3], "results.json");
    assert_string_equal(w, js1);
    free(w);

    /* three shards, each stopping at N kept within its subset; shard 2 ran elsewhere */
    const char *dirs[3];
    for (int i = 0; i < 3; i++) {
        snprintf(d[i], sizeof d[i], "%s/shard%d", base, i);
        char *recs = run_records(N, i, 3, POOL);
        write_dir(d[i], settings_text(N, 300, 11, i, 3, i == 2 ? "cpu B" : "cpu A"), recs);
        free(recs);
        dirs[i] = d[i];
    }
    snprintf(out, sizeof out, "%s/merged", base);
    char *warnings = NULL;
    const char *shuffled[3] = {dirs[2], dirs[0], dirs[1]};
    rc = clens_results_merge(shuffled, 3, out, &warnings, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_non_null(warnings);
    assert_non_null(strstr(warnings, "provenance.host_cpu"));
    free(warnings);

    char *js2 = read_text(out, "results.json");
    strip_timing(js1);
    strip_timing(js2);
    assert_string_equal(js2, js1);
    free(js2);

    /* merged records: all shards' records, sorted by candidate */
    char *mr = read_text(out, "records.jsonl");
    int n_lines = 0, prev = -1;
    for (char *p = mr; *p; p = strchr(p, '\n') + 1) {
        int c = atoi(p + strlen("{\"candidate\": "));
        assert_true(c > prev);
        prev = c;
        n_lines++;
    }
    assert_true(n_lines > attempted);
    free(mr);
    char *ms = read_text(out, "settings.json");
    json_t *s = load(ms);
    assert_int_equal(num(s, "shard/index"), 0);
    assert_int_equal(num(s, "shard/count"), 1);
    assert_string_equal(json_string_value(at(s, "settings_hash")), HASH);
    json_decref(s);
    free(ms);
    /* results of the merged folder rebuild to the same bytes */
    char *before = read_text(out, "results.json");
    assert_int_equal(clens_results_write(out, NULL, &err), 0);
    char *after = read_text(out, "results.json");
    assert_string_equal(before, after);
    free(before);
    free(after);
    /* merging again into the same folder is allowed */
    assert_int_equal(clens_results_merge(dirs, 3, out, NULL, &err), 0);

    /* errors: a missing shard, a repeated shard, another study, output = input */
    rc = clens_results_merge(dirs, 2, out, NULL, &err);
    assert_int_equal(rc, CLENS_E_STATE);
    assert_non_null(strstr(err.msg, "shard 2 of 3 missing"));
    const char *twice[3] = {dirs[0], dirs[1], dirs[1]};
    assert_int_equal(clens_results_merge(twice, 3, out, NULL, &err), CLENS_E_STATE);
    assert_non_null(strstr(err.msg, "both shard 1 of 3"));
    assert_int_equal(clens_results_merge(dirs, 3, dirs[0], NULL, &err), CLENS_E_ARG);
    char other[4300];
    snprintf(other, sizeof other, "%s/other", base);
    char *recs = run_records(N, 1, 3, POOL);
    char *st = strdup(settings_text(N + 1, 300, 11, 1, 3, "cpu A"));
    char *h = strstr(st, HASH);
    h[0] = 'f'; /* another settings_hash */
    write_dir(other, st, recs);
    const char *mixed[3] = {dirs[0], other, dirs[2]};
    assert_int_equal(clens_results_merge(mixed, 3, out, NULL, &err), CLENS_E_STATE);
    assert_non_null(strstr(err.msg, "different studies"));
    free(st);
    /* a shard holding a foreign candidate */
    write_dir(other, settings_text(N, 300, 11, 1, 3, "cpu A"), single);
    const char *foreign[3] = {dirs[0], other, dirs[2]};
    assert_int_equal(clens_results_merge(foreign, 3, out, NULL, &err), CLENS_E_FORMAT);
    assert_non_null(strstr(err.msg, "candidate 0 does not belong to shard 1 of 3"));
    /* an incomplete shard (killed after candidate 1, never resumed): candidate 4 is missing.
     * (A shard that stopped early but past the last pair used would be harmless.) */
    char *cut = run_records(2, 1, 3, POOL);
    strchr(cut, '\n')[1] = '\0';
    write_dir(other, settings_text(N, 300, 11, 1, 3, "cpu A"), cut);
    assert_int_equal(clens_results_merge(foreign, 3, out, NULL, &err), CLENS_E_STATE);
    assert_non_null(strstr(err.msg, "candidate 4 has no record"));
    free(cut);
    free(recs);
    free(js1);
    free(md1);
    free(single);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hand_computed),
        cmocka_unit_test(fewer_than_n_kept),
        cmocka_unit_test(undefined_pair),
        cmocka_unit_test(bad_records),
        cmocka_unit_test(number_format),
        cmocka_unit_test(merge_three_shards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
