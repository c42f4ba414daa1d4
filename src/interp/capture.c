/*
 * capture.c: the library's activation capture, after TransformerLens's
 * run_with_cache: hook names in (TransformerLens names, "blocks.*.NAME" for
 * every layer, "all"), one forward pass, arrays out ([n_positions][width] per
 * hook, at the positions asked for). `clens activations` and `clens capture`
 * both use it, so there is one capture hook in the CLI-facing code instead of
 * one per command. The pairs capture (`clens capture`, docs/probe.md) renders
 * each pair for the model (rulings R6), runs both prompts through
 * clens_run_with_cache and writes one float32 .npy per hook with rows
 * (pair, clean|corrupted, position) plus index.json naming every row.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/appendlog.h"
#include "base/base.h"
#include "formats/formats.h"
#include "interp/probe_internal.h"
#include "interp/prompts.h"
#include "interp/run_internal.h"

void clens_cache_free(clens_cache *c)
{
    if (!c) return;
    for (int i = 0; i < c->n; i++) free(c->entries[i].data);
    free(c->entries);
    memset(c, 0, sizeof *c);
}

/* Points without layers (hook_embed, ln_final): the library's hook table says so. */
static int is_global(clens_hook_point p) { return clens_hook_max_layer(p, 1) < 0; }

static int add_entry(clens_cache *c, const clens_model *m, clens_hook_point p, int layer, clens_error *err)
{
    for (int i = 0; i < c->n; i++)
        if (c->entries[i].point == p && c->entries[i].layer == layer) return 0;
    clens_cache_entry *ne = realloc(c->entries, sizeof *ne * (size_t)(c->n + 1));
    if (!ne) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    c->entries = ne;
    clens_cache_entry *e = &c->entries[c->n++];
    memset(e, 0, sizeof *e);
    e->point = p;
    e->layer = layer;
    e->width = clens_hook_width(m, p);
    clens_hook_name(p, layer, e->name, sizeof e->name);
    return 0;
}

/* One concrete hook name, with two spellings of the last layers: a negative
 * block index counts from the end as in Python ("blocks.-1.hook_resid_post" is
 * the output of the last block), and "blocks.{L}.hook_resid_pre" (the residual
 * after the last block in the resid_pre numbering of docs/probe.md, rulings
 * R12) is the same activation as blocks.{L-1}.hook_resid_post, and is stored
 * under that name. Returns 0 or -1 (not a hook name). */
static int final_alias(const char *tok, int L, clens_hook_point *p, int *layer)
{
    char name[256];
    if (strncmp(tok, "blocks.-", 8) == 0) {
        char *end;
        long k = strtol(tok + 8, &end, 10);
        if (end == tok + 8 || *end != '.' || k < 1 || k > L) return -1;
        snprintf(name, sizeof name, "blocks.%ld%.200s", L - k, end);
        tok = name;
    }
    if (clens_hook_parse(tok, p, layer, NULL)) return -1;
    if (*p == CLENS_HOOK_RESID_PRE && *layer == L) {
        *p = CLENS_HOOK_RESID_POST;
        *layer = L - 1;
    }
    return 0;
}

int clens_hooks_resolve(const clens_model *m, const char *list, clens_cache *out, clens_error *err)
{
    memset(out, 0, sizeof *out);
    int L = clens_model_get_info(m)->n_layers;
    char *copy = strdup(list ? list : "");
    if (!copy) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    int rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
        clens_hook_point p;
        int layer;
        if (strcmp(tok, "all") == 0) {
            for (int q = 0; q < CLENS_HOOK_COUNT && !rc; q++)
                for (int l = is_global(q) ? -1 : 0; l < (is_global(q) ? 0 : L) && !rc; l++) rc = add_entry(out, m, q, l, err);
        } else if (strncmp(tok, "blocks.*.", 9) == 0) {
            char name[256];
            snprintf(name, sizeof name, "blocks.0.%.200s", tok + 9);
            if (clens_hook_parse(name, &p, &layer, NULL)) rc = clens_err(err, CLENS_E_ARG, "unknown hook '%s'", tok);
            for (int l = 0; l < L && !rc; l++) rc = add_entry(out, m, p, l, err);
        } else if (clens_hook_short_parse(tok, &p, NULL) == CLENS_OK) {
            /* a point's short name, as `clens patch --sites` spells it: every layer */
            for (int l = is_global(p) ? -1 : 0; l < (is_global(p) ? 0 : L) && !rc; l++) rc = add_entry(out, m, p, l, err);
        } else if (final_alias(tok, L, &p, &layer) || layer >= L) {
            rc = clens_err(err, CLENS_E_ARG, "unknown hook '%s' (layers 0..%d, -1 = the last)", tok, L - 1);
        } else {
            rc = add_entry(out, m, p, layer, err);
        }
    }
    free(copy);
    if (!rc && out->n == 0) rc = clens_err(err, CLENS_E_ARG, "no hook names given");
    if (rc) clens_cache_free(out);
    return rc;
}

