/*
 * testutil.h: shared helpers of the cmocka unit tests.
 * Tests find the shared data in $SHARED (default ../shared) and write only
 * under $CLENS_TEST_TMP (default build/testdata).
 */
#ifndef CLENS_TESTUTIL_H
#define CLENS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

static inline const char *tu_shared(void)
{
    const char *s = getenv("SHARED");
    return s && *s ? s : "../shared";
}

/* A fresh directory under $CLENS_TEST_TMP named after the test; returns a static buffer. */
static inline const char *tu_tmpdir(const char *name)
{
    static char buf[4096];
    const char *t = getenv("CLENS_TEST_TMP");
    char cmd[8400];
    snprintf(buf, sizeof buf, "%s/%s", t && *t ? t : "build/testdata", name);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", buf, buf);
    if (system(cmd) != 0) fail_msg("cannot create %s", buf);
    return buf;
}

static inline void tu_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot write %s", path);
    if (n && fwrite(data, 1, n, f) != n) fail_msg("short write %s", path);
    fclose(f);
}

/* Generates one f32 random-weight model of each architecture in archs into
 * $CLENS_TEST_TMP/<name>/<arch> with tools/gen_model.py (seeds seed0, seed0+1,
 * ...), filling dirs[i]. Returns 0 on success (a cmocka group setup). */
static inline int tu_gen_arch_models(const char *name, const char *const *archs, size_t n, int seed0,
                                     char (*dirs)[4200])
{
    const char *d = tu_tmpdir(name);
    for (size_t a = 0; a < n; a++) {
        static char cmd[32768];
        snprintf(dirs[a], 4200, "%s/%s", d, archs[a]);
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 tools/gen_model.py --arch %s --dtype f32 --seed %zu --quiet --out '%s'",
                 archs[a], (size_t)seed0 + a, dirs[a]);
        if (system(cmd) != 0) return -1;
    }
    return 0;
}

#endif
