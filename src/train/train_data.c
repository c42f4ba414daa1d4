/*
 * train_data.c: the training examples of `clens train` (docs/train.md).
 * Each GSM8K JSONL line ("question", "answer"; other keys ignored) becomes
 * the seed's raw prompt wrapper + answer,
 *   "Solve this math problem step by step:\n\n" Q "\n\nSolution: " A,
 * tokenized with the tokenizer's special tokens (as src/interp/prompts.c does)
 * and followed by the EOS id. The loss covers the tokens that end inside the
 * answer (a token straddling "Solution: " and the answer, such as " 5", is a
 * target: it carries answer text) and the EOS; the wrapper, the question and
 * any BOS are masked. Examples longer than --seq are truncated. Batches: one
 * example per row, padded to the longest row of the batch; the order is an
 * epoch-wise permutation that is a pure function of (seed, epoch), so the
 * step number alone fixes the batch and resuming needs no RNG state.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "train/train.h"

static const char WRAP_HEAD[] = "Solve this math problem step by step:\n\n";
static const char WRAP_MID[] = "\n\nSolution: ";

static int eos_of(const clens_tokenizer *tok, clens_error *err)
{
    clens_tokenizer_info info;
    if (clens_tokenizer_get_info(tok, &info)) return -1;
    if (info.eos_id >= 0) return info.eos_id;
    /* generation_config.json beside the tokenizer, if any */
    char path[4096];
    snprintf(path, sizeof path, "%s/generation_config.json", info.dir ? info.dir : ".");
    char *txt;
    size_t len;
    clens_error e2;
    if (clens_read_file(path, &txt, &len, &e2)) return -1;
    json_t *j = json_loadb(txt, len, 0, NULL);
    free(txt);
    int id = -1;
    json_t *v = j ? json_object_get(j, "eos_token_id") : NULL;
    if (json_is_integer(v)) id = (int)json_integer_value(v);
    else if (json_is_array(v) && json_is_integer(json_array_get(v, 0))) id = (int)json_integer_value(json_array_get(v, 0));
    json_decref(j);
    (void)err;
    return id;
}

static int add_example(tr_data *d, int *cap, const clens_tokenizer *tok, const char *q, const char *a, int seq,
                       const char *path, long line, clens_error *err)
{
    size_t lq = strlen(q), la = strlen(a), prefix = sizeof WRAP_HEAD - 1 + lq + sizeof WRAP_MID - 1;
    char *text = malloc(prefix + la + 1);
    if (!text) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    snprintf(text, prefix + la + 1, "%s%s%s%s", WRAP_HEAD, q, WRAP_MID, a);
    int32_t *ids = NULL;
    size_t *off = NULL;
    int n = 0;
    int rc = clens_tokenize(tok, text, prefix + la, 1, &ids, &n, &off, err);
    free(text);
    if (rc) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return clens_err(err, rc, "%s:%ld: %s", path, line, msg);
    }
    tr_example ex = {malloc(sizeof(int32_t) * (n + 1)), malloc(n + 1), 0};
    if (!ex.ids || !ex.mask) { free(ids); free(off); free(ex.ids); free(ex.mask); return clens_err(err, CLENS_E_NOMEM, "out of memory"); }
    int has_eos = 0;
    for (int i = 0; i < n; i++) {
        int added = off[2 * i] == 0 && off[2 * i + 1] == 0;
        ex.ids[i] = ids[i];
        ex.mask[i] = !added && off[2 * i + 1] > prefix;
        if (added && i == n - 1 && i > 0 && ids[i] == d->eos_id) { ex.mask[i] = 1; has_eos = 1; }
    }
    ex.n = n;
    if (!has_eos && d->eos_id >= 0) { ex.ids[n] = d->eos_id; ex.mask[n] = 1; ex.n = n + 1; }
    free(ids);
    free(off);
    if (ex.n > seq) ex.n = seq;
    if (d->n_ex == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        tr_example *e = realloc(d->ex, sizeof *e * *cap);
        if (!e) { free(ex.ids); free(ex.mask); return clens_err(err, CLENS_E_NOMEM, "out of memory"); }
        d->ex = e;
    }
    d->ex[d->n_ex++] = ex;
    d->n_tokens += ex.n;
    for (int i = 1; i < ex.n; i++) d->n_targets += ex.mask[i];
    return CLENS_OK;
}