typedef struct {
    clens_cache *cache;
    const int *slot;       /* position -> row of the cache arrays, or -1 */
    const int *lookup;     /* point * (L + 1) + layer + 1 -> entry, or -1 */
    int L, T;
} capture_state;

/* Copies the wanted rows of one hook event into the cache. */
static void capture_hook(void *user, const clens_hook_event *ev)
{
    capture_state *s = user;
    int e = s->lookup[ev->point * (s->L + 1) + ev->layer + 1];
    if (e < 0) return;
    clens_cache_entry *ce = &s->cache->entries[e];
    for (int i = 0; i < ev->n_rows; i++) {
        int pos = ev->batch[ev->rows[i]].pos;
        if (pos < 0 || pos >= s->T || s->slot[pos] < 0) continue;
        memcpy(ce->data + (size_t)s->slot[pos] * ev->width, ev->data + (size_t)i * ev->width, sizeof(float) * ev->width);
    }
}

int clens_run_with_cache(clens_model *m, const int32_t *ids, int T, const int *positions, int n_pos,
                         clens_cache *cache, float *logits, clens_error *err)
{
    const clens_model_info *in = clens_model_get_info(m);
    int L = in->n_layers;
    if (T < 1) return clens_err(err, CLENS_E_ARG, "run_with_cache: empty sequence");
    if (!positions) n_pos = T;
    if (n_pos < 1) return clens_err(err, CLENS_E_ARG, "run_with_cache: no positions");
    int *slot = malloc(sizeof(int) * (size_t)T);
    int *lookup = malloc(sizeof(int) * (size_t)CLENS_HOOK_COUNT * (L + 1));
    clens_ctx *ctx = NULL;
    int rc = 0;
    if (!slot || !lookup) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    for (int t = 0; t < T; t++) slot[t] = positions ? -1 : t;
    for (int i = 0; positions && i < n_pos; i++) {
        if (positions[i] < 0 || positions[i] >= T) {
            rc = clens_err(err, CLENS_E_ARG, "run_with_cache: position %d outside 0..%d", positions[i], T - 1);
            goto done;
        }
        if (slot[positions[i]] >= 0) {
            rc = clens_err(err, CLENS_E_ARG, "run_with_cache: position %d given twice", positions[i]);
            goto done;
        }
        slot[positions[i]] = i;
    }
    for (int i = 0; i < CLENS_HOOK_COUNT * (L + 1); i++) lookup[i] = -1;
    for (int e = 0; e < cache->n; e++) {
        clens_cache_entry *ce = &cache->entries[e];
        if (ce->layer < -1 || ce->layer >= L) { rc = clens_err(err, CLENS_E_ARG, "run_with_cache: bad layer of %s", ce->name); goto done; }
        lookup[ce->point * (L + 1) + ce->layer + 1] = e;
        float *d = realloc(ce->data, sizeof(float) * (size_t)n_pos * ce->width);
        if (!d) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory for the cache"); goto done; }
        ce->data = d;
        memset(d, 0, sizeof(float) * (size_t)n_pos * ce->width);
    }
    cache->n_pos = n_pos;
    if ((rc = clens_ctx_new(&ctx, m, 1, T, T < 256 ? T : 256, err))) goto done;
    capture_state st = {cache, slot, lookup, L, T};
    clens_forward_args hk = {0};
    hk.hook = capture_hook;
    hk.hook_user = &st;
    rc = clens_prefill(ctx, 0, ids, T, logits, NULL, &hk, err);
done:
    clens_ctx_free(ctx);
    free(slot);
    free(lookup);
    return rc;
}

/* ------------------------------------------------------------ pairs capture */

