/* test_base.c: SHA-256 vectors, atomic writes, durable appends. */
#include "testutil.h"

#include "base/base.h"

static void sha256_vectors(void **state)
{
    (void)state;
    char hex[65];
    clens_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    clens_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    clens_sha256_hex(m, strlen(m), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void atomic_and_append(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("base");
    char p[4200], q[4200];
    clens_error err = {0};
    snprintf(p, sizeof p, "%s/out.json", d);
    assert_int_equal(clens_write_file_atomic(p, "{}\n", 3, &err), 0);
    char *data; size_t n;
    assert_int_equal(clens_read_file(p, &data, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(data, "{}\n", 3);
    free(data);
    snprintf(q, sizeof q, "%s/log.jsonl", d);
    assert_int_equal(clens_append_line_durable(q, "a", &err), 0);
    assert_int_equal(clens_append_line_durable(q, "bc", &err), 0);
    assert_int_equal(clens_read_file(q, &data, &n, &err), 0);
    assert_string_equal(data, "a\nbc\n");
    free(data);
    snprintf(q, sizeof q, "%s/missing/x", d);
    assert_int_equal(clens_read_file(q, &data, &n, &err), CLENS_E_IO);
    assert_non_null(strstr(err.msg, "missing/x"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha256_vectors),
        cmocka_unit_test(atomic_and_append),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
