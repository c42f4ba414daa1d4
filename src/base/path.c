/*
 * path.c: clens_path_join (contract in path.h), used wherever a folder's
 * settings.json, records.jsonl or tokenizer files are opened or written.
 */
#include "base/path.h"

#include <stdlib.h>
#include <string.h>

char *clens_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}
