/*
 * tok_bpe.c: the BPE model. Hash maps (token string -> id, merge pair ->
 * (rank, merged id)), the per-thread word cache, and the merge loop.
 *
 * The merge order is the reference's (HF tokenizers models/bpe/word.rs
 * Word::merge_all): repeatedly merge the adjacent pair with the lowest rank,
 * the leftmost one on ties. Two implementations give the same result: a
 * direct scan for short words (cheap for the usual 1-10 symbols) and the
 * reference's heap over (rank, position) with lazily invalidated entries for
 * long ones (O(n log n) on e.g. 10,000 spaces). A unit test checks that they
 * agree.
 */
#include "tokenizer/tok_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------- string map */

static uint32_t pow2_at_least(uint64_t x)
{
    uint32_t p = 16;
    while (p < x && p < (1u << 31)) p <<= 1;
    return p;
}

int tok_strmap_init(tok_strmap *m, uint32_t expected)
{
    memset(m, 0, sizeof *m);
    uint32_t cap = pow2_at_least((uint64_t)expected * 2 + 2);
    m->slots = calloc(cap, sizeof *m->slots);
    m->cap = expected ? expected : 16;
    m->ents = malloc(m->cap * sizeof *m->ents);
    m->arena_cap = (size_t)m->cap * 8 + 64;
    m->arena = malloc(m->arena_cap);
    if (!m->slots || !m->ents || !m->arena) {
        tok_strmap_free(m);
        return -1;
    }
    m->mask = cap - 1;
    return 0;
}

void tok_strmap_free(tok_strmap *m)
{
    free(m->slots);
    free(m->ents);
    free(m->arena);
    memset(m, 0, sizeof *m);
}

int32_t tok_strmap_get(const tok_strmap *m, const char *k, size_t n)
{
    if (!m->slots) return -1;
    uint64_t h = tok_hash_bytes(k, n);
    for (uint32_t i = (uint32_t)h & m->mask;; i = (i + 1) & m->mask) {
        uint32_t s = m->slots[i];
        if (!s) return -1;
        const struct tok_strent *e = &m->ents[s - 1];
        if (e->hash == h && e->len == n && memcmp(m->arena + e->off, k, n) == 0) return e->val;
    }
}

static int strmap_grow(tok_strmap *m)
{
    uint32_t cap = (m->mask + 1) * 2;
    uint32_t *ns = calloc(cap, sizeof *ns);
    if (!ns) return -1;
    for (uint32_t e = 0; e < m->n; e++)
        for (uint32_t i = (uint32_t)m->ents[e].hash & (cap - 1);; i = (i + 1) & (cap - 1))
            if (!ns[i]) { ns[i] = e + 1; break; }
    free(m->slots);
    m->slots = ns;
    m->mask = cap - 1;
    return 0;
}

int tok_strmap_put(tok_strmap *m, const char *k, size_t n, int32_t val)
{
    uint64_t h = tok_hash_bytes(k, n);
    uint32_t i;
    for (i = (uint32_t)h & m->mask; m->slots[i]; i = (i + 1) & m->mask) {
        struct tok_strent *e = &m->ents[m->slots[i] - 1];
        if (e->hash == h && e->len == n && memcmp(m->arena + e->off, k, n) == 0) {
            e->val = val;
            return 0;
        }
    }
    if (m->n == m->cap) {
        uint32_t nc = m->cap * 2;
        struct tok_strent *ne = realloc(m->ents, nc * sizeof *ne);
        if (!ne) return -1;
        m->ents = ne;
        m->cap = nc;
    }
    if (m->arena_len + n + 1 > m->arena_cap) {
        size_t nc = m->arena_cap * 2 + n + 1;
        char *na = realloc(m->arena, nc);
        if (!na) return -1;
        m->arena = na;
        m->arena_cap = nc;
    }
    memcpy(m->arena + m->arena_len, k, n);
    m->arena[m->arena_len + n] = 0;
    struct tok_strent *e = &m->ents[m->n];
    e->hash = h;
    e->off = (uint32_t)m->arena_len;
    e->len = (uint32_t)n;
    e->val = val;
    m->arena_len += n + 1;
    m->slots[i] = ++m->n;
    if ((uint64_t)m->n * 2 > m->mask) return strmap_grow(m);
    return 0;
}

/* -------------------------------------------------------------- pair map */

