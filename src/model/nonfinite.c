/*
 * nonfinite.c: detection of NaN and Inf in activations and weights.
 *
 * A NaN or Inf in one weight spreads through attention to every later
 * position, and the logits then come out all-NaN (argmax 0, "generations"
 * of token 0) without any error. The forward pass therefore scans each row
 * it computes at fixed hook points (forward.c calls forward_check_rows) and
 * stops at the first non-finite value, naming the hook point, layer,
 * position and sequence. The scan reads each value once and only tests the
 * exponent bits (all ones = NaN or Inf), in blocks that the compiler
 * vectorizes; against the matrix products of a block (O(width^2) per row)
 * it costs O(width) per row. `clens info --check` scans the stored weights
 * the same way, in their own dtype (F32, BF16, F16).
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "base/base.h"
#include "model/model.h"

/* Exponent field all ones <=> NaN or +-Inf, for each storage format. */
#define F32_EXP 0x7f800000u
#define HALF_BF16_EXP 0x7f80u
#define HALF_F16_EXP 0x7c00u

int64_t clens_first_nonfinite(const float *x, size_t n)
{
    size_t i = 0;
    enum { BLOCK = 64 };
    for (; i + BLOCK <= n; i += BLOCK) {
        uint32_t bad = 0;
        for (int j = 0; j < BLOCK; j++) {
            uint32_t u;
            memcpy(&u, x + i + j, sizeof u);
            bad |= (u & F32_EXP) == F32_EXP;
        }
        if (bad) break;
    }
    for (; i < n; i++)
        if (!isfinite(x[i])) return (int64_t)i;
    return -1;
}

/* First element of n 16-bit values whose exponent field (mask) is all ones. */
static int64_t first_bad_half(const uint16_t *x, size_t n, uint16_t mask)
{
    size_t i = 0;
    enum { BLOCK = 128 };
    for (; i + BLOCK <= n; i += BLOCK) {
        uint32_t bad = 0;
        for (int j = 0; j < BLOCK; j++) bad |= (uint16_t)(x[i + j] & mask) == mask;
        if (bad) break;
    }
    for (; i < n; i++)
        if ((uint16_t)(x[i] & mask) == mask) return (int64_t)i;
    return -1;
}

static const char *kind_of(float v) { return isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf"; }

int forward_check_rows(const float *x, int n_rows, int width, const clens_row *rows, const int *row_of,
                       clens_hook_point point, int layer, const char *what, clens_error *err)
{
    assert(n_rows >= 0 && width > 0 && (x || n_rows == 0) && rows);
    int64_t k = clens_first_nonfinite(x, (size_t)n_rows * (size_t)width);
    if (k < 0) return CLENS_OK;
    int i = (int)(k / width), r = row_of ? row_of[i] : i;
    assert(i < n_rows);
    char name[64];
    if (point == CLENS_HOOK_COUNT) snprintf(name, sizeof name, "logits");
    else clens_hook_name(point, layer, name, sizeof name);
    return clens_err(err, CLENS_E_NONFINITE,
                     "forward: non-finite value (%s) at %s%s, position %d of sequence %d (batch row %d, %s %d); "
                     "the first one in this pass: the weights or the given activations hold NaN/Inf "
                     "(`clens info --check MODEL` scans the weights)",
                     kind_of(x[k]), name, what ? what : "", rows[r].pos, rows[r].seq, r,
                     point == CLENS_HOOK_COUNT ? "token id" : "feature", (int)(k % width));
}

int clens_model_check_weights(const clens_model *m, int64_t *n_checked, clens_error *err)
{
    const st_archive *a = &m->st;
    int64_t total = 0;
    if (n_checked) *n_checked = 0;
    for (int t = 0; t < a->n_tensors; t++) {
        const st_tensor *s = &a->tensors[t];
        int64_t n = st_numel(s), k = -1;
        double v = 0;
        if (s->dtype == ST_F32) {
            k = clens_first_nonfinite(s->data, (size_t)n);
            if (k >= 0) v = ((const float *)s->data)[k];
        } else if (s->dtype == ST_BF16 || s->dtype == ST_F16) {
            const uint16_t *h = s->data;
            k = first_bad_half(h, (size_t)n, s->dtype == ST_BF16 ? HALF_BF16_EXP : HALF_F16_EXP);
            if (k >= 0) {
                /* NaN if any mantissa bit is set, else +-Inf by the sign bit. */
                uint16_t man = h[k] & (s->dtype == ST_BF16 ? 0x007fu : 0x03ffu);
                v = man ? NAN : (h[k] & 0x8000u) ? -INFINITY : INFINITY;
            }
        } else {
            continue;
        }
        if (k >= 0) {
            if (n_checked) *n_checked = total + k;
            int64_t idx[ST_MAX_DIMS], rem = k;
            for (int d = s->ndim - 1; d >= 0; d--) {
                int64_t dim = s->shape[d] > 0 ? s->shape[d] : 1;
                idx[d] = rem % dim;
                rem /= dim;
            }
            char at[160] = "", *p = at;
            for (int d = 0; d < s->ndim && p < at + sizeof at - 24; d++)
                p += snprintf(p, (size_t)(at + sizeof at - p), "%s%lld", d ? ", " : "", (long long)idx[d]);
            return clens_err(err, CLENS_E_NONFINITE, "%s: tensor '%s' (%s) element %lld [%s] is %s",
                             a->files[s->file].path, s->name, s->dtype_name, (long long)k, at,
                             kind_of((float)v));
        }
        total += n;
    }
    if (n_checked) *n_checked = total;
    return CLENS_OK;
}
