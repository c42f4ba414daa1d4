/*
 * template_builtins.c: what the chat-template language can call: jinja2's
 * built-in filters (jinja2/filters.py) and tests (jinja2/tests.py), the
 * methods of Python str / dict / list that real templates use, the loop
 * object's fields, and the globals (range, dict, namespace, cycler, joiner
 * and transformers' raise_exception, strftime_now and tojson).
 *
 * Semantics follow jinja2 3.1 and CPython 3: filters that return generators
 * in jinja2 (map, select, selectattr, unique, batch, items, reverse) return a
 * one-shot generator value here too (truthy, no len(), consumed by
 * iteration); mutating methods (list.append, dict.update, ...) are refused as
 * the ImmutableSandboxedEnvironment refuses them. Known jinja2 filters that
 * clens does not implement are rejected when the template is loaded.
 */
#include "template_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

/* ------------------------------------------------------------------ tables */

enum {
    F_ABS = 0, F_ATTR, F_BATCH, F_CAPITALIZE, F_CENTER, F_COUNT, F_DEFAULT, F_DICTSORT, F_ESCAPE,
    F_FIRST, F_FLOAT, F_FORMAT, F_INDENT, F_INT, F_ITEMS, F_JOIN, F_LAST, F_LIST, F_LOWER,
    F_MAP, F_MAX, F_MIN, F_REJECT, F_REJECTATTR, F_REPLACE, F_REVERSE, F_ROUND, F_SAFE, F_SELECT,
    F_SELECTATTR, F_SORT, F_STRING, F_SUM, F_TITLE, F_TOJSON, F_TRIM, F_TRUNCATE, F_UNIQUE, F_UPPER,
    F_WORDCOUNT, F_FORCEESCAPE
};

static const struct { const char *name; int id; } FILTERS[] = {
    {"abs", F_ABS}, {"attr", F_ATTR}, {"batch", F_BATCH}, {"capitalize", F_CAPITALIZE},
    {"center", F_CENTER}, {"count", F_COUNT}, {"d", F_DEFAULT}, {"default", F_DEFAULT},
    {"dictsort", F_DICTSORT}, {"e", F_ESCAPE}, {"escape", F_ESCAPE}, {"forceescape", F_FORCEESCAPE},
    {"first", F_FIRST}, {"float", F_FLOAT}, {"format", F_FORMAT}, {"indent", F_INDENT}, {"int", F_INT},
    {"items", F_ITEMS}, {"join", F_JOIN}, {"last", F_LAST}, {"length", F_COUNT}, {"list", F_LIST},
    {"lower", F_LOWER}, {"map", F_MAP}, {"max", F_MAX}, {"min", F_MIN}, {"reject", F_REJECT},
    {"rejectattr", F_REJECTATTR}, {"replace", F_REPLACE}, {"reverse", F_REVERSE}, {"round", F_ROUND},
    {"safe", F_SAFE}, {"select", F_SELECT}, {"selectattr", F_SELECTATTR}, {"sort", F_SORT},
    {"string", F_STRING}, {"sum", F_SUM}, {"title", F_TITLE}, {"tojson", F_TOJSON}, {"trim", F_TRIM},
    {"truncate", F_TRUNCATE}, {"unique", F_UNIQUE}, {"upper", F_UPPER}, {"wordcount", F_WORDCOUNT},
};
static const char *const UNSUPPORTED_FILTERS[] = {
    "filesizeformat", "groupby", "pprint", "random", "slice", "striptags", "urlencode", "urlize",
    "wordwrap", "xmlattr", NULL};

enum {
    T_ODD = 0, T_EVEN, T_DIVISIBLEBY, T_DEFINED, T_UNDEFINED, T_FILTER, T_TEST, T_NONE, T_BOOLEAN,
    T_FALSE, T_TRUE, T_INTEGER, T_FLOAT, T_LOWER, T_UPPER, T_STRING, T_MAPPING, T_NUMBER,
    T_SEQUENCE, T_ITERABLE, T_CALLABLE, T_SAMEAS, T_ESCAPED, T_IN, T_EQ, T_NE, T_GT, T_GE, T_LT, T_LE
};

static const struct { const char *name; int id; } TESTS[] = {
    {"odd", T_ODD}, {"even", T_EVEN}, {"divisibleby", T_DIVISIBLEBY}, {"defined", T_DEFINED},
    {"undefined", T_UNDEFINED}, {"filter", T_FILTER}, {"test", T_TEST}, {"none", T_NONE},
    {"boolean", T_BOOLEAN}, {"false", T_FALSE}, {"true", T_TRUE}, {"integer", T_INTEGER},
    {"float", T_FLOAT}, {"lower", T_LOWER}, {"upper", T_UPPER}, {"string", T_STRING},
    {"mapping", T_MAPPING}, {"number", T_NUMBER}, {"sequence", T_SEQUENCE}, {"iterable", T_ITERABLE},
    {"callable", T_CALLABLE}, {"sameas", T_SAMEAS}, {"escaped", T_ESCAPED}, {"in", T_IN},
    {"==", T_EQ}, {"eq", T_EQ}, {"equalto", T_EQ}, {"!=", T_NE}, {"ne", T_NE}, {">", T_GT},
    {"gt", T_GT}, {"greaterthan", T_GT}, {">=", T_GE}, {"ge", T_GE}, {"<", T_LT}, {"lt", T_LT},
    {"lessthan", T_LT}, {"<=", T_LE}, {"le", T_LE},
};

int tpl_filter_id(const char *name)
{
    for (size_t i = 0; i < sizeof FILTERS / sizeof FILTERS[0]; i++)
        if (!strcmp(FILTERS[i].name, name)) return FILTERS[i].id;
    for (int i = 0; UNSUPPORTED_FILTERS[i]; i++)
        if (!strcmp(UNSUPPORTED_FILTERS[i], name)) return -2;
    return -1;
}

int tpl_test_id(const char *name)
{
    for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++)
        if (!strcmp(TESTS[i].name, name)) return TESTS[i].id;
    return -1;
}

/* builtin function / method ids */
enum {
    /* globals */
    G_RANGE = 1, G_DICT, G_NAMESPACE, G_CYCLER, G_JOINER, G_RAISE, G_STRFTIME, G_LIPSUM,
    /* str */
    S_STRIP, S_LSTRIP, S_RSTRIP, S_SPLIT, S_RSPLIT, S_SPLITLINES, S_STARTSWITH, S_ENDSWITH, S_REPLACE,
    S_UPPER, S_LOWER, S_TITLE, S_CAPITALIZE, S_SWAPCASE, S_CASEFOLD, S_FIND, S_RFIND, S_INDEX, S_RINDEX,
    S_COUNT, S_JOIN, S_FORMAT, S_ZFILL, S_CENTER, S_LJUST, S_RJUST, S_PARTITION, S_RPARTITION,
    S_REMOVEPREFIX, S_REMOVESUFFIX, S_ISDIGIT, S_ISALPHA, S_ISALNUM, S_ISSPACE, S_ISLOWER, S_ISUPPER,
    S_ISDECIMAL, S_ISNUMERIC, S_ISASCII, S_ISTITLE,
    /* dict */
    D_GET, D_ITEMS, D_KEYS, D_VALUES, D_COPY,
    /* list / tuple */
    L_INDEX, L_COUNT, L_COPY,
    /* loop, cycler */
    LP_CYCLE, LP_CHANGED, CY_NEXT, CY_RESET,
    /* known but not supported */
    M_UNSUPPORTED
};

static const struct { const char *name; int id; } STR_METHODS[] = {
    {"strip", S_STRIP}, {"lstrip", S_LSTRIP}, {"rstrip", S_RSTRIP}, {"split", S_SPLIT}, {"rsplit", S_RSPLIT},
    {"splitlines", S_SPLITLINES}, {"startswith", S_STARTSWITH}, {"endswith", S_ENDSWITH},
    {"replace", S_REPLACE}, {"upper", S_UPPER}, {"lower", S_LOWER}, {"title", S_TITLE},
    {"capitalize", S_CAPITALIZE}, {"swapcase", S_SWAPCASE}, {"casefold", S_CASEFOLD}, {"find", S_FIND},
    {"rfind", S_RFIND}, {"index", S_INDEX}, {"rindex", S_RINDEX}, {"count", S_COUNT}, {"join", S_JOIN},
    {"format", S_FORMAT}, {"zfill", S_ZFILL}, {"center", S_CENTER}, {"ljust", S_LJUST}, {"rjust", S_RJUST},
    {"partition", S_PARTITION}, {"rpartition", S_RPARTITION}, {"removeprefix", S_REMOVEPREFIX},
    {"removesuffix", S_REMOVESUFFIX}, {"isdigit", S_ISDIGIT}, {"isalpha", S_ISALPHA},
    {"isalnum", S_ISALNUM}, {"isspace", S_ISSPACE}, {"islower", S_ISLOWER}, {"isupper", S_ISUPPER},
    {"isdecimal", S_ISDECIMAL}, {"isnumeric", S_ISNUMERIC}, {"isascii", S_ISASCII}, {"istitle", S_ISTITLE},
    {"encode", M_UNSUPPORTED}, {"expandtabs", M_UNSUPPORTED}, {"format_map", M_UNSUPPORTED},
    {"isidentifier", M_UNSUPPORTED}, {"isprintable", M_UNSUPPORTED}, {"maketrans", M_UNSUPPORTED},
    {"translate", M_UNSUPPORTED},
};

/* ----------------------------------------------------------- arg binding */

#define MISSING_T 255

static int missing(const tv *v) { return v->t == MISSING_T; }

/* Binds args to params (after the implicit first argument). Extra
 * positionals go to *rest if rest != NULL. */
static void bind(rctx *c, const tnode *at, const char *fname, const targs *a, const char *const *params, int np,
                 tv *out, int allow_kwargs_rest, targs *rest)
{
    for (int i = 0; i < np; i++) out[i].t = MISSING_T;
    int npos = a->npos;
    if (rest) {
        memset(rest, 0, sizeof *rest);
        if (npos > np) {
            rest->pos = a->pos + np;
            rest->npos = npos - np;
            npos = np;
        }
    } else if (npos > np)
        tpl_rfail(c, at, CLENS_E_ARG, "%s() takes at most %d positional argument(s) (%d given)", fname, np, a->npos);
    for (int i = 0; i < npos; i++) out[i] = a->pos[i];
    for (int k = 0; k < a->nkw; k++) {
        int found = -1;
        for (int i = 0; i < np; i++)
            if (!strcmp(params[i], a->kwn[k])) { found = i; break; }
        if (found < 0) {
            if (allow_kwargs_rest && rest) {
                if (!rest->kwn) {
                    rest->kwn = tpl_alloc(c->ar, sizeof(char *) * (size_t)a->nkw);
                    rest->kwv = tpl_alloc(c->ar, sizeof(tv) * (size_t)a->nkw);
                }
                rest->kwn[rest->nkw] = a->kwn[k];
                rest->kwv[rest->nkw++] = a->kwv[k];
                continue;
            }
            tpl_rfail(c, at, CLENS_E_ARG, "%s() got an unexpected keyword argument '%s'", fname, a->kwn[k]);
        }
        if (!missing(&out[found]))
            tpl_rfail(c, at, CLENS_E_ARG, "%s() got multiple values for argument '%s'", fname, a->kwn[k]);
        out[found] = a->kwv[k];
    }
}

static int64_t want_int(rctx *c, const tnode *at, const tv *v, const char *what)
{
    if (v->t == TV_INT || v->t == TV_BOOL) return v->u.i;
    if (v->t == TV_UNDEF) tpl_undef_fail(c, at, v);
    tpl_rfail(c, at, CLENS_E_ARG, "%s: '%s' object cannot be interpreted as an integer", what, tv_type_name(v));
}

static tv want_str(rctx *c, const tnode *at, const tv *v, const char *what)
{
    if (v->t == TV_STR) return *v;
    if (v->t == TV_UNDEF) tpl_undef_fail(c, at, v);
    tpl_rfail(c, at, CLENS_E_ARG, "%s: must be str, not %s", what, tv_type_name(v));
}

/* soft_str: str() of anything printable (Undefined -> "") */
static tv soft_str(rctx *c, const tnode *at, const tv *v) { return tpl_to_str(c, at, v); }

/* ------------------------------------------------------- string helpers */

static size_t cp_len(const tv *s) { return tpl_utf8_count(s->u.s.p, s->u.s.n); }

/* byte offset of code point index i (clamped) */
static size_t cp_off(const tv *s, int64_t i)
{
    size_t p = 0;
    for (int64_t k = 0; k < i && p < s->u.s.n; k++) {
        uint32_t cp;
        p += (size_t)tpl_utf8_dec(s->u.s.p + p, s->u.s.n - p, &cp);
    }
    return p;
}

static int in_chars(uint32_t cp, const tv *chars)
{
    size_t i = 0;
    while (i < chars->u.s.n) {
        uint32_t x;
        i += (size_t)tpl_utf8_dec(chars->u.s.p + i, chars->u.s.n - i, &x);
        if (x == cp) return 1;
    }
    return 0;
}

/* strip: which 1 = left, 2 = right, 3 = both; chars NULL = whitespace */
static tv str_strip(const tv *s, int which, const tv *chars)
{
    size_t b = 0, e = s->u.s.n;
    if (which & 1)
        while (b < e) {
            uint32_t cp;
            int k = tpl_utf8_dec(s->u.s.p + b, e - b, &cp);
            if (chars ? !in_chars(cp, chars) : !tpl_py_isspace(cp)) break;
            b += (size_t)k;
        }
    if (which & 2)
        while (e > b) {
            size_t k = 1;
            while (k < 4 && e - k > b && (((unsigned char)s->u.s.p[e - k]) & 0xC0) == 0x80) k++;
            uint32_t cp;
            tpl_utf8_dec(s->u.s.p + e - k, k, &cp);
            if (chars ? !in_chars(cp, chars) : !tpl_py_isspace(cp)) break;
            e -= k;
        }
    return tv_str(s->u.s.p + b, e - b);
}

static const char *memfind(const char *h, size_t hn, const char *n, size_t nn)
{
    if (nn == 0) return h;
    if (nn > hn) return NULL;
    for (size_t i = 0; i + nn <= hn; i++)
        if (h[i] == n[0] && memcmp(h + i, n, nn) == 0) return h + i;
    return NULL;
}

static const char *memrfind(const char *h, size_t hn, const char *n, size_t nn)
{
    if (nn > hn) return NULL;
    for (size_t i = hn - nn + 1; i-- > 0;)
        if (memcmp(h + i, n, nn) == 0) return h + i;
    return NULL;
}

