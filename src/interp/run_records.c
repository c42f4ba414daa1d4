/*
 * run_records.c: records.jsonl of a patching run (docs/patch-output.md): the
 * JSON line of a finished candidate, the durable append, and the scan that
 * resumes a run.
 *
 * A record is appended with fsync, so a killed run loses at most the
 * candidate in flight. A write can still stop part way: a full disk (ENOSPC)
 * or a file-size limit (EFBIG) returns a short count first and the errno only
 * on the next call. The append loops over short writes and, on failure, cuts
 * the file back to its length before the append, so no torn line stays
 * behind. A kill in the middle of write() (or a crash of the machine) can
 * still leave one: the scan drops an unfinished last line (no '\n') and says
 * so, as the on-policy generations file does (src/data/onpolicy.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/appendlog.h"
#include "base/base.h"
#include "interp/run_internal.h"

/* A JSON number, or null when not finite (jansson refuses NaN and Inf). */
static json_t *num(double x) { return isfinite(x) ? json_real(x) : json_null(); }

/* patched[type] of one metric row o: a value per layer, for a per-head point (z) a list per layer over heads. */
static json_t *patched_json(const run_record *r, const double *o)
{
    json_t *pj = json_object();
    int s = 0;
    for (int t = 0; t < r->n_types; t++) {
        json_t *arr = json_array();
        while (s < r->n_sites && r->sites[s].point == r->types[t]) {
            if (clens_hook_per_head(r->types[t])) {
                json_t *heads = json_array();
                int l = r->sites[s].layer;
                while (s < r->n_sites && r->sites[s].point == r->types[t] && r->sites[s].layer == l)
                    json_array_append_new(heads, num(o[2 + s++]));
                json_array_append_new(arr, heads);
            } else {
                json_array_append_new(arr, num(o[2 + s++]));
            }
        }
        json_object_set_new(pj, clens_hook_short_name(r->types[t]), arr);
    }
    return pj;
}

/* One id decoded alone (special tokens kept), or null. */
static json_t *decode_one(const clens_tokenizer *tok, int32_t id)
{
    char *text = NULL;
    size_t len = 0;
    clens_error e = {0};
    json_t *v = clens_detokenize(tok, &id, 1, 0, &text, &len, &e) == 0 ? json_stringn_nocheck(text, len) : json_null();
    free(text);
    return v;
}

/* The last RUN_FINAL_TOKENS ids of one prompt, each decoded alone with
 * special tokens kept (HF `decode([id])`: a byte-level token that ends inside
 * a UTF-8 character decodes to U+FFFD), oldest first. */
static json_t *final_tokens_json(const clens_tokenizer *tok, const int32_t *ids, size_t n)
{
    json_t *a = json_array();
    size_t start = n > RUN_FINAL_TOKENS ? n - RUN_FINAL_TOKENS : 0;
    for (size_t i = start; i < n; i++) json_array_append_new(a, decode_one(tok, ids[i]));
    return a;
}

char *run_record_line(const run_record *r)
{
    json_t *rec = json_object();
    if (!rec) return NULL;
    json_object_set_new(rec, "candidate", json_integer((json_int_t)r->candidate));
    json_object_set_new(rec, "id", r->id ? json_string(r->id) : json_null());
    json_object_set_new(rec, "status", json_string(r->reason ? "dropped" : "kept"));
    json_object_set_new(rec, "reason", r->reason ? json_string(r->reason) : json_null());
    json_object_set_new(rec, "n_tokens", json_integer((json_int_t)r->n_tokens));
    json_object_set_new(rec, "shared_prefix", json_integer(r->shared_prefix));
    if (r->tok && r->ids_c && r->ids_r) {
        json_t *ft = json_object();
        json_object_set_new(ft, "clean", final_tokens_json(r->tok, r->ids_c, r->n_c));
        json_object_set_new(ft, "corrupted", final_tokens_json(r->tok, r->ids_r, r->n_r));
        /* where the prompts part: the first differing position, usually the error's token */
        size_t k = 0, nmin = r->n_c < r->n_r ? r->n_c : r->n_r;
        while (k < nmin && r->ids_c[k] == r->ids_r[k]) k++;
        if (k < r->n_c || k < r->n_r) {
            json_t *d = json_object();
            json_object_set_new(d, "position", json_integer((json_int_t)k));
            json_object_set_new(d, "from_end", json_integer((json_int_t)(r->n_c - k)));
            json_object_set_new(d, "clean", k < r->n_c ? decode_one(r->tok, r->ids_c[k]) : json_null());
            json_object_set_new(d, "corrupted", k < r->n_r ? decode_one(r->tok, r->ids_r[k]) : json_null());
            json_object_set_new(ft, "first_diff", d);
        } else {
            json_object_set_new(ft, "first_diff", json_null());
        }
        json_object_set_new(rec, "final_tokens", ft);
    }
    if (r->ran_model) {
        json_t *mets = json_object();
        for (int k = 0; k < r->n_metrics; k++) {
            const double *o = r->vals + (size_t)k * r->width;
            json_t *mo = json_object();
            json_object_set_new(mo, "clean", num(o[0]));
            json_object_set_new(mo, "corr", num(o[1]));
            if (!r->reason) json_object_set_new(mo, "patched", patched_json(r, o));
            json_object_set_new(mets, r->metric_names[k], mo);
        }
        json_object_set_new(rec, "metrics", mets);
    }
    json_object_set_new(rec, "seconds", json_real(round(r->seconds * 1000) / 1000));
    char *line = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(rec);
    return line;
}

