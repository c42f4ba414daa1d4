/*
 * template_value.c: the value layer of the chat-template engine: arena
 * allocation, string building, UTF-8 helpers and Python-like values
 * (truthiness, ==, ordering, str() and repr(), json.dumps and JSON input).
 *
 * The reference is CPython 3 / jinja2 3.1 behaviour: str(None) == "None",
 * repr of strings picks the quote like Python, floats print with the
 * shortest round-trip repr, dicts keep insertion order, and json.dumps uses
 * transformers' tojson defaults (ensure_ascii=False, separators ", " / ": ").
 */
#include "template_internal.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ------------------------------------------------------------------ arena */

struct tpl_chunk {
    tpl_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void tpl_arena_init(tpl_arena *a, size_t limit, jmp_buf *jb, clens_error *err)
{
    memset(a, 0, sizeof *a);
    a->limit = limit;
    a->jb = jb;
    a->err = err;
}

void tpl_arena_free(tpl_arena *a)
{
    tpl_chunk *c = a->head;
    while (c) {
        tpl_chunk *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
    a->total = 0;
}

_Noreturn void tpl_throw(tpl_arena *a, int code, const char *fmt, ...)
{
    if (a->err) {
        va_list ap;
        va_start(ap, fmt);
        a->err->code = code;
        vsnprintf(a->err->msg, sizeof a->err->msg, fmt, ap);
        va_end(ap);
    }
    longjmp(*a->jb, 1);
}

void *tpl_alloc(tpl_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    tpl_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 - sizeof(tpl_chunk) ? n : 65536 - sizeof(tpl_chunk);
        if (a->limit && a->total + cap + sizeof(tpl_chunk) > a->limit)
            tpl_throw(a, CLENS_E_NOMEM, "chat template: memory limit of %zu bytes exceeded", a->limit);
        c = malloc(sizeof(tpl_chunk) + cap);
        if (!c) tpl_throw(a, CLENS_E_NOMEM, "chat template: out of memory");
        a->total += sizeof(tpl_chunk) + cap;
        c->used = 0;
        c->cap = cap;
        /* keep a large one-off chunk behind the current head so small
         * allocations continue in the partly used chunk */
        if (a->head && cap > 65536 - sizeof(tpl_chunk) && a->head->cap - a->head->used > 4096) {
            c->next = a->head->next;
            a->head->next = c;
            c->used = n;
            memset(c->data, 0, n);
            return c->data;
        }
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

void *tpl_realloc(tpl_arena *a, void *p, size_t old, size_t n)
{
    if (n <= old) return p;
    tpl_chunk *c = a->head;
    size_t o16 = (old + 15) & ~(size_t)15;
    /* grow in place when p is the last allocation of the head chunk */
    if (p && c && (unsigned char *)p + o16 == c->data + c->used) {
        size_t n16 = (n + 15) & ~(size_t)15;
        if (c->cap - (c->used - o16) >= n16) {
            memset((unsigned char *)p + old, 0, n16 - old);
            c->used = c->used - o16 + n16;
            return p;
        }
    }
    void *q = tpl_alloc(a, n);
    if (old) memcpy(q, p, old);
    return q;
}

char *tpl_strndup(tpl_arena *a, const char *s, size_t n)
{
    char *p = tpl_alloc(a, n + 1);
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* ------------------------------------------------------------ string build */

void tsb_init(tsb *b, tpl_arena *ar, size_t limit)
{
    b->ar = ar;
    b->p = NULL;
    b->n = b->cap = 0;
    b->limit = limit;
}

static void tsb_reserve(tsb *b, size_t extra)
{
    if (b->limit && b->n + extra > b->limit)
        tpl_throw(b->ar, CLENS_E_ARG, "chat template: output limit of %zu bytes exceeded", b->limit);
    if (b->n + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra + 1) cap *= 2;
    b->p = tpl_realloc(b->ar, b->p, b->cap, cap);
    b->cap = cap;
}

void tsb_put(tsb *b, const char *s, size_t n)
{
    if (!n) return;
    tsb_reserve(b, n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void tsb_puts(tsb *b, const char *s) { tsb_put(b, s, strlen(s)); }

void tsb_putc(tsb *b, char c) { tsb_put(b, &c, 1); }

void tsb_printf(tsb *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < sizeof tmp) { tsb_put(b, tmp, (size_t)k); return; }
    char *big = tpl_alloc(b->ar, (size_t)k + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)k + 1, fmt, ap);
    va_end(ap);
    tsb_put(b, big, (size_t)k);
}

void tsb_put_cp(tsb *b, uint32_t cp)
{
    char u[4];
    int k;
    if (cp < 0x80) { u[0] = (char)cp; k = 1; }
    else if (cp < 0x800) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3F)); k = 2; }
    else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F)); k = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); k = 4;
    }
    tsb_put(b, u, (size_t)k);
}

