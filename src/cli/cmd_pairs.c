/*
 * cmd_pairs.c: `clens pairs`: builds (clean, corrupted) prompt pairs from a
 * MATH or GSM8K JSONL file and writes pairs.jsonl (rulings R5, R6). The rules
 * are documented at the top of src/data/pairs.c.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/infile.h"
#include "cli.h"
#include "interp/prompts.h"

/* --candidates: one JSON line per candidate, collected in memory. */
typedef struct cand_sink {
    char *buf;
    size_t n, cap;
    int bad;
} cand_sink;

/* Moves i back to the start of a UTF-8 code point. */
static size_t cp_start(const char *s, size_t i)
{
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    return i;
}

static void on_candidate(void *user, const clens_pairs_candidate *c)
{
    cand_sink *k = user;
    size_t s = (size_t)c->start, e = (size_t)c->end;
    size_t a = cp_start(c->text, s > 60 ? s - 60 : 0);
    size_t b = e + 60 < c->text_len ? cp_start(c->text, e + 60) : c->text_len;
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(c->id));
    json_object_set_new(o, "line", json_integer(c->line));
    json_object_set_new(o, "reason", json_string(clens_pairs_reason_name(c->reason)));
    json_object_set_new(o, "expr", json_stringn(c->expr, c->expr_len));
    json_object_set_new(o, "number", json_stringn(c->text + s, e - s));
    json_object_set_new(o, "negative", json_boolean(c->negative));
    json_object_set_new(o, "lhs_value", json_string(c->lhs_value));
    json_object_set_new(o, "start", json_integer(c->start));
    json_object_set_new(o, "before", json_stringn(c->text + a, s - a));
    json_object_set_new(o, "after", json_stringn(c->text + e, b - e));
    char *line = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!line) { k->bad = 1; return; }
    size_t n = strlen(line);
    if (k->n + n + 2 > k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 1 << 16;
        while (cap < k->n + n + 2) cap *= 2;
        char *d = realloc(k->buf, cap);
        if (!d) { k->bad = 1; free(line); return; }
        k->buf = d;
        k->cap = cap;
    }
    memcpy(k->buf + k->n, line, n);
    k->buf[k->n + n] = '\n';
    k->n += n + 1;
    free(line);
}

typedef struct progress_state { int quiet; double t0; } progress_state;

static void progress(void *user, long done, long total, long generated, long pairs)
{
    const progress_state *ps = user;
    if (ps->quiet) return;
    double el = clens_now() - ps->t0;
    fprintf(stderr, "pairs: %ld/%ld problems, %ld solutions generated this run, %ld pairs, %.0f s",
            done, total, generated, pairs, el);
    /* at this run's rate, if every remaining problem needs a text (--limit may stop sooner) */
    if (generated > 0 && done < total)
        fprintf(stderr, ", at most %.0f s to go", el / generated * (double)(total - done));
    fprintf(stderr, "\n");
}

/* Opens the model, its tokenizer and (optional) template, then builds. */
static int build_on_policy(const char *model, const char *mm, int threads,
                           const clens_pairs_params *p, const clens_onpolicy_params *op,
                           clens_pair **pairs, size_t *n, clens_pairs_stats *st)
{
    clens_model *m = NULL;
    clens_tokenizer *tok = NULL;
    clens_chat_template *tmpl = NULL;
    clens_error err = {0};
    int rc = cli_open_model("pairs", model, mm, threads, &m);
    if (rc) return rc;
    const char *dir = clens_model_get_info(m)->path;
    if (clens_tokenizer_open(&tok, dir, &err)) {
        rc = cli_fail("pairs", &err);
    } else if (op->prompt_chat && clens_chat_template_open(&tmpl, dir, &err)) {
        rc = cli_fail("pairs", &err);
    } else {
        clens_onpolicy_params o = *op;
        if (!o.model_label) o.model_label = model;
        if (clens_pairs_build_on_policy(m, tok, tmpl, p, &o, pairs, n, st, &err))
            rc = cli_fail("pairs", &err);
    }
    clens_chat_template_free(tmpl);
    clens_tokenizer_free(tok);
    clens_model_free(m);
    return rc;
}

