/*
 * test_gguf.c: the GGUF reader against hostile files (every truncation,
 * wrong magic and version, huge counts and lengths, bad types, overflowing
 * and misaligned offsets, overlaps, duplicates), the writer's round trip
 * (bit-identical), llama.cpp's control-vector semantics (direction.N rows,
 * direction.0 refused, files summed with their scales, the layer range) and
 * the steering arithmetic (ablation leaves no component along v).
 */
#include "testutil.h"

#include <math.h>

#include "clens.h"
#include "formats/formats.h"

/* ------------------------------------------------ a tiny GGUF builder */

typedef struct { unsigned char b[4096]; size_t n; } gb;

static void b_raw(gb *g, const void *p, size_t k) { memcpy(g->b + g->n, p, k); g->n += k; }
static void b_u32(gb *g, uint32_t v) { for (int i = 0; i < 4; i++) g->b[g->n++] = (unsigned char)(v >> 8 * i); }
static void b_u64(gb *g, uint64_t v) { for (int i = 0; i < 8; i++) g->b[g->n++] = (unsigned char)(v >> 8 * i); }
static void b_str(gb *g, const char *s) { b_u64(g, strlen(s)); b_raw(g, s, strlen(s)); }
static void b_pad(gb *g, size_t a) { while (g->n % a) g->b[g->n++] = 0; }

/* A valid file: one string kv, a uint32 array kv, two F32 tensors of 4 values. */
static void valid(gb *g)
{
    g->n = 0;
    b_raw(g, "GGUF", 4);
    b_u32(g, 3);
    b_u64(g, 2);
    b_u64(g, 2);
    b_str(g, "general.architecture");
    b_u32(g, GGUF_STRING);
    b_str(g, "controlvector");
    b_str(g, "x.arr");
    b_u32(g, GGUF_ARRAY);
    b_u32(g, GGUF_UINT32);
    b_u64(g, 2);
    b_u32(g, 7);
    b_u32(g, 9);
    b_str(g, "direction.1");
    b_u32(g, 1);
    b_u64(g, 4);
    b_u32(g, 0);
    b_u64(g, 0);
    b_str(g, "direction.2");
    b_u32(g, 1);
    b_u64(g, 4);
    b_u32(g, 0);
    b_u64(g, 32);
    b_pad(g, 32);
    for (int i = 0; i < 8; i++) { float f = (float)(i + 1); b_raw(g, &f, 4); }
    b_pad(g, 32);
    for (int i = 0; i < 8; i++) { float f = (float)(i + 10); b_raw(g, &f, 4); }
}

static int parse(const gb *g, clens_error *err)
{
    gguf_file f;
    int rc = gguf_parse(&f, g->b, g->n, "t.gguf", err);
    if (rc == 0) gguf_free(&f);
    return rc;
}

static void test_valid_parses(void **state)
{
    (void)state;
    gb g;
    valid(&g);
    gguf_file f;
    clens_error err = {0};
    assert_int_equal(gguf_parse(&f, g.b, g.n, "t.gguf", &err), 0);
    assert_int_equal(f.n_kv, 2);
    assert_int_equal(f.n_tensors, 2);
    assert_string_equal(gguf_find_kv(&f, "general.architecture")->str, "controlvector");
    assert_int_equal(gguf_find_kv(&f, "x.arr")->arr_n, 2);
    const gguf_tensor *t = gguf_find_tensor(&f, "direction.2");
    assert_non_null(t);
    float v;
    memcpy(&v, (const unsigned char *)t->data + 4, 4);
    assert_true(v == 11.0f);
    gguf_free(&f);
}

static void test_every_truncation_fails(void **state)
{
    (void)state;
    gb g;
    valid(&g);
    size_t full = g.n;
    /* the last tensor ends 32 bytes before the padding end: cuts inside the
     * final padding are still complete files */
    for (size_t n = 0; n < full - 16; n++) {
        g.n = n;
        clens_error err = {0};
        if (parse(&g, &err) == 0) fail_msg("a file cut at %zu of %zu bytes parsed", n, full);
        assert_true(err.msg[0] != 0);
    }
}

/* Offsets of fields in the valid file, for targeted corruption. */
static size_t find(const gb *g, const char *s)
{
    for (size_t i = 0; i + strlen(s) <= g->n; i++)
        if (memcmp(g->b + i, s, strlen(s)) == 0) return i;
    fail_msg("no %s", s);
    return 0;
}

