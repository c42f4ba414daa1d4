/*
 * forward.c: the inference context (KV caches + batch scratch, planned up
 * front, no allocation inside the forward pass) and the forward pass with
 * hook points.
 *
 * A batch is a list of rows, one token each (clens_row). Committed rows
 * append their K/V to their sequence's cache; ephemeral rows attend to the
 * cache prefix [0, pos) plus their own K/V and write nothing, so many
 * variants of one final token (the patching engine's rows) can share one
 * cache. Rows may start at a later block (start_layer) from a given residual
 * stream. Every row is computed independently except through the cache, so
 * on the portable kernel path a row's result does not depend on the batch.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/base.h"
#include "model/model.h"

size_t ctx_kv_offset(const clens_ctx *ctx, int seq, int layer, int head, int pos)
{
    const model_config *c = &ctx->m->cfg;
    assert(seq >= 0 && seq < ctx->n_seq && layer >= 0 && layer < c->n_layers && pos >= 0 && pos <= ctx->n_ctx);
    assert(head >= 0 && head < c->n_kv_heads);
    return ((((size_t)seq * c->n_layers + layer) * c->n_kv_heads + head) * ctx->n_ctx + pos) * (size_t)c->head_dim;
}

void clens_ctx_free(clens_ctx *ctx)
{
    if (!ctx) return;
    free(ctx->seq_len);
    free(ctx->k_cache);
    free(ctx->v_cache);
    free(ctx->x);
    free(ctx->h);
    free(ctx->q);
    free(ctx->k);
    free(ctx->v);
    free(ctx->z);
    free(ctx->g);
    free(ctx->u);
    free(ctx->norm_row);
    free(ctx->row_ids);
    free(ctx->next_len);
    free(ctx->prefill_rows);
    free(ctx->rope_cs);
    free(ctx->att_rows);
    free(ctx);
}

int clens_ctx_new(clens_ctx **out, clens_model *m, int n_seq, int n_ctx, int max_rows, clens_error *err)
{
    const model_config *c = &m->cfg;
    *out = NULL;
    if (n_seq < 1 || n_ctx < 1 || max_rows < 1)
        return clens_err(err, CLENS_E_ARG, "context: n_seq, n_ctx and max_rows must be positive");
    clens_ctx *ctx = clens_calloc(1, sizeof *ctx);
    if (!ctx) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    ctx->m = m;
    ctx->n_seq = n_seq;
    ctx->n_ctx = n_ctx;
    ctx->max_rows = max_rows;
    ctx->n_threads = m->params.n_threads;
    size_t kvw = (size_t)c->n_kv_heads * c->head_dim, R = (size_t)max_rows;
    size_t kv = (size_t)n_seq * c->n_layers * (size_t)n_ctx * kvw;
    size_t C = c->d_model, HD = (size_t)c->n_heads * c->head_dim, F = c->d_ff;
    ctx->seq_len = clens_calloc(n_seq, sizeof(int));
    ctx->k_cache = clens_malloc(kv * sizeof(float));
    ctx->v_cache = clens_malloc(kv * sizeof(float));
    ctx->x = clens_malloc(R * C * sizeof(float));
    ctx->h = clens_malloc(R * (C > HD ? C : HD) * sizeof(float));
    ctx->q = clens_malloc(R * HD * sizeof(float));
    ctx->k = clens_malloc(R * kvw * sizeof(float));
    ctx->v = clens_malloc(R * kvw * sizeof(float));
    ctx->z = clens_malloc(R * HD * sizeof(float));
    ctx->g = clens_malloc(R * F * sizeof(float));
    ctx->u = clens_malloc(R * F * sizeof(float));
    ctx->norm_row = clens_malloc(R * C * sizeof(float));
    ctx->row_ids = clens_malloc(R * sizeof(int));
    ctx->next_len = clens_calloc(n_seq, sizeof(int));
    ctx->prefill_rows = clens_calloc(R, sizeof(clens_row));
    ctx->rope_cs = clens_calloc((size_t)c->head_dim, sizeof(float));
    ctx->att_rows = clens_calloc(R, sizeof(kern_att_row));
    if (!ctx->att_rows || !ctx->next_len || !ctx->prefill_rows || !ctx->rope_cs || !ctx->seq_len || !ctx->k_cache ||
        !ctx->v_cache || !ctx->x || !ctx->h || !ctx->q || !ctx->k || !ctx->v || !ctx->z || !ctx->g || !ctx->u ||
        !ctx->norm_row || !ctx->row_ids) {
        clens_ctx_free(ctx);
        return clens_err(err, CLENS_E_NOMEM, "context: out of memory for %d sequences x %d tokens (KV cache %.1f MiB)",
                         n_seq, n_ctx, 2.0 * kv * sizeof(float) / (1 << 20));
    }
    for (int i = 0; i < max_rows; i++) ctx->row_ids[i] = i;
    *out = ctx;
    return CLENS_OK;
}

int clens_ctx_seq_len(const clens_ctx *ctx, int seq)
{
    return seq >= 0 && seq < ctx->n_seq ? ctx->seq_len[seq] : -1;
}

void clens_ctx_seq_clear(clens_ctx *ctx, int seq)
{
    if (seq >= 0 && seq < ctx->n_seq) ctx->seq_len[seq] = 0;
}

int clens_ctx_seq_copy(clens_ctx *ctx, int dst, int src, int n, clens_error *err)
{
    if (dst < 0 || dst >= ctx->n_seq || src < 0 || src >= ctx->n_seq || n < 0 || n > ctx->seq_len[src])
        return clens_err(err, CLENS_E_ARG, "context: bad sequence copy %d -> %d of %d positions", src, dst, n);
    if (dst != src) {
        const model_config *c = &ctx->m->cfg;
        size_t bytes = (size_t)n * c->head_dim * sizeof(float);
        for (int l = 0; l < c->n_layers; l++)
            for (int g = 0; g < c->n_kv_heads; g++) {
                size_t to = ctx_kv_offset(ctx, dst, l, g, 0), from = ctx_kv_offset(ctx, src, l, g, 0);
                memcpy(ctx->k_cache + to, ctx->k_cache + from, bytes);
                memcpy(ctx->v_cache + to, ctx->v_cache + from, bytes);
            }
    }
    ctx->seq_len[dst] = n;
    return CLENS_OK;
}

static void call_hook(const clens_forward_args *a, clens_hook_point p, int layer, int width, int n_rows,
                      const int *rows, const clens_row *batch, float *data)
{
    if (!a || !a->hook || n_rows == 0) return;
    assert(width > 0 && n_rows > 0 && rows && batch && data);
    clens_hook_event ev = {p, layer, width, n_rows, rows, batch, data};
    a->hook(a->hook_user, &ev);
}

static int validate(clens_ctx *ctx, const clens_row *rows, int n, const clens_forward_args *args, int *next,
                    clens_error *err)
{
    const model_config *c = &ctx->m->cfg;
    if (n < 1 || n > ctx->max_rows)
        return clens_err(err, CLENS_E_ARG, "forward: %d rows, the context holds 1..%d", n, ctx->max_rows);
    for (int s = 0; s < ctx->n_seq; s++) next[s] = ctx->seq_len[s];
    for (int i = 0; i < n; i++) {
        const clens_row *r = &rows[i];
        if (r->seq < 0 || r->seq >= ctx->n_seq)
            return clens_err(err, CLENS_E_ARG, "forward: row %d: sequence %d out of range [0, %d)", i, r->seq,
                             ctx->n_seq);
        if (r->pos < 0 || r->pos >= ctx->n_ctx || r->pos >= c->max_pos)
            return clens_err(err, CLENS_E_ARG,
                             "forward: row %d: position %d beyond the context (%d tokens; max_position_embeddings %d)",
                             i, r->pos, ctx->n_ctx, c->max_pos);
        if (r->start_layer < 0 || r->start_layer > c->n_layers)
            return clens_err(err, CLENS_E_ARG, "forward: row %d: start_layer %d out of range [0, %d]", i,
                             r->start_layer, c->n_layers);
        if (i && r->start_layer < rows[i - 1].start_layer)
            return clens_err(err, CLENS_E_ARG, "forward: rows must be sorted by start_layer");
        if (r->start_layer == 0 && (r->token < 0 || r->token >= c->vocab))
            return clens_err(err, CLENS_E_ARG, "forward: row %d: token id %d outside the vocabulary [0, %d)", i,
                             r->token, c->vocab);
        if (r->start_layer > 0 && (!args || !args->init_resid))
            return clens_err(err, CLENS_E_ARG, "forward: row %d starts at block %d but no init_resid was given", i,
                             r->start_layer);
        if (r->commit) {
            if (r->start_layer != 0)
                return clens_err(err, CLENS_E_ARG, "forward: row %d: committed rows must start at the embedding", i);
            if (r->pos != next[r->seq])
                return clens_err(err, CLENS_E_ARG,
                                 "forward: row %d: committed position %d but sequence %d continues at %d", i, r->pos,
                                 r->seq, next[r->seq]);
            next[r->seq]++;
        }
    }
    for (int i = 0; i < n; i++)
        if (!rows[i].commit && rows[i].pos > next[rows[i].seq])
            return clens_err(err, CLENS_E_ARG, "forward: row %d: ephemeral position %d but sequence %d has %d cached",
                             i, rows[i].pos, rows[i].seq, next[rows[i].seq]);
    return CLENS_OK;
}

/* In-place RMSNorm of each head vector (Qwen3) or of the whole row (OLMo). */
static void qk_norm(const clens_model *m, float *x, const float *w, int n, int heads)
{
    const model_config *c = &m->cfg;
    assert(x && w && n > 0 && heads > 0);
    if (c->arch->qknorm == QKNORM_PER_HEAD) kern_rmsnorm(x, x, w, (float)c->rms_eps, n * heads, c->head_dim);
    else kern_rmsnorm(x, x, w, (float)c->rms_eps, n, heads * c->head_dim);
}