int tok_pairmap_init(tok_pairmap *m, uint32_t expected)
{
    uint32_t cap = pow2_at_least((uint64_t)expected * 2 + 2);
    m->slots = calloc(cap, sizeof *m->slots);
    m->mask = cap - 1;
    m->n = 0;
    return m->slots ? 0 : -1;
}

void tok_pairmap_free(tok_pairmap *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static int pairmap_insert(tok_pairmap *m, uint64_t key, int32_t rank, int32_t id)
{
    uint64_t h = key * 0x9E3779B97F4A7C15ULL;
    h ^= h >> 29;
    for (uint64_t i = h & m->mask;; i = (i + 1) & m->mask) {
        struct tok_pairent *e = &m->slots[i];
        if (e->key == key) { e->rank = rank; e->id = id; return 0; }
        if (e->key == 0) {
            e->key = key;
            e->rank = rank;
            e->id = id;
            m->n++;
            return 1;
        }
    }
}

int tok_pairmap_put(tok_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t id)
{
    uint64_t key = ((uint64_t)(uint32_t)(a + 1) << 32) | (uint32_t)(b + 1);
    if ((uint64_t)(m->n + 1) * 2 > m->mask) {
        tok_pairmap big;
        uint64_t cap = (m->mask + 1) * 2;
        big.slots = calloc(cap, sizeof *big.slots);
        if (!big.slots) return -1;
        big.mask = cap - 1;
        big.n = 0;
        for (uint64_t i = 0; i <= m->mask; i++)
            if (m->slots[i].key) pairmap_insert(&big, m->slots[i].key, m->slots[i].rank, m->slots[i].id);
        free(m->slots);
        *m = big;
    }
    pairmap_insert(m, key, rank, id);
    return 0;
}

/* ------------------------------------------------------------ word cache */

#define CACHE_MAX_ENTRIES (1u << 16)
#define CACHE_MAX_KEY 256
#define CACHE_MAX_BYTES ((size_t)16 << 20)

void tok_cache_free(tok_cache *c)
{
    free(c->slots);
    free(c->ents);
    free(c->keys);
    free(c->vals);
    memset(c, 0, sizeof *c);
}

static void cache_clear(tok_cache *c)
{
    if (c->slots) memset(c->slots, 0, (size_t)(c->mask + 1) * sizeof *c->slots);
    c->n = 0;
    c->keys_len = 0;
    c->vals_len = 0;
}

static const struct tok_cent *cache_get(const tok_cache *c, const char *k, size_t n, uint64_t h)
{
    if (!c->slots) return NULL;
    for (uint32_t i = (uint32_t)h & c->mask;; i = (i + 1) & c->mask) {
        uint32_t s = c->slots[i];
        if (!s) return NULL;
        const struct tok_cent *e = &c->ents[s - 1];
        if (e->hash == h && e->klen == n && memcmp(c->keys + e->koff, k, n) == 0) return e;
    }
}

static void cache_put(tok_cache *c, const char *k, size_t n, uint64_t h, const int32_t *v, size_t nv)
{
    if (!c->slots) {
        uint32_t cap = CACHE_MAX_ENTRIES * 2;
        c->slots = calloc(cap, sizeof *c->slots);
        c->ents = malloc(CACHE_MAX_ENTRIES * sizeof *c->ents);
        c->keys_cap = 1 << 20;
        c->keys = malloc(c->keys_cap);
        c->vals_cap = 1 << 18;
        c->vals = malloc(c->vals_cap * sizeof *c->vals);
        if (!c->slots || !c->ents || !c->keys || !c->vals) { tok_cache_free(c); return; }
        c->mask = cap - 1;
        c->cap = CACHE_MAX_ENTRIES;
    }
    if (c->n >= c->cap || c->keys_len + n > CACHE_MAX_BYTES || (c->vals_len + nv) * sizeof(int32_t) > CACHE_MAX_BYTES)
        cache_clear(c);
    if (c->keys_len + n > c->keys_cap) {
        size_t nc = c->keys_cap * 2;
        char *nk = realloc(c->keys, nc);
        if (!nk) return;
        c->keys = nk;
        c->keys_cap = nc;
    }
    if (c->vals_len + nv > c->vals_cap) {
        size_t nc = c->vals_cap * 2;
        int32_t *nvv = realloc(c->vals, nc * sizeof *nvv);
        if (!nvv) return;
        c->vals = nvv;
        c->vals_cap = nc;
    }
    uint32_t i;
    for (i = (uint32_t)h & c->mask; c->slots[i]; i = (i + 1) & c->mask) {}
    struct tok_cent *e = &c->ents[c->n];
    e->hash = h;
    e->koff = (uint32_t)c->keys_len;
    e->klen = (uint32_t)n;
    e->voff = (uint32_t)c->vals_len;
    e->vlen = (uint32_t)nv;
    memcpy(c->keys + c->keys_len, k, n);
    c->keys_len += n;
    memcpy(c->vals + c->vals_len, v, nv * sizeof *v);
    c->vals_len += nv;
    c->slots[i] = ++c->n;
}

/* ----------------------------------------------------------------- merge */

int tok_state_reserve_syms(tok_state *st, size_t n)
{
    if (n <= st->sym_cap) return 0;
    size_t nc = st->sym_cap ? st->sym_cap : 64;
    while (nc < n) nc *= 2;
    int32_t **arrs[] = {&st->sym_id, &st->sym_len, &st->sym_prev, &st->sym_next, &st->pair_rank};
    for (size_t k = 0; k < sizeof arrs / sizeof *arrs; k++) {
        int32_t *p = realloc(*arrs[k], nc * sizeof *p);
        if (!p) return -1;
        *arrs[k] = p;
    }
    st->sym_cap = nc;
    return 0;
}

int tok_bpe_merge_naive(const clens_tokenizer *t, tok_state *st, int n)
{
    int32_t *id = st->sym_id, *len = st->sym_len, *rk = st->pair_rank, *nid = st->sym_next;
    for (int i = 0; i + 1 < n; i++) {
        const struct tok_pairent *e = tok_pair_get(&t->merges, id[i], id[i + 1]);
        rk[i] = e ? e->rank : INT32_MAX;
        nid[i] = e ? e->id : -1;
    }
    while (n > 1) {
        int best = -1;
        int32_t br = INT32_MAX;
        for (int i = 0; i + 1 < n; i++)
            if (rk[i] < br) { br = rk[i]; best = i; }
        if (best < 0) break;
        id[best] = nid[best];
        len[best] += len[best + 1];
        int tail = n - best - 2;
        if (tail > 0) {
            memmove(id + best + 1, id + best + 2, (size_t)tail * sizeof *id);
            memmove(len + best + 1, len + best + 2, (size_t)tail * sizeof *len);
            memmove(rk + best + 1, rk + best + 2, (size_t)tail * sizeof *rk);
            memmove(nid + best + 1, nid + best + 2, (size_t)tail * sizeof *nid);
        }
        n--;
        if (best > 0) {
            const struct tok_pairent *e = tok_pair_get(&t->merges, id[best - 1], id[best]);
            rk[best - 1] = e ? e->rank : INT32_MAX;
            nid[best - 1] = e ? e->id : -1;
        }
        if (best + 1 < n) {
            const struct tok_pairent *e = tok_pair_get(&t->merges, id[best], id[best + 1]);
            rk[best] = e ? e->rank : INT32_MAX;
            nid[best] = e ? e->id : -1;
        }
    }
    return n;
}

/* min-heap on (rank, pos) */
static int heap_less(const struct tok_heapent *a, const struct tok_heapent *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static int heap_push(tok_state *st, size_t *hn, int32_t rank, int32_t pos, int32_t id)
{
    if (*hn == st->heap_cap) {
        size_t nc = st->heap_cap ? st->heap_cap * 2 : 256;
        struct tok_heapent *nh = realloc(st->heap, nc * sizeof *nh);
        if (!nh) return -1;
        st->heap = nh;
        st->heap_cap = nc;
    }
    struct tok_heapent *h = st->heap;
    size_t i = (*hn)++;
    h[i].rank = rank;
    h[i].pos = pos;
    h[i].id = id;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&h[i], &h[p])) break;
        struct tok_heapent x = h[i]; h[i] = h[p]; h[p] = x;
        i = p;
    }
    return 0;
}