/* ------------------------------------------------------------------- UTF-8 */

int tpl_utf8_dec(const char *s, size_t n, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n == 0) { *cp = 0; return 0; }
    if (u[0] < 0x80) { *cp = u[0]; return 1; }
    if ((u[0] & 0xE0) == 0xC0 && n >= 2) { *cp = ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F); return 2; }
    if ((u[0] & 0xF0) == 0xE0 && n >= 3) {
        *cp = ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
        return 3;
    }
    if ((u[0] & 0xF8) == 0xF0 && n >= 4) {
        *cp = ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) |
              ((uint32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
        return 4;
    }
    *cp = u[0];
    return 1;
}

long tpl_utf8_check(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = u[i];
        if (c < 0x80) { i++; continue; }
        size_t k;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) { k = 2; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { k = 3; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { k = 4; cp = c & 0x07; min = 0x10000; }
        else return (long)i;
        if (i + k > n) return (long)i;
        for (size_t j = 1; j < k; j++) {
            if ((u[i + j] & 0xC0) != 0x80) return (long)i;
            cp = (cp << 6) | (u[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return (long)i;
        i += k;
    }
    return -1;
}

size_t tpl_utf8_count(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    return c;
}

int tpl_py_isspace(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* ------------------------------------------------------------------ values */

tv tv_cstr(const char *s) { return tv_str(s, strlen(s)); }

tv tv_undef_named(tpl_arena *a, const char *name)
{
    tv v = tv_undef();
    v.u.u = tpl_alloc(a, sizeof(tundef));
    v.u.u->name = name;
    v.u.u->name_is_str = 1;
    return v;
}

tv tv_undef_attr(tpl_arena *a, const tv *obj, const char *name)
{
    tv v = tv_undef_named(a, name);
    v.u.u->objtype = tv_object_type_repr(a, obj);
    return v;
}

tv tv_undef_item(tpl_arena *a, const tv *obj, const tv *key)
{
    if (key->t == TV_STR) return tv_undef_attr(a, obj, tpl_strndup(a, key->u.s.p, key->u.s.n));
    tv v = tv_undef();
    v.u.u = tpl_alloc(a, sizeof(tundef));
    tsb b;
    tsb_init(&b, a, 0);
    if (tv_repr_into(&b, key) != 0) tsb_puts(&b, "<object>");
    v.u.u->name = b.p ? b.p : "";
    v.u.u->name_is_str = 0;
    v.u.u->objtype = tv_object_type_repr(a, obj);
    return v;
}

tv tv_undef_hint(tpl_arena *a, const char *hint, int security)
{
    tv v = tv_undef();
    v.u.u = tpl_alloc(a, sizeof(tundef));
    v.u.u->hint = hint;
    v.u.u->security = security;
    return v;
}

tv tv_list_new(tpl_arena *a, int kind, size_t cap)
{
    tv v = {0};
    v.t = TV_LIST;
    v.k = (uint8_t)kind;
    v.u.l = tpl_alloc(a, sizeof(tlist));
    if (cap) {
        v.u.l->v = tpl_alloc(a, cap * sizeof(tv));
        v.u.l->cap = cap;
    }
    return v;
}

void tv_list_push(tpl_arena *a, tv *list, tv item)
{
    tlist *l = list->u.l;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        l->v = tpl_realloc(a, l->v, l->cap * sizeof(tv), cap * sizeof(tv));
        l->cap = cap;
    }
    l->v[l->n++] = item;
}

tv tv_dict_new(tpl_arena *a, size_t cap)
{
    tv v = {0};
    v.t = TV_DICT;
    v.u.d = tpl_alloc(a, sizeof(tdict));
    if (cap) {
        v.u.d->keys = tpl_alloc(a, cap * sizeof(tv));
        v.u.d->vals = tpl_alloc(a, cap * sizeof(tv));
        v.u.d->cap = cap;
    }
    return v;
}

tv *tv_dict_get(const tdict *d, const tv *key)
{
    if (key->t == TV_STR) return tv_dict_get_str(d, key->u.s.p, key->u.s.n);
    for (size_t i = 0; i < d->n; i++)
        if (tv_eq(&d->keys[i], key)) return &d->vals[i];
    return NULL;
}

tv *tv_dict_get_str(const tdict *d, const char *key, size_t n)
{
    for (size_t i = 0; i < d->n; i++) {
        const tv *k = &d->keys[i];
        if (k->t == TV_STR && k->u.s.n == n && memcmp(k->u.s.p, key, n) == 0) return &d->vals[i];
    }
    return NULL;
}

void tv_dict_set(tpl_arena *a, tdict *d, tv key, tv val)
{
    tv *old = tv_dict_get(d, &key);
    if (old) { *old = val; return; }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        d->keys = tpl_realloc(a, d->keys, d->cap * sizeof(tv), cap * sizeof(tv));
        d->vals = tpl_realloc(a, d->vals, d->cap * sizeof(tv), cap * sizeof(tv));
        d->cap = cap;
    }
    d->keys[d->n] = key;
    d->vals[d->n] = val;
    d->n++;
}

const char *tv_type_name(const tv *v)
{
    switch (v->t) {
    case TV_UNDEF: return "Undefined";
    case TV_NONE: return "NoneType";
    case TV_BOOL: return "bool";
    case TV_INT: return "int";
    case TV_FLOAT: return "float";
    case TV_STR: return "str";
    case TV_LIST:
        switch (v->k) {
        case LK_TUPLE: return "tuple";
        case LK_GEN: return "generator";
        case LK_ITEMS: return "dict_items";
        case LK_KEYS: return "dict_keys";
        case LK_VALUES: return "dict_values";
        case LK_RANGE: return "range";
        default: return "list";
        }
    case TV_DICT: return "dict";
    case TV_NS: return "Namespace";
    case TV_MACRO: return "Macro";
    case TV_FUNC: return "builtin_function_or_method";
    case TV_LOOP: return "LoopContext";
    case TV_OBJ: return v->k == OK_CYCLER ? "Cycler" : "Joiner";
    }
    return "object";
}

const char *tv_object_type_repr(tpl_arena *a, const tv *v)
{
    if (v->t == TV_NONE) return "None";
    const char *t = tv_type_name(v);
    size_t n = strlen(t);
    char *s = tpl_alloc(a, n + 8);
    memcpy(s, t, n);
    memcpy(s + n, " object", 8);
    return s;
}

int tv_truthy(const tv *v)
{
    switch (v->t) {
    case TV_UNDEF: case TV_NONE: return 0;
    case TV_BOOL: case TV_INT: return v->u.i != 0;
    case TV_FLOAT: return v->u.f != 0.0;
    case TV_STR: return v->u.s.n != 0;
    case TV_LIST: return v->k == LK_GEN ? 1 : v->u.l->n != 0;
    case TV_DICT: return v->u.d->n != 0;
    default: return 1;
    }
}

/* Values nested deeper than this are refused by the recursive helpers below
 * (Python raises RecursionError at a similar depth); templates can build
 * such values with {% set x = [x] %} in a loop. */
#define TV_MAX_DEPTH 900

static int hashable_rec(const tv *v, int depth)
{
    if (v->t == TV_LIST) {
        if (v->k != LK_TUPLE) return v->k == LK_GEN || v->k == LK_RANGE;
        if (depth > TV_MAX_DEPTH) return 0;
        for (size_t i = 0; i < v->u.l->n; i++)
            if (!hashable_rec(&v->u.l->v[i], depth + 1)) return 0;
        return 1;
    }
    return v->t != TV_DICT;
}

int tv_is_hashable(const tv *v) { return hashable_rec(v, 0); }

static int is_num(const tv *v) { return v->t == TV_BOOL || v->t == TV_INT || v->t == TV_FLOAT; }

static int num_cmp(const tv *a, const tv *b)
{
    if (a->t != TV_FLOAT && b->t != TV_FLOAT) return (a->u.i > b->u.i) - (a->u.i < b->u.i);
    /* exact int/float comparison as Python does */
    if (a->t == TV_FLOAT && b->t == TV_FLOAT) return (a->u.f > b->u.f) - (a->u.f < b->u.f);
    if (a->t == TV_FLOAT) return -num_cmp(b, a);
    /* a int, b float */
    double f = b->u.f;
    if (isnan(f)) return 2; /* unordered */
    if (f >= 9223372036854775808.0) return -1;
    if (f < -9223372036854775808.0) return 1;
    double fl = floor(f);
    int64_t fi = (int64_t)fl;
    if (a->u.i < fi) return -1;
    if (a->u.i > fi) return 1;
    return fl < f ? -1 : 0;
}

static int eq_rec(const tv *a, const tv *b, int depth);

int tv_eq(const tv *a, const tv *b) { return eq_rec(a, b, 0); }

static int eq_rec(const tv *a, const tv *b, int depth)
{
    if (depth > TV_MAX_DEPTH) return 0;
    if (is_num(a) && is_num(b)) return num_cmp(a, b) == 0;
    if (a->t != b->t) return 0;
    switch (a->t) {
    case TV_UNDEF: case TV_NONE: return 1;
    case TV_STR: return a->u.s.n == b->u.s.n && memcmp(a->u.s.p, b->u.s.p, a->u.s.n) == 0;
    case TV_LIST: {
        if (a->u.l == b->u.l) return 1;
        int ka = a->k, kb = b->k;
        if (ka == LK_GEN || kb == LK_GEN) return 0;
        if (ka == LK_ITEMS || ka == LK_KEYS || ka == LK_VALUES || kb == LK_ITEMS || kb == LK_KEYS || kb == LK_VALUES)
            return 0;
        if (ka != kb) return 0;
        if (a->u.l->n != b->u.l->n) return 0;
        for (size_t i = 0; i < a->u.l->n; i++)
            if (!eq_rec(&a->u.l->v[i], &b->u.l->v[i], depth + 1)) return 0;
        return 1;
    }
    case TV_DICT: {
        const tdict *x = a->u.d, *y = b->u.d;
        if (x->n != y->n) return 0;
        for (size_t i = 0; i < x->n; i++) {
            tv *o = tv_dict_get(y, &x->keys[i]);
            if (!o || !eq_rec(&x->vals[i], o, depth + 1)) return 0;
        }
        return 1;
    }
    case TV_NS: return a->u.d == b->u.d;
    case TV_MACRO: return a->u.m == b->u.m;
    case TV_FUNC: return a->u.fn == b->u.fn;
    case TV_LOOP: return a->u.lp == b->u.lp;
    case TV_OBJ: return a->u.o == b->u.o;
    }
    return 0;
}

static int bytes_cmp(const char *a, size_t na, const char *b, size_t nb)
{
    size_t n = na < nb ? na : nb;
    int c = n ? memcmp(a, b, n) : 0;
    if (c) return c < 0 ? -1 : 1;
    return (na > nb) - (na < nb);
}

static int cmp_rec(const tv *a, const tv *b, int *ok, int depth);

int tv_cmp(const tv *a, const tv *b, int *ok) { return cmp_rec(a, b, ok, 0); }

static int cmp_rec(const tv *a, const tv *b, int *ok, int depth)
{
    *ok = 1;
    if (depth > TV_MAX_DEPTH) { *ok = 0; return 0; }
    if (is_num(a) && is_num(b)) {
        int c = num_cmp(a, b);
        if (c == 2) { *ok = 2; return 0; } /* NaN: every comparison false */
        return c;
    }
    if (a->t == TV_STR && b->t == TV_STR) /* UTF-8 byte order == code point order */
        return bytes_cmp(a->u.s.p, a->u.s.n, b->u.s.p, b->u.s.n);
    if (a->t == TV_LIST && b->t == TV_LIST && a->k == b->k && (a->k == LK_LIST || a->k == LK_TUPLE)) {
        size_t n = a->u.l->n < b->u.l->n ? a->u.l->n : b->u.l->n;
        for (size_t i = 0; i < n; i++) {
            if (eq_rec(&a->u.l->v[i], &b->u.l->v[i], depth + 1)) continue;
            return cmp_rec(&a->u.l->v[i], &b->u.l->v[i], ok, depth + 1);
        }
        return (a->u.l->n > b->u.l->n) - (a->u.l->n < b->u.l->n);
    }
    *ok = 0;
    return 0;
}

/* ------------------------------------------------------------- str / repr */

void tv_float_repr(tsb *b, double f)
{
    if (isnan(f)) { tsb_puts(b, "nan"); return; }
    if (isinf(f)) { tsb_puts(b, f < 0 ? "-inf" : "inf"); return; }
    if (f == 0) { tsb_puts(b, signbit(f) ? "-0.0" : "0.0"); return; }
    char buf[64];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, f);
        if (strtod(buf, NULL) == f) break;
    }
    /* buf = [-]d.ddde[+-]XX: collect digits and decimal exponent */
    char digits[32];
    int nd = 0, neg = 0;
    const char *p = buf;
    if (*p == '-') { neg = 1; p++; }
    while (*p && *p != 'e') {
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
        p++;
    }
    int e10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    int decpt = e10 + 1; /* value = 0.digits * 10^decpt */
    if (neg) tsb_putc(b, '-');
    if (decpt > 16 || decpt < -3) {
        tsb_putc(b, digits[0]);
        if (nd > 1) { tsb_putc(b, '.'); tsb_put(b, digits + 1, (size_t)nd - 1); }
        int ex = decpt - 1;
        tsb_printf(b, "e%c%02d", ex < 0 ? '-' : '+', ex < 0 ? -ex : ex);
    } else if (decpt <= 0) {
        tsb_puts(b, "0.");
        for (int i = 0; i < -decpt; i++) tsb_putc(b, '0');
        tsb_put(b, digits, (size_t)nd);
    } else if (decpt >= nd) {
        tsb_put(b, digits, (size_t)nd);
        for (int i = nd; i < decpt; i++) tsb_putc(b, '0');
        tsb_puts(b, ".0");
    } else {
        tsb_put(b, digits, (size_t)decpt);
        tsb_putc(b, '.');
        tsb_put(b, digits + decpt, (size_t)(nd - decpt));
    }
}