clens_capture_params clens_capture_default_params(void)
{
    clens_capture_params p = {0};
    /* every depth of the residual stream, resid_pre 0..L: without the output of
     * the last block a probe misses the layer where a small model decides */
    p.sites = "blocks.*.hook_resid_pre,blocks.-1.hook_resid_post";
    p.positions = CLENS_CAPTURE_FINAL;
    p.prompt_chat = 1;
    return p;
}

const char *clens_capture_positions_name(clens_capture_positions p)
{
    return p == CLENS_CAPTURE_FINAL ? "final" : p == CLENS_CAPTURE_ERROR ? "error" : "all";
}

/* The positions captured for one pair of T tokens: final = T-1; error = the
 * last token index where the clean and corrupted ids differ (the end of the
 * corrupted number, the same index in both prompts since they have equal
 * lengths); all = 0..T-1. */
static int pair_positions(clens_capture_positions mode, const int32_t *a, const int32_t *b, int T, int *pos)
{
    if (mode == CLENS_CAPTURE_ALL) {
        for (int t = 0; t < T; t++) pos[t] = t;
        return T;
    }
    if (mode == CLENS_CAPTURE_FINAL) { pos[0] = T - 1; return 1; }
    for (int t = T - 1; t >= 0; t--)
        if (a[t] != b[t]) { pos[0] = t; return 1; }
    return 0;
}

/* Appends n rows of width w to a growing array. */
static int grow_append(float **buf, size_t *cap, size_t used_rows, const float *src, int n, int w)
{
    size_t need = (used_rows + n) * (size_t)w;
    if (need > *cap) {
        size_t nc = *cap ? *cap * 2 : 4096;
        while (nc < need) nc *= 2;
        float *nb = realloc(*buf, sizeof(float) * nc);
        if (!nb) return -1;
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + used_rows * (size_t)w, src, sizeof(float) * (size_t)n * w);
    return 0;
}

int clens_capture_complete(const char *out_dir)
{
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/index.json", out_dir);
    snprintf(b, sizeof b, "%s/capture.partial.jsonl", out_dir);
    return access(a, F_OK) == 0 && access(b, F_OK) != 0;
}

/* The rows and sequence entries of index.json for one side of a kept pair. */
static void side_json(json_t *rows, json_t *seqs, const clens_tokenizer *tok, const clens_pair *pr, int side,
                      const int32_t *ids, size_t T, const int *pos, int np, size_t first_row)
{
    json_t *sq = json_object(), *sid = json_array();
    for (size_t t = 0; t < T; t++) json_array_append_new(sid, json_integer(ids[t]));
    json_object_set_new(sq, "pair", json_string(pr->id));
    json_object_set_new(sq, "label", json_string(side ? "corrupted" : "clean"));
    json_object_set_new(sq, "first_row", json_integer((json_int_t)first_row));
    json_object_set_new(sq, "ids", sid);
    json_array_append_new(seqs, sq);
    for (int k = 0; k < np; k++) {
        json_t *r = json_object();
        const char *ts = clens_tokenizer_id_to_token(tok, ids[pos[k]]);
        json_object_set_new(r, "row", json_integer((json_int_t)(first_row + k)));
        json_object_set_new(r, "pair", json_string(pr->id));
        json_object_set_new(r, "candidate", json_integer(pr->candidate_index));
        json_object_set_new(r, "label", json_string(side ? "corrupted" : "clean"));
        json_object_set_new(r, "y", json_integer(side));
        json_object_set_new(r, "position", json_integer(pos[k]));
        json_object_set_new(r, "n_tokens", json_integer((json_int_t)T));
        json_object_set_new(r, "token_id", json_integer(ids[pos[k]]));
        json_object_set_new(r, "token", json_string(ts ? ts : ""));
        json_array_append_new(rows, r);
    }
}

/* How the capture renders a pair: tokens (the patch checks) and positions. */
typedef struct pair_render {
    const clens_tokenizer *tok;
    const clens_chat_template *tmpl;
    int chat, max_tokens;
    clens_capture_positions positions;
} pair_render;

/* Pair p rendered: *reason (a drop) or both prompts' ids (T tokens each, the
 * caller frees them) and the np positions captured (into pos). */
