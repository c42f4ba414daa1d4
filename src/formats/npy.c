/*
 * npy.c: writer of NumPy .npy files (format version 1.0: magic "\x93NUMPY",
 * version, u16 header length, a Python-dict header padded with spaces to a
 * multiple of 64 bytes and ended by '\n', then C-order little-endian data).
 */
#include "formats/formats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

int npy_write_f32(const char *path, const float *data, const int64_t *shape, int ndim, clens_error *err)
{
    char hdr[512];
    int64_t n = 1;
    int k = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < ndim; i++) {
        /* numpy's own spelling: (5,) for one dimension, (2, 3) otherwise */
        k += snprintf(hdr + k, sizeof hdr - k, "%s%lld%s", i ? ", " : "", (long long)shape[i], ndim == 1 ? "," : "");
        n *= shape[i];
    }
    k += snprintf(hdr + k, sizeof hdr - k, "), }");
    int total = 10 + k + 1;
    int pad = (64 - total % 64) % 64;
    size_t hl = (size_t)k + pad + 1;
    size_t bytes = 10 + hl + (size_t)n * 4;
    unsigned char *buf = malloc(bytes);
    if (!buf) return clens_err(err, CLENS_E_NOMEM, "%s: out of memory for %zu bytes", path, bytes);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(hl & 0xff);
    buf[9] = (unsigned char)(hl >> 8);
    memcpy(buf + 10, hdr, k);
    memset(buf + 10 + k, ' ', pad);
    buf[10 + hl - 1] = '\n';
    memcpy(buf + 10 + hl, data, (size_t)n * 4);
    int rc = clens_write_file_atomic(path, buf, bytes, err);
    free(buf);
    return rc;
}
