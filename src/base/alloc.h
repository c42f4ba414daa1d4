/*
 * alloc.h: the library's allocation layer, and the failure injection that
 * tests it (SQLite's approach: a swappable allocator makes out-of-memory
 * testable). The loaders and the engine (model open, contexts, patchers)
 * allocate through these; the memory is ordinary malloc memory, released
 * with free().
 */
#ifndef CLENS_BASE_ALLOC_H
#define CLENS_BASE_ALLOC_H

#include <stddef.h>

void *clens_malloc(size_t n);
void *clens_calloc(size_t n, size_t size);
void *clens_realloc(void *p, size_t n);
char *clens_strdup(const char *s);
void *clens_aligned_alloc(size_t align, size_t n);

/* Test only. clens_alloc_fail_nth(n) with n >= 1 makes the n-th allocation
 * through this layer from now on fail (return NULL), once; n = 0 disables
 * the injection. clens_alloc_count() is the number of allocations made
 * through the layer since the last clens_alloc_fail_nth call, and
 * clens_alloc_failed() says whether the injected failure has happened. */
void clens_alloc_fail_nth(long n);
long clens_alloc_count(void);
int clens_alloc_failed(void);

#endif