static struct tok_heapent heap_pop(tok_state *st, size_t *hn)
{
    struct tok_heapent *h = st->heap, top = h[0];
    h[0] = h[--(*hn)];
    size_t i = 0, n = *hn;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && heap_less(&h[l], &h[m])) m = l;
        if (r < n && heap_less(&h[r], &h[m])) m = r;
        if (m == i) break;
        struct tok_heapent x = h[i]; h[i] = h[m]; h[m] = x;
        i = m;
    }
    return top;
}

int tok_bpe_merge_heap(const clens_tokenizer *t, tok_state *st, int n)
{
    int32_t *id = st->sym_id, *len = st->sym_len, *prev = st->sym_prev, *next = st->sym_next;
    size_t hn = 0;
    for (int i = 0; i < n; i++) {
        prev[i] = i - 1;
        next[i] = i + 1 < n ? i + 1 : -1;
    }
    for (int i = 0; i + 1 < n; i++) {
        const struct tok_pairent *e = tok_pair_get(&t->merges, id[i], id[i + 1]);
        if (e && heap_push(st, &hn, e->rank, i, e->id)) return -1;
    }
    while (hn) {
        struct tok_heapent top = heap_pop(st, &hn);
        int p = top.pos;
        if (len[p] == 0 || next[p] < 0) continue;
        int q = next[p];
        const struct tok_pairent *e = tok_pair_get(&t->merges, id[p], id[q]);
        if (!e || e->id != top.id) continue;
        id[p] = top.id;
        len[p] += len[q];
        next[p] = next[q];
        len[q] = 0;
        if (next[q] >= 0) prev[next[q]] = p;
        if (prev[p] >= 0) {
            const struct tok_pairent *e2 = tok_pair_get(&t->merges, id[prev[p]], id[p]);
            if (e2 && heap_push(st, &hn, e2->rank, prev[p], e2->id)) return -1;
        }
        if (next[p] >= 0) {
            const struct tok_pairent *e2 = tok_pair_get(&t->merges, id[p], id[next[p]]);
            if (e2 && heap_push(st, &hn, e2->rank, p, e2->id)) return -1;
        }
    }
    int w = 0;
    for (int i = 0; i < n; i++)
        if (len[i] != 0) { id[w] = id[i]; len[w] = len[i]; w++; }
    return w;
}