/* --model: the token-level check patch will run (R6), early, as a report. */
static int token_check(const char *model, const char *prompt, const clens_pair *pairs, size_t n,
                       int quiet)
{
    clens_tokenizer *tok = NULL;
    clens_chat_template *tmpl = NULL;
    clens_error err = {0};
    clens_prompt_mode mode;
    if (clens_prompt_mode_parse(prompt, &mode)) return cli_usage_error("pairs", "--prompt expects chat or raw, got '%s'", prompt);
    if (clens_tokenizer_open(&tok, model, &err)) return cli_fail("pairs", &err);
    if (mode == CLENS_PROMPT_CHAT && clens_chat_template_open(&tmpl, model, &err)) {
        clens_tokenizer_free(tok);
        return cli_fail("pairs", &err);
    }
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s/config.json", model);
    json_t *c = NULL;
    json_error_t je;
    clens_error cerr = {0};
    /* a regular file or nothing (a FIFO named config.json would block json_load_file) */
    if (clens_json_load_regular(cfg, 0, &c, &je, &cerr)) c = NULL;
    long max_len = (long)json_integer_value(json_object_get(c, "max_position_embeddings"));
    json_decref(c);
    const char *names[] = {"length_mismatch", "final_token_mismatch", "too_long", "identical"};
    long counts[4] = {0}, ok = 0, tokens = 0;
    int rc = CLI_EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        const char *reason;
        size_t nt = 0;
        if (clens_pair_token_check(tok, tmpl, mode, &pairs[i], max_len, &reason, NULL, NULL, &nt, &err)) {
            rc = cli_errorf("pairs", CLI_EXIT_ERR, "pair %zu (%s): %s", i, pairs[i].id, err.msg);
            break;
        }
        if (!reason) { ok++; tokens += (long)nt; continue; }
        for (int k = 0; k < 4; k++) counts[k] += strcmp(reason, names[k]) == 0;
    }
    if (!rc && !quiet) {
        printf("  token check with %s (--prompt %s): %ld of %zu pairs usable", model, prompt, ok, n);
        if (ok) printf(", %.1f tokens on average", (double)tokens / (double)ok);
        printf("\n");
        for (int k = 0; k < 4; k++)
            if (counts[k]) printf("    %-20s %ld\n", names[k], counts[k]);
    }
    clens_chat_template_free(tmpl);
    clens_tokenizer_free(tok);
    return rc;
}

/* --fidelity seed: the "pairs." rows of the seed preset (clens_fidelity_seed_choices,
 * the one table every --fidelity reads) plus "prompt" (the early token check's
 * rendering). A flag given with another value is refused, naming it. */
