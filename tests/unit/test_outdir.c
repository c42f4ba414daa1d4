/*
 * test_outdir.c: the small base pieces issue 23 item 10 made shared, each
 * against values written out by hand:
 *  - clens_outdir_check: absent folder file -> not found; same settings ->
 *    found; another value -> CLENS_E_STATE in the one wording, naming the
 *    key and both values; an edited hash; an identity provenance key
 *    (host_cpu may differ);
 *  - clens_appendlog_read: a torn last line is cut off the file itself;
 *  - clens_sb JSON strings / numbers and clens_path_join.
 */
#include "testutil.h"

#include <jansson.h>

#include "base/appendlog.h"
#include "base/outdir.h"
#include "base/path.h"
#include "base/strbuf.h"

static void write_settings(const char *dir, const char *json)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/settings.json", dir);
    tu_write(p, json, strlen(json));
}

static void test_outdir_check(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("outdir");
    clens_error err = {0};
    int found = -1;
    json_t *now = json_pack("{s:i, s:s}", "n", 9, "metric", "logit_mean");
    json_t *prov = json_pack("{s:s, s:s}", "kernel", "avx2", "host_cpu", "B");
    assert_int_equal(clens_outdir_check(d, "run", now, "h1", prov, &found, &err), CLENS_OK);
    assert_int_equal(found, 0);

    write_settings(d, "{\"settings\": {\"n\": 9, \"metric\": \"logit_mean\"}, \"settings_hash\": \"h1\","
                      " \"provenance\": {\"kernel\": \"avx2\", \"host_cpu\": \"A\"}}");
    assert_int_equal(clens_outdir_check(d, "run", now, "h1", prov, &found, &err), CLENS_OK);
    assert_int_equal(found, 1); /* host_cpu may differ */

    write_settings(d, "{\"settings\": {\"n\": 8, \"metric\": \"logit_mean\"}, \"settings_hash\": \"h0\"}");
    assert_int_equal(clens_outdir_check(d, "study", now, "h1", NULL, &found, &err), CLENS_E_STATE);
    char want[4400];
    snprintf(want, sizeof want,
             "%s holds a study with other settings: settings.n is 8 there but 9 now; use another output folder, "
             "or the same settings to resume", d);
    assert_string_equal(err.msg, want);

    write_settings(d, "{\"settings\": {\"n\": 9, \"metric\": \"logit_mean\"}, \"settings_hash\": \"h0\"}");
    assert_int_equal(clens_outdir_check(d, "run", now, "h1", NULL, &found, &err), CLENS_E_STATE);
    assert_non_null(strstr(err.msg, "settings_hash is \"h0\" there but \"h1\" now"));
    assert_int_equal(clens_outdir_check(d, "run", now, NULL, NULL, &found, &err), CLENS_OK);

    write_settings(d, "{\"settings\": {\"n\": 9, \"metric\": \"logit_mean\"}, \"provenance\": {\"kernel\": \"avx512\"}}");
    assert_int_equal(clens_outdir_check(d, "run", now, NULL, prov, &found, &err), CLENS_E_STATE);
    assert_non_null(strstr(err.msg, "provenance.kernel is \"avx512\" there but \"avx2\" now"));

    write_settings(d, "[1, 2]");
    assert_int_equal(clens_outdir_check(d, "run", now, NULL, NULL, &found, &err), CLENS_E_FORMAT);
    json_decref(now);
    json_decref(prov);
}

static void test_appendlog(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("appendlog");
    char p[4200];
    snprintf(p, sizeof p, "%s/records.jsonl", d);
    char *data = NULL;
    size_t len = 1, torn = 1;
    clens_error err = {0};
    assert_int_equal(clens_appendlog_read(p, &data, &len, &torn, &err), CLENS_OK); /* absent */
    assert_null(data);
    assert_int_equal(len + torn, 0);
    tu_write(p, "{\"a\":1}\n{\"b\":2}\n{\"c\"", 20);
    assert_int_equal(clens_appendlog_read(p, &data, &len, &torn, &err), CLENS_OK);
    assert_int_equal(len, 16);
    assert_int_equal(torn, 4);
    assert_string_equal(data, "{\"a\":1}\n{\"b\":2}\n");
    free(data);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 16); /* cut off the file, not only skipped */
    assert_int_equal(clens_appendlog_read(p, &data, &len, &torn, &err), CLENS_OK);
    assert_int_equal(torn, 0);
    free(data);
}

static void test_strbuf_path(void **state)
{
    (void)state;
    clens_sb b = {0};
    clens_sb_json_strn(&b, "a\"\\\n\t\x01\x7f\0z\xc3\xa9", 11);
    clens_sb_puts(&b, " ");
    clens_sb_json_num(&b, 0.1);
    clens_sb_puts(&b, " ");
    clens_sb_json_num(&b, -0.0);
    clens_sb_puts(&b, " ");
    clens_sb_json_num(&b, 1e300 * 1e300);
    clens_sb_printf(&b, " %d", 42);
    char *s = clens_sb_take(&b);
    assert_string_equal(s, "\"a\\\"\\\\\\n\\t\\u0001\x7f\\u0000z\xc3\xa9\" 0.1 0.0 null 42");
    free(s);
    char *j = clens_path_join("runs", "settings.json");
    assert_string_equal(j, "runs/settings.json");
    free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_outdir_check), cmocka_unit_test(test_appendlog),
                                       cmocka_unit_test(test_strbuf_path)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
