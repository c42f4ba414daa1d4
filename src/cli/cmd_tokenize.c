/*
 * cmd_tokenize.c: `clens tokenize TOKENIZER`: text to token ids, identical
 * to Hugging Face tokenizers. One text (--text, --file) or a JSON Lines corpus
 * (--jsonl: one {"text": ...} or {"hex": ...} object per line in, one
 * {"ids": [...]} object per line out, encoded on several threads), so that a
 * whole corpus takes one process.
 */
#include <errno.h>
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "base/strbuf.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: clens tokenize TOKENIZER (--text STR | --file PATH | --jsonl PATH) [options]\n\n"
            "Encodes UTF-8 text into token ids exactly as Hugging Face tokenizers does.\n"
            "TOKENIZER is a model folder (tokenizer.json, or vocab.json + merges.txt +\n"
            "tokenizer_config.json), an org/name[@revision] in the offline HF cache\n"
            "($HF_HOME or ~/.cache/huggingface), or a tokenizer.json path.\n\n"
            "input (exactly one):\n"
            "  --text STR       string: the text\n"
            "  --file PATH      path: a file holding the text (all bytes, '-' = stdin)\n"
            "  --jsonl PATH     path: JSON Lines, one {\"text\": STR} or {\"hex\": HEXBYTES} per line\n"
            "                   ('-' = stdin); writes one {\"ids\": [...]} line per input line,\n"
            "                   or {\"error\": MSG} for a line that cannot be encoded\n"
            "options:\n"
            "  --json           flag: print {\"ids\":[..],\"tokens\":[..],\"offsets\":[[s,e],..]},\n"
            "                   offsets in bytes of the input (default: ids as 1,2,3)\n"
            "  --no-special     flag: do not add the post-processor's special tokens (BOS/EOS);\n"
            "                   default adds them (HF add_special_tokens=True)\n"
            "  --lossy          flag: replace invalid UTF-8 by U+FFFD (WHATWG rule, as Node reads\n"
            "                   files; offsets then refer to the replaced text); default: invalid\n"
            "                   UTF-8 is an error naming the byte offset\n"
            "  --threads N      int: threads for --jsonl (default 0 = all cores)\n"
            "  --stats          flag: print texts, tokens, encode time and tokens/s to stderr\n"
            "  --repeat N       int: with --jsonl, encode the corpus N times and report the\n"
            "                   fastest (benchmarking; default 1)\n\n"
            "examples:\n"
            "  clens tokenize ../shared/tokenizers/dolma2 --text 'Hello world 12345 <|im_start|>'\n"
            "  clens tokenize Qwen/Qwen2.5-0.5B-Instruct --file prompt.txt --json\n"
            "  clens tokenize ../shared/tokenizers/qwen2.5 --jsonl corpus.jsonl --threads 2 > ids.jsonl\n");
}

/* ------------------------------------------------------------ output */

/* Integers are appended often (every id and offset): a direct snprintf. */
static void ob_int(clens_sb *b, long long v)
{
    char t[32];
    int l = snprintf(t, sizeof t, "%lld", v);
    clens_sb_put(b, t, (size_t)l);
}

static void emit_result(clens_sb *b, const int32_t *ids, int n, const size_t *offs, char *const *toks,
                        int json, int jsonl)
{
    if (!json && !jsonl) {
        for (int i = 0; i < n; i++) {
            if (i) clens_sb_put(b, ",", 1);
            ob_int(b, ids[i]);
        }
        clens_sb_put(b, "\n", 1);
        return;
    }
    clens_sb_puts(b, "{\"ids\":[");
    for (int i = 0; i < n; i++) {
        if (i) clens_sb_put(b, ",", 1);
        ob_int(b, ids[i]);
    }
    clens_sb_put(b, "]", 1);
    if (json) {
        clens_sb_puts(b, ",\"tokens\":[");
        for (int i = 0; i < n; i++) {
            if (i) clens_sb_put(b, ",", 1);
            clens_sb_json_strn(b, toks[i], strlen(toks[i]));
        }
        clens_sb_puts(b, "],\"offsets\":[");
        for (int i = 0; i < n; i++) {
            if (i) clens_sb_put(b, ",", 1);
            clens_sb_put(b, "[", 1);
            ob_int(b, (long long)offs[2 * i]);
            clens_sb_put(b, ",", 1);
            ob_int(b, (long long)offs[2 * i + 1]);
            clens_sb_put(b, "]", 1);
        }
        clens_sb_put(b, "]", 1);
    }
    clens_sb_puts(b, "}\n");
}