static tv str_replace(rctx *c, const tv *s, const tv *old, const tv *new, int64_t count)
{
    tsb b;
    tsb_init(&b, c->ar, c->o->max_output);
    if (old->u.s.n == 0) { /* insert between characters */
        size_t i = 0;
        int64_t done = 0;
        if (count != 0) { tsb_put(&b, new->u.s.p, new->u.s.n); done++; }
        while (i < s->u.s.n) {
            uint32_t cp;
            int k = tpl_utf8_dec(s->u.s.p + i, s->u.s.n - i, &cp);
            tsb_put(&b, s->u.s.p + i, (size_t)k);
            i += (size_t)k;
            if (count < 0 || done < count) { tsb_put(&b, new->u.s.p, new->u.s.n); done++; }
        }
        return tv_str(b.p ? b.p : "", b.n);
    }
    size_t i = 0;
    int64_t done = 0;
    while (i < s->u.s.n) {
        const char *f = (count < 0 || done < count) ? memfind(s->u.s.p + i, s->u.s.n - i, old->u.s.p, old->u.s.n) : NULL;
        if (!f) { tsb_put(&b, s->u.s.p + i, s->u.s.n - i); break; }
        size_t j = (size_t)(f - s->u.s.p);
        tsb_put(&b, s->u.s.p + i, j - i);
        tsb_put(&b, new->u.s.p, new->u.s.n);
        i = j + old->u.s.n;
        done++;
    }
    return tv_str(b.p ? b.p : "", b.n);
}

static int cat_is(uint32_t cp, int which) /* 1 upper(Lu), 2 lower(Ll), 3 title(Lt), 4 letter, 5 Nd, 6 numeric */
{
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)cp);
    switch (which) {
    case 1: return k == UTF8PROC_CATEGORY_LU;
    case 2: return k == UTF8PROC_CATEGORY_LL;
    case 3: return k == UTF8PROC_CATEGORY_LT;
    case 4: return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
    case 5: return k == UTF8PROC_CATEGORY_ND;
    default: return k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO;
    }
}

static int is_cased(uint32_t cp) { return cat_is(cp, 1) || cat_is(cp, 2) || cat_is(cp, 3); }

/* mode: 1 upper, 2 lower, 3 title-case one char */
static void put_case(tsb *b, uint32_t cp, int mode)
{
    if (mode == 1 && cp == 0xDF) { tsb_puts(b, "SS"); return; }
    utf8proc_int32_t r = mode == 1 ? utf8proc_toupper((utf8proc_int32_t)cp)
                       : mode == 2 ? utf8proc_tolower((utf8proc_int32_t)cp)
                                   : utf8proc_totitle((utf8proc_int32_t)cp);
    tsb_put_cp(b, (uint32_t)r);
}

/* kind: 1 upper, 2 lower, 3 swapcase, 4 title (Python), 5 capitalize */
static tv str_case(rctx *c, const tv *s, int kind)
{
    tsb b;
    tsb_init(&b, c->ar, 0);
    size_t i = 0;
    int prev_cased = 0, first = 1;
    while (i < s->u.s.n) {
        uint32_t cp;
        int k = tpl_utf8_dec(s->u.s.p + i, s->u.s.n - i, &cp);
        switch (kind) {
        case 1: put_case(&b, cp, 1); break;
        case 2: put_case(&b, cp, 2); break;
        case 3: put_case(&b, cp, cat_is(cp, 1) ? 2 : cat_is(cp, 2) ? 1 : 0); break;
        case 4:
            put_case(&b, cp, prev_cased ? 2 : 3);
            prev_cased = is_cased(cp);
            break;
        default:
            put_case(&b, cp, first ? 3 : 2);
            break;
        }
        first = 0;
        i += (size_t)k;
    }
    return tv_str(b.p ? b.p : "", b.n);
}