static int py_isprintable(uint32_t cp)
{
    if (cp == ' ') return 1;
    if (cp < 0x20 || cp == 0x7F) return 0;
    if (cp < 0x7F) return 1;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_CN: case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP: case UTF8PROC_CATEGORY_ZS:
        return 0;
    default:
        return 1;
    }
}

void tv_repr_str(tsb *b, const char *s, size_t n)
{
    int has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = (has_sq && !has_dq) ? '"' : '\'';
    tsb_putc(b, q);
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        int k = tpl_utf8_dec(s + i, n - i, &cp);
        if (cp == (uint32_t)q || cp == '\\') { tsb_putc(b, '\\'); tsb_putc(b, (char)cp); }
        else if (cp == '\t') tsb_puts(b, "\\t");
        else if (cp == '\n') tsb_puts(b, "\\n");
        else if (cp == '\r') tsb_puts(b, "\\r");
        else if (py_isprintable(cp)) tsb_put(b, s + i, (size_t)k);
        else if (cp <= 0xFF) tsb_printf(b, "\\x%02x", cp);
        else if (cp <= 0xFFFF) tsb_printf(b, "\\u%04x", cp);
        else tsb_printf(b, "\\U%08x", cp);
        i += (size_t)k;
    }
    tsb_putc(b, q);
}