static void put_u32(gb *g, size_t at, uint32_t v) { for (int i = 0; i < 4; i++) g->b[at + i] = (unsigned char)(v >> 8 * i); }
static void put_u64(gb *g, size_t at, uint64_t v) { for (int i = 0; i < 8; i++) g->b[at + i] = (unsigned char)(v >> 8 * i); }

static void expect_fail(gb *g, const char *want)
{
    clens_error err = {0};
    int rc = parse(g, &err);
    if (rc == 0) fail_msg("hostile file parsed (expected '%s')", want);
    if (!strstr(err.msg, want)) fail_msg("message '%s' lacks '%s'", err.msg, want);
}

static void test_hostile_headers(void **state)
{
    (void)state;
    gb g;
    valid(&g); g.b[0] = 'X'; expect_fail(&g, "not a GGUF file");
    valid(&g); put_u32(&g, 4, 1); expect_fail(&g, "version 1");
    valid(&g); put_u32(&g, 4, 0x03000000u); expect_fail(&g, "big-endian");
    valid(&g); put_u64(&g, 8, UINT64_MAX); expect_fail(&g, "cannot fit");
    valid(&g); put_u64(&g, 16, (uint64_t)1 << 40); expect_fail(&g, "cannot fit");
    /* a key length beyond the file */
    valid(&g); put_u64(&g, 24, UINT64_MAX - 3); expect_fail(&g, "runs past the end");
    /* unknown value type */
    valid(&g); put_u32(&g, find(&g, "general.architecture") + 20, 77); expect_fail(&g, "unknown value type");
    /* array with a huge count */
    valid(&g); put_u64(&g, find(&g, "x.arr") + 5 + 8, (uint64_t)1 << 62); expect_fail(&g, "cannot fit");
    /* duplicate key */
    {   /* build explicitly: two identical keys */
        gb h = {{0}, 0};
        b_raw(&h, "GGUF", 4); b_u32(&h, 3); b_u64(&h, 0); b_u64(&h, 2);
        b_str(&h, "a"); b_u32(&h, GGUF_UINT8); h.b[h.n++] = 1;
        b_str(&h, "a"); b_u32(&h, GGUF_UINT8); h.b[h.n++] = 2;
        expect_fail(&h, "appears twice");
        /* bool must be 0/1 */
        h.n = 0;
        b_raw(&h, "GGUF", 4); b_u32(&h, 3); b_u64(&h, 0); b_u64(&h, 1);
        b_str(&h, "b"); b_u32(&h, GGUF_BOOL); h.b[h.n++] = 2;
        expect_fail(&h, "bool");
        /* alignment not a power of two */
        h.n = 0;
        b_raw(&h, "GGUF", 4); b_u32(&h, 3); b_u64(&h, 0); b_u64(&h, 1);
        b_str(&h, "general.alignment"); b_u32(&h, GGUF_UINT32); b_u32(&h, 24);
        expect_fail(&h, "power of two");
        /* arrays nested too deep */
        h.n = 0;
        b_raw(&h, "GGUF", 4); b_u32(&h, 3); b_u64(&h, 0); b_u64(&h, 1);
        b_str(&h, "n"); b_u32(&h, GGUF_ARRAY);
        for (int d = 0; d < 4; d++) { b_u32(&h, GGUF_ARRAY); b_u64(&h, 1); }
        b_u32(&h, GGUF_UINT8); b_u64(&h, 1); h.b[h.n++] = 0;
        for (int k = 0; k < 64; k++) h.b[h.n++] = 0;
        expect_fail(&h, "nested");
    }
}

static void test_hostile_tensors(void **state)
{
    (void)state;
    gb g;
    size_t t2;
#define T2 (t2 = find(&g, "direction.2") + 11)
    valid(&g); T2; put_u32(&g, t2, 0); expect_fail(&g, "dimensions");
    valid(&g); T2; put_u32(&g, t2, 5); expect_fail(&g, "dimensions");
    valid(&g); T2; put_u64(&g, t2 + 4, 0); expect_fail(&g, "zero or overflowing");
    valid(&g); T2; put_u64(&g, t2 + 4, UINT64_MAX); expect_fail(&g, "zero or overflowing");
    valid(&g); T2; put_u32(&g, t2 + 12, 99); expect_fail(&g, "unknown ggml type");
    valid(&g); T2; put_u32(&g, t2 + 12, 8); expect_fail(&g, "block");      /* Q8_0 needs 32 | ne0 */
    valid(&g); T2; put_u64(&g, t2 + 16, 33); expect_fail(&g, "alignment");
    valid(&g); T2; put_u64(&g, t2 + 16, UINT64_MAX - 31); expect_fail(&g, "run past");
    valid(&g); T2; put_u64(&g, t2 + 16, 64); expect_fail(&g, "run past");
    valid(&g); T2; put_u64(&g, t2 + 4, 1000); expect_fail(&g, "run past");
    valid(&g); T2; put_u64(&g, t2 + 16, 0); expect_fail(&g, "overlap");
    valid(&g); g.b[find(&g, "direction.2") + 10] = '1'; expect_fail(&g, "appears twice");
    valid(&g); g.b[find(&g, "direction.2") + 3] = 0; expect_fail(&g, "NUL");
#undef T2
}