/* jinja2's title filter: split on [-\s({\[<]+, upper first char, lower the rest */
static tv jinja_title(rctx *c, const tv *s)
{
    tsb b;
    tsb_init(&b, c->ar, 0);
    size_t i = 0;
    int at_start = 1;
    while (i < s->u.s.n) {
        uint32_t cp;
        int k = tpl_utf8_dec(s->u.s.p + i, s->u.s.n - i, &cp);
        int sep = tpl_py_isspace(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<';
        if (sep) { tsb_put(&b, s->u.s.p + i, (size_t)k); at_start = 1; }
        else { put_case(&b, cp, at_start ? 1 : 2); at_start = 0; }
        i += (size_t)k;
    }
    return tv_str(b.p ? b.p : "", b.n);
}

static int str_pred(const tv *s, int which)
{
    size_t i = 0;
    int any = 0, cased = 0;
    if (s->u.s.n == 0) return 0;
    while (i < s->u.s.n) {
        uint32_t cp;
        i += (size_t)tpl_utf8_dec(s->u.s.p + i, s->u.s.n - i, &cp);
        switch (which) {
        case S_ISDIGIT: case S_ISDECIMAL: if (!cat_is(cp, 5)) return 0; break;
        case S_ISNUMERIC: if (!cat_is(cp, 6)) return 0; break;
        case S_ISALPHA: if (!cat_is(cp, 4)) return 0; break;
        case S_ISALNUM: if (!cat_is(cp, 4) && !cat_is(cp, 6)) return 0; break;
        case S_ISSPACE: if (!tpl_py_isspace(cp)) return 0; break;
        case S_ISASCII: if (cp > 0x7F) return 0; break;
        case S_ISLOWER: if (cat_is(cp, 1) || cat_is(cp, 3)) return 0; if (cat_is(cp, 2)) cased = 1; break;
        case S_ISUPPER: if (cat_is(cp, 2) || cat_is(cp, 3)) return 0; if (cat_is(cp, 1)) cased = 1; break;
        case S_ISTITLE:
            if (cat_is(cp, 1) || cat_is(cp, 3)) { if (any) return 0; any = 1; cased = 1; }
            else if (cat_is(cp, 2)) { if (!any) return 0; cased = 1; }
            else any = 0;
            break;
        }
    }
    if (which == S_ISLOWER || which == S_ISUPPER || which == S_ISTITLE) return cased;
    return 1;
}

/* Python str.split / rsplit */
static tv str_split(rctx *c, const tnode *at, const tv *s, const tv *sep, int64_t maxsplit, int right)
{
    tv out = tv_list_new(c->ar, LK_LIST, 0);
    const char *p = s->u.s.p;
    size_t n = s->u.s.n;
    if (!sep || sep->t == TV_NONE) {
        /* whitespace runs; collect words left to right or right to left */
        tv words = tv_list_new(c->ar, LK_LIST, 0);
        if (!right) {
            size_t i = 0;
            int64_t splits = 0;
            for (;;) {
                while (i < n) {
                    uint32_t cp;
                    int k = tpl_utf8_dec(p + i, n - i, &cp);
                    if (!tpl_py_isspace(cp)) break;
                    i += (size_t)k;
                }
                if (i >= n) break;
                if (maxsplit >= 0 && splits >= maxsplit) {
                    /* rest of the string, trailing whitespace stripped */
                    tv_list_push(c->ar, &words, tv_str(p + i, n - i));
                    break;
                }
                size_t j = i;
                while (j < n) {
                    uint32_t cp;
                    int k = tpl_utf8_dec(p + j, n - j, &cp);
                    if (tpl_py_isspace(cp)) break;
                    j += (size_t)k;
                }
                tv_list_push(c->ar, &words, tv_str(p + i, j - i));
                splits++;
                i = j;
            }
            return words;
        }
        size_t e = n;
        int64_t splits = 0;
        for (;;) {
            while (e > 0) {
                size_t k = 1;
                while (k < 4 && e - k > 0 && (((unsigned char)p[e - k]) & 0xC0) == 0x80) k++;
                uint32_t cp;
                tpl_utf8_dec(p + e - k, k, &cp);
                if (!tpl_py_isspace(cp)) break;
                e -= k;
            }
            if (e == 0) break;
            if (maxsplit >= 0 && splits >= maxsplit) {
                tv_list_push(c->ar, &words, tv_str(p, e));
                break;
            }
            size_t b = e;
            while (b > 0) {
                size_t k = 1;
                while (k < 4 && b - k > 0 && (((unsigned char)p[b - k]) & 0xC0) == 0x80) k++;
                uint32_t cp;
                tpl_utf8_dec(p + b - k, k, &cp);
                if (tpl_py_isspace(cp)) break;
                b -= k;
            }
            tv_list_push(c->ar, &words, tv_str(p + b, e - b));
            splits++;
            e = b;
        }
        for (size_t i = words.u.l->n; i-- > 0;) tv_list_push(c->ar, &out, words.u.l->v[i]);
        return out;
    }
    tv sp = want_str(c, at, sep, "split()");
    if (sp.u.s.n == 0) tpl_rfail(c, at, CLENS_E_ARG, "empty separator");
    if (!right) {
        size_t i = 0;
        int64_t splits = 0;
        for (;;) {
            const char *f = (maxsplit < 0 || splits < maxsplit) ? memfind(p + i, n - i, sp.u.s.p, sp.u.s.n) : NULL;
            if (!f) { tv_list_push(c->ar, &out, tv_str(p + i, n - i)); break; }
            tv_list_push(c->ar, &out, tv_str(p + i, (size_t)(f - (p + i))));
            i = (size_t)(f - p) + sp.u.s.n;
            splits++;
        }
        return out;
    }
    tv rev = tv_list_new(c->ar, LK_LIST, 0);
    size_t e = n;
    int64_t splits = 0;
    for (;;) {
        const char *f = (maxsplit < 0 || splits < maxsplit) ? memrfind(p, e, sp.u.s.p, sp.u.s.n) : NULL;
        if (!f) { tv_list_push(c->ar, &rev, tv_str(p, e)); break; }
        size_t j = (size_t)(f - p);
        tv_list_push(c->ar, &rev, tv_str(p + j + sp.u.s.n, e - j - sp.u.s.n));
        e = j;
        splits++;
    }
    for (size_t i = rev.u.l->n; i-- > 0;) tv_list_push(c->ar, &out, rev.u.l->v[i]);
    return out;
}

/* Python str.splitlines(keepends=False) */
static tv str_splitlines(rctx *c, const tv *s, int keepends)
{
    tv out = tv_list_new(c->ar, LK_LIST, 0);
    const char *p = s->u.s.p;
    size_t n = s->u.s.n, i = 0, start = 0;
    while (i < n) {
        uint32_t cp;
        int k = tpl_utf8_dec(p + i, n - i, &cp);
        int br = cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C || cp == 0x1D || cp == 0x1E ||
                 cp == 0x85 || cp == 0x2028 || cp == 0x2029;
        if (br) {
            size_t e = i + (size_t)k;
            if (cp == '\r' && e < n && p[e] == '\n') e++;
            tv_list_push(c->ar, &out, tv_str(p + start, (keepends ? e : i) - start));
            i = start = e;
        } else i += (size_t)k;
    }
    if (start < n) tv_list_push(c->ar, &out, tv_str(p + start, n - start));
    return out;
}

static tv str_pad(rctx *c, const tv *s, int64_t width, const tv *fill, int mode /* 0 center 1 ljust 2 rjust */)
{
    int64_t len = (int64_t)cp_len(s);
    if (width <= len) return *s;
    int64_t pad = width - len, left;
    if (mode == 0) left = pad / 2 + (pad & width & 1);
    else if (mode == 1) left = 0;
    else left = pad;
    tsb b;
    tsb_init(&b, c->ar, c->o->max_output);
    for (int64_t i = 0; i < left; i++) tsb_put(&b, fill->u.s.p, fill->u.s.n);
    tsb_put(&b, s->u.s.p, s->u.s.n);
    for (int64_t i = 0; i < pad - left; i++) tsb_put(&b, fill->u.s.p, fill->u.s.n);
    return tv_str(b.p ? b.p : "", b.n);
}

/* start/end code point bounds as Python slices them */
static void bounds(rctx *c, const tnode *at, const tv *s, const tv *st, const tv *en, size_t *bs, size_t *be)
{
    int64_t len = (int64_t)cp_len(s), a = 0, z = len;
    if (st && !missing(st) && st->t != TV_NONE) a = want_int(c, at, st, "slice index");
    if (en && !missing(en) && en->t != TV_NONE) z = want_int(c, at, en, "slice index");
    if (a < 0) { a += len; if (a < 0) a = 0; }
    if (z < 0) { z += len; if (z < 0) z = 0; }
    if (a > len) a = len;
    if (z > len) z = len;
    *bs = cp_off(s, a);
    *be = z < a ? *bs : cp_off(s, z);
}

static int64_t cp_index_of(const tv *s, size_t byte_off) { return (int64_t)tpl_utf8_count(s->u.s.p, byte_off); }

/* Python "{}".format(...) with plain fields only */
static tv str_format(rctx *c, const tnode *at, const tv *fmt, const targs *a)
{
    tsb b;
    tsb_init(&b, c->ar, c->o->max_output);
    const char *p = fmt->u.s.p;
    size_t n = fmt->u.s.n, i = 0;
    int auto_idx = 0, manual = 0;
    while (i < n) {
        char ch = p[i];
        if (ch == '{' && i + 1 < n && p[i + 1] == '{') { tsb_putc(&b, '{'); i += 2; continue; }
        if (ch == '}' && i + 1 < n && p[i + 1] == '}') { tsb_putc(&b, '}'); i += 2; continue; }
        if (ch == '}') tpl_rfail(c, at, CLENS_E_ARG, "Single '}' encountered in format string");
        if (ch != '{') { tsb_putc(&b, ch); i++; continue; }
        size_t j = i + 1;
        while (j < n && p[j] != '}' && p[j] != '{') j++;
        if (j >= n || p[j] != '}') tpl_rfail(c, at, CLENS_E_ARG, "expected '}' before end of string");
        const char *fld = p + i + 1;
        size_t fl = j - i - 1, nl = 0;
        while (nl < fl && fld[nl] != '!' && fld[nl] != ':') nl++;
        int conv = 0;
        if (nl < fl && fld[nl] == '!') {
            if (nl + 2 > fl || (fld[nl + 1] != 'r' && fld[nl + 1] != 's')) tpl_rfail(c, at, CLENS_E_UNSUPPORTED, "unsupported format conversion");
            conv = fld[nl + 1];
            if (nl + 2 != fl) tpl_rfail(c, at, CLENS_E_UNSUPPORTED, "format specs are not supported by clens");
        } else if (nl < fl) tpl_rfail(c, at, CLENS_E_UNSUPPORTED, "format specs are not supported by clens");
        tv val;
        if (nl == 0) {
            if (manual) tpl_rfail(c, at, CLENS_E_ARG, "cannot switch from manual field specification to automatic field numbering");
            if (auto_idx >= a->npos) tpl_rfail(c, at, CLENS_E_ARG, "Replacement index %d out of range for positional args tuple", auto_idx);
            val = a->pos[auto_idx++];
        } else if (fld[0] >= '0' && fld[0] <= '9') {
            int idx = 0;
            for (size_t k = 0; k < nl; k++) {
                if (fld[k] < '0' || fld[k] > '9') tpl_rfail(c, at, CLENS_E_UNSUPPORTED, "unsupported format field");
                idx = idx * 10 + (fld[k] - '0');
                if (idx > 100000) break;
            }
            manual = 1;
            if (idx >= a->npos) tpl_rfail(c, at, CLENS_E_ARG, "Replacement index %d out of range for positional args tuple", idx);
            val = a->pos[idx];
        } else {
            int found = 0;
            for (size_t k = 0; k < nl; k++)
                if (fld[k] == '.' || fld[k] == '[') tpl_rfail(c, at, CLENS_E_UNSUPPORTED, "format fields with attributes are not supported by clens");
            for (int k = 0; k < a->nkw; k++)
                if (strlen(a->kwn[k]) == nl && !memcmp(a->kwn[k], fld, nl)) { val = a->kwv[k]; found = 1; }
            if (!found) tpl_rfail(c, at, CLENS_E_ARG, "KeyError: '%.*s'", (int)nl, fld);
        }
        if (conv == 'r') {
            if (tv_repr_into(&b, &val) != 0) tpl_rfail(c, at, CLENS_E_UNSUPPORTED, "cannot format this value");
        } else {
            tv s = soft_str(c, at, &val);
            tsb_put(&b, s.u.s.p, s.u.s.n);
        }
        i = j + 1;
    }
    return tv_str(b.p ? b.p : "", b.n);
}

/* Python printf-style formatting: fmt % arg */
tv tpl_str_percent(rctx *c, const tnode *at, const tv *fmt, const tv *arg)
{
    if (fmt->k == SK_MARKUP) { /* Markup % args escapes the string arguments */
        tv f = *fmt;
        f.k = 0;
        tv a2 = *arg;
        if (arg->t == TV_STR && arg->k != SK_MARKUP) a2 = tpl_html_escape(c, arg);
        else if (arg->t == TV_LIST && arg->k == LK_TUPLE) {
            a2 = tv_list_new(c->ar, LK_TUPLE, arg->u.l->n);
            for (size_t i = 0; i < arg->u.l->n; i++) {
                tv x = arg->u.l->v[i];
                tv_list_push(c->ar, &a2, x.t == TV_STR && x.k != SK_MARKUP ? tpl_html_escape(c, &x) : x);
            }
        }
        tv r = tpl_str_percent(c, at, &f, &a2);
        r.k = SK_MARKUP;
        return r;
    }
    const tv *items = arg;
    size_t nitems = 1;
    int is_map = arg->t == TV_DICT;
    if (arg->t == TV_LIST && arg->k == LK_TUPLE) { items = arg->u.l->v; nitems = arg->u.l->n; }
    size_t used = 0;
    tsb b;
    tsb_init(&b, c->ar, c->o->max_output);
    const char *p = fmt->u.s.p;
    size_t n = fmt->u.s.n, i = 0;
    while (i < n) {
        if (p[i] != '%') { tsb_putc(&b, p[i++]); continue; }
        i++;
        if (i >= n) tpl_rfail(c, at, CLENS_E_ARG, "incomplete format");
        tv val;
        int have_val = 0;
        if (p[i] == '(') {
            size_t j = i + 1;
            int depth = 1;
            while (j < n && depth) { if (p[j] == '(') depth++; else if (p[j] == ')') depth--; j++; }
            if (depth) tpl_rfail(c, at, CLENS_E_ARG, "incomplete format key");
            if (!is_map) tpl_rfail(c, at, CLENS_E_ARG, "format requires a mapping");
            tv key = tv_str(p + i + 1, j - i - 2);
            tv *x = tv_dict_get(arg->u.d, &key);
            if (!x) tpl_rfail(c, at, CLENS_E_ARG, "KeyError: '%.*s'", (int)key.u.s.n, key.u.s.p);
            val = *x;
            have_val = 1;
            i = j;
        }
        char flags[8] = {0};
        int nf = 0;
        while (i < n && strchr("-+ #0", p[i]) && nf < 7) flags[nf++] = p[i++];
        char spec[64];
        int64_t width = -1, prec = -1;
        /* Python reads any width / precision ("width too big" past ssize_t);
         * one beyond the output limit could only end in that limit's error. */
        size_t lim = c->o->max_output ? c->o->max_output : (size_t)INT32_MAX;
        if (i < n && p[i] == '*') tpl_rfail(c, at, CLENS_E_UNSUPPORTED, "'*' widths are not supported by clens");
        while (i < n && p[i] >= '0' && p[i] <= '9') {
            if (width > (INT64_MAX - 9) / 10) tpl_rfail(c, at, CLENS_E_ARG, "width too big");
            width = (width < 0 ? 0 : width) * 10 + (p[i++] - '0');
        }
        if (i < n && p[i] == '.') {
            i++;
            prec = 0;
            while (i < n && p[i] >= '0' && p[i] <= '9') {
                prec = prec * 10 + (p[i++] - '0');
                if (prec > INT32_MAX) tpl_rfail(c, at, CLENS_E_ARG, "precision too big"); /* Python: past INT_MAX */
            }
        }
        if (width > (int64_t)lim)
            tpl_rfail(c, at, CLENS_E_ARG, "format width %lld exceeds the output limit of %zu bytes", (long long)width, lim);
        while (i < n && (p[i] == 'l' || p[i] == 'h' || p[i] == 'L')) i++;
        if (i >= n) tpl_rfail(c, at, CLENS_E_ARG, "incomplete format");
        char conv = p[i++];
        if (conv == '%') { tsb_putc(&b, '%'); continue; }
        if (!have_val) {
            if (is_map) val = *arg;
            else {
                if (used >= nitems) tpl_rfail(c, at, CLENS_E_ARG, "not enough arguments for format string");
                val = items[used++];
            }
        }
        int left = strchr(flags, '-') != NULL, zero = strchr(flags, '0') != NULL;
        int plus = strchr(flags, '+') != NULL, space = strchr(flags, ' ') != NULL, alt = strchr(flags, '#') != NULL;
        tv text;
        switch (conv) {
        case 's': case 'r': case 'a': case 'c': {
            if (conv == 'c') {
                /* Python: an int in range(0x110000) or a one-character str;
                 * a surrogate would make text no UTF-8 encoder accepts. */
                if (val.t == TV_STR) {
                    if (cp_len(&val) != 1) tpl_rfail(c, at, CLENS_E_ARG, "%%c requires int or char");
                    text = val;
                } else if (val.t == TV_INT || val.t == TV_BOOL) {
                    int64_t cp = val.u.i;
                    if (cp < 0 || cp > 0x10ffff) tpl_rfail(c, at, CLENS_E_ARG, "%%c arg not in range(0x110000)");
                    if (cp >= 0xd800 && cp <= 0xdfff)
                        tpl_rfail(c, at, CLENS_E_ARG,
                                  "%%c of the surrogate U+%04llX: 'utf-8' codec can't encode it (surrogates not allowed)",
                                  (long long)cp);
                    tsb one;
                    tsb_init(&one, c->ar, 0);
                    tsb_put_cp(&one, (uint32_t)cp);
                    text = tv_str(one.p, one.n);
                } else {
                    tpl_rfail(c, at, CLENS_E_ARG, "%%c requires int or char");
                }
            } else if (conv == 's') text = soft_str(c, at, &val);
            else {
                tsb r;
                tsb_init(&r, c->ar, 0);
                if (tv_repr_into(&r, &val) != 0) tpl_rfail(c, at, CLENS_E_UNSUPPORTED, "cannot format this value");
                text = tv_str(r.p ? r.p : "", r.n);
            }
            if (conv != 'c' && prec >= 0 && (size_t)prec < cp_len(&text)) text = tv_str(text.u.s.p, cp_off(&text, (size_t)prec));
            int64_t len = (int64_t)cp_len(&text);
            if (!left) for (int64_t k = len; k < width; k++) tsb_putc(&b, ' ');
            tsb_put(&b, text.u.s.p, text.u.s.n);
            if (left) for (int64_t k = len; k < width; k++) tsb_putc(&b, ' ');
            continue;
        }
        case 'd': case 'i': case 'u': case 'x': case 'X': case 'o': {
            if (val.t == TV_FLOAT) {
                if (!isfinite(val.u.f)) tpl_rfail(c, at, CLENS_E_ARG, "cannot convert float to integer");
                if (val.u.f >= 9223372036854775808.0 || val.u.f < -9223372036854775808.0)
                    tpl_rfail(c, at, CLENS_E_UNSUPPORTED, "integer overflow (only 64-bit integers are supported by clens)");
                val = tv_int((int64_t)val.u.f);
            }
            if (val.t != TV_INT && val.t != TV_BOOL)
                tpl_rfail(c, at, CLENS_E_ARG, "%%%c format: a real number is required, not %s", conv, tv_type_name(&val));
            if (prec > (int64_t)lim)
                tpl_rfail(c, at, CLENS_E_ARG, "format precision %lld exceeds the output limit of %zu bytes",
                          (long long)prec, lim);
            /* Python's layout: [sign][0x/0X/0o][zeros to precision]digits,
             * padded to width by spaces (left or right) or by zeros after
             * the prefix; the magnitude in unsigned, so INT64_MIN is exact. */
            int64_t v = val.u.i;
            unsigned long long mag = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
            char digits[32];
            snprintf(digits, sizeof digits, conv == 'x' ? "%llx" : conv == 'X' ? "%llX" : conv == 'o' ? "%llo" : "%llu", mag);
            const char *sign = v < 0 ? "-" : plus ? "+" : space ? " " : "";
            const char *prefix = !alt ? "" : conv == 'x' ? "0x" : conv == 'X' ? "0X" : conv == 'o' ? "0o" : "";
            int64_t nd = (int64_t)strlen(digits), body = nd > prec ? nd : prec;
            int64_t total = (int64_t)strlen(sign) + (int64_t)strlen(prefix) + body;
            int64_t padn = width > total ? width - total : 0;
            if (!left && !zero) for (int64_t k = 0; k < padn; k++) tsb_putc(&b, ' ');
            tsb_puts(&b, sign);
            tsb_puts(&b, prefix);
            if (!left && zero) for (int64_t k = 0; k < padn; k++) tsb_putc(&b, '0');
            for (int64_t k = nd; k < prec; k++) tsb_putc(&b, '0');
            tsb_puts(&b, digits);
            if (left) for (int64_t k = 0; k < padn; k++) tsb_putc(&b, ' ');
            continue;
        }
        case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': {
            if (val.t != TV_INT && val.t != TV_BOOL && val.t != TV_FLOAT)
                tpl_rfail(c, at, CLENS_E_ARG, "must be real number, not %s", tv_type_name(&val));
            if (prec > (int64_t)lim)
                tpl_rfail(c, at, CLENS_E_ARG, "format precision %lld exceeds the output limit of %zu bytes",
                          (long long)prec, lim);
            double d = val.t == TV_FLOAT ? val.u.f : (double)val.u.i;
            int w = width >= 0 ? (int)width : 0, pr = prec >= 0 ? (int)prec : 6;
            snprintf(spec, sizeof spec, "%%%s*.*%c", flags, conv);
            /* sized by a first pass: C's (and Python's) digits are exact, so
             * '%.2000f' is 2002 characters, none cut */
            int need = snprintf(NULL, 0, spec, w, pr, d);
            if (need < 0 || (size_t)need > lim)
                tpl_rfail(c, at, CLENS_E_ARG, "formatted number exceeds the output limit of %zu bytes", lim);
            char *num = tpl_alloc(c->ar, (size_t)need + 1);
            snprintf(num, (size_t)need + 1, spec, w, pr, d);
            tsb_put(&b, num, (size_t)need);
            continue;
        }
        default:
            tpl_rfail(c, at, CLENS_E_ARG, "unsupported format character '%c'", conv);
        }
    }
    /* CPython skips this check when the argument supports [] (PyMapping_Check):
     * dicts, lists, ranges, but not tuples or strings */
    int subscriptable = is_map || (arg->t == TV_LIST && arg->k != LK_TUPLE && arg->k != LK_GEN &&
                                   arg->k != LK_ITEMS && arg->k != LK_KEYS && arg->k != LK_VALUES);
    if (!subscriptable && used < nitems)
        tpl_rfail(c, at, CLENS_E_ARG, "not all arguments converted during string formatting");
    return tv_str(b.p ? b.p : "", b.n);
}

/* ---------------------------------------------------------- sorting etc. */

typedef struct keyed { tv key; tv val; } keyed;

static int key_cmp(rctx *c, const tnode *at, const tv *a, const tv *b)
{
    int ok;
    int r = tv_cmp(a, b, &ok);
    if (!ok) {
        if (a->t == TV_UNDEF) tpl_undef_fail(c, at, a);
        if (b->t == TV_UNDEF) tpl_undef_fail(c, at, b);
        tpl_rfail(c, at, CLENS_E_ARG, "'<' not supported between instances of '%s' and '%s'", tv_type_name(a),
                  tv_type_name(b));
    }
    return ok == 2 ? 0 : r;
}

/* stable merge sort; reverse keeps equal items in original order (Python) */
static void merge_sort(rctx *c, const tnode *at, keyed *v, size_t n, int reverse, keyed *tmp)
{
    if (n < 2) return;
    size_t h = n / 2;
    merge_sort(c, at, v, h, reverse, tmp);
    merge_sort(c, at, v + h, n - h, reverse, tmp);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int r = reverse ? key_cmp(c, at, &v[i].key, &v[j].key) : key_cmp(c, at, &v[j].key, &v[i].key);
        /* take from the right only when strictly better */
        if (reverse ? r < 0 : r < 0) tmp[k++] = v[j++];
        else tmp[k++] = v[i++];
    }
    while (i < h) tmp[k++] = v[i++];
    while (j < n) tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof(keyed));
}

static tv lower_if_str(rctx *c, const tv *v)
{
    if (v->t == TV_STR) return str_case(c, v, 2);
    return *v;
}

