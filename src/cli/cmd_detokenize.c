/*
 * cmd_detokenize.c: `clens detokenize TOKENIZER`: token ids to text, as
 * Hugging Face tokenizers decode() (ids without a token are skipped; bytes
 * that are not valid UTF-8, e.g. ids that end inside a character, become
 * U+FFFD). One sequence (--ids, --ids-file) or a JSON Lines corpus (--jsonl).
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/strbuf.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: clens detokenize TOKENIZER (--ids LIST | --ids-file PATH | --jsonl PATH) [options]\n\n"
            "Decodes token ids into text exactly as Hugging Face tokenizers decode() does.\n"
            "TOKENIZER: a model folder, an org/name[@revision] in the HF cache, or a tokenizer.json.\n\n"
            "input (exactly one):\n"
            "  --ids LIST       comma-separated ints: the ids, e.g. 9906,1917\n"
            "  --ids-file PATH  path: a JSON array of ids, or an array of such arrays (a batch:\n"
            "                   one output line per sequence)\n"
            "  --jsonl PATH     path: JSON Lines, one {\"ids\": [...]} (optionally with\n"
            "                   \"skip_special\": bool) per line ('-' = stdin); writes one\n"
            "                   {\"text\": STR} line per input line\n"
            "options:\n"
            "  --skip-special   flag: drop special added tokens (HF skip_special_tokens=True);\n"
            "                   default keeps them\n"
            "  --json           flag: print {\"text\": STR} instead of the raw text\n"
            "  --raw            flag: print the text without a trailing newline (default adds one)\n\n"
            "examples:\n"
            "  clens detokenize ../shared/tokenizers/dolma2 --ids 9906,1917,220,4513,1774\n"
            "  clens detokenize ../shared/tokenizers/qwen2.5 --ids-file ids.json --skip-special\n");
}

/* A JSON string literal (malloc'd), NULL when s is not valid UTF-8 (JSON
 * text must be) or out of memory. */
static char *jstr_escape(const char *s, size_t n)
{
    if (clens_utf8_check(s, n) != n) return NULL;
    clens_sb b = {0};
    clens_sb_json_strn(&b, s, n);
    return clens_sb_take(&b);
}

static int print_text(const char *s, size_t n, int json, int raw)
{
    if (json) {
        char *e = jstr_escape(s, n);
        if (!e) return -1;
        printf("{\"text\":%s}\n", e);
        free(e);
        return 0;
    }
    if (n && fwrite(s, 1, n, stdout) != n) return -1;
    if (!raw) fputc('\n', stdout);
    return 0;
}

static int json_ids(json_t *a, int32_t **out, int *n)
{
    size_t m = json_array_size(a);
    int32_t *v = malloc(sizeof *v * (m ? m : 1));
    if (!v) return -1;
    for (size_t i = 0; i < m; i++) {
        json_t *x = json_array_get(a, i);
        if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > INT32_MAX) { free(v); return -1; }
        v[i] = (int32_t)json_integer_value(x);
    }
    *out = v;
    *n = (int)m;
    return 0;
}

static int run_jsonl(const clens_tokenizer *tok, const char *path, int skip_default)
{
    char *data;
    size_t len;
    clens_error err = {0};
    if (strcmp(path, "-") == 0) {
        size_t cap = 1 << 16, n = 0, r;
        data = malloc(cap);
        while (data && (r = fread(data + n, 1, cap - n - 1, stdin)) > 0) {
            n += r;
            if (n + 1 >= cap) { char *nd = realloc(data, cap *= 2); if (!nd) { free(data); data = NULL; } else data = nd; }
        }
        if (!data) return cli_errorf("detokenize", CLI_EXIT_ERR, "out of memory");
        data[n] = 0;
        len = n;
    } else if (clens_read_file(path, &data, &len, &err)) {
        return cli_fail("detokenize", &err);
    }
    size_t p = 0;
    long lineno = 0, nerr = 0;
    int rc = CLI_EXIT_OK;
    while (p < len) {
        const char *e = memchr(data + p, '\n', len - p);
        size_t ll = e ? (size_t)(e - (data + p)) : len - p;
        lineno++;
        size_t tl = ll;
        while (tl && (data[p + tl - 1] == '\r' || data[p + tl - 1] == ' ')) tl--;
        if (tl) {
            json_error_t je;
            json_t *o = json_loadb(data + p, tl, JSON_ALLOW_NUL, &je);
            json_t *a = json_object_get(o, "ids");
            int32_t *ids = NULL;
            int n = 0;
            int skip = skip_default;
            json_t *sk = json_object_get(o, "skip_special");
            if (json_is_boolean(sk)) skip = json_is_true(sk);
            char *text = NULL;
            size_t tlen = 0;
            if (!json_is_array(a) || json_ids(a, &ids, &n)) {
                printf("{\"error\":\"%s:%ld: expected {\\\"ids\\\": [non-negative ints]}\"}\n", path, lineno);
                nerr++;
            } else if (clens_detokenize(tok, ids, n, skip, &text, &tlen, &err)) {
                char *m = jstr_escape(err.msg, strlen(err.msg));
                printf("{\"error\":%s}\n", m ? m : "\"error\"");
                free(m);
                nerr++;
            } else if (print_text(text, tlen, 1, 0)) {
                rc = cli_errorf("detokenize", CLI_EXIT_ERR, "cannot write the output: %s", strerror(errno));
            }
            free(text);
            free(ids);
            json_decref(o);
            if (rc) break;
        }
        p += ll + 1;
    }
    free(data);
    if (fflush(stdout)) rc = cli_errorf("detokenize", CLI_EXIT_ERR, "cannot write the output: %s", strerror(errno));
    if (!rc && nerr) rc = cli_errorf("detokenize", CLI_EXIT_ERR, "%ld lines could not be decoded (see their \"error\")", nerr);
    return rc;
}