int tok_bpe_merge(const clens_tokenizer *t, tok_state *st, int n)
{
    return n <= 48 ? tok_bpe_merge_naive(t, st, n) : tok_bpe_merge_heap(t, st, n);
}

/* ------------------------------------------------------------------ word */

static int wout_reserve(tok_state *st, size_t n)
{
    if (n <= st->wout_cap) return 0;
    size_t nc = st->wout_cap ? st->wout_cap : 256;
    while (nc < n) nc *= 2;
    int32_t *p = realloc(st->wout, nc * sizeof *p);
    if (!p) return -1;
    st->wout = p;
    st->wout_cap = nc;
    return 0;
}

static int buf_reserve(char **b, size_t *cap, size_t n)
{
    if (n <= *cap) return 0;
    size_t nc = *cap ? *cap : 256;
    while (nc < n) nc *= 2;
    char *p = realloc(*b, nc);
    if (!p) return -1;
    *b = p;
    *cap = nc;
    return 0;
}

/* Initial symbols for the general path (HF BPE::merge_word): one per
 * character of the model string, with continuing_subword_prefix /
 * end_of_word_suffix, byte_fallback and unk handling. For byte-level
 * tokenizers the model string is the GPT-2 mapped form of the word and each
 * character is one unit (one byte of the word); otherwise a character's
 * units are its UTF-8 bytes. Returns the symbol count or -1. */