/* make_attrgetter: dotted attribute path, integer parts as indexes */
static tv attr_path(rctx *c, const tnode *at, const tv *item, const tv *attr, const tv *dflt)
{
    if (!attr || missing(attr) || attr->t == TV_NONE) return *item;
    tv cur = *item;
    if (attr->t != TV_STR) {
        cur = tpl_getitem(c, at, &cur, attr);
        if (dflt && dflt->t != TV_NONE && cur.t == TV_UNDEF) cur = *dflt;
        return cur;
    }
    const char *p = attr->u.s.p;
    size_t n = attr->u.s.n, i = 0;
    for (;;) {
        size_t j = i;
        while (j < n && p[j] != '.') j++;
        tv part = tv_str(p + i, j - i);
        int digits = j > i;
        for (size_t k = i; k < j; k++)
            if (p[k] < '0' || p[k] > '9') digits = 0;
        if (digits) {
            int64_t v = 0;
            for (size_t k = i; k < j && v < INT64_MAX / 10 - 10; k++) v = v * 10 + (p[k] - '0');
            part = tv_int(v);
        }
        cur = tpl_getitem(c, at, &cur, &part);
        if (dflt && dflt->t != TV_NONE && cur.t == TV_UNDEF) cur = *dflt;
        if (j >= n) break;
        i = j + 1;
    }
    return cur;
}

static tv list_of(rctx *c, const tnode *at, const tv *v)
{
    tlist *l = tpl_iter(c, at, v);
    tv out = tv_list_new(c->ar, LK_LIST, l->n);
    for (size_t i = 0; i < l->n; i++) tv_list_push(c->ar, &out, l->v[i]);
    return out;
}

static int64_t py_len(rctx *c, const tnode *at, const tv *v)
{
    switch (v->t) {
    case TV_UNDEF: return 0;
    case TV_STR: return (int64_t)cp_len(v);
    case TV_DICT: return (int64_t)v->u.d->n;
    case TV_LIST: if (v->k != LK_GEN) return (int64_t)v->u.l->n; /* fall through */
    default: tpl_rfail(c, at, CLENS_E_ARG, "object of type '%s' has no len()", tv_type_name(v));
    }
}

/* float(x) as Python: numbers, numeric strings */
static int py_float(const tv *v, double *out)
{
    if (v->t == TV_FLOAT) { *out = v->u.f; return 1; }
    if (v->t == TV_INT || v->t == TV_BOOL) { *out = (double)v->u.i; return 1; }
    if (v->t != TV_STR) return 0;
    tv s = str_strip(v, 3, NULL);
    char buf[400];
    size_t m = 0;
    for (size_t i = 0; i < s.u.s.n; i++) {
        char ch = s.u.s.p[i];
        if (ch == '_') {
            if (i == 0 || i + 1 >= s.u.s.n || !(s.u.s.p[i - 1] >= '0' && s.u.s.p[i - 1] <= '9') ||
                !(s.u.s.p[i + 1] >= '0' && s.u.s.p[i + 1] <= '9'))
                return 0;
            continue;
        }
        if (m >= sizeof buf - 1 || (unsigned char)ch >= 0x80) return 0;
        buf[m++] = ch;
    }
    buf[m] = 0;
    if (m == 0) return 0;
    /* Python accepts [+-](digits[.digits][e..] | inf | infinity | nan) */
    const char *q = buf;
    if (*q == '+' || *q == '-') q++;
    if (!strcasecmp(q, "inf") || !strcasecmp(q, "infinity") || !strcasecmp(q, "nan")) {
        *out = strtod(buf, NULL);
        return 1;
    }
    for (const char *r = q; *r; r++)
        if (!strchr("0123456789.eE+-", *r)) return 0;
    if (*q == 'e' || *q == 'E' || (q[0] == '.' && !(q[1] >= '0' && q[1] <= '9'))) return 0;
    char *end;
    errno = 0;
    *out = strtod(buf, &end);
    return *end == 0;
}

/* int(str, base) as Python */
static int py_int_str(const tv *v, int64_t base, int64_t *out)
{
    tv s = str_strip(v, 3, NULL);
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, i = 0;
    int neg = 0;
    if (i < n && (p[i] == '+' || p[i] == '-')) neg = p[i++] == '-';
    if (base == 0 || base == 16 || base == 8 || base == 2) {
        if (i + 1 < n && p[i] == '0') {
            char x = (char)(p[i + 1] | 0x20);
            int b = x == 'x' ? 16 : x == 'o' ? 8 : x == 'b' ? 2 : 0;
            if (b && (base == 0 || base == b)) { base = b; i += 2; if (i < n && p[i] == '_') i++; }
        }
        if (base == 0) base = 10;
    }
    if (base < 2 || base > 36 || i >= n) return 0;
    uint64_t acc = 0;
    int last_us = 1;
    for (; i < n; i++) {
        char ch = p[i];
        if (ch == '_') { if (last_us) return 0; last_us = 1; continue; }
        int d = (ch >= '0' && ch <= '9') ? ch - '0' : (ch >= 'a' && ch <= 'z') ? ch - 'a' + 10
              : (ch >= 'A' && ch <= 'Z') ? ch - 'A' + 10 : 99;
        if (d >= base) return 0;
        if (acc > (uint64_t)INT64_MAX / (uint64_t)base) return 0;
        acc = acc * (uint64_t)base + (uint64_t)d;
        if (acc > (uint64_t)INT64_MAX) return 0;
        last_us = 0;
    }
    if (last_us) return 0;
    *out = neg ? -(int64_t)acc : (int64_t)acc;
    return 1;
}

/* Python round(x, ndigits) for floats: correctly rounded, ties to even */
static double py_round(double x, int64_t nd)
{
    if (!isfinite(x)) return x;
    if (nd > 300) return x;
    if (nd < -308) return 0.0 * x;
    if (nd >= 0) {
        char buf[512];
        snprintf(buf, sizeof buf, "%.*f", (int)nd, x);
        return strtod(buf, NULL);
    }
    double p = pow(10.0, (double)-nd);
    double y = x / p;
    double r = nearbyint(y);
    return r * p;
}

static tv call_filter_by_name(rctx *c, const tnode *at, const tv *name, const tv *in, const targs *a)
{
    tv nm = want_str(c, at, name, "filter name");
    char *s = tpl_strndup(c->ar, nm.u.s.p, nm.u.s.n);
    int id = tpl_filter_id(s);
    if (id < 0) tpl_rfail(c, at, CLENS_E_ARG, id == -2 ? "filter '%s' is not supported by clens" : "No filter named '%s'.", s);
    return tpl_filter(c, at, id, s, in, a);
}

static int call_test_by_name(rctx *c, const tnode *at, const tv *name, const tv *in, const targs *a)
{
    tv nm = want_str(c, at, name, "test name");
    char *s = tpl_strndup(c->ar, nm.u.s.p, nm.u.s.n);
    int id = tpl_test_id(s);
    if (id < 0) tpl_rfail(c, at, CLENS_E_ARG, "No test named '%s'.", s);
    return tpl_test(c, at, id, s, in, a);
}

/* select / reject / selectattr / rejectattr */
static tv select_reject(rctx *c, const tnode *at, const tv *in, const targs *a, int attr, int reject)
{
    if (!tv_truthy(in)) return tv_list_new(c->ar, LK_GEN, 0); /* jinja2: "if value:" */
    int off = 0;
    tv attrname = tv_none();
    if (attr) {
        if (a->npos < 1) tpl_rfail(c, at, CLENS_E_ARG, "Missing parameter for attribute name");
        attrname = a->pos[0];
        off = 1;
    }
    int has_test = a->npos > off;
    targs ta = {0};
    if (has_test) {
        ta.pos = a->pos + off + 1;
        ta.npos = a->npos - off - 1;
        ta.kwn = a->kwn;
        ta.kwv = a->kwv;
        ta.nkw = a->nkw;
    }
    tlist *l = tpl_iter(c, at, in);
    tv out = tv_list_new(c->ar, LK_GEN, 0);
    for (size_t i = 0; i < l->n; i++) {
        tv x = attr ? attr_path(c, at, &l->v[i], &attrname, NULL) : l->v[i];
        int t = has_test ? call_test_by_name(c, at, &a->pos[off], &x, &ta) : tv_truthy(&x);
        if (t != reject) tv_list_push(c->ar, &out, l->v[i]);
    }
    return out;
}

static tv sum_values(rctx *c, const tnode *at, tlist *l, const tv *attr, tv start)
{
    tv acc = start;
    for (size_t i = 0; i < l->n; i++) {
        tv x = attr_path(c, at, &l->v[i], attr, NULL);
        acc = tpl_binop(c, at, OP_ADD, &acc, &x);
    }
    return acc;
}

tv tpl_html_escape(rctx *c, const tv *s)
{
    tsb b;
    tsb_init(&b, c->ar, 0);
    for (size_t i = 0; i < s->u.s.n; i++) {
        char ch = s->u.s.p[i];
        switch (ch) {
        case '&': tsb_puts(&b, "&amp;"); break;
        case '<': tsb_puts(&b, "&lt;"); break;
        case '>': tsb_puts(&b, "&gt;"); break;
        case '\'': tsb_puts(&b, "&#39;"); break;
        case '"': tsb_puts(&b, "&#34;"); break;
        default: tsb_putc(&b, ch);
        }
    }
    return tv_str(b.p ? b.p : "", b.n);
}

/* ---------------------------------------------------------------- filters */