/* Attention of row i (query ctx->q row i) over its sequence's cache in layer
 * l; an uncommitted row attends the cache before it plus its own k / v. */
static kern_att_row attention_row(const clens_ctx *ctx, const layer_weights *w, const clens_row *r, int i, int l)
{
    const model_config *c = &ctx->m->cfg;
    const int D = c->head_dim, HD = c->n_heads * D, KVW = c->n_kv_heads * D;
    int lo = w->sliding ? r->pos - c->window + 1 : 0;
    if (lo < 0) lo = 0;
    /* validate() admitted the row: its sequence exists and its position is in the cache */
    assert(i >= 0 && i < ctx->max_rows && r->seq >= 0 && r->seq < ctx->n_seq);
    assert(r->pos >= 0 && r->pos < ctx->n_ctx && lo <= r->pos);
    size_t base = ctx_kv_offset(ctx, r->seq, l, 0, 0);
    return (kern_att_row){
        .out = ctx->z + (size_t)i * HD,
        .q = ctx->q + (size_t)i * HD,
        .kv = {ctx->k_cache + base, ctx->v_cache + base, (size_t)D, (size_t)ctx->n_ctx * D},
        .lo = lo,
        .hi = r->commit ? r->pos + 1 : r->pos,
        .k_self = r->commit ? NULL : ctx->k + (size_t)i * KVW,
        .v_self = r->commit ? NULL : ctx->v + (size_t)i * KVW,
    };
}

