/*
 * strbuf.c: the growable text buffer and the JSON string / number writer
 * (contract and formats in strbuf.h). The buffer doubles from 256 bytes, so
 * n appends cost O(total length); printf formats into a stack buffer first
 * and only grows when the text is longer.
 */
#include "base/strbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void sb_grow(clens_sb *b, size_t extra)
{
    if (b->oom) return;
    if (extra > (size_t)-1 / 2 - b->len) { b->oom = 1; return; }
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) { b->oom = 1; return; }
    b->p = p;
    b->cap = cap;
}

void clens_sb_put(clens_sb *b, const char *s, size_t n)
{
    sb_grow(b, n);
    if (b->oom) return;
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void clens_sb_puts(clens_sb *b, const char *s) { clens_sb_put(b, s, strlen(s)); }

void clens_sb_printf(clens_sb *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) { b->oom = 1; return; }
    if ((size_t)n < sizeof tmp) { clens_sb_put(b, tmp, (size_t)n); return; }
    sb_grow(b, (size_t)n);
    if (b->oom) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void clens_sb_json_strn(clens_sb *b, const char *s, size_t n)
{
    clens_sb_put(b, "\"", 1);
    const char *run = s;
    const char *end = s + n;
    for (const char *p = s; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        const char *esc = NULL;
        char u[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20) { snprintf(u, sizeof u, "\\u%04x", c); esc = u; }
        }
        if (!esc) continue;
        clens_sb_put(b, run, (size_t)(p - run));
        clens_sb_puts(b, esc);
        run = p + 1;
    }
    clens_sb_put(b, run, (size_t)(end - run));
    clens_sb_put(b, "\"", 1);
}

void clens_sb_json_str(clens_sb *b, const char *s) { clens_sb_json_strn(b, s, strlen(s)); }

char *clens_fmt_double(char *buf, size_t n, double x)
{
    if (!isfinite(x)) { snprintf(buf, n, "null"); return buf; }
    if (x == 0) x = 0.0; /* drop the sign of -0 */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) break;
    }
    if (!strpbrk(buf, ".e")) {
        size_t l = strlen(buf);
        if (l + 3 <= n) memcpy(buf + l, ".0", 3);
    }
    return buf;
}

void clens_sb_json_num(clens_sb *b, double x)
{
    char buf[40];
    clens_sb_puts(b, clens_fmt_double(buf, sizeof buf, x));
}

char *clens_sb_take(clens_sb *b)
{
    char *p = NULL;
    if (!b->oom) {
        if (!b->p) clens_sb_put(b, "", 0);
        p = b->p;
        if (!p) p = calloc(1, 1);
    } else {
        free(b->p);
    }
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
    return p;
}

void clens_sb_free(clens_sb *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}