tv tpl_filter(rctx *c, const tnode *at, int id, const char *name, const tv *in, const targs *a)
{
    tv p[6];
    switch (id) {
    case F_ABS:
        bind(c, at, name, a, NULL, 0, p, 0, NULL);
        if (in->t == TV_INT || in->t == TV_BOOL) {
            if (in->u.i == INT64_MIN) tpl_rfail(c, at, CLENS_E_UNSUPPORTED, "integer overflow");
            return tv_int(in->u.i < 0 ? -in->u.i : in->u.i);
        }
        if (in->t == TV_FLOAT) return tv_float(fabs(in->u.f));
        if (in->t == TV_UNDEF) tpl_undef_fail(c, at, in);
        tpl_rfail(c, at, CLENS_E_ARG, "bad operand type for abs(): '%s'", tv_type_name(in));
    case F_ATTR: {
        static const char *const ps[] = {"name"};
        bind(c, at, name, a, ps, 1, p, 0, NULL);
        if (missing(&p[0])) tpl_rfail(c, at, CLENS_E_ARG, "attr() missing required argument 'name'");
        tv nm = soft_str(c, at, &p[0]);
        const char *s = tpl_strndup(c->ar, nm.u.s.p, nm.u.s.n);
        if (in->t == TV_UNDEF) tpl_undef_fail(c, at, in); /* hasattr(Undefined, ...) raises */
        tv out;
        if (tpl_builtin_attr(c, at, in, s, &out)) return out;
        if (in->t == TV_NS) {
            tv *x = tv_dict_get_str(in->u.d, s, strlen(s));
            if (x) return *x;
        }
        return tv_undef_attr(c->ar, in, s);
    }
    case F_BATCH: {
        static const char *const ps[] = {"linecount", "fill_with"};
        bind(c, at, name, a, ps, 2, p, 0, NULL);
        if (missing(&p[0])) tpl_rfail(c, at, CLENS_E_ARG, "batch() missing required argument 'linecount'");
        int64_t cnt = want_int(c, at, &p[0], "batch");
        tlist *l = tpl_iter(c, at, in);
        tv out = tv_list_new(c->ar, LK_GEN, 0);
        tv cur = tv_list_new(c->ar, LK_LIST, 0);
        for (size_t i = 0; i < l->n; i++) {
            if ((int64_t)cur.u.l->n == cnt) {
                tv_list_push(c->ar, &out, cur);
                cur = tv_list_new(c->ar, LK_LIST, 0);
            }
            tv_list_push(c->ar, &cur, l->v[i]);
        }
        if (cur.u.l->n) {
            if (!missing(&p[1]) && p[1].t != TV_NONE)
                while ((int64_t)cur.u.l->n < cnt) tv_list_push(c->ar, &cur, p[1]);
            tv_list_push(c->ar, &out, cur);
        }
        return out;
    }
    case F_CAPITALIZE: case F_LOWER: case F_UPPER: case F_TITLE: {
        bind(c, at, name, a, NULL, 0, p, 0, NULL);
        tv s = soft_str(c, at, in);
        tv r = id == F_TITLE ? jinja_title(c, &s) : str_case(c, &s, id == F_UPPER ? 1 : id == F_LOWER ? 2 : 5);
        if (id != F_TITLE) r.k = s.k; /* Markup.upper() etc. return Markup */
        return r;
    }
    case F_CENTER: {
        static const char *const ps[] = {"width"};
        bind(c, at, name, a, ps, 1, p, 0, NULL);
        tv s = soft_str(c, at, in);
        tv sp = tv_str(" ", 1);
        tv r = str_pad(c, &s, missing(&p[0]) ? 80 : want_int(c, at, &p[0], "center"), &sp, 0);
        r.k = s.k;
        return r;
    }
    case F_COUNT:
        bind(c, at, name, a, NULL, 0, p, 0, NULL);
        return tv_int(py_len(c, at, in));
    case F_DEFAULT: {
        static const char *const ps[] = {"default_value", "boolean"};
        bind(c, at, name, a, ps, 2, p, 0, NULL);
        tv dv = missing(&p[0]) ? tv_str("", 0) : p[0];
        int boolean = !missing(&p[1]) && tv_truthy(&p[1]);
        if (in->t == TV_UNDEF || (boolean && !tv_truthy(in))) return dv;
        return *in;
    }
    case F_DICTSORT: {
        static const char *const ps[] = {"case_sensitive", "by", "reverse"};
        bind(c, at, name, a, ps, 3, p, 0, NULL);
        if (in->t != TV_DICT) {
            if (in->t == TV_UNDEF) tpl_undef_fail(c, at, in);
            tpl_rfail(c, at, CLENS_E_ARG, "'%s' object has no attribute 'items'", tv_type_name(in));
        }
        int cs = !missing(&p[0]) && tv_truthy(&p[0]);
        int pos = 0;
        if (!missing(&p[1])) {
            if (p[1].t == TV_STR && p[1].u.s.n == 5 && !memcmp(p[1].u.s.p, "value", 5)) pos = 1;
            else if (!(p[1].t == TV_STR && p[1].u.s.n == 3 && !memcmp(p[1].u.s.p, "key", 3)))
                tpl_rfail(c, at, CLENS_E_ARG, "You can only sort by either \"key\" or \"value\"");
        }
        size_t n = in->u.d->n;
        keyed *kv = tpl_alloc(c->ar, sizeof(keyed) * (n + 1)), *tmp = tpl_alloc(c->ar, sizeof(keyed) * (n + 1));
        for (size_t i = 0; i < n; i++) {
            tv t = tv_list_new(c->ar, LK_TUPLE, 2);
            tv_list_push(c->ar, &t, in->u.d->keys[i]);
            tv_list_push(c->ar, &t, in->u.d->vals[i]);
            kv[i].val = t;
            tv k = pos ? in->u.d->vals[i] : in->u.d->keys[i];
            kv[i].key = cs ? k : lower_if_str(c, &k);
        }
        merge_sort(c, at, kv, n, !missing(&p[2]) && tv_truthy(&p[2]), tmp);
        tv out = tv_list_new(c->ar, LK_LIST, n);
        for (size_t i = 0; i < n; i++) tv_list_push(c->ar, &out, kv[i].val);
        return out;
    }
    case F_ESCAPE: case F_FORCEESCAPE: {
        bind(c, at, name, a, NULL, 0, p, 0, NULL);
        if (id == F_ESCAPE && in->t == TV_STR && in->k == SK_MARKUP) return *in; /* already safe */
        tv s = soft_str(c, at, in);
        tv r = tpl_html_escape(c, &s);
        r.k = SK_MARKUP;
        return r;
    }
    case F_FIRST: {
        bind(c, at, name, a, NULL, 0, p, 0, NULL);
        if (in->t == TV_LIST && in->k == LK_GEN) {
            tlist *g = in->u.l;
            if (g->pos < g->n) return g->v[g->pos++];
        } else {
            tlist *l = tpl_iter(c, at, in);
            if (l->n) return l->v[0];
        }
        return tv_undef_hint(c->ar, "No first item, sequence was empty.", 0);
    }
    case F_LAST: {
        bind(c, at, name, a, NULL, 0, p, 0, NULL);
        if (in->t == TV_LIST && in->k == LK_GEN)
            tpl_rfail(c, at, CLENS_E_ARG, "'generator' object is not reversible");
        if (in->t != TV_UNDEF && in->t != TV_STR && in->t != TV_LIST && in->t != TV_DICT)
            tpl_rfail(c, at, CLENS_E_ARG, "'%s' object is not reversible", tv_type_name(in));
        tlist *l = tpl_iter(c, at, in);
        if (l->n) {
            tv r = l->v[l->n - 1];
            if (in->t == TV_STR) r.k = in->k; /* reversed() indexes: Markup.__getitem__ */
            return r;
        }
        return tv_undef_hint(c->ar, "No last item, sequence was empty.", 0);
    }
    case F_FLOAT: {
        static const char *const ps[] = {"default"};
        bind(c, at, name, a, ps, 1, p, 0, NULL);
        if (in->t == TV_UNDEF) tpl_undef_fail(c, at, in); /* float(Undefined) raises */
        double d;
        if (py_float(in, &d)) return tv_float(d);
        return missing(&p[0]) ? tv_float(0.0) : p[0];
    }
    case F_INT: {
        static const char *const ps[] = {"default", "base"};
        bind(c, at, name, a, ps, 2, p, 0, NULL);
        if (in->t == TV_UNDEF) tpl_undef_fail(c, at, in); /* int(Undefined) raises */
        int64_t base = missing(&p[1]) ? 10 : want_int(c, at, &p[1], "int");
        int64_t r;
        if (in->t == TV_STR && py_int_str(in, base, &r)) return tv_int(r);
        if (in->t == TV_INT || in->t == TV_BOOL) return tv_int(in->u.i);
        double d;
        if (py_float(in, &d)) {
            if (!isfinite(d)) tpl_rfail(c, at, CLENS_E_ARG, "cannot convert float %s to integer", isnan(d) ? "NaN" : "infinity");
            if (d >= 9223372036854775808.0 || d < -9223372036854775808.0) tpl_rfail(c, at, CLENS_E_UNSUPPORTED, "integer overflow");
            return tv_int((int64_t)d);
        }
        return missing(&p[0]) ? tv_int(0) : p[0];
    }
    case F_FORMAT: {
        targs rest;
        bind(c, at, name, a, NULL, 0, p, 1, &rest);
        if (rest.npos && rest.nkw) tpl_rfail(c, at, CLENS_E_ARG, "can't handle positional and keyword arguments at the same time");
        tv s = soft_str(c, at, in);
        tv arg;
        if (rest.nkw) {
            arg = tv_dict_new(c->ar, (size_t)rest.nkw);
            for (int k = 0; k < rest.nkw; k++) tv_dict_set(c->ar, arg.u.d, tv_cstr(rest.kwn[k]), rest.kwv[k]);
        } else {
            arg = tv_list_new(c->ar, LK_TUPLE, (size_t)rest.npos);
            for (int k = 0; k < rest.npos; k++) tv_list_push(c->ar, &arg, rest.pos[k]);
        }
        return tpl_str_percent(c, at, &s, &arg);
    }
    case F_INDENT: {
        static const char *const ps[] = {"width", "first", "blank"};
        bind(c, at, name, a, ps, 3, p, 0, NULL);
        tv ind;
        if (!missing(&p[0]) && p[0].t == TV_STR) ind = p[0];
        else {
            int64_t w = missing(&p[0]) ? 4 : want_int(c, at, &p[0], "indent");
            tsb sp;
            tsb_init(&sp, c->ar, c->o->max_output);
            for (int64_t i = 0; i < w; i++) tsb_putc(&sp, ' ');
            ind = tv_str(sp.p ? sp.p : "", sp.n);
        }
        if (in->t != TV_STR) {
            if (in->t == TV_UNDEF) tpl_undef_fail(c, at, in);
            tpl_rfail(c, at, CLENS_E_ARG, "unsupported operand type(s) for +=: '%s' and 'str'", tv_type_name(in));
        }
        tsb sx;
        tsb_init(&sx, c->ar, 0);
        tsb_put(&sx, in->u.s.p, in->u.s.n);
        tsb_putc(&sx, '\n');
        tv s = tv_str(sx.p ? sx.p : "", sx.n);
        tv lines = str_splitlines(c, &s, 0);
        tsb b;
        tsb_init(&b, c->ar, c->o->max_output);
        tlist *l = lines.u.l;
        int blank = !missing(&p[2]) && tv_truthy(&p[2]);
        if (!missing(&p[1]) && tv_truthy(&p[1])) tsb_put(&b, ind.u.s.p, ind.u.s.n);
        for (size_t i = 0; i < l->n; i++) {
            if (i) {
                tsb_putc(&b, '\n');
                if (blank || l->v[i].u.s.n) tsb_put(&b, ind.u.s.p, ind.u.s.n);
            }
            tsb_put(&b, l->v[i].u.s.p, l->v[i].u.s.n);
        }
        return tv_str(b.p ? b.p : "", b.n);
    }
    case F_ITEMS: {
        bind(c, at, name, a, NULL, 0, p, 0, NULL);
        tv out = tv_list_new(c->ar, LK_GEN, 0);
        if (in->t == TV_UNDEF) return out;
        if (in->t != TV_DICT) tpl_rfail(c, at, CLENS_E_ARG, "Can only get item pairs from a mapping.");
        for (size_t i = 0; i < in->u.d->n; i++) {
            tv t = tv_list_new(c->ar, LK_TUPLE, 2);
            tv_list_push(c->ar, &t, in->u.d->keys[i]);
            tv_list_push(c->ar, &t, in->u.d->vals[i]);
            tv_list_push(c->ar, &out, t);
        }
        return out;
    }
    case F_JOIN: {
        static const char *const ps[] = {"d", "attribute"};
        bind(c, at, name, a, ps, 2, p, 0, NULL);
        tv sep = missing(&p[0]) ? tv_str("", 0) : soft_str(c, at, &p[0]);
        tlist *l = tpl_iter(c, at, in);
        tsb b;
        tsb_init(&b, c->ar, c->o->max_output);
        for (size_t i = 0; i < l->n; i++) {
            if (i) tsb_put(&b, sep.u.s.p, sep.u.s.n);
            tv x = missing(&p[1]) ? l->v[i] : attr_path(c, at, &l->v[i], &p[1], NULL);
            tv s = soft_str(c, at, &x);
            tsb_put(&b, s.u.s.p, s.u.s.n);
        }
        return tv_str(b.p ? b.p : "", b.n);
    }
    case F_LIST:
        bind(c, at, name, a, NULL, 0, p, 0, NULL);
        return list_of(c, at, in);
    case F_MAP: {
        if (!tv_truthy(in)) return tv_list_new(c->ar, LK_GEN, 0); /* jinja2: "if value:" */
        tlist *l = tpl_iter(c, at, in);
        tv out = tv_list_new(c->ar, LK_GEN, l->n);
        int by_attr = 0;
        tv attr = tv_none(), dflt = tv_none();
        if (a->npos == 0) {
            for (int k = 0; k < a->nkw; k++) {
                if (!strcmp(a->kwn[k], "attribute")) { attr = a->kwv[k]; by_attr = 1; }
                else if (!strcmp(a->kwn[k], "default")) dflt = a->kwv[k];
            }
            if (by_attr)
                for (int k = 0; k < a->nkw; k++)
                    if (strcmp(a->kwn[k], "attribute") && strcmp(a->kwn[k], "default"))
                        tpl_rfail(c, at, CLENS_E_ARG, "Unexpected keyword argument '%s'", a->kwn[k]);
        }
        if (!by_attr && a->npos == 0) tpl_rfail(c, at, CLENS_E_ARG, "map requires a filter argument");
        targs fa = {0};
        if (!by_attr) {
            fa.pos = a->pos + 1;
            fa.npos = a->npos - 1;
            fa.kwn = a->kwn;
            fa.kwv = a->kwv;
            fa.nkw = a->nkw;
        }
        for (size_t i = 0; i < l->n; i++) {
            tv x = by_attr ? attr_path(c, at, &l->v[i], &attr, &dflt) : call_filter_by_name(c, at, &a->pos[0], &l->v[i], &fa);
            tv_list_push(c->ar, &out, x);
        }
        return out;
    }
    case F_MAX: case F_MIN: {
        static const char *const ps[] = {"case_sensitive", "attribute"};
        bind(c, at, name, a, ps, 2, p, 0, NULL);
        tlist *l = tpl_iter(c, at, in);
        if (!l->n) return tv_undef_hint(c->ar, "No aggregated item, sequence was empty.", 0);
        int cs = !missing(&p[0]) && tv_truthy(&p[0]);
        size_t best = 0;
        tv bk = attr_path(c, at, &l->v[0], &p[1], NULL);
        if (!cs) bk = lower_if_str(c, &bk);
        for (size_t i = 1; i < l->n; i++) {
            tv k = attr_path(c, at, &l->v[i], &p[1], NULL);
            if (!cs) k = lower_if_str(c, &k);
            int r = key_cmp(c, at, &k, &bk);
            if (id == F_MAX ? r > 0 : r < 0) { best = i; bk = k; }
        }
        return l->v[best];
    }
    case F_REJECT: return select_reject(c, at, in, a, 0, 1);
    case F_REJECTATTR: return select_reject(c, at, in, a, 1, 1);
    case F_SELECT: return select_reject(c, at, in, a, 0, 0);
    case F_SELECTATTR: return select_reject(c, at, in, a, 1, 0);
    case F_REPLACE: {
        static const char *const ps[] = {"old", "new", "count"};
        bind(c, at, name, a, ps, 3, p, 0, NULL);
        if (missing(&p[0]) || missing(&p[1])) tpl_rfail(c, at, CLENS_E_ARG, "replace() missing required arguments");
        tv s = soft_str(c, at, in), o = soft_str(c, at, &p[0]), nw = soft_str(c, at, &p[1]);
        int64_t cnt = missing(&p[2]) || p[2].t == TV_NONE ? -1 : want_int(c, at, &p[2], "replace");
        return str_replace(c, &s, &o, &nw, cnt);
    }
    case F_REVERSE: {
        bind(c, at, name, a, NULL, 0, p, 0, NULL);
        if (in->t == TV_STR) {
            tsb b;
            tsb_init(&b, c->ar, 0);
            size_t e = in->u.s.n;
            while (e > 0) {
                size_t k = 1;
                while (k < 4 && e - k > 0 && (((unsigned char)in->u.s.p[e - k]) & 0xC0) == 0x80) k++;
                tsb_put(&b, in->u.s.p + e - k, k);
                e -= k;
            }
            tv r = tv_str(b.p ? b.p : "", b.n);
            r.k = in->k; /* value[::-1] */
            return r;
        }
        int reversible = in->t == TV_UNDEF || in->t == TV_DICT || (in->t == TV_LIST && in->k != LK_GEN);
        tlist *l = tpl_iter(c, at, in);
        tv out = tv_list_new(c->ar, reversible ? LK_GEN : LK_LIST, l->n);
        for (size_t i = l->n; i-- > 0;) tv_list_push(c->ar, &out, l->v[i]);
        return out;
    }
    case F_ROUND: {
        static const char *const ps[] = {"precision", "method"};
        bind(c, at, name, a, ps, 2, p, 0, NULL);
        int64_t prec = missing(&p[0]) ? 0 : want_int(c, at, &p[0], "round");
        int method = 0; /* common */
        if (!missing(&p[1])) {
            tv m = p[1];
            if (m.t == TV_STR && m.u.s.n == 4 && !memcmp(m.u.s.p, "ceil", 4)) method = 1;
            else if (m.t == TV_STR && m.u.s.n == 5 && !memcmp(m.u.s.p, "floor", 5)) method = 2;
            else if (!(m.t == TV_STR && m.u.s.n == 6 && !memcmp(m.u.s.p, "common", 6)))
                tpl_rfail(c, at, CLENS_E_ARG, "method must be common, ceil or floor");
        }
        if (in->t == TV_UNDEF) tpl_undef_fail(c, at, in);
        if (in->t != TV_INT && in->t != TV_BOOL && in->t != TV_FLOAT)
            tpl_rfail(c, at, CLENS_E_ARG, "type %s doesn't define __round__ method", tv_type_name(in));
        if (method == 0) {
            if (in->t != TV_FLOAT) {
                if (prec >= 0) return tv_int(in->u.i);
                tpl_rfail(c, at, CLENS_E_UNSUPPORTED, "round() of an integer to negative digits is not supported");
            }
            return tv_float(py_round(in->u.f, prec));
        }
        double x = in->t == TV_FLOAT ? in->u.f : (double)in->u.i;
        double pw = pow(10.0, (double)prec);
        return tv_float((method == 1 ? ceil(x * pw) : floor(x * pw)) / pw);
    }
    case F_SAFE: case F_STRING: {
        bind(c, at, name, a, NULL, 0, p, 0, NULL);
        tv r = soft_str(c, at, in);
        if (id == F_SAFE) r.k = SK_MARKUP;
        return r;
    }
    case F_SORT: {
        static const char *const ps[] = {"reverse", "case_sensitive", "attribute"};
        bind(c, at, name, a, ps, 3, p, 0, NULL);
        tlist *l = tpl_iter(c, at, in);
        int cs = !missing(&p[1]) && tv_truthy(&p[1]);
        /* comma separated attribute list -> list keys */
        tv attrs = tv_list_new(c->ar, LK_LIST, 0);
        if (!missing(&p[2]) && p[2].t == TV_STR) {
            size_t i = 0;
            const char *s = p[2].u.s.p;
            size_t n = p[2].u.s.n;
            for (;;) {
                size_t j = i;
                while (j < n && s[j] != ',') j++;
                tv_list_push(c->ar, &attrs, tv_str(s + i, j - i));
                if (j >= n) break;
                i = j + 1;
            }
        } else tv_list_push(c->ar, &attrs, missing(&p[2]) ? tv_none() : p[2]);
        keyed *kv = tpl_alloc(c->ar, sizeof(keyed) * (l->n + 1)), *tmp = tpl_alloc(c->ar, sizeof(keyed) * (l->n + 1));
        for (size_t i = 0; i < l->n; i++) {
            tv key = tv_list_new(c->ar, LK_LIST, attrs.u.l->n);
            for (size_t k = 0; k < attrs.u.l->n; k++) {
                tv x = attr_path(c, at, &l->v[i], &attrs.u.l->v[k], NULL);
                tv_list_push(c->ar, &key, cs ? x : lower_if_str(c, &x));
            }
            kv[i].key = key;
            kv[i].val = l->v[i];
        }
        merge_sort(c, at, kv, l->n, !missing(&p[0]) && tv_truthy(&p[0]), tmp);
        tv out = tv_list_new(c->ar, LK_LIST, l->n);
        for (size_t i = 0; i < l->n; i++) tv_list_push(c->ar, &out, kv[i].val);
        return out;
    }
    case F_SUM: {
        static const char *const ps[] = {"attribute", "start"};
        bind(c, at, name, a, ps, 2, p, 0, NULL);
        tlist *l = tpl_iter(c, at, in);
        return sum_values(c, at, l, missing(&p[0]) ? NULL : &p[0], missing(&p[1]) ? tv_int(0) : p[1]);
    }
    case F_TOJSON: {
        static const char *const ps[] = {"ensure_ascii", "indent", "separators", "sort_keys"};
        bind(c, at, name, a, ps, 4, p, 0, NULL);
        int ea = !missing(&p[0]) && tv_truthy(&p[0]);
        int has_indent = !missing(&p[1]) && p[1].t != TV_NONE;
        const char *indent = "";
        if (has_indent) {
            if (p[1].t == TV_STR) indent = tpl_strndup(c->ar, p[1].u.s.p, p[1].u.s.n);
            else {
                int64_t w = want_int(c, at, &p[1], "tojson indent");
                /* Python builds ' ' * indent; an indent past the output limit cannot render */
                if (w > (int64_t)c->o->max_output && c->o->max_output)
                    tpl_rfail(c, at, CLENS_E_ARG, "tojson indent %lld exceeds the output limit of %zu bytes",
                              (long long)w, c->o->max_output);
                char *s = tpl_alloc(c->ar, (size_t)(w > 0 ? w : 0) + 1);
                for (int64_t i = 0; i < w; i++) s[i] = ' ';
                indent = s;
            }
        }
        const char *isep = has_indent ? "," : ", ", *ksep = ": ";
        if (!missing(&p[2]) && p[2].t != TV_NONE) {
            tv s = p[2];
            if (s.t != TV_LIST || (s.k != LK_LIST && s.k != LK_TUPLE) || s.u.l->n != 2 || s.u.l->v[0].t != TV_STR ||
                s.u.l->v[1].t != TV_STR)
                tpl_rfail(c, at, CLENS_E_ARG, "tojson separators must be a pair of strings");
            isep = tpl_strndup(c->ar, s.u.l->v[0].u.s.p, s.u.l->v[0].u.s.n);
            ksep = tpl_strndup(c->ar, s.u.l->v[1].u.s.p, s.u.l->v[1].u.s.n);
        }
        int sk = !missing(&p[3]) && tv_truthy(&p[3]);
        tsb b;
        tsb_init(&b, c->ar, c->o->max_output);
        const char *emsg = NULL;
        if (tv_to_json(&b, in, ea, indent, has_indent, isep, ksep, sk, &emsg) != 0)
            tpl_rfail(c, at, CLENS_E_ARG, "%s", emsg ? emsg : "not JSON serializable");
        return tv_str(b.p ? b.p : "", b.n);
    }
    case F_TRIM: {
        static const char *const ps[] = {"chars"};
        bind(c, at, name, a, ps, 1, p, 0, NULL);
        tv s = soft_str(c, at, in);
        tv r;
        if (!missing(&p[0]) && p[0].t != TV_NONE) {
            tv ch = want_str(c, at, &p[0], "strip arg");
            r = str_strip(&s, 3, &ch);
        } else r = str_strip(&s, 3, NULL);
        r.k = s.k;
        return r;
    }
    case F_TRUNCATE: {
        static const char *const ps[] = {"length", "killwords", "end", "leeway"};
        bind(c, at, name, a, ps, 4, p, 0, NULL);
        tv s = *in;
        int64_t length = missing(&p[0]) ? 255 : want_int(c, at, &p[0], "truncate");
        tv end = missing(&p[2]) ? tv_str("...", 3) : want_str(c, at, &p[2], "truncate end");
        int64_t leeway = missing(&p[3]) || p[3].t == TV_NONE ? 5 : want_int(c, at, &p[3], "truncate");
        int64_t elen = (int64_t)cp_len(&end);
        if (length < elen) tpl_rfail(c, at, CLENS_E_ARG, "expected length >= %lld, got %lld", (long long)elen, (long long)length);
        if (leeway < 0) tpl_rfail(c, at, CLENS_E_ARG, "expected leeway >= 0, got %lld", (long long)leeway);
        int64_t slen = py_len(c, at, in); /* any sized value short enough is returned as is */
        if (slen <= length + leeway) return s;
        if (s.t != TV_STR) tpl_rfail(c, at, CLENS_E_UNSUPPORTED, "truncate of a long %s is not supported by clens", tv_type_name(in));
        tv head = tv_str(s.u.s.p, cp_off(&s, length - elen));
        if (!(!missing(&p[1]) && tv_truthy(&p[1]))) {
            const char *sp = memrfind(head.u.s.p, head.u.s.n, " ", 1);
            if (sp) head.u.s.n = (size_t)(sp - head.u.s.p);
        }
        tsb b;
        tsb_init(&b, c->ar, 0);
        tsb_put(&b, head.u.s.p, head.u.s.n);
        tsb_put(&b, end.u.s.p, end.u.s.n);
        return tv_str(b.p ? b.p : "", b.n);
    }
    case F_UNIQUE: {
        static const char *const ps[] = {"case_sensitive", "attribute"};
        bind(c, at, name, a, ps, 2, p, 0, NULL);
        tlist *l = tpl_iter(c, at, in);
        int cs = !missing(&p[0]) && tv_truthy(&p[0]);
        tv out = tv_list_new(c->ar, LK_GEN, 0);
        tv seen = tv_list_new(c->ar, LK_LIST, 0);
        for (size_t i = 0; i < l->n; i++) {
            tv k = attr_path(c, at, &l->v[i], missing(&p[1]) ? NULL : &p[1], NULL);
            if (!cs) k = lower_if_str(c, &k);
            if (!tv_is_hashable(&k)) tpl_rfail(c, at, CLENS_E_ARG, "unhashable type: '%s'", tv_type_name(&k));
            int dup = 0;
            for (size_t j = 0; j < seen.u.l->n && !dup; j++) dup = tv_eq(&seen.u.l->v[j], &k);
            if (dup) continue;
            tv_list_push(c->ar, &seen, k);
            tv_list_push(c->ar, &out, l->v[i]);
        }
        return out;
    }
    case F_WORDCOUNT: {
        bind(c, at, name, a, NULL, 0, p, 0, NULL);
        tv s = soft_str(c, at, in);
        int64_t words = 0;
        int inw = 0;
        size_t i = 0;
        while (i < s.u.s.n) {
            uint32_t cp;
            i += (size_t)tpl_utf8_dec(s.u.s.p + i, s.u.s.n - i, &cp);
            int w = cp == '_' || cat_is(cp, 4) || cat_is(cp, 6);
            if (w && !inw) words++;
            inw = w;
        }
        return tv_int(words);
    }
    }
    tpl_rfail(c, at, CLENS_E_UNSUPPORTED, "filter '%s' is not supported by clens", name);
}