/* ------------------------------------------------ control vectors */

static void test_cvec_roundtrip_bit_identical(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("gguf_roundtrip");
    char path[4200];
    snprintf(path, sizeof path, "%s/cv.gguf", d);
    enum { R = 5, C = 7 };
    float rows[R * C];
    uint32_t seed = 12345;
    for (int i = 0; i < R * C; i++) {
        seed = seed * 1664525u + 1013904223u;
        uint32_t bits = seed ^ (seed >> 7);
        memcpy(&rows[i], &bits, 4);
        /* any finite bit pattern (denormals included); -0 and NaN/Inf cannot
         * survive llama.cpp's summing load (0 + -0 = +0) */
        if (!isfinite(rows[i]) || (rows[i] == 0 && signbit(rows[i]))) rows[i] = 1.5f;
    }
    for (int c = 0; c < C; c++) rows[c] = 0;           /* row 0 is never written */
    for (int c = 0; c < C; c++) rows[3 * C + c] = 0;   /* a zero row is skipped */
    clens_error err = {0};
    assert_int_equal(clens_cvec_save(path, rows, R, C, "qwen2", &err), 0);
    gguf_file f;
    assert_int_equal(gguf_read_file(&f, path, &err), 0);
    assert_int_equal(f.version, 3);
    assert_string_equal(gguf_find_kv(&f, "general.architecture")->str, "controlvector");
    assert_string_equal(gguf_find_kv(&f, "controlvector.model_hint")->str, "qwen2");
    assert_int_equal(gguf_find_kv(&f, "controlvector.layer_count")->u, 3);
    assert_null(gguf_find_tensor(&f, "direction.3"));
    assert_null(gguf_find_tensor(&f, "direction.0"));
    gguf_free(&f);
    clens_cvec cv = {0};
    assert_int_equal(clens_cvec_load(&cv, path, 1.0f, &err), 0);
    assert_int_equal(cv.n_embd, C);
    assert_int_equal(cv.n_rows, R);
    assert_memory_equal(cv.data, rows, sizeof rows);
    /* a second file with scale -0.5 is summed as llama.cpp does */
    assert_int_equal(clens_cvec_load(&cv, path, -0.5f, &err), 0);
    for (int i = 0; i < R * C; i++) assert_true(cv.data[i] == rows[i] + -0.5f * rows[i]);
    /* layer range: [2, 3] only */
    float vecs[6 * C];
    unsigned char act[6];
    clens_steer s;
    assert_int_equal(clens_cvec_steer(&cv, 6, C, 2, 3, vecs, act, &s, &err), 0);
    assert_int_equal(act[0] + act[1] + act[4] + act[5], 0);
    assert_int_equal(act[2] + act[3], 2);
    assert_int_equal(s.point, CLENS_HOOK_RESID_POST);
    assert_int_equal(clens_cvec_steer(&cv, 6, C + 1, 0, 0, vecs, act, &s, &err), CLENS_E_ARG);
    clens_cvec_free(&cv);
}

static void write_gb(const char *path, const gb *g) { tu_write(path, g->b, g->n); }

static void test_cvec_names(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("gguf_names");
    char path[4200];
    snprintf(path, sizeof path, "%s/bad.gguf", d);
    gb g;
    clens_error err = {0};
    clens_cvec cv = {0};
    valid(&g); g.b[find(&g, "direction.2") + 10] = '0'; write_gb(path, &g);
    assert_int_equal(clens_cvec_load(&cv, path, 1, &err), CLENS_E_FORMAT);
    assert_non_null(strstr(err.msg, "direction.0"));
    valid(&g); g.b[find(&g, "direction.2") + 9] = '_'; write_gb(path, &g);
    assert_int_equal(clens_cvec_load(&cv, path, 1, &err), CLENS_E_FORMAT);
    valid(&g); put_u32(&g, find(&g, "direction.2") + 11 + 12, 1); write_gb(path, &g); /* F16 */
    assert_int_equal(clens_cvec_load(&cv, path, 1, &err), CLENS_E_FORMAT);
    assert_non_null(strstr(err.msg, "not F32"));
    valid(&g); write_gb(path, &g);
    assert_int_equal(clens_cvec_load(&cv, path, 2, &err), 0);
    assert_int_equal(cv.n_rows, 3);
    assert_true(cv.data[4 + 3] == 8.0f && cv.data[8 + 3] == 26.0f);
    clens_cvec_free(&cv);
}

