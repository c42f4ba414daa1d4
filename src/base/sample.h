/*
 * sample.h: the next token from logits, greedy or seeded sampling
 * (temperature, top-k, top-p), one xoshiro256** stream per prompt. Shared by
 * clens_generate (src/model/generate.c) and steered generation
 * (src/interp/steer_generate.c), so the same seed draws the same tokens in
 * both.
 */
#ifndef CLENS_BASE_SAMPLE_H
#define CLENS_BASE_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct clens_rng { uint64_t s[4]; } clens_rng;

/* The stream of prompt `stream` (0, 1, ...) for a seed. */
void clens_rng_stream(clens_rng *r, uint64_t seed, int stream);

/* Scratch bytes clens_sample_next needs for a vocabulary of V. */
size_t clens_sample_scratch_bytes(int V);

/* The next id: argmax (lowest id on ties) when temperature <= 0, else a draw
 * from softmax(logits / temperature) cut to the top_k most likely (0 = all)
 * and to the smallest prefix holding top_p of the mass (1 = all). logits are
 * left as they were; scratch holds clens_sample_scratch_bytes(V). */
int clens_sample_next(const float *logits, int V, float temperature, int top_k, float top_p, clens_rng *r,
                      void *scratch);

#endif