/* ------------------------------------------------------------------ tests */

int tpl_test(rctx *c, const tnode *at, int id, const char *name, const tv *in, const targs *a)
{
    tv p[2];
    static const char *const one[] = {"other"};
    if (id != T_DIVISIBLEBY && id != T_SAMEAS && id != T_IN && id < T_EQ) /* one-argument tests */
        bind(c, at, name, a, NULL, 0, p, 0, NULL);
    switch (id) {
    case T_DEFINED: case T_UNDEFINED:
        return (in->t == TV_UNDEF) == (id == T_UNDEFINED);
    case T_NONE: return in->t == TV_NONE;
    case T_BOOLEAN: return in->t == TV_BOOL;
    case T_FALSE: return in->t == TV_BOOL && !in->u.i;
    case T_TRUE: return in->t == TV_BOOL && in->u.i;
    case T_INTEGER: return in->t == TV_INT;
    case T_FLOAT: return in->t == TV_FLOAT;
    case T_STRING: return in->t == TV_STR;
    case T_MAPPING: return in->t == TV_DICT;
    case T_NUMBER: return in->t == TV_INT || in->t == TV_BOOL || in->t == TV_FLOAT;
    case T_SEQUENCE:
        return in->t == TV_UNDEF || in->t == TV_STR || in->t == TV_DICT ||
               (in->t == TV_LIST && (in->k == LK_LIST || in->k == LK_TUPLE || in->k == LK_RANGE));
    case T_ITERABLE: return in->t == TV_UNDEF || in->t == TV_STR || in->t == TV_DICT || in->t == TV_LIST;
    case T_CALLABLE:
        return in->t == TV_UNDEF || in->t == TV_MACRO || in->t == TV_FUNC || in->t == TV_LOOP ||
               (in->t == TV_OBJ && in->k == OK_JOINER); /* Undefined has __call__ */
    case T_ESCAPED: return in->t == TV_STR && in->k == SK_MARKUP;
    case T_LOWER: case T_UPPER: {
        tv s = soft_str(c, at, in);
        return str_pred(&s, id == T_LOWER ? S_ISLOWER : S_ISUPPER);
    }
    case T_FILTER: case T_TEST: {
        if (in->t != TV_STR) return 0;
        char *s = tpl_strndup(c->ar, in->u.s.p, in->u.s.n);
        return id == T_FILTER ? tpl_filter_id(s) != -1 : tpl_test_id(s) != -1;
    }
    case T_ODD: case T_EVEN: {
        tv two = tv_int(2);
        tv r = tpl_binop(c, at, OP_MOD, in, &two);
        tv want = tv_int(id == T_ODD ? 1 : 0);
        return tv_eq(&r, &want);
    }
    case T_DIVISIBLEBY: {
        static const char *const ps[] = {"num"};
        bind(c, at, name, a, ps, 1, p, 0, NULL);
        if (missing(&p[0])) tpl_rfail(c, at, CLENS_E_ARG, "divisibleby() missing required argument 'num'");
        tv r = tpl_binop(c, at, OP_MOD, in, &p[0]);
        tv zero = tv_int(0);
        return tv_eq(&r, &zero);
    }
    case T_SAMEAS: {
        bind(c, at, name, a, one, 1, p, 0, NULL);
        if (missing(&p[0])) tpl_rfail(c, at, CLENS_E_ARG, "sameas() missing required argument");
        const tv *o = &p[0];
        if (in->t != o->t) return 0;
        switch (in->t) {
        case TV_NONE: return 1;
        case TV_BOOL: return in->u.i == o->u.i;
        case TV_INT: return in->u.i == o->u.i && in->u.i >= -5 && in->u.i <= 256;
        case TV_STR: return in->u.s.p == o->u.s.p && in->u.s.n == o->u.s.n;
        case TV_LIST: return in->u.l == o->u.l;
        case TV_DICT: case TV_NS: return in->u.d == o->u.d;
        default: return tv_eq(in, o);
        }
    }
    case T_IN: {
        static const char *const ps[] = {"seq"};
        bind(c, at, name, a, ps, 1, p, 0, NULL);
        if (missing(&p[0])) tpl_rfail(c, at, CLENS_E_ARG, "in() missing required argument 'seq'");
        return tpl_contains(c, at, &p[0], in);
    }
    case T_EQ: case T_NE: case T_GT: case T_GE: case T_LT: case T_LE: {
        bind(c, at, name, a, one, 1, p, 0, NULL);
        if (missing(&p[0])) tpl_rfail(c, at, CLENS_E_ARG, "test '%s' missing required argument", name);
        if (id == T_EQ) return tv_eq(in, &p[0]);
        if (id == T_NE) return !tv_eq(in, &p[0]);
        if (in->t == TV_UNDEF) tpl_undef_fail(c, at, in);
        if (p[0].t == TV_UNDEF) tpl_undef_fail(c, at, &p[0]);
        int ok;
        int r = tv_cmp(in, &p[0], &ok);
        if (ok == 2) return 0;
        if (!ok) tpl_rfail(c, at, CLENS_E_ARG, "'%s' not supported between instances of '%s' and '%s'",
                           id == T_GT ? ">" : id == T_GE ? ">=" : id == T_LT ? "<" : "<=", tv_type_name(in),
                           tv_type_name(&p[0]));
        return id == T_GT ? r > 0 : id == T_GE ? r >= 0 : id == T_LT ? r < 0 : r <= 0;
    }
    }
    tpl_rfail(c, at, CLENS_E_UNSUPPORTED, "test '%s' is not supported by clens", name);
}

/* ------------------------------------------------------- attributes etc. */

static tv mkfunc(rctx *c, int id, const tv *self, const char *name)
{
    tfunc *f = tpl_alloc(c->ar, sizeof(tfunc));
    f->id = id;
    if (self) f->self = *self;
    f->name = name;
    tv v = {0};
    v.t = TV_FUNC;
    v.u.fn = f;
    return v;
}

static tv unsafe(rctx *c, const char *name, const char *type)
{
    char *h = tpl_alloc(c->ar, strlen(name) + strlen(type) + 64);
    sprintf(h, "access to attribute '%s' of '%s' object is unsafe.", name, type);
    return tv_undef_hint(c->ar, h, 1);
}