static int repr_rec(tsb *b, const tv *v, int depth);
static int str_rec(tsb *b, const tv *v, int depth);

static int repr_seq(tsb *b, const tlist *l, size_t from, const char *open, const char *close, int tuple, int depth)
{
    tsb_puts(b, open);
    for (size_t i = from; i < l->n; i++) {
        if (i > from) tsb_puts(b, ", ");
        if (repr_rec(b, &l->v[i], depth + 1) != 0) return -1;
    }
    if (tuple && l->n - from == 1) tsb_putc(b, ',');
    tsb_puts(b, close);
    return 0;
}

int tv_repr_into(tsb *b, const tv *v) { return repr_rec(b, v, 0); }
int tv_str_into(tsb *b, const tv *v) { return str_rec(b, v, 0); }

static int repr_rec(tsb *b, const tv *v, int depth)
{
    if (depth > TV_MAX_DEPTH) return -1;
    switch (v->t) {
    case TV_UNDEF: tsb_puts(b, "Undefined"); return 0;
    case TV_STR:
        if (v->k == SK_MARKUP) tsb_puts(b, "Markup(");
        tv_repr_str(b, v->u.s.p, v->u.s.n);
        if (v->k == SK_MARKUP) tsb_putc(b, ')');
        return 0;
    default: return str_rec(b, v, depth);
    }
}