int tr_data_load(tr_data *d, const char *path, const clens_tokenizer *tok, int seq, clens_error *err)
{
    memset(d, 0, sizeof *d);
    d->eos_id = eos_of(tok, err);
    d->pad_id = d->eos_id >= 0 ? d->eos_id : 0;
    char *txt;
    size_t len;
    int rc = clens_read_file(path, &txt, &len, err);
    if (rc) return rc;
    int cap = 0;
    long line = 0;
    for (char *s = txt; s < txt + len;) {
        char *e = memchr(s, '\n', (size_t)(txt + len - s));
        if (!e) e = txt + len;
        line++;
        size_t n = (size_t)(e - s);
        int blank = 1;
        for (size_t i = 0; i < n; i++) blank &= s[i] == ' ' || s[i] == '\t' || s[i] == '\r';
        if (!blank) {
            json_error_t je;
            json_t *j = json_loadb(s, n, 0, &je);
            const char *q = j ? json_string_value(json_object_get(j, "question")) : NULL;
            const char *a = j ? json_string_value(json_object_get(j, "answer")) : NULL;
            if (!j) rc = clens_err(err, CLENS_E_FORMAT, "%s:%ld: %s", path, line, je.text);
            else if (!q || !a)
                rc = clens_err(err, CLENS_E_FORMAT, "%s:%ld: needs string fields \"question\" and \"answer\"", path,
                               line);
            else rc = add_example(d, &cap, tok, q, a, seq, path, line, err);
            json_decref(j);
            if (rc) { free(txt); tr_data_free(d); return rc; }
        }
        s = e + 1;
    }
    free(txt);
    if (d->n_ex == 0) { tr_data_free(d); return clens_err(err, CLENS_E_FORMAT, "%s: no examples", path); }
    if (d->n_targets == 0) {
        tr_data_free(d);
        return clens_err(err, CLENS_E_FORMAT, "%s: no answer tokens to train on (all truncated by --seq?)", path);
    }
    return CLENS_OK;
}

void tr_data_free(tr_data *d)
{
    for (int i = 0; i < d->n_ex; i++) { free(d->ex[i].ids); free(d->ex[i].mask); }
    free(d->ex);
    memset(d, 0, sizeof *d);
}

/* Example at position pos of epoch e's permutation (Fisher-Yates from (seed, e)). */
static int perm_at(const tr_data *d, uint64_t seed, long e, long pos, int *perm, long *perm_epoch)
{
    if (*perm_epoch != e) {
        for (int i = 0; i < d->n_ex; i++) perm[i] = i;
        tr_rng r = {seed ^ (0xD1B54A32D192ED03ull * (uint64_t)(e + 1)), 0, 0};
        for (int i = d->n_ex - 1; i > 0; i--) {
            int j = (int)(tr_rng_u64(&r) % (uint64_t)(i + 1)), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        *perm_epoch = e;
    }
    return perm[pos];
}

void tr_data_batch(const tr_data *d, uint64_t seed, long step, int B, int32_t *ids, uint8_t *mask, int *T)
{
    /* pick lives at the end of perm's block: one allocation, no stack array sized by B */
    int *perm = malloc(sizeof(int) * ((size_t)d->n_ex + (size_t)B)), *pick = perm ? perm + d->n_ex : NULL;
    long pe = -1;
    int Tm = 1;
    for (int i = 0; i < B; i++) {
        long k = step * B + i;
        int pi = perm ? perm_at(d, seed, k / d->n_ex, k % d->n_ex, perm, &pe) : (int)(k % d->n_ex);
        if (pick) pick[i] = pi;
        if (d->ex[pi].n > Tm) Tm = d->ex[pi].n;
    }
    for (int i = 0; i < B; i++) {
        const tr_example *ex = &d->ex[pick ? pick[i] : (int)((step * B + i) % d->n_ex)];
        for (int t = 0; t < Tm; t++) {
            ids[(size_t)i * Tm + t] = t < ex->n ? ex->ids[t] : d->pad_id;
            mask[(size_t)i * Tm + t] = t < ex->n ? ex->mask[t] : 0;
        }
    }
    free(perm);
    *T = Tm;
}