int run_record_append(const char *path, const char *line, clens_error *err)
{
    size_t n = strlen(line);
    char *buf = malloc(n + 1);
    if (!buf) return clens_err(err, CLENS_E_NOMEM, "%s: out of memory", path);
    memcpy(buf, line, n);
    buf[n] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        free(buf);
        return clens_err(err, CLENS_E_IO, "%s: cannot open for appending: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st)) {
        int e = errno;
        close(fd);
        free(buf);
        return clens_err(err, CLENS_E_IO, "%s: %s", path, strerror(e));
    }
    const off_t before = st.st_size;
    /* One write() normally: O_APPEND places the whole line contiguously. */
    size_t left = n + 1;
    const char *p = buf;
    int e = 0;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) { e = w < 0 ? errno : ENOSPC; break; }
        p += w;
        left -= (size_t)w;
    }
    const char *what = "append failed";
    if (!e && fsync(fd)) { e = errno; what = "fsync failed"; }
    free(buf);
    if (e) {
        /* Undo the part written, so the file still ends with a whole record. */
        int undone = ftruncate(fd, before) == 0;
        close(fd);
        return clens_err(err, CLENS_E_IO, "%s: %s after %zu of %zu bytes: %s%s", path, what, n + 1 - left, n + 1,
                         strerror(e), undone ? " (the partial line was removed; rerun to resume)"
                                             : " (the partial line could not be removed)");
    }
    if (close(fd)) return clens_err(err, CLENS_E_IO, "%s: close failed: %s", path, strerror(errno));
    return CLENS_OK;
}

int run_records_scan_file(const char *path, size_t n_candidates, int shard_index, int shard_count,
                          run_records_scan *out, clens_error *err)
{
    memset(out, 0, sizeof *out);
    out->done = calloc(n_candidates ? n_candidates : 1, 1);
    if (!out->done) return clens_err(err, CLENS_E_NOMEM, "%s: out of memory", path);
    char *data = NULL;
    size_t keep = 0;
    int rc = clens_appendlog_read(path, &data, &keep, &out->torn_bytes, err);
    if (rc || !data) return rc;
    long ln = 0;
    for (size_t pos = 0; pos < keep && !rc;) {
        char *nl = memchr(data + pos, '\n', keep - pos);
        size_t end = (size_t)(nl - data);
        const char *p = data + pos;
        size_t n = end - pos;
        pos = end + 1;
        ln++;
        if (n > 0 && p[n - 1] == '\r') n--;
        size_t k = 0;
        while (k < n && (p[k] == ' ' || p[k] == '\t')) k++;
        if (k == n) continue;
        json_t *r = json_loadb(p, n, 0, NULL);
        json_t *c = json_object_get(r, "candidate");
        long long cand = json_is_integer(c) ? json_integer_value(c) : -1;
        if (cand < 0) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s:%ld: not a record line", path, ln);
        } else if ((size_t)cand >= n_candidates) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s:%ld: candidate %lld, but the pairs file has %zu", path, ln,
                           cand, n_candidates);
        } else if (cand % shard_count != shard_index) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s:%ld: candidate %lld does not belong to shard %d of %d", path,
                           ln, cand, shard_index, shard_count);
        } else if (!out->done[cand]) {
            const char *st = json_string_value(json_object_get(r, "status"));
            out->done[cand] = 1;
            out->n_done++;
            out->n_kept += st && strcmp(st, "kept") == 0;
        }
        json_decref(r);
    }
    free(data);
    return rc;
}