static int write_all(const clens_sb *b)
{
    if (b->oom) { errno = ENOMEM; return -1; }
    if (b->len && fwrite(b->p, 1, b->len, stdout) != b->len) return -1;
    return fflush(stdout) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------- input */

static int read_input(const char *path, char **data, size_t *len, clens_error *err)
{
    if (strcmp(path, "-") != 0) return clens_read_file(path, data, len, err);
    size_t cap = 1 << 16, n = 0;
    char *p = malloc(cap);
    if (!p) { err->code = CLENS_E_NOMEM; snprintf(err->msg, sizeof err->msg, "out of memory"); return -1; }
    size_t r;
    while ((r = fread(p + n, 1, cap - n - 1, stdin)) > 0) {
        n += r;
        if (n + 1 >= cap) {
            char *np = realloc(p, cap *= 2);
            if (!np) { free(p); err->code = CLENS_E_NOMEM; snprintf(err->msg, sizeof err->msg, "out of memory"); return -1; }
            p = np;
        }
    }
    p[n] = 0;
    *data = p;
    *len = n;
    return 0;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

typedef struct line_rec {
    char *text;        /* bytes to encode (owned) */
    size_t len;
    char *error;       /* set when the line cannot be encoded (owned) */
    int32_t *ids;
    int n;
    size_t *offs;
    char **toks;       /* with --json: token strings (clens_tokenize_full) */
} line_rec;

static char *xstrdup_printf(const char *fmt, const char *a, long long b)
{
    char buf[1200];
    snprintf(buf, sizeof buf, fmt, a, b);
    return strdup(buf);
}

/* Parses one JSONL line into r (text or error). */
static void parse_line(const char *line, size_t n, long lineno, const char *path, int lossy, line_rec *r)
{
    memset(r, 0, sizeof *r);
    json_error_t je;
    json_t *o = json_loadb(line, n, JSON_ALLOW_NUL, &je);
    const char *key = NULL;
    json_t *v = NULL;
    if (o && json_is_object(o)) {
        if ((v = json_object_get(o, "text")) && json_is_string(v)) key = "text";
        else if ((v = json_object_get(o, "hex")) && json_is_string(v)) key = "hex";
    }
    if (!key) {
        char msg[900];
        snprintf(msg, sizeof msg, "%s:%ld: expected a JSON object with a string \"text\" or \"hex\"%s%s", path, lineno,
                 o ? "" : ": ", o ? "" : je.text);
        r->error = strdup(msg);
        json_decref(o);
        return;
    }
    const char *s = json_string_value(v);
    size_t sl = json_string_length(v);
    if (key[0] == 't') {
        r->text = malloc(sl + 1);
        if (r->text) { memcpy(r->text, s, sl + 1); r->len = sl; }
    } else {
        if (sl % 2) {
            r->error = xstrdup_printf("%s:%lld: \"hex\" has an odd number of digits", path, lineno);
            json_decref(o);
            return;
        }
        r->text = malloc(sl / 2 + 1);
        for (size_t i = 0; r->text && i < sl / 2; i++) {
            int h = hexval((unsigned char)s[2 * i]), l = hexval((unsigned char)s[2 * i + 1]);
            if (h < 0 || l < 0) {
                free(r->text);
                r->text = NULL;
                r->error = xstrdup_printf("%s:%lld: \"hex\" is not hexadecimal", path, lineno);
                json_decref(o);
                return;
            }
            r->text[i] = (char)(h * 16 + l);
        }
        if (r->text) { r->text[sl / 2] = 0; r->len = sl / 2; }
    }
    json_decref(o);
    if (!r->text) { r->error = strdup("out of memory"); return; }
    size_t bad = clens_utf8_check(r->text, r->len);
    if (bad != r->len) {
        if (lossy) {
            char *fx;
            size_t fl;
            if (clens_utf8_lossy(r->text, r->len, &fx, &fl)) { r->error = strdup("out of memory"); return; }
            free(r->text);
            r->text = fx;
            r->len = fl;
        } else {
            char msg[600];
            snprintf(msg, sizeof msg, "%s:%ld: invalid UTF-8 at byte offset %zu (byte 0x%02X); use --lossy to replace it",
                     path, lineno, bad, (unsigned char)r->text[bad]);
            r->error = strdup(msg);
            free(r->text);
            r->text = NULL;
        }
    }
}

static int run_jsonl(const clens_tokenizer *tok, const char *path, int json, int add_special, int lossy,
                     int threads, int stats, int repeat)
{
    char *data;
    size_t len;
    clens_error err = {0};
    if (read_input(path, &data, &len, &err)) return cli_fail("tokenize", &err);
    size_t cap = 1024, nl = 0;
    line_rec *recs = malloc(cap * sizeof *recs);
    if (!recs) { free(data); return cli_errorf("tokenize", CLI_EXIT_ERR, "out of memory"); }
    size_t p = 0;
    long lineno = 0;
    while (p < len) {
        const char *e = memchr(data + p, '\n', len - p);
        size_t ll = e ? (size_t)(e - (data + p)) : len - p;
        lineno++;
        size_t tl = ll;
        while (tl && (data[p + tl - 1] == '\r' || data[p + tl - 1] == ' ')) tl--;
        if (tl) {
            if (nl == cap) {
                line_rec *nr = realloc(recs, (cap *= 2) * sizeof *nr);
                if (!nr) { free(data); free(recs); return cli_errorf("tokenize", CLI_EXIT_ERR, "out of memory"); }
                recs = nr;
            }
            parse_line(data + p, tl, lineno, path, lossy, &recs[nl++]);
        }
        p += ll + 1;
    }
    free(data);
    if (threads <= 0) threads = omp_get_max_threads();
    double best = 1e300;
    long long ntok = 0, nbytes = 0;
    for (int rep = 0; rep < repeat; rep++) {
        for (size_t i = 0; i < nl; i++) {
            free(recs[i].ids); recs[i].ids = NULL;
            free(recs[i].offs); recs[i].offs = NULL;
            free(recs[i].toks); recs[i].toks = NULL;
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
        for (size_t i = 0; i < nl; i++) {
            line_rec *r = &recs[i];
            if (!r->text) continue;
            clens_error e2 = {0};
            int rc;
            if (json) {
                clens_encoding e;
                rc = clens_tokenize_full(tok, r->text, r->len, add_special, &e, &e2);
                r->ids = e.ids;
                r->n = e.n;
                r->offs = e.offsets;
                r->toks = e.tokens;
            } else {
                rc = clens_tokenize(tok, r->text, r->len, add_special, &r->ids, &r->n, NULL, &e2);
            }
            if (rc) {
                free(r->error);
                r->error = strdup(e2.msg);
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        if (dt < best) best = dt;
    }
    clens_sb b = {0};
    size_t nerr = 0;
    for (size_t i = 0; i < nl; i++) {
        line_rec *r = &recs[i];
        if (r->error) {
            nerr++;
            clens_sb_puts(&b, "{\"error\":");
            clens_sb_json_strn(&b, r->error, strlen(r->error));
            clens_sb_puts(&b, "}\n");
        } else {
            emit_result(&b, r->ids, r->n, r->offs, r->toks, json, 1);
            ntok += r->n;
            nbytes += (long long)r->len;
        }
        if (b.len > (1 << 20)) {
            if (write_all(&b)) break;
            b.len = 0;
        }
    }
    int werr = write_all(&b);
    free(b.p);
    for (size_t i = 0; i < nl; i++) {
        free(recs[i].text);
        free(recs[i].error);
        free(recs[i].ids);
        free(recs[i].offs);
        free(recs[i].toks);
    }
    free(recs);
    if (stats)
        fprintf(stderr, "clens tokenize: %zu texts, %lld bytes, %lld tokens, encode %.4f s (best of %d), %.0f tokens/s, %d thread%s\n",
                nl, nbytes, ntok, best, repeat, best > 0 ? (double)ntok / best : 0.0, threads, threads == 1 ? "" : "s");
    if (werr) return cli_errorf("tokenize", CLI_EXIT_ERR, "cannot write the output: %s", strerror(errno));
    if (nerr) return cli_errorf("tokenize", CLI_EXIT_ERR, "%zu of %zu lines could not be encoded (see their \"error\")", nerr, nl);
    return CLI_EXIT_OK;
}

int cmd_tokenize(int argc, char **argv)
{
    const char *tpath = NULL, *text = NULL, *file = NULL, *jsonl = NULL;
    int json = 0, add_special = 1, lossy = 0, stats = 0;
    long threads = 0, repeat = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) { usage(stdout); return CLI_EXIT_OK; }
        int has_val = i + 1 < argc;
        if (strcmp(a, "--text") == 0) { if (!has_val) return cli_usage_error("tokenize", "--text needs a value"); text = argv[++i]; }
        else if (strcmp(a, "--file") == 0) { if (!has_val) return cli_usage_error("tokenize", "--file needs a path"); file = argv[++i]; }
        else if (strcmp(a, "--jsonl") == 0) { if (!has_val) return cli_usage_error("tokenize", "--jsonl needs a path"); jsonl = argv[++i]; }
        else if (strcmp(a, "--json") == 0) json = 1;
        else if (strcmp(a, "--no-special") == 0) add_special = 0;
        else if (strcmp(a, "--lossy") == 0) lossy = 1;
        else if (strcmp(a, "--stats") == 0) stats = 1;
        else if (strcmp(a, "--threads") == 0) {
            int rc = cli_parse_int("tokenize", "--threads", has_val ? argv[++i] : NULL, 0, 1024, &threads);
            if (rc) return rc;
        } else if (strcmp(a, "--repeat") == 0) {
            int rc = cli_parse_int("tokenize", "--repeat", has_val ? argv[++i] : NULL, 1, 1000, &repeat);
            if (rc) return rc;
        } else if (a[0] == '-' && a[1]) return cli_usage_error("tokenize", "unknown option '%s'", a);
        else if (!tpath) tpath = a;
        else return cli_usage_error("tokenize", "unexpected argument '%s'", a);
    }
    if (!tpath) return cli_usage_error("tokenize", "missing TOKENIZER");
    if ((text != NULL) + (file != NULL) + (jsonl != NULL) != 1)
        return cli_usage_error("tokenize", "give exactly one of --text, --file, --jsonl");
    clens_error err = {0};
    clens_tokenizer *tok;
    if (clens_tokenizer_open(&tok, tpath, &err)) return cli_fail("tokenize", &err);
    int rc;
    if (jsonl) {
        rc = run_jsonl(tok, jsonl, json, add_special, lossy, (int)threads, stats, (int)repeat);
        clens_tokenizer_free(tok);
        return rc;
    }
    char *data = NULL;
    size_t len;
    const char *src = text ? "--text" : file;
    if (text) {
        len = strlen(text);
        data = malloc(len + 1);
        if (!data) { clens_tokenizer_free(tok); return cli_errorf("tokenize", CLI_EXIT_ERR, "out of memory"); }
        memcpy(data, text, len + 1);
    } else if (read_input(file, &data, &len, &err)) {
        clens_tokenizer_free(tok);
        return cli_fail("tokenize", &err);
    }
    size_t bad = clens_utf8_check(data, len);
    if (bad != len) {
        if (!lossy) {
            rc = cli_errorf("tokenize", CLI_EXIT_ERR, "%s: invalid UTF-8 at byte offset %zu (byte 0x%02X); use --lossy to replace invalid bytes by U+FFFD",
                            src, bad, (unsigned char)data[bad]);
            free(data);
            clens_tokenizer_free(tok);
            return rc;
        }
        char *fx;
        size_t fl;
        if (clens_utf8_lossy(data, len, &fx, &fl)) { free(data); clens_tokenizer_free(tok); return cli_errorf("tokenize", CLI_EXIT_ERR, "out of memory"); }
        free(data);
        data = fx;
        len = fl;
    }
    clens_encoding e = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int trc = json ? clens_tokenize_full(tok, data, len, add_special, &e, &err)
                   : clens_tokenize(tok, data, len, add_special, &e.ids, &e.n, NULL, &err);
    if (trc) {
        free(data);
        clens_tokenizer_free(tok);
        return cli_fail("tokenize", &err);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    clens_sb b = {0};
    emit_result(&b, e.ids, e.n, e.offsets, e.tokens, json, 0);
    rc = write_all(&b) ? cli_errorf("tokenize", CLI_EXIT_ERR, "cannot write the output: %s", strerror(errno)) : CLI_EXIT_OK;
    if (stats) {
        double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        fprintf(stderr, "clens tokenize: 1 text, %zu bytes, %d tokens, encode %.4f s\n", len, e.n, dt);
    }
    free(b.p);
    clens_encoding_free(&e);
    free(data);
    clens_tokenizer_free(tok);
    return rc;
}