static int initial_symbols_general(const clens_tokenizer *t, tok_state *st, const char *w, size_t n)
{
    const char *ms = w;
    size_t mn = n;
    if (t->byte_level) {
        if (buf_reserve(&st->tmp, &st->tmp_cap, 2 * n + 1)) return -1;
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t mc = tok_byte_to_cp((unsigned char)w[i]);
            o += (size_t)tok_utf8_enc(mc, st->tmp + o);
        }
        ms = st->tmp;
        mn = o;
    }
    if (tok_state_reserve_syms(st, 4 * mn + 8)) return -1;
    size_t pl = t->cont_prefix ? strlen(t->cont_prefix) : 0, sl = t->eow_suffix ? strlen(t->eow_suffix) : 0;
    char key[64];
    int ns = 0;
    int32_t unk_id = -1, unk_len = 0;
    int have_unk = 0;
    for (size_t i = 0; i < mn;) {
        uint32_t cp;
        int cl = tok_utf8_dec((const unsigned char *)ms + i, &cp);
        int units = t->byte_level ? 1 : cl;
        int first = i == 0, last = i + (size_t)cl >= mn;
        size_t kl = 0;
        if (!first && pl) { if (pl > 40) return -1; memcpy(key, t->cont_prefix, pl); kl = pl; }
        memcpy(key + kl, ms + i, (size_t)cl);
        kl += (size_t)cl;
        if (last && sl) { if (kl + sl > sizeof key) return -1; memcpy(key + kl, t->eow_suffix, sl); kl += sl; }
        i += (size_t)cl;
        int32_t id = tok_strmap_get(&t->vocab, key, kl);
        if (id >= 0) {
            if (have_unk) { st->sym_id[ns] = unk_id; st->sym_len[ns++] = unk_len; have_unk = 0; }
            st->sym_id[ns] = id;
            st->sym_len[ns++] = units;
            continue;
        }
        if (t->byte_fallback) {
            int32_t fb[64];
            int ok = 1;
            for (size_t k = 0; k < kl && ok; k++) {
                char hx[8];
                snprintf(hx, sizeof hx, "<0x%02X>", (unsigned char)key[k]);
                fb[k] = tok_strmap_get(&t->vocab, hx, 6);
                ok = fb[k] >= 0;
            }
            if (ok) {
                int rem = units;
                for (size_t k = 0; k < kl; k++) {
                    st->sym_id[ns] = fb[k];
                    st->sym_len[ns++] = rem > 0 ? 1 : 0;
                    rem--;
                }
                if (rem > 0) st->sym_len[ns - 1] += rem;
                continue;
            }
        }
        if (t->unk_id >= 0) {
            if (have_unk && t->fuse_unk) unk_len += units;
            else {
                if (have_unk) { st->sym_id[ns] = unk_id; st->sym_len[ns++] = unk_len; }
                unk_id = t->unk_id;
                unk_len = units;
                have_unk = 1;
            }
        }
        /* no unk: the character is dropped, as in the reference */
    }
    if (have_unk) { st->sym_id[ns] = unk_id; st->sym_len[ns++] = unk_len; }
    return ns;
}

int tok_bpe_word(const clens_tokenizer *t, tok_state *st, const char *w, size_t n, int pre_space)
{
    size_t m = n + (pre_space ? 1 : 0);
    const char *word = w;
    if (pre_space) {
        if (buf_reserve(&st->word, &st->word_cap, m + 1)) return -1;
        st->word[0] = ' ';
        memcpy(st->word + 1, w, n);
        word = st->word;
    }
    if (m == 0) return 0;
    if (t->ignore_merges) {
        int32_t id = t->byte_level ? tok_strmap_get(&t->raw_vocab, word, m) : tok_strmap_get(&t->vocab, word, m);
        if (id >= 0) {
            if (wout_reserve(st, 2)) return -1;
            st->wout[0] = id;
            st->wout[1] = (int32_t)m;
            return 1;
        }
    }
    uint64_t h = 0;
    int cacheable = m <= CACHE_MAX_KEY;
    if (cacheable) {
        h = tok_hash_bytes(word, m);
        const struct tok_cent *e = cache_get(&st->cache, word, m, h);
        if (e) {
            if (wout_reserve(st, e->vlen)) return -1;
            memcpy(st->wout, st->cache.vals + e->voff, e->vlen * sizeof(int32_t));
            return (int)(e->vlen / 2);
        }
    }
    int ns;
    int fast = t->byte_level && !t->cont_prefix && !t->eow_suffix;
    if (fast) {
        if (tok_state_reserve_syms(st, m)) return -1;
        for (size_t i = 0; i < m; i++) {
            int32_t id = t->byte_id[(unsigned char)word[i]];
            if (id < 0) { fast = 0; break; }
            st->sym_id[i] = id;
            st->sym_len[i] = 1;
        }
        ns = (int)m;
    }
    if (!fast) {
        ns = initial_symbols_general(t, st, word, m);
        if (ns < 0) return -1;
    }
    ns = tok_bpe_merge(t, st, ns);
    if (ns < 0) return -1;
    if (wout_reserve(st, 2 * (size_t)ns)) return -1;
    for (int i = 0; i < ns; i++) {
        st->wout[2 * i] = st->sym_id[i];
        st->wout[2 * i + 1] = st->sym_len[i];
    }
    if (cacheable) cache_put(&st->cache, word, m, h, st->wout, 2 * (size_t)ns);
    return ns;
}