static int forward_rows(clens_ctx *ctx, const clens_row *rows, int n, const clens_forward_args *args,
                        clens_error *err);

/* The context's thread count holds for this call only, on the calling
 * thread: another context (or the application) keeps its own. */
int clens_forward(clens_ctx *ctx, const clens_row *rows, int n, const clens_forward_args *args, clens_error *err)
{
    kern_threads_saved saved = kern_threads_push(ctx->n_threads);
    int rc = forward_rows(ctx, rows, n, args, err);
    kern_threads_pop(saved);
    return rc;
}

static int forward_rows(clens_ctx *ctx, const clens_row *rows, int n, const clens_forward_args *args,
                        clens_error *err)
{
    clens_model *m = ctx->m;
    const model_config *c = &m->cfg;
    const int C = c->d_model, H = c->n_heads, Hkv = c->n_kv_heads, D = c->head_dim, F = c->d_ff;
    const int HD = H * D, KVW = Hkv * D;
    const float eps = (float)c->rms_eps, scale = 1.0f / sqrtf((float)D);
    const kern_path kp = m->path_kind;
    int *next = ctx->next_len;
    int rc = validate(ctx, rows, n, args, next, err);
    if (rc) return rc;
    assert(n >= 1 && n <= ctx->max_rows && ctx->x && ctx->h && ctx->row_ids);

    float *x = ctx->x, *h = ctx->h;
    int n0 = 0;
    while (n0 < n && rows[n0].start_layer == 0) n0++;
    for (int i = 0; i < n; i++) {
        float *xi = x + (size_t)i * C;
        if (i < n0) {
            size_t es = m->embed_dtype == CLENS_DTYPE_F32 ? 4 : 2;
            kern_to_f32(xi, (const char *)m->embed + (size_t)rows[i].token * C * es, m->embed_dtype, C);
        } else {
            memcpy(xi, args->init_resid + (size_t)i * C, sizeof(float) * C);
        }
    }
    /* Non-finite checks (nonfinite.c): each point is scanned before its hook
     * sees it; the first NaN/Inf ends the pass, the caches' lengths untouched. */
    if ((rc = forward_check_rows(x, n0, C, rows, NULL, CLENS_HOOK_EMBED, -1, NULL, err))) return rc;
    for (int i = n0; i < n; i++)
        if ((rc = forward_check_rows(x + (size_t)i * C, 1, C, rows, ctx->row_ids + i, CLENS_HOOK_RESID_PRE,
                                     rows[i].start_layer, " (the given init_resid)", err)))
            return rc;
    call_hook(args, CLENS_HOOK_EMBED, -1, C, n0, ctx->row_ids, rows, x);

    int act = n0;
    for (int l = 0; l < c->n_layers; l++) {
        const layer_weights *w = &m->layers[l];
        while (act < n && rows[act].start_layer <= l) act++;
        if (act == 0) continue;
        assert(act <= n && w->q.data && w->o.data && w->down.data); /* rows sorted by start_layer */
        call_hook(args, CLENS_HOOK_RESID_PRE, l, C, act, ctx->row_ids, rows, x);

        /* Attention. Pre-norm blocks read norm(x); OLMo reads x itself. */
        const float *in = x;
        if (w->attn_norm) { kern_rmsnorm(h, x, w->attn_norm, eps, act, C); in = h; }
        const kern_mm_job qkv[3] = {{ctx->q, &w->q, w->q_bias}, {ctx->k, &w->k, w->k_bias},
                                    {ctx->v, &w->v, w->v_bias}};
        kern_matmul_multi(in, act, qkv, 3, kp);
        if (w->q_norm) {
            qk_norm(m, ctx->q, w->q_norm, act, H);
            qk_norm(m, ctx->k, w->k_norm, act, Hkv);
        }
        for (int i = 0; i < act; i++)
            rope_apply(w->rope, ctx->q + (size_t)i * HD, H, ctx->k + (size_t)i * KVW, Hkv, D, rows[i].pos, ctx->rope_cs);
        for (int i = 0; i < act; i++)
            if (rows[i].commit)
                for (int g = 0; g < Hkv; g++) {
                    size_t off = ctx_kv_offset(ctx, rows[i].seq, l, g, rows[i].pos);
                    size_t at = (size_t)i * KVW + (size_t)g * D;
                    memcpy(ctx->k_cache + off, ctx->k + at, sizeof(float) * D);
                    memcpy(ctx->v_cache + off, ctx->v + at, sizeof(float) * D);
                }
        /* One row (decode) splits its heads over the threads; a batch goes
         * head group by head group across its rows (kern_attention_rows_path). */
        if (act == 1) {
            kern_att_row a = attention_row(ctx, w, &rows[0], 0, l);
            kern_attention_row_path(a.out, a.q, &a.kv, a.lo, a.hi, a.k_self, a.v_self, H, Hkv, D, scale, kp);
        } else {
            for (int i = 0; i < act; i++) ctx->att_rows[i] = attention_row(ctx, w, &rows[i], i, l);
            kern_attention_rows_path(ctx->att_rows, act, H, Hkv, D, scale, kp);
        }
        if ((rc = forward_check_rows(ctx->z, act, HD, rows, NULL, CLENS_HOOK_ATTN_Z, l, NULL, err))) return rc;
        call_hook(args, CLENS_HOOK_ATTN_Z, l, HD, act, ctx->row_ids, rows, ctx->z);
        kern_matmul(h, ctx->z, &w->o, w->o_bias, act, kp);
        if (w->post_attn_norm) kern_rmsnorm(h, h, w->post_attn_norm, eps, act, C);
        if ((rc = forward_check_rows(h, act, C, rows, NULL, CLENS_HOOK_ATTN_OUT, l, NULL, err))) return rc;
        call_hook(args, CLENS_HOOK_ATTN_OUT, l, C, act, ctx->row_ids, rows, h);
        for (size_t i = 0; i < (size_t)act * C; i++) x[i] += h[i];

        /* MLP. */
        in = x;
        if (w->mlp_norm) { kern_rmsnorm(h, x, w->mlp_norm, eps, act, C); in = h; }
        const kern_mm_job gate_up[2] = {{ctx->g, &w->gate, NULL}, {ctx->u, &w->up, NULL}};
        kern_matmul_multi(in, act, gate_up, 2, kp);
        kern_swiglu_path(ctx->g, ctx->g, ctx->u, (size_t)act * F, kp);
        kern_matmul(h, ctx->g, &w->down, NULL, act, kp);
        if (w->post_mlp_norm) kern_rmsnorm(h, h, w->post_mlp_norm, eps, act, C);
        if ((rc = forward_check_rows(h, act, C, rows, NULL, CLENS_HOOK_MLP_OUT, l, NULL, err))) return rc;
        call_hook(args, CLENS_HOOK_MLP_OUT, l, C, act, ctx->row_ids, rows, h);
        for (size_t i = 0; i < (size_t)act * C; i++) x[i] += h[i];
        /* Both sublayer outputs were finite: only the sums can have overflowed. */
        if ((rc = forward_check_rows(x, act, C, rows, NULL, CLENS_HOOK_RESID_POST, l, " (the residual sum overflowed)",
                                     err)))
            return rc;
        call_hook(args, CLENS_HOOK_RESID_POST, l, C, act, ctx->row_ids, rows, x);
    }

    if (args && args->out_resid) memcpy(args->out_resid, x, sizeof(float) * (size_t)n * C);

    int nl = 0;
    for (int i = 0; i < n; i++) nl += rows[i].want_logits != 0;
    int need_norm = nl > 0 || (args && args->hook);
    if (need_norm) {
        kern_rmsnorm(ctx->norm_row, x, m->final_norm, eps, n, C);
        if ((rc = forward_check_rows(ctx->norm_row, n, C, rows, NULL, CLENS_HOOK_LN_FINAL, -1, NULL, err))) return rc;
        call_hook(args, CLENS_HOOK_LN_FINAL, -1, C, n, ctx->row_ids, rows, ctx->norm_row);
    }
    if (nl > 0 && args && args->out_logits) {
        int k = 0;
        for (int i = 0; i < n; i++)
            if (rows[i].want_logits) memcpy(h + (size_t)k++ * C, ctx->norm_row + (size_t)i * C, sizeof(float) * C);
        kern_matmul(args->out_logits, h, &m->lm_head, NULL, nl, kp);
        int64_t bad = clens_first_nonfinite(args->out_logits, (size_t)nl * c->vocab);
        if (bad >= 0) {
            int want = (int)(bad / c->vocab), r = 0;
            for (k = 0; r < n; r++)
                if (rows[r].want_logits && k++ == want) break;
            return forward_check_rows(args->out_logits + (size_t)want * c->vocab, 1, c->vocab, rows,
                                      ctx->row_ids + r, CLENS_HOOK_COUNT, -1, NULL, err);
        }
    }
    for (int s = 0; s < ctx->n_seq; s++) ctx->seq_len[s] = next[s];
    return CLENS_OK;
}

