/*
 * sample.c: greedy and seeded sampling of the next token (sample.h).
 */
#include "base/sample.h"

#include <math.h>
#include <stdlib.h>

#include "base/rng.h"

void clens_rng_stream(clens_rng *r, uint64_t seed, int stream)
{
    uint64_t s = seed ^ (0x51ed270b27bd3c1dULL * (uint64_t)(stream + 1));
    for (int k = 0; k < 4; k++) r->s[k] = clens_splitmix64(&s);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** (Blackman and Vigna) */
static uint64_t rng_next(clens_rng *r)
{
    uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45);
    return res;
}

static double rng_uniform(clens_rng *r) { return (rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

typedef struct { float p; int id; } cand;

static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id - y->id;
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

size_t clens_sample_scratch_bytes(int V) { return sizeof(cand) * (size_t)(V > 0 ? V : 1); }

int clens_sample_next(const float *logits, int V, float temperature, int top_k, float top_p, clens_rng *r,
                      void *scratch)
{
    if (temperature <= 0.0f) return argmax(logits, V);
    cand *c = scratch;
    float mx = logits[argmax(logits, V)];
    for (int i = 0; i < V; i++) {
        c[i].p = expf((logits[i] - mx) / temperature);
        c[i].id = i;
    }
    qsort(c, V, sizeof *c, cmp_cand);
    int n = V;
    if (top_k > 0 && top_k < n) n = top_k;
    if (top_p < 1.0f) {
        double acc = 0, tot = 0;
        for (int i = 0; i < n; i++) tot += c[i].p;
        for (int i = 0; i < n; i++) {
            acc += c[i].p;
            if (acc >= top_p * tot) { n = i + 1; break; }
        }
    }
    double sum = 0;
    for (int i = 0; i < n; i++) sum += c[i].p;
    double u = rng_uniform(r) * sum, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += c[i].p;
        if (u < acc) return c[i].id;
    }
    return c[n - 1].id;
}