static int apply_seed_fidelity(const char *(*given)[2], int n_given, const char *model,
                               clens_pairs_params *p, clens_onpolicy_params *op, const char **check_prompt)
{
    int n = 0;
    const clens_fidelity_choice *ch = clens_fidelity_seed_choices(&n);
    clens_error err = {0};
    if (!model)
        return cli_usage_error("pairs", "--fidelity seed builds on-policy pairs (the seed's source of text): "
                                        "give --on-policy MODEL");
    for (int k = 0; k < n; k++) {
        const char *f = ch[k].flag, *want = ch[k].value;
        int pairs_row = strncmp(ch[k].key, "pairs.", 6) == 0;
        if (!pairs_row && strcmp(ch[k].key, "prompt") != 0) continue;
        if (strcmp(ch[k].key, "pairs.mode") == 0) continue; /* --on-policy MODEL, checked above */
        for (int g = 0; g < n_given; g++) {
            if (strcmp(given[g][0], f) != 0) continue;
            int same = strcmp(given[g][1], want) == 0;
            if (!same && strcmp(f, "--max-new") == 0) same = strtol(given[g][1], NULL, 10) == strtol(want, NULL, 10);
            if (!same)
                return cli_usage_error("pairs", "--fidelity seed sets %s %s, but %s %s was given (drop the flag or use "
                                                "--fidelity clens-default)", f, want, f, given[g][1]);
        }
        if (strcmp(f, "--gen-prompt") == 0) op->prompt_chat = strcmp(want, "chat") == 0;
        else if (strcmp(f, "--max-new") == 0) op->max_new_tokens = (int)strtol(want, NULL, 10);
        else if (strcmp(f, "--site") == 0 && clens_pairs_parse_site(p, want, &err)) return cli_fail("pairs", &err);
        else if (strcmp(f, "--corrupt") == 0 && clens_pairs_parse_corrupt(p, want, &err)) return cli_fail("pairs", &err);
        else if (strcmp(f, "--cut") == 0 && clens_pairs_parse_cut(p, want, &err)) return cli_fail("pairs", &err);
        else if (strcmp(f, "--prompt") == 0) *check_prompt = want;
    }
    return CLI_EXIT_OK;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: clens pairs --data FILE --format math|gsm8k --out FILE [options]\n"
        "       clens pairs --data FILE --format math|gsm8k --out FILE --on-policy MODEL [options]\n"
        "\n"
        "Builds (clean, corrupted) prompt pairs: the same solution text cut at the\n"
        "same boundary, except that one verified intermediate arithmetic result\n"
        "(\"lhs = n\", lhs numeric and equal to n, not the final answer) is wrong in\n"
        "the corrupted prompt. One pair per problem with a site, in file order.\n"
        "Pairs are model-independent text (no chat template, no tokenization).\n"
        "\n"
        "options:\n"
        "  --data FILE      (path, required) JSONL dataset: MATH rows {id, problem, solution}\n"
        "                   or GSM8K rows {question, answer}.\n"
        "                   e.g. --data ../shared/data/math_algebra/test.jsonl\n"
        "  --format F       (math|gsm8k, required) e.g. --format gsm8k\n"
        "  --out FILE       (path, required) pairs.jsonl, written atomically. e.g. --out pairs.jsonl\n"
        "  --seed S         (integer 0..2^63-1, default 0) seeds the choice of the site in\n"
        "                   each problem; the same seed gives a byte-identical file. e.g. --seed 7\n"
        "  --limit N        (integer >= 0, default 0 = all) stop after N pairs. e.g. --limit 50\n"
        "  --cut C          (line|chars:N|chars-raw:N, default line) where both prompts end:\n"
        "                   line = after the number through the end of its line or sentence\n"
        "                   when only prose follows the number there, else right after the\n"
        "                   number and its closing delimiter / punctuation (docs/pairs.md);\n"
        "                   chars:N = N characters after the start of the number, both\n"
        "                   prompts at the same text boundary; chars-raw:N = the seed's, each\n"
        "                   prompt N characters after the number's start in its own text.\n"
        "                   e.g. --cut chars:20\n"
        "  --corrupt M      (plus-minus-one|plus-minus-sig|last-digit|plus-one, default\n"
        "                   plus-minus-one) plus-minus-one: +1 or -1 in the last place,\n"
        "                   drawn from --seed, digit count kept (3000 -> 3001 or 2999);\n"
        "                   plus-minus-sig: the same in the last nonzero digit, so round\n"
        "                   values stay round (3000 -> 2000 or 4000); last-digit: last digit\n"
        "                   +1 (9 -> 8); plus-one: the seed's number+1. e.g. --corrupt plus-one\n"
        "  --site M         (random|last|seed, default random) which of a problem's sites:\n"
        "                   seeded choice, or the last one; seed = the seed's rule: the\n"
        "                   last \"= n\" match (\"=\", spaces, optional \"$\", \\d+(.\\d+)?)\n"
        "                   verified or not (\"site_verified\" records the verdict).\n"
        "                   Fidelity: --site seed --corrupt plus-one --cut chars-raw:20\n"
        "  --candidates F   (path, default none) also write every candidate \"lhs = n\" with\n"
        "                   its verdict (reason, expr, number, context) as JSONL, for\n"
        "                   auditing. e.g. --candidates candidates.jsonl\n"
        "\n"
        "on-policy mode (the seed's source of text): the model under test writes its\n"
        "own greedy solution to each problem, and the error is injected into it\n"
        "(prose steps such as \"16 - 3 - 4 = 9\" count as well as LaTeX ones; sites\n"
        "equal to the model's or the dataset's final answer are excluded):\n"
        "  --on-policy M    (model folder or org/name) generate with this model.\n"
        "                   e.g. --on-policy models/DeepSeek-R1-Distill-Qwen-7B\n"
        "  --generations F  (path, default OUT.generations.jsonl) the generated texts,\n"
        "                   appended and fsync'd per batch; a rerun reuses them and\n"
        "                   generates only what is missing (other settings: refused).\n"
        "  --max-new N      (integer 1..100000, default 512) new tokens per solution\n"
        "  --batch N        (integer 1..4096, default 16) problems generated together\n"
        "  --pool N         (integer >= 0, default 0 = all) at most N problems, in file order\n"
        "                   (the seed used 5 x the pairs wanted). e.g. --pool 250\n"
        "  --gen-prompt P   (raw|chat, default raw) raw: \"Solve this math problem step by\n"
        "                   step:\\n\\n{problem}\\n\\nSolution:\" (the seed's); chat: the model's\n"
        "                   chat template with its generation prompt\n"
        "  --matmul K       (default|portable|bf16, default default) kernel for generation\n"
        "  --threads N      (integer >= 0, default 0 = all cores)\n"
        "\n"
        "early token check (optional; `clens patch` runs the same check and drops):\n"
        "  --model M        (model folder) render each pair for this model's tokenizer and\n"
        "                   report how many have equal lengths and the same final token\n"
        "  --prompt P       (chat|raw, default chat) the rendering, as in `clens patch`\n"
        "\n"
        "fidelity preset:\n"
        "  --fidelity F     (seed|clens-default, default clens-default) seed sets every pair\n"
        "                   choice of the seed at once (docs/study.md, \"Fidelity\"): on-policy\n"
        "                   greedy solutions (--on-policy MODEL required) with --gen-prompt raw\n"
        "                   --max-new 512, --site seed --corrupt plus-one --cut chars-raw:20,\n"
        "                   and --prompt raw for --model; a flag that says otherwise is refused\n"
        "                   (exit 2). The file equals the one the explicit flags write, byte for\n"
        "                   byte; the summary's \"mode\" line says which mode produced it.\n"
        "                   e.g. --fidelity seed --on-policy models/DeepSeek-R1-Distill-Qwen-7B\n"
        "  --quiet          (flag) print nothing on success\n"
        "  -h, --help       this help\n"
        "\n"
        "Prints a summary: problems read, candidates, sites, pairs written, drops by reason\n"
        "(docs/pairs.md lists them).\n"
        "--out and --candidates must be new paths or regular files, and not the same file\n"
        "as --data, the generations file or each other (a device, FIFO or link is refused:\n"
        "outputs are written as a temp file renamed over the path).\n"
        "exit codes: 0 ok (also when no problem gives a pair: 0 pairs are written and a\n"
        "warning is printed), 1 error (a data file that is missing, a directory, empty or\n"
        "malformed, naming the line; an output refused; I/O), 2 usage error\n");
}