static int str_rec(tsb *b, const tv *v, int depth)
{
    if (depth > TV_MAX_DEPTH) return -1;
    switch (v->t) {
    case TV_UNDEF: return 0;
    case TV_NONE: tsb_puts(b, "None"); return 0;
    case TV_BOOL: tsb_puts(b, v->u.i ? "True" : "False"); return 0;
    case TV_INT: tsb_printf(b, "%lld", (long long)v->u.i); return 0;
    case TV_FLOAT: tv_float_repr(b, v->u.f); return 0;
    case TV_STR: tsb_put(b, v->u.s.p, v->u.s.n); return 0;
    case TV_LIST:
        switch (v->k) {
        case LK_LIST: return repr_seq(b, v->u.l, 0, "[", "]", 0, depth);
        case LK_TUPLE: return repr_seq(b, v->u.l, 0, "(", ")", 1, depth);
        case LK_ITEMS: return repr_seq(b, v->u.l, 0, "dict_items([", "])", 0, depth);
        case LK_KEYS: return repr_seq(b, v->u.l, 0, "dict_keys([", "])", 0, depth);
        case LK_VALUES: return repr_seq(b, v->u.l, 0, "dict_values([", "])", 0, depth);
        case LK_RANGE:
            if (v->u.l->r[2] == 1) tsb_printf(b, "range(%lld, %lld)", (long long)v->u.l->r[0], (long long)v->u.l->r[1]);
            else tsb_printf(b, "range(%lld, %lld, %lld)", (long long)v->u.l->r[0], (long long)v->u.l->r[1],
                            (long long)v->u.l->r[2]);
            return 0;
        default: return -1; /* generator: prints its address */
        }
    case TV_DICT: case TV_NS: {
        const tdict *d = v->u.d;
        if (v->t == TV_NS) tsb_puts(b, "<Namespace ");
        tsb_putc(b, '{');
        for (size_t i = 0; i < d->n; i++) {
            if (i) tsb_puts(b, ", ");
            if (repr_rec(b, &d->keys[i], depth + 1) != 0) return -1;
            tsb_puts(b, ": ");
            if (repr_rec(b, &d->vals[i], depth + 1) != 0) return -1;
        }
        tsb_putc(b, '}');
        if (v->t == TV_NS) tsb_putc(b, '>');
        return 0;
    }
    case TV_MACRO:
        tsb_puts(b, "<Macro ");
        tv_repr_str(b, v->u.m->name, strlen(v->u.m->name));
        tsb_putc(b, '>');
        return 0;
    case TV_LOOP:
        tsb_printf(b, "<LoopContext %zu/%zu>", v->u.lp->index0 + 1, v->u.lp->length);
        return 0;
    default:
        return -1;
    }
}