int tpl_builtin_attr(rctx *c, const tnode *at, const tv *obj, const char *name, tv *out)
{
    (void)at;
    if (name[0] == '_') { /* the sandbox refuses private attributes */
        if (obj->t == TV_STR || obj->t == TV_DICT || obj->t == TV_LIST) {
            *out = unsafe(c, name, tv_type_name(obj));
            return 1;
        }
        return 0;
    }
    switch (obj->t) {
    case TV_STR:
        for (size_t i = 0; i < sizeof STR_METHODS / sizeof STR_METHODS[0]; i++)
            if (!strcmp(STR_METHODS[i].name, name)) {
                *out = mkfunc(c, STR_METHODS[i].id, obj, STR_METHODS[i].name);
                return 1;
            }
        return 0;
    case TV_DICT: {
        static const struct { const char *n; int id; } M[] = {
            {"get", D_GET}, {"items", D_ITEMS}, {"keys", D_KEYS}, {"values", D_VALUES}, {"copy", D_COPY},
            {"fromkeys", M_UNSUPPORTED}};
        for (size_t i = 0; i < sizeof M / sizeof M[0]; i++)
            if (!strcmp(M[i].n, name)) { *out = mkfunc(c, M[i].id, obj, M[i].n); return 1; }
        static const char *const U[] = {"clear", "pop", "popitem", "setdefault", "update", NULL};
        for (int i = 0; U[i]; i++)
            if (!strcmp(U[i], name)) { *out = unsafe(c, name, "dict"); return 1; }
        return 0;
    }
    case TV_LIST:
        if (obj->k == LK_LIST || obj->k == LK_TUPLE) {
            if (!strcmp(name, "index")) { *out = mkfunc(c, L_INDEX, obj, "index"); return 1; }
            if (!strcmp(name, "count")) { *out = mkfunc(c, L_COUNT, obj, "count"); return 1; }
            if (obj->k == LK_LIST) {
                if (!strcmp(name, "copy")) { *out = mkfunc(c, L_COPY, obj, "copy"); return 1; }
                static const char *const U[] = {"append", "clear", "extend", "insert", "pop", "remove", "reverse",
                                                "sort", NULL};
                for (int i = 0; U[i]; i++)
                    if (!strcmp(U[i], name)) { *out = unsafe(c, name, "list"); return 1; }
            }
        }
        return 0;
    case TV_LOOP: {
        tloop *l = obj->u.lp;
        if (!strcmp(name, "index")) *out = tv_int((int64_t)l->index0 + 1);
        else if (!strcmp(name, "index0")) *out = tv_int((int64_t)l->index0);
        else if (!strcmp(name, "revindex")) *out = tv_int((int64_t)(l->length - l->index0));
        else if (!strcmp(name, "revindex0")) *out = tv_int((int64_t)(l->length - l->index0 - 1));
        else if (!strcmp(name, "first")) *out = tv_bool(l->index0 == 0);
        else if (!strcmp(name, "last")) *out = tv_bool(l->index0 + 1 == l->length);
        else if (!strcmp(name, "length")) *out = tv_int((int64_t)l->length);
        else if (!strcmp(name, "depth")) *out = tv_int(1);
        else if (!strcmp(name, "depth0")) *out = tv_int(0);
        else if (!strcmp(name, "previtem"))
            *out = l->index0 ? l->items[l->index0 - 1] : tv_undef_hint(c->ar, "there is no previous item", 0);
        else if (!strcmp(name, "nextitem"))
            *out = l->index0 + 1 < l->length ? l->items[l->index0 + 1] : tv_undef_hint(c->ar, "there is no next item", 0);
        else if (!strcmp(name, "cycle")) *out = mkfunc(c, LP_CYCLE, obj, "cycle");
        else if (!strcmp(name, "changed")) *out = mkfunc(c, LP_CHANGED, obj, "changed");
        else return 0;
        return 1;
    }
    case TV_OBJ:
        if (obj->k == OK_CYCLER) {
            if (!strcmp(name, "next")) { *out = mkfunc(c, CY_NEXT, obj, "next"); return 1; }
            if (!strcmp(name, "reset")) { *out = mkfunc(c, CY_RESET, obj, "reset"); return 1; }
            if (!strcmp(name, "current")) {
                tobj *o = obj->u.o;
                *out = o->items->v[o->pos];
                return 1;
            }
            if (!strcmp(name, "items")) { *out = (tv){.t = TV_LIST, .k = LK_LIST, .u.l = obj->u.o->items}; return 1; }
        }
        return 0;
    case TV_INT: case TV_BOOL: case TV_FLOAT:
        if (!strcmp(name, "real")) { *out = obj->t == TV_FLOAT ? *obj : tv_int(obj->u.i); return 1; }
        if (!strcmp(name, "imag")) { *out = obj->t == TV_FLOAT ? tv_float(0) : tv_int(0); return 1; }
        if (!strcmp(name, "bit_length") || !strcmp(name, "conjugate") || !strcmp(name, "is_integer") ||
            !strcmp(name, "hex") || !strcmp(name, "to_bytes") || !strcmp(name, "as_integer_ratio")) {
            *out = mkfunc(c, M_UNSUPPORTED, obj, name);
            return 1;
        }
        return 0;
    default:
        return 0;
    }
}

/* ---------------------------------------------------------------- calls */

static void strftime_into(rctx *c, const tnode *at, const tv *fmt, tsb *b)
{
    time_t t;
    struct tm tmv;
    if (c->o->now != INT64_MIN) {
        /* Python's datetime holds the years 1..9999 only */
        if (c->o->now < CLENS_CHAT_NOW_MIN || c->o->now > CLENS_CHAT_NOW_MAX)
            tpl_rfail(c, at, CLENS_E_ARG, "strftime_now: the time %lld is outside the years 1..9999 (Python's datetime)",
                      (long long)c->o->now);
        t = (time_t)c->o->now;
        if (!gmtime_r(&t, &tmv)) tpl_rfail(c, at, CLENS_E_ARG, "strftime_now: cannot convert the time %lld", (long long)t);
    } else {
        t = time(NULL);
        localtime_r(&t, &tmv);
    }
    char *f = tpl_strndup(c->ar, fmt->u.s.p, fmt->u.s.n);
    if (memchr(fmt->u.s.p, 0, fmt->u.s.n)) tpl_rfail(c, at, CLENS_E_ARG, "embedded null character");
    if (fmt->u.s.n == 0) return;
    for (size_t cap = 256; cap <= (size_t)1 << 20; cap *= 4) {
        char *buf = tpl_alloc(c->ar, cap);
        /* a leading marker lets an empty expansion be told from overflow */
        size_t fl = strlen(f);
        char *f2 = tpl_alloc(c->ar, fl + 2);
        f2[0] = 'x';
        memcpy(f2 + 1, f, fl + 1);
        size_t k = strftime(buf, cap, f2, &tmv);
        if (k > 0) { tsb_put(b, buf + 1, k - 1); return; }
    }
    tpl_rfail(c, at, CLENS_E_ARG, "strftime_now: result too long");
}

/* Python str methods (fn->self is the string). */
static tv str_method(rctx *c, const tnode *at, const tfunc *fn, const targs *a)
{
    tv p[4];
    const tv *s = &fn->self;
    switch (fn->id) {
    case S_STRIP: case S_LSTRIP: case S_RSTRIP: {
        static const char *const ps[] = {"chars"};
        if (a->nkw) tpl_rfail(c, at, CLENS_E_ARG, "%s() takes no keyword arguments", fn->name);
        bind(c, at, fn->name, a, ps, 1, p, 0, NULL);
        int which = fn->id == S_STRIP ? 3 : fn->id == S_LSTRIP ? 1 : 2;
        if (!missing(&p[0]) && p[0].t != TV_NONE) {
            tv ch = want_str(c, at, &p[0], "strip arg");
            return str_strip(s, which, &ch);
        }
        return str_strip(s, which, NULL);
    }
    case S_SPLIT: case S_RSPLIT: {
        static const char *const ps[] = {"sep", "maxsplit"};
        bind(c, at, fn->name, a, ps, 2, p, 0, NULL);
        int64_t ms = missing(&p[1]) ? -1 : want_int(c, at, &p[1], fn->name);
        return str_split(c, at, s, missing(&p[0]) ? NULL : &p[0], ms, fn->id == S_RSPLIT);
    }
    case S_SPLITLINES: {
        static const char *const ps[] = {"keepends"};
        bind(c, at, fn->name, a, ps, 1, p, 0, NULL);
        return str_splitlines(c, s, !missing(&p[0]) && tv_truthy(&p[0]));
    }
    case S_STARTSWITH: case S_ENDSWITH: {
        if (a->nkw) tpl_rfail(c, at, CLENS_E_ARG, "%s() takes no keyword arguments", fn->name);
        if (a->npos < 1 || a->npos > 3) tpl_rfail(c, at, CLENS_E_ARG, "%s() takes at least 1 argument", fn->name);
        size_t bs, be;
        bounds(c, at, s, a->npos > 1 ? &a->pos[1] : NULL, a->npos > 2 ? &a->pos[2] : NULL, &bs, &be);
        const tv *pre = &a->pos[0];
        const tv *cands = pre;
        size_t nc = 1;
        if (pre->t == TV_LIST && pre->k == LK_TUPLE) { cands = pre->u.l->v; nc = pre->u.l->n; }
        else if (pre->t != TV_STR)
            tpl_rfail(c, at, CLENS_E_ARG, "%s first arg must be str or a tuple of str, not %s", fn->name, tv_type_name(pre));
        int64_t len = (int64_t)cp_len(s);
        int64_t st = a->npos > 1 && a->pos[1].t != TV_NONE ? want_int(c, at, &a->pos[1], "slice") : 0;
        if (st < 0) st += len;
        if (st > len) return tv_bool(0);
        for (size_t i = 0; i < nc; i++) {
            if (cands[i].t != TV_STR) tpl_rfail(c, at, CLENS_E_ARG, "tuple for %s must only contain str", fn->name);
            size_t k = cands[i].u.s.n;
            if (k > be - bs) continue;
            const char *q = fn->id == S_STARTSWITH ? s->u.s.p + bs : s->u.s.p + be - k;
            if (memcmp(q, cands[i].u.s.p, k) == 0) return tv_bool(1);
        }
        return tv_bool(0);
    }
    case S_REPLACE: {
        if (a->nkw) tpl_rfail(c, at, CLENS_E_ARG, "replace() takes no keyword arguments");
        static const char *const ps[] = {"old", "new", "count"};
        bind(c, at, fn->name, a, ps, 3, p, 0, NULL);
        if (missing(&p[0]) || missing(&p[1])) tpl_rfail(c, at, CLENS_E_ARG, "replace expected at least 2 arguments");
        tv o = want_str(c, at, &p[0], "replace() argument 1"), nw = want_str(c, at, &p[1], "replace() argument 2");
        return str_replace(c, s, &o, &nw, missing(&p[2]) ? -1 : want_int(c, at, &p[2], "replace"));
    }
    case S_UPPER: case S_LOWER: case S_SWAPCASE: case S_TITLE: case S_CAPITALIZE: case S_CASEFOLD:
        bind(c, at, fn->name, a, NULL, 0, p, 0, NULL);
        return str_case(c, s, fn->id == S_UPPER ? 1 : fn->id == S_LOWER || fn->id == S_CASEFOLD ? 2
                              : fn->id == S_SWAPCASE ? 3 : fn->id == S_TITLE ? 4 : 5);
    case S_FIND: case S_RFIND: case S_INDEX: case S_RINDEX: case S_COUNT: {
        if (a->nkw) tpl_rfail(c, at, CLENS_E_ARG, "%s() takes no keyword arguments", fn->name);
        if (a->npos < 1 || a->npos > 3) tpl_rfail(c, at, CLENS_E_ARG, "%s() takes at least 1 argument", fn->name);
        tv sub = want_str(c, at, &a->pos[0], fn->name);
        size_t bs, be;
        bounds(c, at, s, a->npos > 1 ? &a->pos[1] : NULL, a->npos > 2 ? &a->pos[2] : NULL, &bs, &be);
        if (fn->id == S_COUNT) {
            if (sub.u.s.n == 0) return tv_int((int64_t)tpl_utf8_count(s->u.s.p + bs, be - bs) + 1);
            int64_t cnt = 0;
            size_t i = bs;
            const char *f;
            while ((f = memfind(s->u.s.p + i, be - i, sub.u.s.p, sub.u.s.n)) != NULL) {
                cnt++;
                i = (size_t)(f - s->u.s.p) + sub.u.s.n;
            }
            return tv_int(cnt);
        }
        int rev = fn->id == S_RFIND || fn->id == S_RINDEX;
        const char *f = rev ? memrfind(s->u.s.p + bs, be - bs, sub.u.s.p, sub.u.s.n)
                            : memfind(s->u.s.p + bs, be - bs, sub.u.s.p, sub.u.s.n);
        if (!f) {
            if (fn->id == S_INDEX || fn->id == S_RINDEX) tpl_rfail(c, at, CLENS_E_ARG, "substring not found");
            return tv_int(-1);
        }
        return tv_int(cp_index_of(s, (size_t)(f - s->u.s.p)));
    }
    case S_JOIN: {
        if (a->npos != 1 || a->nkw) tpl_rfail(c, at, CLENS_E_ARG, "join() takes exactly one argument");
        tlist *l = tpl_iter(c, at, &a->pos[0]);
        tsb b;
        tsb_init(&b, c->ar, c->o->max_output);
        for (size_t i = 0; i < l->n; i++) {
            if (l->v[i].t != TV_STR)
                tpl_rfail(c, at, CLENS_E_ARG, "sequence item %zu: expected str instance, %s found", i, tv_type_name(&l->v[i]));
            if (i) tsb_put(&b, s->u.s.p, s->u.s.n);
            tsb_put(&b, l->v[i].u.s.p, l->v[i].u.s.n);
        }
        return tv_str(b.p ? b.p : "", b.n);
    }
    case S_FORMAT: return str_format(c, at, s, a);
    case S_ZFILL: {
        if (a->npos != 1 || a->nkw) tpl_rfail(c, at, CLENS_E_ARG, "zfill() takes exactly one argument");
        int64_t w = want_int(c, at, &a->pos[0], "zfill");
        int64_t len = (int64_t)cp_len(s);
        if (w <= len) return *s;
        tsb b;
        tsb_init(&b, c->ar, c->o->max_output);
        size_t off = 0;
        if (s->u.s.n && (s->u.s.p[0] == '+' || s->u.s.p[0] == '-')) { tsb_putc(&b, s->u.s.p[0]); off = 1; }
        for (int64_t i = 0; i < w - len; i++) tsb_putc(&b, '0');
        tsb_put(&b, s->u.s.p + off, s->u.s.n - off);
        return tv_str(b.p ? b.p : "", b.n);
    }
    case S_CENTER: case S_LJUST: case S_RJUST: {
        if (a->nkw) tpl_rfail(c, at, CLENS_E_ARG, "%s() takes no keyword arguments", fn->name);
        if (a->npos < 1 || a->npos > 2) tpl_rfail(c, at, CLENS_E_ARG, "%s() takes 1 or 2 arguments", fn->name);
        tv fill = a->npos > 1 ? want_str(c, at, &a->pos[1], fn->name) : tv_str(" ", 1);
        if (cp_len(&fill) != 1) tpl_rfail(c, at, CLENS_E_ARG, "The fill character must be exactly one character long");
        return str_pad(c, s, want_int(c, at, &a->pos[0], fn->name), &fill,
                       fn->id == S_CENTER ? 0 : fn->id == S_LJUST ? 1 : 2);
    }
    case S_PARTITION: case S_RPARTITION: {
        if (a->npos != 1 || a->nkw) tpl_rfail(c, at, CLENS_E_ARG, "%s() takes exactly one argument", fn->name);
        tv sep = want_str(c, at, &a->pos[0], fn->name);
        if (!sep.u.s.n) tpl_rfail(c, at, CLENS_E_ARG, "empty separator");
        const char *f = fn->id == S_PARTITION ? memfind(s->u.s.p, s->u.s.n, sep.u.s.p, sep.u.s.n)
                                              : memrfind(s->u.s.p, s->u.s.n, sep.u.s.p, sep.u.s.n);
        tv t = tv_list_new(c->ar, LK_TUPLE, 3);
        if (!f) {
            if (fn->id == S_PARTITION) { tv_list_push(c->ar, &t, *s); tv_list_push(c->ar, &t, tv_str("", 0)); tv_list_push(c->ar, &t, tv_str("", 0)); }
            else { tv_list_push(c->ar, &t, tv_str("", 0)); tv_list_push(c->ar, &t, tv_str("", 0)); tv_list_push(c->ar, &t, *s); }
            return t;
        }
        size_t j = (size_t)(f - s->u.s.p);
        tv_list_push(c->ar, &t, tv_str(s->u.s.p, j));
        tv_list_push(c->ar, &t, sep);
        tv_list_push(c->ar, &t, tv_str(s->u.s.p + j + sep.u.s.n, s->u.s.n - j - sep.u.s.n));
        return t;
    }
    case S_REMOVEPREFIX: case S_REMOVESUFFIX: {
        if (a->npos != 1 || a->nkw) tpl_rfail(c, at, CLENS_E_ARG, "%s() takes exactly one argument", fn->name);
        tv x = want_str(c, at, &a->pos[0], fn->name);
        if (x.u.s.n <= s->u.s.n) {
            if (fn->id == S_REMOVEPREFIX && !memcmp(s->u.s.p, x.u.s.p, x.u.s.n))
                return tv_str(s->u.s.p + x.u.s.n, s->u.s.n - x.u.s.n);
            if (fn->id == S_REMOVESUFFIX && x.u.s.n && !memcmp(s->u.s.p + s->u.s.n - x.u.s.n, x.u.s.p, x.u.s.n))
                return tv_str(s->u.s.p, s->u.s.n - x.u.s.n);
        }
        return *s;
    }
    default:
        bind(c, at, fn->name, a, NULL, 0, p, 0, NULL);
        return tv_bool(str_pred(s, fn->id));
    }
    tpl_rfail(c, at, CLENS_E_UNSUPPORTED, "'%s' is not supported by clens", fn->name);
}