int cmd_pairs(int argc, char **argv)
{
    const char *cmd = "pairs", *out = NULL, *fmt = NULL, *cands = NULL;
    cand_sink sink = {0};
    clens_pairs_params p = clens_pairs_default_params();
    clens_error err = {0};
    clens_onpolicy_params op = clens_onpolicy_default_params();
    const char *model = NULL, *mm = NULL, *check_model = NULL, *check_prompt = "chat";
    long threads = 0;
    int quiet = 0;
    const char *fidelity = NULL;
    const char *given[64][2]; /* (flag, value) as given, for the fidelity check */
    int n_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) { usage(stdout); return CLI_EXIT_OK; }
        if (strcmp(a, "--quiet") == 0) { quiet = 1; continue; }
        const char *flags[] = {"--data", "--format", "--out", "--seed", "--limit", "--cut",
                               "--corrupt", "--site", "--candidates", "--on-policy",
                               "--generations", "--max-new", "--batch", "--pool", "--gen-prompt",
                               "--matmul", "--threads", "--model", "--prompt", "--fidelity"};
        int known = 0;
        for (size_t k = 0; k < sizeof flags / sizeof *flags; k++) known |= strcmp(a, flags[k]) == 0;
        if (!known) return cli_usage_error(cmd, "unknown option '%s'", a);
        if (i + 1 >= argc) return cli_usage_error(cmd, "%s needs a value", a);
        const char *v = argv[++i];
        long x;
        if (n_given < (int)(sizeof given / sizeof *given)) { given[n_given][0] = a; given[n_given++][1] = v; }
        if (strcmp(a, "--fidelity") == 0) {
            if (strcmp(v, "seed") && strcmp(v, "clens-default"))
                return cli_usage_error(cmd, "--fidelity expects seed or clens-default, got '%s'", v);
            fidelity = v;
        }
        else if (strcmp(a, "--data") == 0) p.data_path = v;
        else if (strcmp(a, "--out") == 0) out = v;
        else if (strcmp(a, "--candidates") == 0) cands = v;
        else if (strcmp(a, "--on-policy") == 0) model = v;
        else if (strcmp(a, "--generations") == 0) op.generations_path = v;
        else if (strcmp(a, "--matmul") == 0) mm = v;
        else if (strcmp(a, "--model") == 0) check_model = v;
        else if (strcmp(a, "--prompt") == 0) check_prompt = v;
        else if (strcmp(a, "--gen-prompt") == 0) {
            if (strcmp(v, "raw") && strcmp(v, "chat"))
                return cli_usage_error(cmd, "--gen-prompt expects raw or chat, got '%s'", v);
            op.prompt_chat = strcmp(v, "chat") == 0;
        } else if (strcmp(a, "--max-new") == 0 || strcmp(a, "--batch") == 0 ||
                   strcmp(a, "--pool") == 0 || strcmp(a, "--threads") == 0) {
            long lo = strcmp(a, "--pool") == 0 || strcmp(a, "--threads") == 0 ? 0 : 1;
            long hi = strcmp(a, "--batch") == 0 ? 4096 : strcmp(a, "--threads") == 0 ? 1024
                      : strcmp(a, "--max-new") == 0 ? 100000 : 1000000000L;
            int rc = cli_parse_int(cmd, a, v, lo, hi, &x);
            if (rc) return rc;
            if (a[2] == 'm') op.max_new_tokens = (int)x;
            else if (a[2] == 'b') op.batch = (int)x;
            else if (a[2] == 'p') op.pool = x;
            else threads = x;
        }
        else if (strcmp(a, "--format") == 0) {
            fmt = v;
            if (clens_pairs_parse_format(&p, v, &err)) return cli_usage_error(cmd, "%s", err.msg);
        } else if (strcmp(a, "--seed") == 0) {
            char *end;
            unsigned long long s = strtoull(v, &end, 10);
            if (end == v || *end || v[0] == '-' || s > (unsigned long long)INT64_MAX)
                return cli_usage_error(cmd, "--seed expects an integer in [0, 2^63-1], got '%s'", v);
            p.seed = s;
        } else if (strcmp(a, "--limit") == 0) {
            int rc = cli_parse_int(cmd, a, v, 0, 1000000000L, &x);
            if (rc) return rc;
            p.limit = x;
        } else if (strcmp(a, "--cut") == 0) {
            if (clens_pairs_parse_cut(&p, v, &err)) return cli_usage_error(cmd, "%s", err.msg);
        } else if (strcmp(a, "--corrupt") == 0) {
            if (clens_pairs_parse_corrupt(&p, v, &err)) return cli_usage_error(cmd, "%s", err.msg);
        } else if (strcmp(a, "--site") == 0) {
            if (clens_pairs_parse_site(&p, v, &err)) return cli_usage_error(cmd, "%s", err.msg);
        }
    }
    if (fidelity && strcmp(fidelity, "seed") == 0) {
        int rc = apply_seed_fidelity(given, n_given, model, &p, &op, &check_prompt);
        if (rc) return rc;
    }
    if (!p.data_path) return cli_usage_error(cmd, "--data is required");
    if (!fmt) return cli_usage_error(cmd, "--format is required (math or gsm8k)");
    if (!out) return cli_usage_error(cmd, "--out is required");

    if (cands) {
        p.on_candidate = on_candidate;
        p.on_candidate_user = &sink;
    }
    clens_pair *pairs = NULL;
    size_t n = 0;
    clens_pairs_stats st;
    char genpath[4096];
    if (model && !op.generations_path) {
        snprintf(genpath, sizeof genpath, "%s.generations.jsonl", out);
        op.generations_path = genpath;
    }
    /* outputs: never over an input, a device, a FIFO or a link (src/base/outpath.c) */
    const char *inputs[] = {p.data_path, model ? op.generations_path : NULL, out};
    const char *gen_others[] = {p.data_path, out, cands};
    if (clens_output_check(out, inputs, 2, &err) ||
        (cands && clens_output_check(cands, inputs, 3, &err)) ||
        (model && clens_output_check(op.generations_path, gen_others, 3, &err))) /* appended */
        return cli_fail(cmd, &err);
    if (model) {
        progress_state ps = {quiet, clens_now()};
        op.progress = progress;
        op.progress_user = &ps;
        if (build_on_policy(model, mm, (int)threads, &p, &op, &pairs, &n, &st)) {
            free(sink.buf);
            return CLI_EXIT_ERR;
        }
    } else if (clens_pairs_build(&p, &pairs, &n, &st, &err)) {
        free(sink.buf);
        return cli_fail(cmd, &err);
    }
    int rc = clens_pairs_write_jsonl(out, pairs, n, &err);
    if (!rc && cands) {
        if (sink.bad) rc = clens_err(&err, CLENS_E_NOMEM, "%s: cannot format the candidates", cands);
        else rc = clens_write_file_atomic(cands, sink.buf ? sink.buf : "", sink.n, &err);
    }
    free(sink.buf);
    if (rc) {
        clens_pairs_free(pairs, n);
        return cli_fail(cmd, &err);
    }
    if (!quiet) {
        printf("pairs: %s (sha256 %s)\n", p.data_path, st.source_sha256);
        if (fidelity && strcmp(fidelity, "seed") == 0)
            printf("  mode                    seed fidelity (--fidelity seed: on-policy, --gen-prompt raw --max-new 512\n"
                   "                          --site seed --corrupt plus-one --cut chars-raw:20)\n");
        else
            printf("  mode                    clens default%s\n", fidelity ? " (--fidelity clens-default)" : "");
        printf("  problems read           %ld\n", st.problems);
        printf("  candidates (lhs = n)    %ld\n", st.candidates);
        printf("  sites (verified, intermediate, not the answer)  %ld in %ld problems\n",
               st.sites, st.problems_with_site);
        printf("  problems without a site %ld\n", st.problems - st.problems_with_site);
        if (model) printf("  solutions               generated by %s -> %s\n", model, op.generations_path);
        if (st.duplicates)
            printf("  pairs dropped as duplicates (same clean prompt as an earlier pair) %ld\n",
                   st.duplicates);
        printf("  pairs written           %zu -> %s\n", n, out);
        printf("  candidates dropped, by reason:\n");
        for (int r = 1; r < clens_pairs_reason_count(); r++)
            if (st.drops[r]) printf("    %-16s %ld\n", clens_pairs_reason_name(r), st.drops[r]);
    }
    if (n == 0)
        fprintf(stderr, "clens pairs: warning: 0 pairs: no problem in %s has a usable site "
                        "(exit status 0; the counts above say why)\n", p.data_path);
    rc = check_model ? token_check(check_model, check_prompt, pairs, n, quiet) : CLI_EXIT_OK;
    clens_pairs_free(pairs, n);
    return rc;
}