/* --------------------------------------------------------------- json out */

static void json_str(tsb *b, const char *s, size_t n, int ensure_ascii)
{
    tsb_putc(b, '"');
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        int k = tpl_utf8_dec(s + i, n - i, &cp);
        switch (cp) {
        case '"': tsb_puts(b, "\\\""); break;
        case '\\': tsb_puts(b, "\\\\"); break;
        case '\n': tsb_puts(b, "\\n"); break;
        case '\r': tsb_puts(b, "\\r"); break;
        case '\t': tsb_puts(b, "\\t"); break;
        case '\b': tsb_puts(b, "\\b"); break;
        case '\f': tsb_puts(b, "\\f"); break;
        default:
            if (cp < 0x20) tsb_printf(b, "\\u%04x", cp);
            else if (ensure_ascii && cp > 0x7E) {
                if (cp >= 0x10000) {
                    uint32_t c = cp - 0x10000;
                    tsb_printf(b, "\\u%04x\\u%04x", 0xD800 + (c >> 10), 0xDC00 + (c & 0x3FF));
                } else tsb_printf(b, "\\u%04x", cp);
            } else tsb_put(b, s + i, (size_t)k);
        }
        i += (size_t)k;
    }
    tsb_putc(b, '"');
}

static void json_float(tsb *b, double f)
{
    if (isnan(f)) tsb_puts(b, "NaN");
    else if (isinf(f)) tsb_puts(b, f < 0 ? "-Infinity" : "Infinity");
    else tv_float_repr(b, f);
}