void clens_logits_from_resid_rows(const clens_model *m, const float *resid, int n, float *normed, float *logits)
{
    /* Rows go through the unembedding together only where that gives every
     * row the same bits as alone (R3: the site after the last block must
     * reproduce the clean metric exactly); elsewhere one row at a time. */
    int C = m->cfg.d_model, step = kern_matmul_rows_exact(m->path_kind, n) ? n : 1;
    assert(resid && normed && logits && n >= 1);
    kern_rmsnorm(normed, resid, m->final_norm, (float)m->cfg.rms_eps, n, C);
    for (int i = 0; i < n; i += step)
        kern_matmul(logits + (size_t)i * m->cfg.vocab, normed + (size_t)i * C, &m->lm_head, NULL,
                    n - i < step ? n - i : step, m->path_kind);
}

void clens_logits_from_resid(const clens_model *m, const float *resid, float *logits)
{
    /* A stack row for widths up to 8192 (every supported model's), the heap
     * beyond; this call has no status, so an allocation failure gives NaN
     * logits, which every consumer reports as non-finite. */
    float row[8192], *normed = m->cfg.d_model <= 8192 ? row : clens_malloc(sizeof(float) * (size_t)m->cfg.d_model);
    if (!normed) {
        for (int v = 0; v < m->cfg.vocab; v++) logits[v] = NAN;
        return;
    }
    clens_logits_from_resid_rows(m, resid, 1, normed, logits);
    if (normed != row) free(normed);
}