/* markupsafe.Markup wraps these str methods so that they return Markup */
static tv markup_result(rctx *c, int id, tv r)
{
    switch (id) {
    case S_STRIP: case S_LSTRIP: case S_RSTRIP: case S_UPPER: case S_LOWER: case S_TITLE: case S_CAPITALIZE:
    case S_SWAPCASE: case S_REPLACE: case S_CENTER: case S_LJUST: case S_RJUST: case S_ZFILL: case S_FORMAT:
    case S_JOIN:
        if (r.t == TV_STR) r.k = SK_MARKUP;
        return r;
    case S_SPLIT: case S_RSPLIT: case S_SPLITLINES: case S_PARTITION: case S_RPARTITION: {
        tv out = tv_list_new(c->ar, r.k, r.u.l->n);
        for (size_t i = 0; i < r.u.l->n; i++) {
            tv x = r.u.l->v[i];
            x.k = SK_MARKUP;
            tv_list_push(c->ar, &out, x);
        }
        return out;
    }
    default:
        return r;
    }
}

tv tpl_call_builtin(rctx *c, const tnode *at, const tfunc *fn, const targs *a)
{
    tv p[4];
    const tv *self = &fn->self;
    switch (fn->id) {
    case G_RAISE: {
        static const char *const ps[] = {"message"};
        bind(c, at, "raise_exception", a, ps, 1, p, 0, NULL);
        if (missing(&p[0])) tpl_rfail(c, at, CLENS_E_ARG, "raise_exception() missing 1 required positional argument: 'message'");
        tv s = soft_str(c, at, &p[0]);
        tpl_rfail(c, at, CLENS_E_ARG, "raise_exception: %.*s", (int)(s.u.s.n > 700 ? 700 : s.u.s.n), s.u.s.p);
    }
    case G_STRFTIME: {
        static const char *const ps[] = {"format"};
        bind(c, at, "strftime_now", a, ps, 1, p, 0, NULL);
        if (missing(&p[0])) tpl_rfail(c, at, CLENS_E_ARG, "strftime_now() missing 1 required positional argument: 'format'");
        tv f = want_str(c, at, &p[0], "strftime() argument 1");
        tsb b;
        tsb_init(&b, c->ar, 0);
        strftime_into(c, at, &f, &b);
        return tv_str(b.p ? b.p : "", b.n);
    }
    case G_RANGE: {
        if (a->nkw) tpl_rfail(c, at, CLENS_E_ARG, "range() takes no keyword arguments");
        if (a->npos < 1 || a->npos > 3) tpl_rfail(c, at, CLENS_E_ARG, "range expected 1 to 3 arguments, got %d", a->npos);
        int64_t v[3] = {0, 0, 1};
        for (int i = 0; i < a->npos; i++) v[a->npos == 1 ? 1 : i] = want_int(c, at, &a->pos[i], "range");
        if (v[2] == 0) tpl_rfail(c, at, CLENS_E_ARG, "range() arg 3 must not be zero");
        /* In unsigned arithmetic: the span of two int64 (up to 2^64 - 1) and
         * the items themselves (which lie between start and stop) are exact. */
        uint64_t cnt = 0, step = v[2] > 0 ? (uint64_t)v[2] : 0 - (uint64_t)v[2];
        if (v[2] > 0 && v[1] > v[0]) cnt = ((uint64_t)v[1] - (uint64_t)v[0] - 1) / step + 1;
        if (v[2] < 0 && v[1] < v[0]) cnt = ((uint64_t)v[0] - (uint64_t)v[1] - 1) / step + 1;
        if (cnt > 100000)
            tpl_rfail(c, at, CLENS_E_ARG, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
        tv out = tv_list_new(c->ar, LK_RANGE, (size_t)cnt);
        for (uint64_t i = 0; i < cnt; i++)
            tv_list_push(c->ar, &out, tv_int((int64_t)((uint64_t)v[0] + i * (uint64_t)v[2])));
        out.u.l->r[0] = v[0];
        out.u.l->r[1] = v[1];
        out.u.l->r[2] = v[2];
        return out;
    }
    case G_DICT: case G_NAMESPACE: {
        if (a->npos > 1) tpl_rfail(c, at, CLENS_E_ARG, "%s expected at most 1 argument, got %d", fn->name, a->npos);
        tv d = tv_dict_new(c->ar, 0);
        if (a->npos == 1) {
            const tv *src = &a->pos[0];
            if (src->t == TV_DICT || src->t == TV_NS) {
                for (size_t i = 0; i < src->u.d->n; i++) tv_dict_set(c->ar, d.u.d, src->u.d->keys[i], src->u.d->vals[i]);
            } else {
                tlist *l = tpl_iter(c, at, src);
                for (size_t i = 0; i < l->n; i++) {
                    tlist *pr = tpl_iter(c, at, &l->v[i]);
                    if (pr->n != 2) tpl_rfail(c, at, CLENS_E_ARG, "dictionary update sequence element #%zu has length %zu; 2 is required", i, pr->n);
                    if (!tv_is_hashable(&pr->v[0])) tpl_rfail(c, at, CLENS_E_ARG, "unhashable type: '%s'", tv_type_name(&pr->v[0]));
                    tv_dict_set(c->ar, d.u.d, pr->v[0], pr->v[1]);
                }
            }
        }
        for (int k = 0; k < a->nkw; k++) tv_dict_set(c->ar, d.u.d, tv_cstr(a->kwn[k]), a->kwv[k]);
        if (fn->id == G_NAMESPACE) d.t = TV_NS;
        return d;
    }
    case G_CYCLER: {
        if (a->nkw) tpl_rfail(c, at, CLENS_E_ARG, "cycler() takes no keyword arguments");
        if (!a->npos) tpl_rfail(c, at, CLENS_E_ARG, "at least one item has to be provided");
        tobj *o = tpl_alloc(c->ar, sizeof(tobj));
        tv l = tv_list_new(c->ar, LK_LIST, (size_t)a->npos);
        for (int i = 0; i < a->npos; i++) tv_list_push(c->ar, &l, a->pos[i]);
        o->items = l.u.l;
        tv v = {0};
        v.t = TV_OBJ;
        v.k = OK_CYCLER;
        v.u.o = o;
        return v;
    }
    case G_JOINER: {
        static const char *const ps[] = {"sep"};
        bind(c, at, "joiner", a, ps, 1, p, 0, NULL);
        tobj *o = tpl_alloc(c->ar, sizeof(tobj));
        o->sep = missing(&p[0]) ? tv_str(", ", 2) : p[0];
        tv v = {0};
        v.t = TV_OBJ;
        v.k = OK_JOINER;
        v.u.o = o;
        return v;
    }
    case G_LIPSUM: tpl_rfail(c, at, CLENS_E_UNSUPPORTED, "lipsum() is not supported by clens");
    case CY_NEXT: {
        tobj *o = self->u.o;
        tv r = o->items->v[o->pos];
        o->pos = (o->pos + 1) % o->items->n;
        return r;
    }
    case CY_RESET: self->u.o->pos = 0; return tv_none();
    case LP_CYCLE:
        if (a->nkw) tpl_rfail(c, at, CLENS_E_ARG, "cycle() takes no keyword arguments");
        if (!a->npos) tpl_rfail(c, at, CLENS_E_ARG, "no items for cycling given");
        return a->pos[self->u.lp->index0 % (size_t)a->npos];
    case LP_CHANGED: {
        tloop *l = self->u.lp;
        tv t = tv_list_new(c->ar, LK_TUPLE, (size_t)a->npos);
        for (int i = 0; i < a->npos; i++) tv_list_push(c->ar, &t, a->pos[i]);
        if (!l->has_changed || !tv_eq(&l->last_changed, &t)) {
            l->has_changed = 1;
            l->last_changed = t;
            return tv_bool(1);
        }
        return tv_bool(0);
    }
    case D_GET: {
        static const char *const ps[] = {"key", "default"};
        if (a->nkw) tpl_rfail(c, at, CLENS_E_ARG, "get() takes no keyword arguments");
        bind(c, at, "get", a, ps, 2, p, 0, NULL);
        if (missing(&p[0])) tpl_rfail(c, at, CLENS_E_ARG, "get expected at least 1 argument, got 0");
        if (!tv_is_hashable(&p[0])) tpl_rfail(c, at, CLENS_E_ARG, "unhashable type: '%s'", tv_type_name(&p[0]));
        tv *x = tv_dict_get(self->u.d, &p[0]);
        if (x) return *x;
        return missing(&p[1]) ? tv_none() : p[1];
    }
    case D_ITEMS: case D_KEYS: case D_VALUES: {
        bind(c, at, fn->name, a, NULL, 0, p, 0, NULL);
        const tdict *d = self->u.d;
        tv out = tv_list_new(c->ar, fn->id == D_ITEMS ? LK_ITEMS : fn->id == D_KEYS ? LK_KEYS : LK_VALUES, d->n);
        for (size_t i = 0; i < d->n; i++) {
            if (fn->id == D_ITEMS) {
                tv t = tv_list_new(c->ar, LK_TUPLE, 2);
                tv_list_push(c->ar, &t, d->keys[i]);
                tv_list_push(c->ar, &t, d->vals[i]);
                tv_list_push(c->ar, &out, t);
            } else tv_list_push(c->ar, &out, fn->id == D_KEYS ? d->keys[i] : d->vals[i]);
        }
        return out;
    }
    case D_COPY: {
        bind(c, at, "copy", a, NULL, 0, p, 0, NULL);
        tv d = tv_dict_new(c->ar, self->u.d->n);
        for (size_t i = 0; i < self->u.d->n; i++) tv_dict_set(c->ar, d.u.d, self->u.d->keys[i], self->u.d->vals[i]);
        return d;
    }
    case L_COPY: {
        bind(c, at, "copy", a, NULL, 0, p, 0, NULL);
        tv l = tv_list_new(c->ar, LK_LIST, self->u.l->n);
        for (size_t i = 0; i < self->u.l->n; i++) tv_list_push(c->ar, &l, self->u.l->v[i]);
        return l;
    }
    case L_INDEX: case L_COUNT: {
        if (a->npos < 1 || a->nkw) tpl_rfail(c, at, CLENS_E_ARG, "%s() takes exactly one argument", fn->name);
        int64_t cnt = 0;
        for (size_t i = 0; i < self->u.l->n; i++)
            if (tv_eq(&self->u.l->v[i], &a->pos[0])) {
                if (fn->id == L_INDEX) return tv_int((int64_t)i);
                cnt++;
            }
        if (fn->id == L_INDEX) tpl_rfail(c, at, CLENS_E_ARG, "list.index(x): x not in list");
        return tv_int(cnt);
    }
    case M_UNSUPPORTED:
        tpl_rfail(c, at, CLENS_E_UNSUPPORTED, "%s.%s() is not supported by clens", tv_type_name(self), fn->name);
    default:
        break;
    }
    if (fn->id >= S_STRIP && fn->id <= S_ISTITLE) {
        tv r = str_method(c, at, fn, a);
        return self->k == SK_MARKUP ? markup_result(c, fn->id, r) : r;
    }
    tpl_rfail(c, at, CLENS_E_UNSUPPORTED, "'%s' is not supported by clens", fn->name);
}

void tpl_install_globals(rctx *c, tframe *f)
{
    static const struct { const char *n; int id; } G[] = {
        {"range", G_RANGE}, {"dict", G_DICT}, {"namespace", G_NAMESPACE}, {"cycler", G_CYCLER},
        {"joiner", G_JOINER}, {"lipsum", G_LIPSUM}, {"raise_exception", G_RAISE}, {"strftime_now", G_STRFTIME}};
    for (size_t i = 0; i < sizeof G / sizeof G[0]; i++) tpl_frame_set(c, f, G[i].n, mkfunc(c, G[i].id, NULL, G[i].n));
}