typedef struct jopt {
    int ensure_ascii, has_indent, sort_keys;
    const char *indent, *item_sep, *key_sep;
    const char **emsg;
    tpl_arena *ar;
    int depth;
} jopt;

static void json_nl(tsb *b, const jopt *o, int level)
{
    tsb_putc(b, '\n');
    for (int i = 0; i < level; i++) tsb_puts(b, o->indent);
}

static int json_key(tsb *b, const tv *k, const jopt *o)
{
    switch (k->t) {
    case TV_STR: json_str(b, k->u.s.p, k->u.s.n, o->ensure_ascii); return 0;
    case TV_BOOL: tsb_puts(b, k->u.i ? "\"true\"" : "\"false\""); return 0;
    case TV_NONE: tsb_puts(b, "\"null\""); return 0;
    case TV_INT: tsb_printf(b, "\"%lld\"", (long long)k->u.i); return 0;
    case TV_FLOAT: tsb_putc(b, '"'); json_float(b, k->u.f); tsb_putc(b, '"'); return 0;
    default: {
        char *m = tpl_alloc(o->ar, 96);
        snprintf(m, 96, "keys must be str, int, float, bool or None, not %s", tv_type_name(k));
        *o->emsg = m;
        return -1;
    }
    }
}

/* stable merge sort of index array by dict keys (strings only, else error) */
static int json_sorted(const tdict *d, size_t *idx, const jopt *o)
{
    for (size_t i = 0; i < d->n; i++) {
        idx[i] = i;
        if (d->keys[i].t != TV_STR && i > 0) {
            *o->emsg = "'<' not supported between instances of mixed key types";
            return -1;
        }
    }
    for (size_t i = 1; i < d->n; i++) { /* insertion sort: dicts are small */
        size_t x = idx[i], j = i;
        while (j > 0) {
            int ok;
            int c = tv_cmp(&d->keys[idx[j - 1]], &d->keys[x], &ok);
            if (ok != 1) { *o->emsg = "'<' not supported between dict keys"; return -1; }
            if (c <= 0) break;
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = x;
    }
    return 0;
}

static int json_val(tsb *b, const tv *v, jopt *o, int level)
{
    if (++o->depth > 500) { *o->emsg = "maximum recursion depth exceeded"; return -1; }
    int rc = 0;
    switch (v->t) {
    case TV_NONE: tsb_puts(b, "null"); break;
    case TV_BOOL: tsb_puts(b, v->u.i ? "true" : "false"); break;
    case TV_INT: tsb_printf(b, "%lld", (long long)v->u.i); break;
    case TV_FLOAT: json_float(b, v->u.f); break;
    case TV_STR: json_str(b, v->u.s.p, v->u.s.n, o->ensure_ascii); break;
    case TV_LIST:
        if (v->k == LK_LIST || v->k == LK_TUPLE) {
            const tlist *l = v->u.l;
            if (l->n == 0) { tsb_puts(b, "[]"); break; }
            tsb_putc(b, '[');
            for (size_t i = 0; i < l->n; i++) {
                if (i) tsb_puts(b, o->item_sep);
                if (o->has_indent) json_nl(b, o, level + 1);
                if ((rc = json_val(b, &l->v[i], o, level + 1)) != 0) goto out;
            }
            if (o->has_indent) json_nl(b, o, level);
            tsb_putc(b, ']');
            break;
        }
        goto not_serializable; /* generators and views */
    default:
    not_serializable: {
        char *m = tpl_alloc(o->ar, 96);
        snprintf(m, 96, "Object of type %s is not JSON serializable", tv_type_name(v));
        *o->emsg = m;
        rc = -1;
        goto out;
    }
    case TV_DICT: {
        const tdict *d = v->u.d;
        if (d->n == 0) { tsb_puts(b, "{}"); break; }
        size_t *idx = tpl_alloc(o->ar, d->n * sizeof(size_t));
        if (o->sort_keys) {
            if ((rc = json_sorted(d, idx, o)) != 0) goto out;
        } else
            for (size_t i = 0; i < d->n; i++) idx[i] = i;
        tsb_putc(b, '{');
        for (size_t i = 0; i < d->n; i++) {
            if (i) tsb_puts(b, o->item_sep);
            if (o->has_indent) json_nl(b, o, level + 1);
            if ((rc = json_key(b, &d->keys[idx[i]], o)) != 0) goto out;
            tsb_puts(b, o->key_sep);
            if ((rc = json_val(b, &d->vals[idx[i]], o, level + 1)) != 0) goto out;
        }
        if (o->has_indent) json_nl(b, o, level);
        tsb_putc(b, '}');
        break;
    }
    }
out:
    o->depth--;
    return rc;
}

int tv_to_json(tsb *b, const tv *v, int ensure_ascii, const char *indent, int has_indent,
               const char *item_sep, const char *key_sep, int sort_keys, const char **emsg)
{
    jopt o = {ensure_ascii, has_indent, sort_keys, indent ? indent : "", item_sep, key_sep, emsg, b->ar, 0};
    return json_val(b, v, &o, 0);
}

/* ---------------------------------------------------------------- json in */

tv tv_from_json(tpl_arena *a, json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        tv d = tv_dict_new(a, json_object_size(j));
        const char *k;
        json_t *x;
        json_object_foreach(j, k, x) {
            tv_dict_set(a, d.u.d, tv_str(tpl_strndup(a, k, strlen(k)), strlen(k)), tv_from_json(a, x));
        }
        return d;
    }
    case JSON_ARRAY: {
        tv l = tv_list_new(a, LK_LIST, json_array_size(j));
        for (size_t i = 0; i < json_array_size(j); i++) tv_list_push(a, &l, tv_from_json(a, json_array_get(j, i)));
        return l;
    }
    case JSON_STRING: {
        size_t n = json_string_length(j);
        return tv_str(tpl_strndup(a, json_string_value(j), n), n);
    }
    case JSON_INTEGER: return tv_int((int64_t)json_integer_value(j));
    case JSON_REAL: return tv_float(json_real_value(j));
    case JSON_TRUE: return tv_bool(1);
    case JSON_FALSE: return tv_bool(0);
    default: return tv_none();
    }
}
