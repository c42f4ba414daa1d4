/*
 * test_formats.c: hostile and malformed inputs to the safetensors reader and
 * the config loader (each a one-line error naming the file and the problem),
 * architecture rules read from config.json, and the hard RoPE/YaRN numbers of
 * architectures.md §1.4 (rulings R7).
 */
#include "testutil.h"

#include <math.h>

#include "base/base.h"
#include "base/infile.h"
#include "formats/formats.h"
#include "model/model.h"

static char dir[4200];

static void write_st(const char *name, const char *header, size_t data_len)
{
    char path[8400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint64_t n = strlen(header);
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)(n >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(header, 1, n, f);
    for (size_t i = 0; i < data_len; i++) fputc(0, f);
    fclose(f);
}

static void expect_st_error(const char *name, int code, const char *needle)
{
    char path[8400];
    st_archive a = {0};
    clens_error err = {0};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = st_open_file(&a, path, &err);
    st_close(&a);
    if (rc != code || !strstr(err.msg, needle) || !strstr(err.msg, name))
        fail_msg("%s: got code %d, message '%s'; expected code %d with '%s'", name, rc, err.msg, code, needle);
}

static void safetensors_hostile(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("formats-st"));
    char path[8400];
    snprintf(path, sizeof path, "%s/short.safetensors", dir);
    tu_write(path, "\x05\0\0", 3);
    expect_st_error("short.safetensors", CLENS_E_FORMAT, "too short");
    /* header length beyond the file */
    snprintf(path, sizeof path, "%s/hlen.safetensors", dir);
    tu_write(path, "\xff\xff\0\0\0\0\0\0{}", 10);
    expect_st_error("hlen.safetensors", CLENS_E_FORMAT, "exceeds the file size");
    write_st("badjson.safetensors", "{\"a\": [1,", 0);
    expect_st_error("badjson.safetensors", CLENS_E_FORMAT, "not valid JSON");
    write_st("notobj.safetensors", "[1,2]", 0);
    expect_st_error("notobj.safetensors", CLENS_E_FORMAT, "not a JSON object");
    write_st("beyond.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8);
    expect_st_error("beyond.safetensors", CLENS_E_FORMAT, "beyond the data section");
    write_st("overlap.safetensors",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
             16);
    expect_st_error("overlap.safetensors", CLENS_E_FORMAT, "overlap");
    write_st("mismatch.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8);
    expect_st_error("mismatch.safetensors", CLENS_E_FORMAT, "needs 6 bytes");
    write_st("dtype.safetensors", "{\"w\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,2]}}", 8);
    expect_st_error("dtype.safetensors", CLENS_E_UNSUPPORTED, "unknown dtype");
    write_st("neg.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 8);
    expect_st_error("neg.safetensors", CLENS_E_FORMAT, "bad shape");
    write_st("rev.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8);
    expect_st_error("rev.safetensors", CLENS_E_FORMAT, "bad data_offsets");
    write_st("dup.safetensors",
             "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
             8);
    expect_st_error("dup.safetensors", CLENS_E_FORMAT, "not valid JSON");
    /* a valid file with metadata and an empty tensor */
    write_st("ok.safetensors",
             "{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
             "\"e\":{\"dtype\":\"BF16\",\"shape\":[0],\"data_offsets\":[16,16]}}",
             16);
    st_archive a = {0};
    clens_error err = {0};
    snprintf(path, sizeof path, "%s/ok.safetensors", dir);
    assert_int_equal(st_open_file(&a, path, &err), 0);
    const st_tensor *t = st_find(&a, "w");
    assert_non_null(t);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(st_numel(t), 4);
    assert_null(st_find(&a, "x"));
    st_close(&a);
}

/* Model folders: a generated model, then damaged copies of it. */
static void gen(const char *out, const char *args)
{
    static char cmd[32768];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tools/gen_model.py %s --quiet --out '%s'", args, out);
    assert_int_equal(system(cmd), 0);
}

static void expect_model_error(const char *path, int code, const char *needle)
{
    clens_model *m = NULL;
    clens_error err = {0};
    int rc = clens_model_open(&m, path, NULL, &err);
    clens_model_free(m);
    if (rc != code || !strstr(err.msg, needle))
        fail_msg("%s: got code %d, message '%s'; expected code %d with '%s'", path, rc, err.msg, code, needle);
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    static char cmd[32768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    assert_int_equal(system(cmd), 0);
}

static void model_folders(void **state)
{
    (void)state;
    char base[4200], m1[4300], m2[4300];
    snprintf(base, sizeof base, "%s", tu_tmpdir("formats-models"));
    snprintf(m1, sizeof m1, "%s/qwen2", base);
    gen(m1, "--arch qwen2 --dtype bf16 --shards 2");
    clens_model *m = NULL;
    clens_error err = {0};
    assert_int_equal(clens_model_open(&m, m1, NULL, &err), 0);
    assert_int_equal(clens_model_get_info(m)->dtype, CLENS_DTYPE_BF16);
    clens_model_free(m);
    /* missing file */
    expect_model_error("/nonexistent/model", CLENS_E_IO, "not a folder");
    /* unknown architecture */
    snprintf(m2, sizeof m2, "%s/gpt2", base);
    sh("cp -r '%s' '%s'", m1, m2);
    sh("sed -i 's/\"model_type\": \"qwen2\"/\"model_type\": \"gpt2\"/' '%s/config.json'", m2);
    expect_model_error(m2, CLENS_E_UNSUPPORTED, "model_type \"gpt2\" is not supported");
    /* malformed config.json */
    sh("printf '{\"model_type\": ' > '%s/config.json'", m2);
    expect_model_error(m2, CLENS_E_FORMAT, "config.json:1");
    /* unsupported rope type names the field */
    sh("rm -rf '%s' && cp -r '%s' '%s'", m2, m1, m2);
    sh("sed -i 's/\"rope_scaling\": null/\"rope_scaling\": {\"rope_type\": \"longrope\", \"factor\": 2.0}/' '%s/config.json'", m2);
    expect_model_error(m2, CLENS_E_UNSUPPORTED, "rope_scaling.rope_type \"longrope\"");
    /* shape vs config */
    sh("rm -rf '%s' && cp -r '%s' '%s'", m2, m1, m2);
    sh("sed -i 's/\"intermediate_size\": [0-9]*/\"intermediate_size\": 8/' '%s/config.json'", m2);
    expect_model_error(m2, CLENS_E_FORMAT, "expected [8, 64] from config.json");
    /* index naming a tensor that no shard has */
    sh("rm -rf '%s' && cp -r '%s' '%s'", m2, m1, m2);
    sh("sed -i 's/\"weight_map\": {/\"weight_map\": {\"model.extra.weight\": \"model-00001-of-00002.safetensors\", /' "
       "'%s/model.safetensors.index.json'", m2);
    expect_model_error(m2, CLENS_E_FORMAT, "'model.extra.weight' listed in weight_map is missing");
    /* missing tensor: a single-file model without its final norm */
    snprintf(m2, sizeof m2, "%s/olmo2", base);
    gen(m2, "--arch olmo2 --dtype f32");
    sh("/usr/bin/python3 -c \"import json,struct,sys;p=sys.argv[1]+'/model.safetensors';b=open(p,'rb').read();"
       "n=struct.unpack('<Q',b[:8])[0];h=json.loads(b[8:8+n]);h.pop('model.norm.weight');"
       "j=json.dumps(h).encode();j+=b' '*((8-len(j)%%8)%%8);open(p,'wb').write(struct.pack('<Q',len(j))+j+b[8+n:])\" '%s'", m2);
    expect_model_error(m2, CLENS_E_FORMAT, "tensor 'model.norm.weight' (architecture olmo2) is missing");
    /* truncated weights file */
    sh("truncate -s 2000 '%s/model.safetensors'", m2);
    expect_model_error(m2, CLENS_E_FORMAT, "model.safetensors");
}

static void config_rules(void **state)
{
    (void)state;
    model_config c;
    clens_error err = {0};
    /* Qwen2 with a window but use_sliding_window false: no sliding layer (R7). */
    const char *q = "{\"model_type\":\"qwen2\",\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":4,"
                    "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"vocab_size\":100,\"sliding_window\":4096,"
                    "\"use_sliding_window\":false,\"max_window_layers\":2,\"some_new_key\":1}";
    assert_int_equal(config_parse(&c, q, strlen(q), "q.json", &err), 0);
    for (int i = 0; i < 4; i++) assert_int_equal(c.layer_sliding[i], 0);
    assert_int_equal(c.attn_bias, 1); /* Qwen2 always has q/k/v biases */
    assert_string_equal(c.unknown_keys[0], "some_new_key");
    config_free(&c);
    /* ... and with use_sliding_window true: layers >= max_window_layers slide. */
    const char *q2 = "{\"model_type\":\"qwen2\",\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":4,"
                     "\"num_attention_heads\":4,\"vocab_size\":100,\"sliding_window\":8,"
                     "\"use_sliding_window\":true,\"max_window_layers\":2}";
    assert_int_equal(config_parse(&c, q2, strlen(q2), "q2.json", &err), 0);
    assert_int_equal(c.layer_sliding[1], 0);
    assert_int_equal(c.layer_sliding[2], 1);
    assert_int_equal(c.window, 8);
    config_free(&c);
    /* OLMo-3 without layer_types: full attention on every 4th layer. */
    const char *o = "{\"model_type\":\"olmo3\",\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":8,"
                    "\"num_attention_heads\":4,\"vocab_size\":100,\"sliding_window\":16,\"head_dim\":null}";
    assert_int_equal(config_parse(&c, o, strlen(o), "o.json", &err), 0);
    for (int i = 0; i < 8; i++) assert_int_equal(c.layer_sliding[i], (i + 1) % 4 != 0);
    assert_int_equal(c.head_dim, 16);
    config_free(&c);
    const char *bad = "{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":2,"
                      "\"num_attention_heads\":4,\"num_key_value_heads\":3,\"vocab_size\":100}";
    assert_int_equal(config_parse(&c, bad, strlen(bad), "bad.json", &err), CLENS_E_FORMAT);
    assert_non_null(strstr(err.msg, "not a multiple of num_key_value_heads"));
    const char *act = "{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":2,"
                      "\"num_attention_heads\":4,\"vocab_size\":100,\"hidden_act\":\"gelu\"}";
    assert_int_equal(config_parse(&c, act, strlen(act), "act.json", &err), CLENS_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "hidden_act"));
    const char *miss = "{\"model_type\":\"llama\",\"hidden_size\":64}";
    assert_int_equal(config_parse(&c, miss, strlen(miss), "miss.json", &err), CLENS_E_FORMAT);
    assert_non_null(strstr(err.msg, "\"intermediate_size\" is missing"));
}

static void yarn_numbers(void **state)
{
    (void)state;
    /* OLMo-3 7B: D = 128, theta 5e5, factor 8, original 8192, beta 32/1. */
    rope_config rc = {ROPE_YARN, 500000.0, 8.0, 1, 4, 8192, 32, 1, -1, 0, 0, 1};
    rope_config def = rc;
    def.type = ROPE_DEFAULT;
    rope_table y, d;
    clens_error err = {0};
    assert_int_equal(rope_init(&y, &rc, 128, 65536, &err), 0);
    assert_int_equal(rope_init(&d, &def, 128, 65536, &err), 0);
    assert_true(fabs(y.attn_factor - 1.2079441541679836) < 1e-7);
    assert_true(fabs((double)y.attn_factor * y.attn_factor - 1.4591290795886054) < 1e-6);
    for (int j = 0; j <= 18; j++) assert_true(y.inv_freq[j] == d.inv_freq[j]);
    for (int j = 35; j < 64; j++) assert_true(fabs(y.inv_freq[j] / d.inv_freq[j] - 0.125) < 1e-6);
    assert_true(fabs(y.inv_freq[19] / d.inv_freq[19] - 0.9485) < 1e-4);
    assert_true(fabs(y.inv_freq[26] / d.inv_freq[26] - 0.5882) < 1e-4);
    assert_true(fabs(y.inv_freq[34] / d.inv_freq[34] - 0.1765) < 1e-4);
    rope_free(&y);
    rope_free(&d);
    /* rotate_half pairing: dimension i pairs with i + D/2 */
    float q[4] = {1, 0, 0, 0}, k[4] = {0, 0, 1, 0};
    rope_table t = {(float[]){1.0f, 0.0f}, 1.0f};
    float cs[4];
    rope_apply(&t, q, 1, k, 1, 4, 1, cs);
    assert_true(fabs(q[0] - cosf(1)) < 1e-7 && fabs(q[2] - sinf(1)) < 1e-7 && q[1] == 0 && q[3] == 0);
    assert_true(fabs(k[0] + sinf(1)) < 1e-7 && fabs(k[2] - cosf(1)) < 1e-7);
}

static void hook_names(void **state)
{
    (void)state;
    char buf[64];
    clens_hook_point p;
    int l;
    assert_string_equal(clens_hook_name(CLENS_HOOK_RESID_PRE, 3, buf, sizeof buf), "blocks.3.hook_resid_pre");
    assert_string_equal(clens_hook_name(CLENS_HOOK_ATTN_Z, 0, buf, sizeof buf), "blocks.0.attn.hook_z");
    assert_string_equal(clens_hook_name(CLENS_HOOK_LN_FINAL, -1, buf, sizeof buf), "ln_final.hook_normalized");
    assert_int_equal(clens_hook_parse("blocks.12.hook_mlp_out", &p, &l, NULL), 0);
    assert_int_equal(p, CLENS_HOOK_MLP_OUT);
    assert_int_equal(l, 12);
    assert_int_equal(clens_hook_parse("hook_embed", &p, &l, NULL), 0);
    assert_int_equal(l, -1);
    assert_int_equal(clens_hook_parse("blocks.x.hook_mlp_out", &p, &l, NULL), CLENS_E_ARG);
    assert_int_equal(clens_hook_parse("blocks.1.hook_nothing", &p, &l, NULL), CLENS_E_ARG);
}

static void npy_and_cache(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("formats-npy");
    char path[8400];
    clens_error err = {0};
    float v[6] = {1, 2, 3, 4, 5, 6};
    int64_t shape[2] = {2, 3};
    snprintf(path, sizeof path, "%s/a.npy", d);
    assert_int_equal(npy_write_f32(path, v, shape, 2, &err), 0);
    char *data;
    size_t n;
    assert_int_equal(clens_read_file(path, &data, &n, &err), 0);
    assert_memory_equal(data, "\x93NUMPY\x01\x00", 8);
    size_t hl = (unsigned char)data[8] | (size_t)(unsigned char)data[9] << 8;
    assert_int_equal((10 + hl) % 64, 0);
    assert_non_null(strstr(data + 10, "'shape': (2, 3)"));
    assert_memory_equal(data + 10 + hl, v, sizeof v);
    free(data);
    /* HF cache: org/name@main resolved through refs/main */
    static char cmd[32768];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/hub/models--org--m/snapshots/abc123' '%s/hub/models--org--m/refs' && "
             "printf abc123 > '%s/hub/models--org--m/refs/main'", d, d, d);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "%s", d);
    setenv("HF_HOME", path, 1);
    char *out;
    assert_int_equal(hf_resolve_model("org/m", &out, &err), 0);
    assert_non_null(strstr(out, "models--org--m/snapshots/abc123"));
    free(out);
    assert_int_equal(hf_resolve_model("org/m@abc123", &out, &err), 0);
    free(out);
    assert_int_equal(hf_resolve_model("org/m@v2", &out, &err), CLENS_E_IO);
    assert_non_null(strstr(err.msg, "revision 'v2'"));
    assert_int_equal(hf_resolve_model("org/other", &out, &err), CLENS_E_IO);
    unsetenv("HF_HOME");
}

/* Issue 23 items 6 and 9: inputs are opened only when they are regular files,
 * without blocking on a FIFO; a folder is named as one. */
static void input_files(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("formats-infile");
    char fifo[4200], reg[4200], sub[4200], cmd[9000];
    snprintf(fifo, sizeof fifo, "%s/fifo", d);
    snprintf(reg, sizeof reg, "%s/reg.json", d);
    snprintf(sub, sizeof sub, "%s/config.json", d);
    snprintf(cmd, sizeof cmd, "mkfifo '%s' && mkdir '%s'", fifo, sub);
    assert_int_equal(system(cmd), 0);
    tu_write(reg, "{\"a\": 1}", 8);
    char *data = NULL;
    size_t n = 0;
    clens_error err = {0};
    assert_int_equal(clens_read_file(fifo, &data, &n, &err), CLENS_E_IO);
    assert_non_null(strstr(err.msg, "fifo: is a FIFO (named pipe), not a regular file"));
    assert_int_equal(clens_read_file(sub, &data, &n, &err), CLENS_E_IO);
    assert_non_null(strstr(err.msg, "config.json: is a folder, not a file"));
    assert_int_equal(clens_read_file("/dev/zero", &data, &n, &err), CLENS_E_IO);
    assert_non_null(strstr(err.msg, "character device"));
    assert_int_equal(clens_read_file(reg, &data, &n, &err), 0);
    assert_int_equal(n, 8);
    free(data);
    json_t *j = NULL;
    json_error_t je;
    assert_int_equal(clens_json_load_regular(fifo, 0, &j, &je, &err), CLENS_E_IO);
    assert_null(j);
    assert_int_equal(clens_json_load_regular(reg, 0, &j, &je, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "a")), 1);
    json_decref(j);
    tu_write(reg, "{\"a\": ", 6);
    assert_int_equal(clens_json_load_regular(reg, 0, &j, &je, &err), CLENS_E_FORMAT);
    assert_non_null(strstr(err.msg, "reg.json:1:"));
    st_archive a = {0};
    assert_int_equal(st_open_file(&a, fifo, &err), CLENS_E_IO);
    assert_non_null(strstr(err.msg, "is a FIFO"));
    st_close(&a);
    /* a shape whose element count wraps 2^64 to 0 is too large, not "needs 0 bytes" */
    snprintf(dir, sizeof dir, "%s", d);
    write_st("wrap.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,0]}}", 0);
    expect_st_error("wrap.safetensors", CLENS_E_FORMAT, "more than 2^40 elements");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(safetensors_hostile),
        cmocka_unit_test(model_folders),
        cmocka_unit_test(config_rules),
        cmocka_unit_test(yarn_numbers),
        cmocka_unit_test(hook_names),
        cmocka_unit_test(npy_and_cache),
        cmocka_unit_test(input_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