int cmd_detokenize(int argc, char **argv)
{
    const char *tpath = NULL, *ids_s = NULL, *ids_file = NULL, *jsonl = NULL;
    int skip = 0, json = 0, raw = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) { usage(stdout); return CLI_EXIT_OK; }
        int has_val = i + 1 < argc;
        if (strcmp(a, "--ids") == 0) { if (!has_val) return cli_usage_error("detokenize", "--ids needs a value"); ids_s = argv[++i]; }
        else if (strcmp(a, "--ids-file") == 0) { if (!has_val) return cli_usage_error("detokenize", "--ids-file needs a path"); ids_file = argv[++i]; }
        else if (strcmp(a, "--jsonl") == 0) { if (!has_val) return cli_usage_error("detokenize", "--jsonl needs a path"); jsonl = argv[++i]; }
        else if (strcmp(a, "--skip-special") == 0) skip = 1;
        else if (strcmp(a, "--json") == 0) json = 1;
        else if (strcmp(a, "--raw") == 0) raw = 1;
        else if (a[0] == '-' && a[1]) return cli_usage_error("detokenize", "unknown option '%s'", a);
        else if (!tpath) tpath = a;
        else return cli_usage_error("detokenize", "unexpected argument '%s'", a);
    }
    if (!tpath) return cli_usage_error("detokenize", "missing TOKENIZER");
    if ((ids_s != NULL) + (ids_file != NULL) + (jsonl != NULL) != 1)
        return cli_usage_error("detokenize", "give exactly one of --ids, --ids-file, --jsonl");
    int32_t **seqs = NULL;
    int *lens = NULL, n_seq = 0;
    clens_error err = {0};
    if (ids_s) {
        int32_t *v;
        int n;
        if (cli_parse_ids(ids_s, &v, &n))
            return cli_usage_error("detokenize", "--ids expects comma-separated non-negative integers, got '%s'", ids_s);
        seqs = malloc(sizeof *seqs);
        lens = malloc(sizeof *lens);
        if (!seqs || !lens) { free(v); free(seqs); free(lens); return cli_errorf("detokenize", CLI_EXIT_ERR, "out of memory"); }
        seqs[0] = v;
        lens[0] = n;
        n_seq = 1;
    } else if (ids_file && cli_read_ids_file(ids_file, &seqs, &lens, &n_seq, &err)) {
        return cli_fail("detokenize", &err);
    }
    clens_tokenizer *tok;
    int rc = CLI_EXIT_OK;
    if (clens_tokenizer_open(&tok, tpath, &err)) {
        rc = cli_fail("detokenize", &err);
        goto out;
    }
    if (jsonl) {
        rc = run_jsonl(tok, jsonl, skip);
    } else {
        int32_t vs = clens_tokenizer_vocab_size(tok);
        for (int s = 0; s < n_seq && !rc; s++) {
            for (int i = 0; i < lens[s]; i++)
                if (seqs[s][i] >= vs || !clens_tokenizer_id_to_token(tok, seqs[s][i]))
                    fprintf(stderr, "clens detokenize: warning: id %d has no token (skipped, as Hugging Face does)\n", seqs[s][i]);
            char *text;
            size_t tl;
            if (clens_detokenize(tok, seqs[s], lens[s], skip, &text, &tl, &err)) { rc = cli_fail("detokenize", &err); break; }
            if (print_text(text, tl, json, raw && n_seq == 1))
                rc = cli_errorf("detokenize", CLI_EXIT_ERR, "cannot write the output: %s", strerror(errno));
            free(text);
        }
        if (!rc && fflush(stdout)) rc = cli_errorf("detokenize", CLI_EXIT_ERR, "cannot write the output: %s", strerror(errno));
    }
    clens_tokenizer_free(tok);
out:
    for (int s = 0; s < n_seq; s++) free(seqs[s]);
    free(seqs);
    free(lens);
    return rc;
}