static int render_pair(const pair_render *pr, const clens_pair *p, const char **reason, int32_t **ids, size_t *T,
                       int *pos, int *np, clens_error *err)
{
    *np = 0;
    int rc = clens_pair_token_check(pr->tok, pr->tmpl, pr->chat ? CLENS_PROMPT_CHAT : CLENS_PROMPT_RAW, p,
                                    pr->max_tokens, reason, &ids[0], &ids[1], T, err);
    if (rc) return rc;
    *np = *reason ? 0 : pair_positions(pr->positions, ids[0], ids[1], (int)*T, pos);
    if (!*reason && *np == 0) *reason = "identical";
    return CLENS_OK;
}

/* The capture's journal (a killed capture resumes; docs/probe.md):
 * capture.partial.f32 holds each kept pair's rows, hook after hook, appended
 * and fdatasync'd before the pair's line in capture.partial.jsonl, the commit
 * record ({"i", "pair", "drop"} or {"i", "pair", "T", "pos", "ids", "bytes"}),
 * is appended with fsync. Rows past the last committed line are cut off on
 * resume; both files go once index.json is written. */
typedef struct capture_journal {
    char log[4096], data[4096];
    int fd;          /* the data file, open for appending */
    size_t bytes;    /* committed bytes of it */
} capture_journal;

static int journal_write_rows(capture_journal *j, float *const *arr, const clens_cache *cache, size_t row0,
                              int nrows, clens_error *err)
{
    size_t total = 0;
    for (int e = 0; e < cache->n; e++) {
        const char *p = (const char *)(arr[e] + row0 * (size_t)cache->entries[e].width);
        size_t left = (size_t)nrows * cache->entries[e].width * sizeof(float);
        total += left;
        while (left) {
            ssize_t w = write(j->fd, p, left);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                int e2 = errno;
                if (ftruncate(j->fd, (off_t)j->bytes) == 0) lseek(j->fd, (off_t)j->bytes, SEEK_SET);
                return clens_err(err, CLENS_E_IO, "%s: write failed: %s", j->data, strerror(e2));
            }
            p += w;
            left -= (size_t)w;
        }
    }
    if (fdatasync(j->fd)) return clens_err(err, CLENS_E_IO, "%s: fdatasync failed: %s", j->data, strerror(errno));
    j->bytes += total;
    return CLENS_OK;
}

/* Opens the journal of out_dir and replays what it committed: the drops, the
 * kept pairs' rows (into arr) and index.json entries, *n_rows, *kept and
 * *start (the next pair to run). A journal that does not match the pairs or
 * the hooks is refused, naming the file. */