static void test_steer_apply(void **state)
{
    (void)state;
    enum { C = 6 };
    float v[2 * C] = {0}, x[C] = {1, -2, 3, 0.5f, 7, -1}, y[C];
    for (int c = 0; c < C; c++) v[C + c] = (float)(c - 2);
    clens_steer s = {CLENS_STEER_ABLATE, CLENS_HOOK_RESID_POST, CLENS_STEER_POS_ALL, 1.0f, 2, v, NULL, NULL};
    memcpy(y, x, sizeof x);
    clens_steer_apply(&s, CLENS_HOOK_RESID_POST, 1, y, C);
    double dot = 0, vv = 0, xv = 0;
    for (int c = 0; c < C; c++) { dot += y[c] * v[C + c]; vv += v[C + c] * v[C + c]; xv += x[c] * v[C + c]; }
    assert_true(fabs(dot) < 1e-5);
    for (int c = 0; c < C; c++) assert_true(fabs(y[c] - (x[c] - xv / vv * v[C + c])) < 1e-6);
    memcpy(y, x, sizeof x);
    clens_steer_apply(&s, CLENS_HOOK_RESID_PRE, 1, y, C); /* other hook point: untouched */
    assert_memory_equal(x, y, sizeof x);
    /* mean-ablate: the component along u moves to m (alpha 1), or alpha of the way there */
    float means[2] = {0, 0.7f};
    clens_steer ma = s;
    ma.mode = CLENS_STEER_MEAN_ABLATE;
    ma.means = means;
    for (int k = 0; k < 2; k++) {
        ma.alpha = k ? 0.5f : 1.0f;
        memcpy(y, x, sizeof x);
        clens_steer_apply(&ma, CLENS_HOOK_RESID_POST, 1, y, C);
        double yu = 0;
        for (int c = 0; c < C; c++) yu += y[c] * v[C + c];
        yu /= sqrt(vv);
        double xu = xv / sqrt(vv), want = xu - ma.alpha * (xu - 0.7);
        assert_true(fabs(yu - want) < 1e-5);
        for (int c = 0; c < C; c++) /* only the component along u moves */
            assert_true(fabs(y[c] - (x[c] - (xu - want) * v[C + c] / sqrt(vv))) < 1e-5);
    }
    assert_string_equal(clens_steer_mode_name(CLENS_STEER_MEAN_ABLATE), "mean-ablate");
    clens_steer_mode pm;
    assert_int_equal(clens_steer_mode_parse("mean-ablate", &pm), CLENS_OK);
    assert_int_equal(pm, CLENS_STEER_MEAN_ABLATE);
    memcpy(y, x, sizeof x);
    s.mode = CLENS_STEER_ADD;
    s.alpha = 2.5f;
    clens_steer_apply(&s, CLENS_HOOK_RESID_POST, 1, y, C);
    for (int c = 0; c < C; c++) assert_true(y[c] == x[c] + 2.5f * v[C + c]);
    s.positions = CLENS_STEER_POS_LAST;
    assert_true(clens_steer_at(&s, 4, 5) && !clens_steer_at(&s, 3, 5) && !clens_steer_at(&s, 5, 5));
    s.positions = CLENS_STEER_POS_GENERATED;
    assert_true(clens_steer_at(&s, 5, 5) && !clens_steer_at(&s, 4, 5));
    s.positions = CLENS_STEER_POS_PROMPT;
    assert_true(clens_steer_at(&s, 4, 5) && !clens_steer_at(&s, 5, 5));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_parses),
        cmocka_unit_test(test_every_truncation_fails),
        cmocka_unit_test(test_hostile_headers),
        cmocka_unit_test(test_hostile_tensors),
        cmocka_unit_test(test_cvec_roundtrip_bit_identical),
        cmocka_unit_test(test_cvec_names),
        cmocka_unit_test(test_steer_apply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