int clens_prefill(clens_ctx *ctx, int seq, const int32_t *ids, int n, float *all_logits, float *last_logits,
                  const clens_forward_args *hooks, clens_error *err)
{
    if (seq < 0 || seq >= ctx->n_seq) return clens_err(err, CLENS_E_ARG, "prefill: sequence %d out of range", seq);
    if (n < 1) return clens_err(err, CLENS_E_ARG, "prefill: empty token sequence");
    int start = ctx->seq_len[seq];
    if (start + n > ctx->n_ctx || start + n > ctx->m->cfg.max_pos)
        return clens_err(err, CLENS_E_ARG,
                         "prompt of %d tokens (after %d cached) is longer than the context (%d tokens; "
                         "max_position_embeddings %d)",
                         n, start, ctx->n_ctx, ctx->m->cfg.max_pos);
    clens_row *rows = ctx->prefill_rows;
    size_t V = (size_t)ctx->m->cfg.vocab;
    for (int done = 0; done < n;) {
        int k = n - done < ctx->max_rows ? n - done : ctx->max_rows;
        int last_chunk = done + k == n;
        for (int i = 0; i < k; i++)
            rows[i] = (clens_row){seq, start + done + i, ids[done + i], 0, 1,
                                  all_logits != NULL || (last_logits && last_chunk && i == k - 1)};
        clens_forward_args a = {0};
        if (hooks) { a.hook = hooks->hook; a.hook_user = hooks->hook_user; }
        if (all_logits) a.out_logits = all_logits + (size_t)done * V;
        else if (last_logits && last_chunk) a.out_logits = last_logits;
        int rc = clens_forward(ctx, rows, k, &a, err);
        if (rc) return rc;
        if (all_logits && last_logits && last_chunk)
            memcpy(last_logits, all_logits + (size_t)(n - 1) * V, sizeof(float) * V);
        done += k;
    }
    return CLENS_OK;
}