static int journal_open(capture_journal *j, const char *out_dir, const clens_pair *pairs, size_t n_pairs,
                        const pair_render *pr, const clens_cache *cache, float **arr, size_t *cap, json_t *rows,
                        json_t *seqs, json_t *drops, size_t *n_rows, long *kept, size_t *start, clens_error *err)
{
    snprintf(j->log, sizeof j->log, "%s/capture.partial.jsonl", out_dir);
    snprintf(j->data, sizeof j->data, "%s/capture.partial.f32", out_dir);
    char *data = NULL;
    size_t len = 0, torn = 0, width = 0, off = 0, next = 0;
    int rc = clens_appendlog_read(j->log, &data, &len, &torn, err);
    if (rc) return rc;
    for (int e = 0; e < cache->n; e++) width += (size_t)cache->entries[e].width;
    j->fd = open(j->data, O_RDWR | O_CREAT, 0644);
    struct stat st;
    if (j->fd < 0 || fstat(j->fd, &st)) {
        free(data);
        return clens_err(err, CLENS_E_IO, "%s: %s", j->data, strerror(errno));
    }
    char *blk = NULL;
    int *want = malloc(sizeof(int) * (size_t)(pr->max_tokens > 0 ? pr->max_tokens : 1));
    long lineno = 0;
    if (!want) rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
    for (size_t at = 0; at < len && !rc;) {
        json_t *o = clens_appendlog_next_json(data, len, &at);
        lineno++;
        json_t *jp = json_object_get(o, "pos"), *ji = json_object_get(o, "ids");
        const char *id = json_string_value(json_object_get(o, "pair"));
        const char *drop = json_string_value(json_object_get(o, "drop"));
        json_int_t i = json_integer_value(json_object_get(o, "i"));
        size_t np = json_array_size(jp), T = json_array_size(json_array_get(ji, 0));
        size_t bytes = (size_t)json_integer_value(json_object_get(o, "bytes"));
        const char *reason = NULL;
        int32_t *rid[2] = {NULL, NULL};
        size_t rT = 0;
        int rnp = 0;
        if (!json_is_object(o) || i != (json_int_t)next || next >= n_pairs || !id || strcmp(id, pairs[next].id) != 0 ||
            (!drop && (np == 0 || np > T || json_array_size(ji) != 2 || json_array_size(json_array_get(ji, 1)) != T ||
                       bytes != 2 * np * width * sizeof(float))))
            rc = clens_err(err, CLENS_E_FORMAT,
                           "%s:%ld: not the journal of this capture (pair %zu of the pairs file is '%s'); "
                           "delete %s and %s to start over", j->log, lineno, next, next < n_pairs ? pairs[next].id : "-",
                           j->log, j->data);
        else if (!(rc = render_pair(pr, &pairs[next], &reason, rid, &rT, want, &rnp, err))) {
            /* the line must say what rendering the pair says now (ids, positions,
             * or the drop): a journal edited or written otherwise is refused; the
             * replay then uses the rendering (rid, want) */
            int same = drop ? reason && strcmp(reason, drop) == 0 : !reason && rT == T && (size_t)rnp == np;
            for (size_t k = 0; same && !drop && k < 2 * T; k++)
                same = json_is_integer(json_array_get(json_array_get(ji, k / T), k % T)) &&
                       json_integer_value(json_array_get(json_array_get(ji, k / T), k % T)) == rid[k / T][k % T];
            for (size_t k = 0; same && !drop && k < np; k++)
                same = json_integer_value(json_array_get(jp, k)) == want[k];
            if (!same)
                rc = clens_err(err, CLENS_E_FORMAT, "%s:%ld: pair '%s' does not render as the journal says; "
                               "delete %s and %s to start over", j->log, lineno, pairs[next].id, j->log, j->data);
        }
        if (rc) {
            /* refused above */
        } else if (drop) {
            json_t *c = json_object_get(drops, drop);
            json_object_set_new(drops, drop, json_integer(c ? json_integer_value(c) + 1 : 1));
        } else if (off + bytes > (size_t)st.st_size) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: %lld bytes, but %s commits %zu; delete both to start over",
                           j->data, (long long)st.st_size, j->log, off + bytes);
        } else {
            free(blk);
            if (!(blk = malloc(bytes))) rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
            else if (pread(j->fd, blk, bytes, (off_t)off) != (ssize_t)bytes)
                rc = clens_err(err, CLENS_E_IO, "%s: read failed", j->data);
            const float *src = (const float *)blk;
            for (int e = 0; e < cache->n && !rc; e++) {
                if (grow_append(&arr[e], &cap[e], *n_rows, src, 2 * (int)np, cache->entries[e].width))
                    rc = clens_err(err, CLENS_E_NOMEM, "out of memory for the captured rows");
                src += 2 * np * (size_t)cache->entries[e].width;
            }
            if (!rc) {
                for (int side = 0; side < 2; side++)
                    side_json(rows, seqs, pr->tok, &pairs[next], side, rid[side], T, want, (int)np, *n_rows + side * np);
                *n_rows += 2 * np;
                ++*kept;
                off += bytes;
            }
        }
        free(rid[0]);
        free(rid[1]);
        json_decref(o);
        next++;
    }
    free(blk);
    free(want);
    free(data);
    if (rc) return rc;
    /* rows of a pair whose line never landed: cut, that pair runs again */
    if ((size_t)st.st_size > off && ftruncate(j->fd, (off_t)off))
        return clens_err(err, CLENS_E_IO, "%s: cannot cut to %zu bytes: %s", j->data, off, strerror(errno));
    if (lseek(j->fd, (off_t)off, SEEK_SET) < 0)
        return clens_err(err, CLENS_E_IO, "%s: %s", j->data, strerror(errno));
    j->bytes = off;
    *start = next;
    return CLENS_OK;
}

