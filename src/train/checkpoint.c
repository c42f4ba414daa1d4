/*
 * checkpoint.c: the resumable state of `clens train`: the number of steps
 * done, the parameters and both AdamW moments, in one file written
 * atomically (temp + fsync + rename) so that a run killed at any instant,
 * kill -9 included, resumes from the last complete state. The batch order
 * is a function of (seed, step) (train_data.c), so the step is the only RNG
 * state. Layout (little-endian): "CLNSTRN1", settings hash (64 hex chars),
 * int64 step, uint64 n, float32 params[n], m[n], v[n], uint64 FNV-1a of all
 * the bytes before it.
 */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "train/train.h"

static const char MAGIC[8] = {'C', 'L', 'N', 'S', 'T', 'R', 'N', '1'};
enum { HDR = 8 + 64 + 8 + 8 };

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ull; }
    return h;
}

int tr_state_save(const char *path, const char *settings_hash, long step, const float *params, const float *m,
                  const float *v, size_t n, clens_error *err)
{
    size_t body = HDR + 3 * n * sizeof(float), total = body + 8;
    unsigned char *buf = malloc(total);
    if (!buf) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    memcpy(buf, MAGIC, 8);
    memset(buf + 8, '0', 64);
    memcpy(buf + 8, settings_hash, strlen(settings_hash) < 64 ? strlen(settings_hash) : 64);
    int64_t s = step;
    uint64_t nn = n;
    memcpy(buf + 72, &s, 8);
    memcpy(buf + 80, &nn, 8);
    memcpy(buf + HDR, params, n * sizeof(float));
    memcpy(buf + HDR + n * sizeof(float), m, n * sizeof(float));
    memcpy(buf + HDR + 2 * n * sizeof(float), v, n * sizeof(float));
    uint64_t h = fnv1a(buf, body);
    memcpy(buf + body, &h, 8);
    int rc = clens_write_file_atomic(path, buf, total, err);
    free(buf);
    return rc;
}

int tr_state_load(const char *path, const char *settings_hash, long *step, float *params, float *m, float *v,
                  size_t n, clens_error *err)
{
    char *buf;
    size_t len;
    int rc = clens_read_file(path, &buf, &len, err);
    if (rc) return rc;
    size_t body = HDR + 3 * n * sizeof(float);
    char want[64];
    memset(want, '0', 64);
    memcpy(want, settings_hash, strlen(settings_hash) < 64 ? strlen(settings_hash) : 64);
    uint64_t nn, h;
    int64_t s;
    if (len != body + 8 || memcmp(buf, MAGIC, 8) != 0) {
        rc = clens_err(err, CLENS_E_FORMAT, "%s: not a training state of this model (size or magic differ)", path);
        goto out;
    }
    memcpy(&h, buf + body, 8);
    if (h != fnv1a((const unsigned char *)buf, body)) {
        rc = clens_err(err, CLENS_E_FORMAT, "%s: checksum mismatch (corrupt training state)", path);
        goto out;
    }
    if (memcmp(buf + 8, want, 64) != 0) {
        rc = clens_err(err, CLENS_E_STATE, "%s: written with other training settings", path);
        goto out;
    }
    memcpy(&s, buf + 72, 8);
    memcpy(&nn, buf + 80, 8);
    if (nn != n) { rc = clens_err(err, CLENS_E_FORMAT, "%s: %llu parameters, expected %zu", path, (unsigned long long)nn, n); goto out; }
    *step = (long)s;
    memcpy(params, buf + HDR, n * sizeof(float));
    memcpy(m, buf + HDR + n * sizeof(float), n * sizeof(float));
    memcpy(v, buf + HDR + 2 * n * sizeof(float), n * sizeof(float));
out:
    free(buf);
    return rc;
}
