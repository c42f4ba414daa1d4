/*
 * alloc.c: the library's allocation layer (base/alloc.h): thin wrappers over
 * the C allocator that one counter consults, so a test can make the n-th
 * allocation fail and check that every caller turns the failure into a
 * clean CLENS_E_NOMEM without a leak or a crash (tests/unit/test_alloc_fail.c,
 * docs/reliability.md). In normal use the counter is one relaxed atomic
 * increment per allocation, negligible beside the allocation itself.
 */
#include "base/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long g_count;     /* allocations since the last clens_alloc_fail_nth */
static atomic_long g_fail_at;   /* 0: never fail; n: the n-th allocation fails */
static atomic_int g_failed;     /* the injected failure has happened */

/* 1 if this allocation is the one to fail. */
static int inject(void)
{
    long at = atomic_load_explicit(&g_fail_at, memory_order_relaxed);
    long k = atomic_fetch_add_explicit(&g_count, 1, memory_order_relaxed) + 1;
    if (at > 0 && k == at) {
        atomic_store(&g_failed, 1);
        return 1;
    }
    return 0;
}

void *clens_malloc(size_t n) { return inject() ? NULL : malloc(n); }

void *clens_calloc(size_t n, size_t size) { return inject() ? NULL : calloc(n, size); }

void *clens_realloc(void *p, size_t n) { return inject() ? NULL : realloc(p, n); }

char *clens_strdup(const char *s) { return inject() ? NULL : strdup(s); }

void *clens_aligned_alloc(size_t align, size_t n) { return inject() ? NULL : aligned_alloc(align, n); }

void clens_alloc_fail_nth(long n)
{
    atomic_store(&g_fail_at, n > 0 ? n : 0);
    atomic_store(&g_count, 0);
    atomic_store(&g_failed, 0);
}

long clens_alloc_count(void) { return atomic_load(&g_count); }

int clens_alloc_failed(void) { return atomic_load(&g_failed); }
