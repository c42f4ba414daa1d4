/*
 * rng.h: the one seeded generator step of the project, splitmix64 (Steele,
 * Lea and Flood; Vigna's reference constants). Pair corruption, traces,
 * sampling seeds, bootstrap seeds and training initialisation all draw from
 * it, so a seed means the same stream everywhere.
 */
#ifndef CLENS_BASE_RNG_H
#define CLENS_BASE_RNG_H

#include <stdint.h>

/* Advances *state and returns its next 64-bit output. */
static inline uint64_t clens_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

#endif