int clens_capture_pairs(clens_model *m, const clens_capture_params *pp, const char *out_dir,
                        void (*progress)(void *user, long done, long total, long kept), void *user,
                        clens_error *err)
{
    const clens_model_info *in = clens_model_get_info(m);
    clens_tokenizer *tok = NULL;
    clens_chat_template *tmpl = NULL;
    clens_pair *pairs = NULL;
    size_t n_pairs = 0;
    clens_cache cache = {0};
    float **arr = NULL;
    size_t *cap = NULL;
    json_t *rows = json_array(), *seqs = json_array(), *drops = json_object(), *settings = NULL, *doc = NULL;
    int *pos = NULL;
    int rc;
    char pairs_sha[65];
    capture_journal jr = {.fd = -1};
    if (!pp->pairs_path) return clens_err(err, CLENS_E_ARG, "capture: no pairs file");
    if ((rc = clens_sha256_file_hex(pp->pairs_path, pairs_sha, err))) goto done;
    if ((rc = clens_pairs_read_jsonl(pp->pairs_path, &pairs, &n_pairs, err))) goto done;
    if ((rc = clens_hooks_resolve(m, pp->sites, &cache, err))) goto done;
    if ((rc = clens_tokenizer_open(&tok, in->path, err))) goto done;
    if (pp->prompt_chat && (rc = clens_chat_template_open(&tmpl, in->path, err))) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
        rc = clens_err(err, rc, "--prompt chat needs the model's chat template (%s); use --prompt raw", msg);
        goto done;
    }
    /* settings and their identity (rulings R19) */
    settings = json_object();
    json_object_set_new(settings, "command", json_string("capture"));
    json_object_set_new(settings, "model", json_string(in->path));
    json_object_set_new(settings, "pairs", json_string(pp->pairs_path));
    json_object_set_new(settings, "pairs_sha256", json_string(pairs_sha));
    json_object_set_new(settings, "sites", json_string(pp->sites));
    json_object_set_new(settings, "positions", json_string(clens_capture_positions_name(pp->positions)));
    json_object_set_new(settings, "prompt", json_string(pp->prompt_chat ? "chat" : "raw"));
    json_object_set_new(settings, "limit", json_integer(pp->limit));
    json_object_set_new(settings, "max_tokens", json_integer(pp->max_tokens));
    if ((rc = probe_settings_open(out_dir, settings, run_provenance_json(m, tok, tmpl), err))) goto done;
    if (clens_capture_complete(out_dir)) goto done; /* the same settings, finished: nothing to redo */

    arr = calloc((size_t)cache.n, sizeof *arr);
    cap = calloc((size_t)cache.n, sizeof *cap);
    int maxT = pp->max_tokens > 0 ? pp->max_tokens : in->max_pos;
    pos = malloc(sizeof(int) * (size_t)(maxT > 0 ? maxT : 1));
    if (!arr || !cap || !pos || !rows || !drops) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    size_t n_rows = 0, row_width = 0;
    long kept = 0;
    for (int e = 0; e < cache.n; e++) row_width += (size_t)cache.entries[e].width;
    size_t start = 0;
    pair_render pr = {tok, tmpl, pp->prompt_chat, maxT, pp->positions};
    if ((rc = journal_open(&jr, out_dir, pairs, n_pairs, &pr, &cache, arr, cap, rows, seqs, drops, &n_rows, &kept,
                           &start, err)))
        goto done;
    if (start && progress) progress(user, (long)start, (long)n_pairs, kept);
    for (size_t i = start; i < n_pairs && (pp->limit <= 0 || kept < pp->limit); i++) {
        const char *reason = NULL;
        int32_t *ids[2] = {NULL, NULL};
        size_t T = 0;
        int np = 0;
        if ((rc = render_pair(&pr, &pairs[i], &reason, ids, &T, pos, &np, err))) goto done;
        json_t *line = json_object();
        json_object_set_new(line, "i", json_integer((json_int_t)i));
        json_object_set_new(line, "pair", json_string(pairs[i].id));
        if (reason) {
            json_t *c = json_object_get(drops, reason);
            json_object_set_new(drops, reason, json_integer(c ? json_integer_value(c) + 1 : 1));
            json_object_set_new(line, "drop", json_string(reason));
        }
        for (int side = 0; side < 2 && !reason && !rc; side++) {
            if ((rc = clens_run_with_cache(m, ids[side], (int)T, pos, np, &cache, NULL, err))) break;
            for (int e = 0; e < cache.n && !rc; e++)
                if (grow_append(&arr[e], &cap[e], n_rows + (size_t)side * np, cache.entries[e].data, np,
                                cache.entries[e].width))
                    rc = clens_err(err, CLENS_E_NOMEM, "out of memory for the captured rows");
        }
        if (!reason && !rc) {
            json_t *pj = json_array(), *ij = json_array();
            for (int k = 0; k < np; k++) json_array_append_new(pj, json_integer(pos[k]));
            for (int side = 0; side < 2; side++) {
                json_t *a = json_array();
                for (size_t t = 0; t < T; t++) json_array_append_new(a, json_integer(ids[side][t]));
                json_array_append_new(ij, a);
            }
            json_object_set_new(line, "pos", pj);
            json_object_set_new(line, "ids", ij);
            json_object_set_new(line, "bytes", json_integer((json_int_t)(2 * (size_t)np * row_width * sizeof(float))));
            rc = journal_write_rows(&jr, arr, &cache, n_rows, 2 * np, err);
        }
        if (!rc) {
            char *txt = json_dumps(line, JSON_COMPACT);
            rc = txt ? clens_append_line_durable(jr.log, txt, err) : clens_err(err, CLENS_E_NOMEM, "out of memory");
            free(txt);
        }
        json_decref(line);
        if (!reason && !rc) {
            for (int side = 0; side < 2; side++)
                side_json(rows, seqs, tok, &pairs[i], side, ids[side], T, pos, np, n_rows + (size_t)side * np);
            n_rows += 2 * (size_t)np;
        }
        free(ids[0]);
        free(ids[1]);
        if (rc) goto done;
        if (!reason) kept++;
        if (progress) progress(user, (long)i + 1, (long)n_pairs, kept);
    }
    if (kept == 0) { rc = clens_err(err, CLENS_E_ARG, "capture: no usable pair in %s", pp->pairs_path); goto done; }
    json_t *files = json_array();
    char path[4096];
    for (int e = 0; e < cache.n && !rc; e++) {
        clens_cache_entry *ce = &cache.entries[e];
        char fname[160];
        snprintf(fname, sizeof fname, "%s.npy", ce->name);
        snprintf(path, sizeof path, "%s/%s", out_dir, fname);
        int64_t shape[2] = {(int64_t)n_rows, ce->width};
        rc = npy_write_f32(path, arr[e], shape, 2, err);
        json_t *f = json_object();
        json_object_set_new(f, "hook", json_string(ce->name));
        json_object_set_new(f, "file", json_string(fname));
        json_object_set_new(f, "layer", json_integer(ce->layer));
        int depth = probe_hook_depth(ce->name);
        json_object_set_new(f, "depth", depth >= 0 ? json_integer(depth) : json_null());
        json_object_set_new(f, "width", json_integer(ce->width));
        json_array_append_new(files, f);
    }
    doc = json_object();
    json_object_set_new(doc, "schema", json_string("clens-capture/1"));
    json_object_set_new(doc, "model", json_string(in->path));
    json_object_set_new(doc, "n_layers", json_integer(in->n_layers));
    json_object_set_new(doc, "d_model", json_integer(in->d_model));
    json_object_set_new(doc, "positions", json_string(clens_capture_positions_name(pp->positions)));
    json_object_set_new(doc, "prompt", json_string(pp->prompt_chat ? "chat" : "raw"));
    json_object_set_new(doc, "n_pairs", json_integer(kept));
    json_object_set_new(doc, "n_rows", json_integer((json_int_t)n_rows));
    json_object_set_new(doc, "dropped", json_incref(drops));
    json_object_set_new(doc, "files", files);
    json_object_set(doc, "rows", rows);
    json_object_set(doc, "sequences", seqs);
    if (!rc) rc = probe_write_json(out_dir, "index.json", doc, err);
    if (!rc) { /* index.json is the result now: the journal goes */
        unlink(jr.data);
        unlink(jr.log);
    }
done:
    if (jr.fd >= 0) close(jr.fd);
    if (arr)
        for (int e = 0; e < cache.n; e++) free(arr[e]);
    free(arr);
    free(cap);
    free(pos);
    json_decref(rows);
    json_decref(seqs);
    json_decref(drops);
    json_decref(settings);
    json_decref(doc);
    clens_cache_free(&cache);
    clens_pairs_free(pairs, n_pairs);
    clens_chat_template_free(tmpl);
    clens_tokenizer_free(tok);
    return rc;
}
