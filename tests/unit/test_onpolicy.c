/*
 * test_onpolicy.c: the on-policy pair builder as a library (also under
 * ASan/UBSan): a Qwen2 model with a token chain planted in its weights
 * (tools/plant_chain.py) writes "12*5=60 apples\nSo total" after the raw
 * prompt; the pairs inject 61; a generations file cut inside its last line
 * resumes to the same pairs; other settings are refused; --limit stops early.
 */
#include "testutil.h"

#include <unistd.h>

#include "clens.h"

static char dir[4200], model[4400], data[4400], gens[4400];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("onpolicy"));
    snprintf(model, sizeof model, "%s/planted", dir);
    snprintf(data, sizeof data, "%s/data.jsonl", dir);
    snprintf(gens, sizeof gens, "%s/gens.jsonl", dir);
    static char cmd[32768];
    const char *q = tu_shared();
    /* chain: ":" then " 12*5=60 apples\nSo total" (Qwen2.5 ids), then <|endoftext|> */
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 tools/gen_model.py --arch qwen2 --dtype f32 --layers 1 --hidden 32 "
             "--vocab 151936 --untied --seed 5 --quiet --out '%s' && "
             "cp %s/tokenizers/qwen2.5/vocab.json %s/tokenizers/qwen2.5/merges.txt "
             "%s/tokenizers/qwen2.5/tokenizer_config.json '%s/' && "
             "echo '{\"eos_token_id\": [151643, 151645]}' > '%s/generation_config.json' && "
             "/usr/bin/python3 tools/plant_chain.py '%s' "
             "--chain 25,220,16,17,9,20,28,21,15,40676,198,4416,2790,151643",
             model, q, q, q, model, model, model);
    if (system(cmd) != 0) return -1;
    const char *rows =
        "{\"id\": \"a\", \"problem\": \"P1\", \"solution\": \"$\\\\boxed{67}$\"}\n"
        "{\"id\": \"b\", \"problem\": \"P2\", \"solution\": \"$\\\\boxed{60}$\"}\n"
        "\n"
        "{\"id\": \"c\", \"problem\": \"P3\", \"solution\": \"$\\\\boxed{4}$\"}\n";
    tu_write(data, rows, strlen(rows));
    return 0;
}

typedef struct run_out {
    clens_pair *pairs;
    size_t n;
    clens_pairs_stats st;
    long generated;
} run_out;

static void on_progress(void *user, long done, long total, long generated, long pairs)
{
    (void)done; (void)total; (void)pairs;
    ((run_out *)user)->generated = generated;
}

static int run(clens_model *m, const clens_tokenizer *tok, int max_new, long limit, run_out *o,
               clens_error *err)
{
    clens_pairs_params pp = clens_pairs_default_params();
    pp.data_path = data;
    pp.limit = limit;
    clens_onpolicy_params op = clens_onpolicy_default_params();
    op.generations_path = gens;
    op.batch = 2;
    op.max_new_tokens = max_new;
    op.progress = on_progress;
    op.progress_user = o;
    memset(o, 0, sizeof *o);
    return clens_pairs_build_on_policy(m, tok, NULL, &pp, &op, &o->pairs, &o->n, &o->st, err);
}

static void on_policy(void **state)
{
    (void)state;
    clens_model *m = NULL;
    clens_tokenizer *tok = NULL;
    clens_error err = {0};
    assert_int_equal(clens_model_open(&m, model, NULL, &err), 0);
    assert_int_equal(clens_tokenizer_open(&tok, model, &err), 0);
    int32_t *stop;
    int nstop;
    assert_int_equal(clens_model_stop_ids(m, &stop, &nstop), CLENS_OK);
    assert_int_equal(nstop, 2);
    assert_int_equal(stop[0], 151643);
    assert_int_equal(stop[1], 151645);
    free(stop);

    run_out a, b;
    remove(gens);
    if (run(m, tok, 64, 0, &a, &err)) fail_msg("%s", err.msg);
    assert_int_equal(a.generated, 3);
    assert_int_equal(a.st.problems, 3);
    assert_int_equal(a.st.drops[13], 1); /* b: the reference answer is 60 (final_answer) */
    assert_string_equal(clens_pairs_reason_name(13), "final_answer");
    assert_int_equal(a.n, 2);
    assert_string_equal(a.pairs[0].id, "a");
    assert_string_equal(a.pairs[1].id, "c");
    for (size_t i = 0; i < a.n; i++) {
        assert_string_equal(a.pairs[i].clean_prefix, "12*5=60 apples\n");
        assert_string_equal(a.pairs[i].corrupted_prefix, "12*5=59 apples\n"); /* plus-minus-one: -1 for ids a and c at seed 0 */
        assert_string_equal(a.pairs[i].solution_source, "on-policy");
        assert_non_null(strstr(a.pairs[i].generator, "\"stopped\":true"));
        assert_int_equal(a.pairs[i].candidate_index, (int64_t)i);
        assert_int_equal(a.pairs[i].line, i == 0 ? 1 : 4);
    }

    /* cut inside the last line: one text is generated again, same pairs */
    struct stat sb;
    assert_int_equal(stat(gens, &sb), 0);
    assert_int_equal(truncate(gens, sb.st_size - 7), 0);
    if (run(m, tok, 64, 0, &b, &err)) fail_msg("%s", err.msg);
    assert_int_equal(b.generated, 1);
    assert_int_equal(b.n, a.n);
    for (size_t i = 0; i < a.n; i++) {
        char *x = NULL, *y = NULL;
        assert_int_equal(clens_pair_to_json(&a.pairs[i], &x, NULL), CLENS_OK);
        assert_int_equal(clens_pair_to_json(&b.pairs[i], &y, NULL), CLENS_OK);
        assert_string_equal(x, y);
        free(x);
        free(y);
    }
    clens_pairs_free(b.pairs, b.n);

    /* other settings: refused, file untouched */
    assert_int_equal(stat(gens, &sb), 0);
    off_t size = sb.st_size;
    assert_int_not_equal(run(m, tok, 30, 0, &b, &err), 0);
    assert_non_null(strstr(err.msg, "other settings"));
    assert_int_equal(stat(gens, &sb), 0);
    assert_int_equal(sb.st_size, size);

    /* --limit 1 with a fresh file: only the first batch is generated */
    remove(gens);
    if (run(m, tok, 64, 1, &b, &err)) fail_msg("%s", err.msg);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.generated, 2);
    clens_pairs_free(b.pairs, b.n);

    clens_pairs_free(a.pairs, a.n);
    clens_tokenizer_free(tok);
    clens_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(on_policy)};
    return cmocka_run_group_tests(tests, setup, NULL);
}
