/*
 * template_eval.c: the chat-template evaluator. It walks the AST of
 * template_parse.c with the semantics of jinja2 3.1 code generated for an
 * ImmutableSandboxedEnvironment (jinja2/compiler.py, runtime.py, sandbox.py):
 *
 *  - scopes: the template body has one frame; every for-loop iteration,
 *    macro call, call block, set block, with block and generation block
 *    runs in a fresh child frame, so "set" inside them does not leak out;
 *    "if" has no scope; namespace() objects are shared and mutable;
 *  - attribute access a.b tries the Python attribute first (str/dict/list
 *    methods), then a['b']; a[b] tries the item first, then the attribute;
 *    a missing key, index or attribute is Undefined, and using an Undefined
 *    for anything but printing, iteration, truth tests, "is defined" and
 *    "default" is an error (jinja2's default Undefined);
 *  - the sandbox refuses calls of mutating methods (list.append, dict.update)
 *    and caps range() at 100000 items.
 * Runtime errors longjmp out with "chat template line L col C: message".
 * Limits: output bytes, arena bytes, nesting depth and evaluation steps.
 */
#include "template_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Noreturn void tpl_rfail(rctx *c, const tnode *at, int code, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at) tpl_throw(c->ar, code, "chat template line %d col %d: %s", at->line, at->col, msg);
    tpl_throw(c->ar, code, "chat template: %s", msg);
}

_Noreturn void tpl_undef_fail(rctx *c, const tnode *at, const tv *v)
{
    const tundef *u = v->u.u;
    if (!u) tpl_rfail(c, at, CLENS_E_ARG, "undefined value");
    if (u->hint) tpl_rfail(c, at, CLENS_E_ARG, "%s", u->hint);
    if (!u->objtype) tpl_rfail(c, at, CLENS_E_ARG, "'%s' is undefined", u->name ? u->name : "?");
    if (!u->name_is_str) tpl_rfail(c, at, CLENS_E_ARG, "%s has no element %s", u->objtype, u->name);
    tpl_rfail(c, at, CLENS_E_ARG, "'%s' has no attribute '%s'", u->objtype, u->name);
}

/* ----------------------------------------------------------------- frames */

static tframe *frame_new(rctx *c, tframe *parent)
{
    tframe *f = tpl_alloc(c->ar, sizeof(tframe));
    f->parent = parent;
    return f;
}

void tpl_frame_set(rctx *c, tframe *f, const char *name, tv v)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->names[i], name)) { f->vals[i] = v; return; }
    if (f->n == f->cap) {
        int cap = f->cap ? f->cap * 2 : 4;
        f->names = tpl_realloc(c->ar, f->names, (size_t)f->cap * sizeof(char *), (size_t)cap * sizeof(char *));
        f->vals = tpl_realloc(c->ar, f->vals, (size_t)f->cap * sizeof(tv), (size_t)cap * sizeof(tv));
        f->cap = cap;
    }
    f->names[f->n] = name;
    f->vals[f->n] = v;
    f->n++;
}

static tv *frame_lookup(tframe *f, const char *name)
{
    for (; f; f = f->parent)
        for (int i = f->n - 1; i >= 0; i--)
            if (!strcmp(f->names[i], name)) return &f->vals[i];
    return NULL;
}

/* ------------------------------------------------------------------ utils */

static void step(rctx *c, const tnode *at)
{
    if (++c->steps > c->o->max_steps)
        tpl_rfail(c, at, CLENS_E_ARG, "evaluation step limit (%lld) exceeded", (long long)c->o->max_steps);
}

static void enter(rctx *c, const tnode *at)
{
    if (++c->depth > c->o->max_depth)
        tpl_rfail(c, at, CLENS_E_ARG, "recursion depth limit (%d) exceeded", c->o->max_depth);
}

tv tpl_to_str(rctx *c, const tnode *at, const tv *v)
{
    if (v->t == TV_STR) return *v;
    tsb b;
    tsb_init(&b, c->ar, 0);
    if (tv_str_into(&b, v) != 0)
        tpl_rfail(c, at, CLENS_E_UNSUPPORTED, "cannot convert a %s object to text (Python prints its address, "
                  "or it is nested too deeply)", tv_type_name(v));
    return tv_str(b.p ? b.p : "", b.n);
}

static tlist *iter_impl(rctx *c, const tnode *at, const tv *v);

/* Iteration is charged to the step budget by its length, so filters over
 * long sequences inside loops cannot run unbounded. */
tlist *tpl_iter(rctx *c, const tnode *at, const tv *v)
{
    tlist *l = iter_impl(c, at, v);
    c->steps += (int64_t)l->n;
    if (c->steps > c->o->max_steps)
        tpl_rfail(c, at, CLENS_E_ARG, "evaluation step limit (%lld) exceeded", (long long)c->o->max_steps);
    return l;
}

static tlist *iter_impl(rctx *c, const tnode *at, const tv *v)
{
    switch (v->t) {
    case TV_UNDEF: return tpl_alloc(c->ar, sizeof(tlist));
    case TV_LIST:
        if (v->k == LK_GEN) {
            tlist *l = tpl_alloc(c->ar, sizeof(tlist));
            tlist *g = v->u.l;
            l->v = g->v ? g->v + g->pos : NULL;
            l->n = l->cap = g->n - g->pos;
            g->pos = g->n;
            return l;
        }
        return v->u.l;
    case TV_STR: {
        tv l = tv_list_new(c->ar, LK_LIST, v->u.s.n);
        size_t i = 0;
        while (i < v->u.s.n) {
            uint32_t cp;
            int k = tpl_utf8_dec(v->u.s.p + i, v->u.s.n - i, &cp);
            tv_list_push(c->ar, &l, tv_str(v->u.s.p + i, (size_t)k));
            i += (size_t)k;
        }
        return l.u.l;
    }
    case TV_DICT: {
        tlist *l = tpl_alloc(c->ar, sizeof(tlist));
        l->v = v->u.d->keys;
        l->n = l->cap = v->u.d->n;
        return l;
    }
    default:
        tpl_rfail(c, at, CLENS_E_ARG, "'%s' object is not iterable", tv_type_name(v));
    }
}

/* ------------------------------------------------------- getattr/getitem */

tv tpl_getattr(rctx *c, const tnode *at, const tv *obj, const char *name)
{
    if (obj->t == TV_UNDEF) tpl_undef_fail(c, at, obj);
    tv out;
    if (tpl_builtin_attr(c, at, obj, name, &out)) return out;
    if (obj->t == TV_DICT) {
        tv *x = tv_dict_get_str(obj->u.d, name, strlen(name));
        if (x) return *x;
    } else if (obj->t == TV_NS) {
        tv *x = tv_dict_get_str(obj->u.d, name, strlen(name));
        if (x) return *x;
    }
    return tv_undef_attr(c->ar, obj, name);
}

static int64_t norm_index(int64_t i, size_t n, int *ok)
{
    if (i < 0) i += (int64_t)n;
    *ok = i >= 0 && (uint64_t)i < n;
    return i;
}

tv tpl_getitem(rctx *c, const tnode *at, const tv *obj, const tv *key)
{
    if (obj->t == TV_UNDEF) tpl_undef_fail(c, at, obj);
    if (obj->t == TV_DICT) {
        tv *x = tv_is_hashable(key) ? tv_dict_get(obj->u.d, key) : NULL;
        if (x) return *x;
    } else if ((key->t == TV_INT || key->t == TV_BOOL) &&
               (obj->t == TV_STR || (obj->t == TV_LIST && (obj->k == LK_LIST || obj->k == LK_TUPLE || obj->k == LK_RANGE)))) {
        int ok;
        if (obj->t == TV_STR) {
            size_t n = tpl_utf8_count(obj->u.s.p, obj->u.s.n);
            int64_t i = norm_index(key->u.i, n, &ok);
            if (ok) {
                size_t p = 0;
                for (int64_t k = 0; k < i; k++) {
                    uint32_t cp;
                    p += (size_t)tpl_utf8_dec(obj->u.s.p + p, obj->u.s.n - p, &cp);
                }
                uint32_t cp;
                int k = tpl_utf8_dec(obj->u.s.p + p, obj->u.s.n - p, &cp);
                tv r = tv_str(obj->u.s.p + p, (size_t)k);
                r.k = obj->k; /* Markup.__getitem__ returns Markup */
                return r;
            }
        } else {
            int64_t i = norm_index(key->u.i, obj->u.l->n, &ok);
            if (ok) return obj->u.l->v[i];
        }
        return tv_undef_item(c->ar, obj, key);
    }
    if (key->t == TV_STR) {
        tv out;
        const char *name = tpl_strndup(c->ar, key->u.s.p, key->u.s.n);
        if (tpl_builtin_attr(c, at, obj, name, &out)) return out;
        if (obj->t == TV_NS) {
            tv *x = tv_dict_get(obj->u.d, key);
            if (x) return *x;
        }
    }
    return tv_undef_item(c->ar, obj, key);
}

/* Python slice semantics for str / list / tuple. jinja2 compiles a[b:c] to a
 * plain Python subscription (no sandbox getitem), so errors are raised. */
static tv do_slice(rctx *c, const tnode *at, const tv *obj, const tv *sv, int nsv)
{
    if (obj->t == TV_UNDEF) tpl_undef_fail(c, at, obj);
    int is_str = obj->t == TV_STR;
    if (!is_str && !(obj->t == TV_LIST && (obj->k == LK_LIST || obj->k == LK_TUPLE || obj->k == LK_RANGE))) {
        if (obj->t == TV_DICT) tpl_rfail(c, at, CLENS_E_ARG, "unhashable type: 'slice'");
        tpl_rfail(c, at, CLENS_E_ARG, "'%s' object is not subscriptable", tv_type_name(obj));
    }
    int64_t idx[3];
    int has[3];
    for (int i = 0; i < 3; i++) {
        has[i] = i < nsv && sv[i].t != TV_NONE;
        if (has[i] && sv[i].t == TV_UNDEF) tpl_undef_fail(c, at, &sv[i]);
        if (has[i] && sv[i].t != TV_INT && sv[i].t != TV_BOOL)
            tpl_rfail(c, at, CLENS_E_ARG, "slice indices must be integers or None or have an __index__ method");
        idx[i] = has[i] ? sv[i].u.i : 0;
    }
    int64_t stepv = has[2] ? idx[2] : 1;
    if (stepv == 0) tpl_rfail(c, at, CLENS_E_ARG, "slice step cannot be zero");
    /* code point offsets for strings */
    size_t n;
    size_t *offs = NULL;
    if (is_str) {
        n = tpl_utf8_count(obj->u.s.p, obj->u.s.n);
        offs = tpl_alloc(c->ar, (n + 1) * sizeof(size_t));
        size_t p = 0, k = 0;
        while (p < obj->u.s.n) {
            offs[k++] = p;
            uint32_t cp;
            p += (size_t)tpl_utf8_dec(obj->u.s.p + p, obj->u.s.n - p, &cp);
        }
        offs[k] = p;
    } else n = obj->u.l->n;
    int64_t len = (int64_t)n, start, stop;
    if (stepv > 0) {
        start = has[0] ? idx[0] : 0;
        stop = has[1] ? idx[1] : len;
        if (start < 0) { start += len; if (start < 0) start = 0; } else if (start > len) start = len;
        if (stop < 0) { stop += len; if (stop < 0) stop = 0; } else if (stop > len) stop = len;
    } else {
        start = has[0] ? idx[0] : len - 1;
        stop = has[1] ? idx[1] : -1 - len; /* sentinel: before index 0 */
        if (start < 0) { start += len; if (start < 0) start = -1; } else if (start >= len) start = len - 1;
        if (has[1]) { if (stop < 0) { stop += len; if (stop < 0) stop = -1; } else if (stop >= len) stop = len - 1; }
        else stop = -1;
    }
    if (is_str) {
        if (stepv == 1) {
            tv r = stop <= start ? tv_str("", 0) : tv_str(obj->u.s.p + offs[start], offs[stop] - offs[start]);
            r.k = obj->k;
            return r;
        }
        tsb b;
        tsb_init(&b, c->ar, 0);
        for (int64_t i = start; stepv > 0 ? i < stop : i > stop; i += stepv)
            tsb_put(&b, obj->u.s.p + offs[i], offs[i + 1] - offs[i]);
        return tv_str(b.p ? b.p : "", b.n);
    }
    tv out = tv_list_new(c->ar, obj->k == LK_TUPLE ? LK_TUPLE : LK_LIST, 0);
    for (int64_t i = start; stepv > 0 ? i < stop : i > stop; i += stepv) tv_list_push(c->ar, &out, obj->u.l->v[i]);
    return out;
}

/* ------------------------------------------------------------- operators */

static int is_num(const tv *v) { return v->t == TV_BOOL || v->t == TV_INT || v->t == TV_FLOAT; }
static double as_f(const tv *v) { return v->t == TV_FLOAT ? v->u.f : (double)v->u.i; }

static const char *OPSYM[] = {"", "+", "-", "*", "/", "//", "%", "**"};

_Noreturn static void bad_operands(rctx *c, const tnode *at, int op, const tv *a, const tv *b)
{
    if (op == OP_ADD && a->t == TV_STR)
        tpl_rfail(c, at, CLENS_E_ARG, "can only concatenate str (not \"%s\") to str", tv_type_name(b));
    if (op == OP_ADD && a->t == TV_LIST && (a->k == LK_LIST || a->k == LK_TUPLE))
        tpl_rfail(c, at, CLENS_E_ARG, "can only concatenate %s (not \"%s\") to %s", tv_type_name(a), tv_type_name(b),
                  tv_type_name(a));
    tpl_rfail(c, at, CLENS_E_ARG, "unsupported operand type(s) for %s: '%s' and '%s'", OPSYM[op], tv_type_name(a),
              tv_type_name(b));
}

_Noreturn static void overflow(rctx *c, const tnode *at)
{
    tpl_rfail(c, at, CLENS_E_UNSUPPORTED, "integer overflow (only 64-bit integers are supported)");
}

static double py_fmod(double x, double y)
{
    double m = fmod(x, y);
    if (m != 0) {
        if ((y < 0) != (m < 0)) m += y;
    } else m = copysign(0.0, y);
    return m;
}

static double py_floordiv(double x, double y)
{
    double m = fmod(x, y);
    double div = (x - m) / y;
    if (m != 0 && ((y < 0) != (m < 0))) div -= 1.0;
    double fl;
    if (div != 0) {
        fl = floor(div);
        if (div - fl > 0.5) fl += 1.0;
    } else fl = copysign(0.0, x / y);
    return fl;
}

static tv repeat(rctx *c, const tnode *at, const tv *seq, int64_t times)
{
    if (times < 0) times = 0;
    if (seq->t == TV_STR) {
        if (seq->u.s.n && (uint64_t)times > (uint64_t)(c->o->max_output / seq->u.s.n + 1))
            tpl_rfail(c, at, CLENS_E_ARG, "string repetition exceeds the output limit");
        tsb b;
        tsb_init(&b, c->ar, 0);
        for (int64_t i = 0; i < times; i++) tsb_put(&b, seq->u.s.p, seq->u.s.n);
        return tv_str(b.p ? b.p : "", b.n);
    }
    if (seq->u.l->n && (uint64_t)times > (uint64_t)(c->o->max_output / (seq->u.l->n * sizeof(tv)) + 1))
        tpl_rfail(c, at, CLENS_E_ARG, "list repetition exceeds the memory limit");
    tv out = tv_list_new(c->ar, seq->k, 0);
    for (int64_t i = 0; i < times; i++)
        for (size_t j = 0; j < seq->u.l->n; j++) tv_list_push(c->ar, &out, seq->u.l->v[j]);
    return out;
}

static int is_seq(const tv *v) { return v->t == TV_STR || (v->t == TV_LIST && (v->k == LK_LIST || v->k == LK_TUPLE)); }

tv tpl_binop(rctx *c, const tnode *at, int op, const tv *a, const tv *b)
{
    if (a->t == TV_UNDEF) tpl_undef_fail(c, at, a);
    if (b->t == TV_UNDEF) tpl_undef_fail(c, at, b);
    if (is_num(a) && is_num(b)) {
        int fl = a->t == TV_FLOAT || b->t == TV_FLOAT;
        int64_t x = a->u.i, y = b->u.i, r;
        switch (op) {
        case OP_ADD:
            if (fl) return tv_float(as_f(a) + as_f(b));
            if (__builtin_add_overflow(x, y, &r)) overflow(c, at);
            return tv_int(r);
        case OP_SUB:
            if (fl) return tv_float(as_f(a) - as_f(b));
            if (__builtin_sub_overflow(x, y, &r)) overflow(c, at);
            return tv_int(r);
        case OP_MUL:
            if (fl) return tv_float(as_f(a) * as_f(b));
            if (__builtin_mul_overflow(x, y, &r)) overflow(c, at);
            return tv_int(r);
        case OP_DIV:
            if (as_f(b) == 0) tpl_rfail(c, at, CLENS_E_ARG, fl ? "float division by zero" : "division by zero");
            return tv_float(as_f(a) / as_f(b));
        case OP_FLOORDIV:
            if (fl) {
                if (as_f(b) == 0) tpl_rfail(c, at, CLENS_E_ARG, "float floor division by zero");
                return tv_float(py_floordiv(as_f(a), as_f(b)));
            }
            if (y == 0) tpl_rfail(c, at, CLENS_E_ARG, "integer division or modulo by zero");
            if (x == INT64_MIN && y == -1) overflow(c, at);
            r = x / y;
            if ((x % y != 0) && ((x < 0) != (y < 0))) r--;
            return tv_int(r);
        case OP_MOD:
            if (fl) {
                if (as_f(b) == 0) tpl_rfail(c, at, CLENS_E_ARG, "float modulo");
                return tv_float(py_fmod(as_f(a), as_f(b)));
            }
            if (y == 0) tpl_rfail(c, at, CLENS_E_ARG, "integer division or modulo by zero");
            if (y == -1) return tv_int(0);
            r = x % y;
            if (r != 0 && ((r < 0) != (y < 0))) r += y;
            return tv_int(r);
        case OP_POW:
            if (!fl && y >= 0) {
                int64_t acc = 1, base = x;
                int64_t e = y;
                while (e > 0) {
                    if (e & 1)
                        if (__builtin_mul_overflow(acc, base, &acc)) overflow(c, at);
                    e >>= 1;
                    if (e && __builtin_mul_overflow(base, base, &base)) overflow(c, at);
                }
                return tv_int(acc);
            }
            if (as_f(a) == 0 && as_f(b) < 0)
                tpl_rfail(c, at, CLENS_E_ARG, "0.0 cannot be raised to a negative power");
            {
                double p = pow(as_f(a), as_f(b));
                if (as_f(a) < 0 && floor(as_f(b)) != as_f(b))
                    tpl_rfail(c, at, CLENS_E_UNSUPPORTED, "complex results are not supported");
                if (isinf(p) && !isinf(as_f(a)) && !isinf(as_f(b)))
                    tpl_rfail(c, at, CLENS_E_ARG, "(34, 'Numerical result out of range')");
                return tv_float(p);
            }
        }
    }
    if (op == OP_ADD) {
        if (a->t == TV_STR && b->t == TV_STR) {
            int markup = a->k == SK_MARKUP || b->k == SK_MARKUP;
            tv x = *a, y = *b;
            if (markup && x.k != SK_MARKUP) x = tpl_html_escape(c, &x); /* Markup.__radd__ */
            if (markup && y.k != SK_MARKUP) y = tpl_html_escape(c, &y); /* Markup.__add__ */
            tsb s;
            tsb_init(&s, c->ar, c->o->max_output);
            tsb_put(&s, x.u.s.p, x.u.s.n);
            tsb_put(&s, y.u.s.p, y.u.s.n);
            tv r = tv_str(s.p ? s.p : "", s.n);
            r.k = markup ? SK_MARKUP : SK_PLAIN;
            return r;
        }
        if (a->t == TV_LIST && b->t == TV_LIST && a->k == b->k && (a->k == LK_LIST || a->k == LK_TUPLE)) {
            tv out = tv_list_new(c->ar, a->k, a->u.l->n + b->u.l->n);
            for (size_t i = 0; i < a->u.l->n; i++) tv_list_push(c->ar, &out, a->u.l->v[i]);
            for (size_t i = 0; i < b->u.l->n; i++) tv_list_push(c->ar, &out, b->u.l->v[i]);
            return out;
        }
    }
    if (op == OP_MUL) {
        if (is_seq(a) && (b->t == TV_INT || b->t == TV_BOOL)) return repeat(c, at, a, b->u.i);
        if (is_seq(b) && (a->t == TV_INT || a->t == TV_BOOL)) return repeat(c, at, b, a->u.i);
    }
    if (op == OP_MOD && a->t == TV_STR) return tpl_str_percent(c, at, a, b);
    bad_operands(c, at, op, a, b);
}

int tpl_contains(rctx *c, const tnode *at, const tv *container, const tv *item)
{
    switch (container->t) {
    case TV_STR:
        if (item->t == TV_UNDEF) tpl_undef_fail(c, at, item);
        if (item->t != TV_STR)
            tpl_rfail(c, at, CLENS_E_ARG, "'in <string>' requires string as left operand, not %s", tv_type_name(item));
        if (item->u.s.n == 0) return 1;
        if (item->u.s.n > container->u.s.n) return 0;
        for (size_t i = 0; i + item->u.s.n <= container->u.s.n; i++)
            if (memcmp(container->u.s.p + i, item->u.s.p, item->u.s.n) == 0) return 1;
        return 0;
    case TV_DICT:
        if (!tv_is_hashable(item)) tpl_rfail(c, at, CLENS_E_ARG, "unhashable type: '%s'", tv_type_name(item));
        return tv_dict_get(container->u.d, item) != NULL;
    case TV_UNDEF: return 0;
    case TV_LIST:
        if (container->k == LK_GEN) {
            tlist *g = container->u.l;
            while (g->pos < g->n)
                if (tv_eq(&g->v[g->pos++], item)) return 1;
            return 0;
        }
        for (size_t i = 0; i < container->u.l->n; i++)
            if (tv_eq(&container->u.l->v[i], item)) return 1;
        return 0;
    default:
        tpl_rfail(c, at, CLENS_E_ARG, "argument of type '%s' is not iterable", tv_type_name(container));
    }
}

static int compare(rctx *c, const tnode *at, int op, const tv *a, const tv *b)
{
    switch (op) {
    case OP_EQ: return tv_eq(a, b);
    case OP_NE: return !tv_eq(a, b);
    case OP_IN: return tpl_contains(c, at, b, a);
    case OP_NOTIN: return !tpl_contains(c, at, b, a);
    }
    if (a->t == TV_UNDEF) tpl_undef_fail(c, at, a);
    if (b->t == TV_UNDEF) tpl_undef_fail(c, at, b);
    int ok;
    int r = tv_cmp(a, b, &ok);
    if (ok == 2) return 0;
    if (!ok) {
        static const char *sym[] = {[OP_LT] = "<", [OP_LE] = "<=", [OP_GT] = ">", [OP_GE] = ">="};
        tpl_rfail(c, at, CLENS_E_ARG, "'%s' not supported between instances of '%s' and '%s'", sym[op],
                  tv_type_name(a), tv_type_name(b));
    }
    switch (op) {
    case OP_LT: return r < 0;
    case OP_LE: return r <= 0;
    case OP_GT: return r > 0;
    default: return r >= 0;
    }
}

/* --------------------------------------------------------------- calling */

static tv eval(rctx *c, const tnode *n, tframe *f);
static int exec_body(rctx *c, tnode *const *body, int n, tframe *f);

static void eval_args(rctx *c, const tnode *n, tframe *f, targs *a)
{
    memset(a, 0, sizeof *a);
    int np = n->nv;
    tlist *dyn = NULL;
    if (n->c) {
        tv d = eval(c, n->c, f);
        dyn = tpl_iter(c, n->c, &d);
        np += (int)dyn->n;
    }
    a->pos = tpl_alloc(c->ar, sizeof(tv) * (size_t)(np ? np : 1));
    for (int i = 0; i < n->nv; i++) a->pos[a->npos++] = eval(c, n->v[i], f);
    if (dyn)
        for (size_t i = 0; i < dyn->n; i++) a->pos[a->npos++] = dyn->v[i];
    int nk = n->nnames;
    tv dk = tv_none();
    if (n->d) {
        dk = eval(c, n->d, f);
        if (dk.t != TV_DICT) tpl_rfail(c, n->d, CLENS_E_ARG, "argument after ** must be a mapping, not %s", tv_type_name(&dk));
        nk += (int)dk.u.d->n;
    }
    a->kwn = tpl_alloc(c->ar, sizeof(char *) * (size_t)(nk ? nk : 1));
    a->kwv = tpl_alloc(c->ar, sizeof(tv) * (size_t)(nk ? nk : 1));
    for (int i = 0; i < n->nnames; i++) {
        a->kwn[a->nkw] = n->names[i];
        a->kwv[a->nkw++] = eval(c, n->w[i], f);
    }
    if (n->d)
        for (size_t i = 0; i < dk.u.d->n; i++) {
            tv *k = &dk.u.d->keys[i];
            if (k->t != TV_STR) tpl_rfail(c, n->d, CLENS_E_ARG, "keywords must be strings");
            a->kwn[a->nkw] = tpl_strndup(c->ar, k->u.s.p, k->u.s.n);
            a->kwv[a->nkw++] = dk.u.d->vals[i];
        }
}

static tv call_macro(rctx *c, const tnode *at, const tmacro *m, const targs *a)
{
    const tnode *def = m->def;
    uint16_t fl = def->kind == N_MACRO ? def->flags : (uint16_t)(def->flags & (MF_VARARGS | MF_KWARGS));
    int np = def->nnames;
    if (a->npos > np && !(fl & MF_VARARGS))
        tpl_rfail(c, at, CLENS_E_ARG, "macro '%s' takes not more than %d argument(s)", m->name, np);
    enter(c, at);
    tframe *f = frame_new(c, m->closure);
    char *used = tpl_alloc(c->ar, (size_t)a->nkw + 1);
    for (int i = 0; i < np; i++) {
        const char *pn = def->names[i];
        tv val;
        int have = 0;
        if (i < a->npos) { val = a->pos[i]; have = 1; }
        else
            for (int k = 0; k < a->nkw; k++)
                if (!used[k] && !strcmp(a->kwn[k], pn)) { val = a->kwv[k]; used[k] = 1; have = 1; break; }
        if (!have) {
            if (def->w[i]) val = eval(c, def->w[i], f);
            else {
                char *h = tpl_alloc(c->ar, strlen(pn) + 40);
                sprintf(h, "parameter '%s' was not provided", pn);
                val = tv_undef_hint(c->ar, h, 0);
                val.u.u->name = pn;
            }
        }
        tpl_frame_set(c, f, pn, val);
    }
    if (fl & MF_CALLER) {
        tv caller = tv_undef_hint(c->ar, "No caller defined", 0);
        for (int k = 0; k < a->nkw; k++)
            if (!used[k] && !strcmp(a->kwn[k], "caller")) { caller = a->kwv[k]; used[k] = 1; break; }
        tpl_frame_set(c, f, "caller", caller);
    }
    if (fl & MF_KWARGS) {
        tv d = tv_dict_new(c->ar, 0);
        for (int k = 0; k < a->nkw; k++)
            if (!used[k]) tv_dict_set(c->ar, d.u.d, tv_cstr(a->kwn[k]), a->kwv[k]);
        tpl_frame_set(c, f, "kwargs", d);
    } else
        for (int k = 0; k < a->nkw; k++)
            if (!used[k]) {
                if (!strcmp(a->kwn[k], "caller"))
                    tpl_rfail(c, at, CLENS_E_ARG, "macro '%s' was invoked with two values for the special caller argument",
                              m->name);
                tpl_rfail(c, at, CLENS_E_ARG, "macro '%s' takes no keyword argument '%s'", m->name, a->kwn[k]);
            }
    if (fl & MF_VARARGS) {
        tv t = tv_list_new(c->ar, LK_TUPLE, 0);
        for (int i = np; i < a->npos; i++) tv_list_push(c->ar, &t, a->pos[i]);
        tpl_frame_set(c, f, "varargs", t);
    }
    tsb buf;
    tsb_init(&buf, c->ar, c->o->max_output);
    tsb *saved = c->out;
    c->out = &buf;
    exec_body(c, def->v, def->nv, f);
    c->out = saved;
    c->depth--;
    return tv_str(buf.p ? buf.p : "", buf.n);
}

tv tpl_call(rctx *c, const tnode *at, const tv *callee, const targs *a)
{
    switch (callee->t) {
    case TV_MACRO: return call_macro(c, at, callee->u.m, a);
    case TV_FUNC: return tpl_call_builtin(c, at, callee->u.fn, a);
    case TV_OBJ:
        if (callee->k == OK_JOINER) {
            if (a->npos || a->nkw) tpl_rfail(c, at, CLENS_E_ARG, "joiner takes no arguments");
            tobj *o = callee->u.o;
            if (!o->used) { o->used = 1; return tv_str("", 0); }
            return o->sep;
        }
        tpl_rfail(c, at, CLENS_E_ARG, "'%s' object is not callable", tv_type_name(callee));
    case TV_UNDEF: tpl_undef_fail(c, at, callee);
    default: tpl_rfail(c, at, CLENS_E_ARG, "'%s' object is not callable", tv_type_name(callee));
    }
}

/* ------------------------------------------------------------ expressions */

static tv eval(rctx *c, const tnode *n, tframe *f)
{
    step(c, n);
    switch (n->kind) {
    case N_CONST: return n->cval;
    case N_NAME: {
        tv *v = frame_lookup(f, n->name);
        return v ? *v : tv_undef_named(c->ar, n->name);
    }
    case N_LIST: case N_TUPLE: {
        tv l = tv_list_new(c->ar, n->kind == N_TUPLE ? LK_TUPLE : LK_LIST, (size_t)n->nv);
        for (int i = 0; i < n->nv; i++) tv_list_push(c->ar, &l, eval(c, n->v[i], f));
        return l;
    }
    case N_DICT: {
        tv d = tv_dict_new(c->ar, (size_t)n->nv);
        for (int i = 0; i < n->nv; i++) {
            tv k = eval(c, n->v[i], f);
            if (!tv_is_hashable(&k)) tpl_rfail(c, n->v[i], CLENS_E_ARG, "unhashable type: '%s'", tv_type_name(&k));
            tv_dict_set(c->ar, d.u.d, k, eval(c, n->w[i], f));
        }
        return d;
    }
    case N_GETATTR: {
        enter(c, n);
        tv o = eval(c, n->a, f);
        c->depth--;
        return tpl_getattr(c, n, &o, n->name);
    }
    case N_GETITEM: {
        enter(c, n);
        tv o = eval(c, n->a, f);
        c->depth--;
        if (n->b->kind == N_SLICE) {
            tv sv[3] = {tv_none(), tv_none(), tv_none()};
            if (n->b->a) sv[0] = eval(c, n->b->a, f);
            if (n->b->b) sv[1] = eval(c, n->b->b, f);
            if (n->b->c) sv[2] = eval(c, n->b->c, f);
            return do_slice(c, n, &o, sv, 3);
        }
        tv k = eval(c, n->b, f);
        return tpl_getitem(c, n, &o, &k);
    }
    case N_SLICE: tpl_rfail(c, n, CLENS_E_UNSUPPORTED, "slice outside of a subscript");
    case N_CALL: {
        enter(c, n);
        tv callee = eval(c, n->a, f);
        targs a;
        eval_args(c, n, f, &a);
        tv r = tpl_call(c, n, &callee, &a);
        c->depth--;
        return r;
    }
    case N_FILTER: case N_TEST: {
        if (n->id < 0) { /* allowed to load inside an if; fails when reached */
            const char *what = n->kind == N_FILTER ? "filter" : "test";
            if (n->id == -2) tpl_rfail(c, n, CLENS_E_UNSUPPORTED, "%s '%s' is not supported by clens", what, n->name);
            tpl_rfail(c, n, CLENS_E_ARG, "No %s named '%s'.", what, n->name);
        }
        enter(c, n);
        tv in = n->a ? eval(c, n->a, f) : tv_none();
        targs a;
        eval_args(c, n, f, &a);
        tv r = n->kind == N_FILTER ? tpl_filter(c, n, n->id, n->name, &in, &a)
                                   : tv_bool(tpl_test(c, n, n->id, n->name, &in, &a));
        c->depth--;
        return r;
    }
    case N_NOT: {
        enter(c, n);
        tv v = eval(c, n->a, f);
        c->depth--;
        return tv_bool(!tv_truthy(&v));
    }
    case N_NEG: case N_POS: {
        enter(c, n);
        tv v = eval(c, n->a, f);
        c->depth--;
        if (v.t == TV_UNDEF) tpl_undef_fail(c, n, &v);
        if (v.t == TV_FLOAT) return tv_float(n->kind == N_NEG ? -v.u.f : v.u.f);
        if (v.t == TV_INT || v.t == TV_BOOL) {
            if (n->kind == N_POS) return tv_int(v.u.i);
            if (v.u.i == INT64_MIN) overflow(c, n);
            return tv_int(-v.u.i);
        }
        tpl_rfail(c, n, CLENS_E_ARG, "bad operand type for unary %c: '%s'", n->kind == N_NEG ? '-' : '+',
                  tv_type_name(&v));
    }
    case N_BIN: {
        enter(c, n);
        tv a = eval(c, n->a, f);
        tv b = eval(c, n->b, f);
        c->depth--;
        return tpl_binop(c, n, n->op, &a, &b);
    }
    case N_AND: case N_OR: {
        enter(c, n);
        tv a = eval(c, n->a, f);
        int t = tv_truthy(&a);
        tv r = (n->kind == N_AND ? !t : t) ? a : eval(c, n->b, f);
        c->depth--;
        return r;
    }
    case N_CONCAT: {
        enter(c, n);
        tsb b;
        tsb_init(&b, c->ar, c->o->max_output);
        for (int i = 0; i < n->nv; i++) {
            tv v = eval(c, n->v[i], f);
            tv s = tpl_to_str(c, n->v[i], &v);
            tsb_put(&b, s.u.s.p, s.u.s.n);
        }
        c->depth--;
        return tv_str(b.p ? b.p : "", b.n);
    }
    case N_CMP: {
        enter(c, n);
        tv left = eval(c, n->a, f);
        int r = 1;
        for (int i = 0; i < n->nv && r; i++) {
            tv right = eval(c, n->v[i], f);
            r = compare(c, n, n->ops[i], &left, &right);
            left = right;
        }
        c->depth--;
        return tv_bool(r);
    }
    case N_COND: {
        enter(c, n);
        tv t = eval(c, n->a, f);
        tv r;
        if (tv_truthy(&t)) r = eval(c, n->b, f);
        else if (n->c) r = eval(c, n->c, f);
        else {
            char *h = tpl_alloc(c->ar, 120);
            snprintf(h, 120, "the inline if-expression on line %d evaluated to false and no else section was defined.",
                     n->line);
            r = tv_undef_hint(c->ar, h, 0);
        }
        c->depth--;
        return r;
    }
    default:
        tpl_rfail(c, n, CLENS_E_UNSUPPORTED, "unsupported expression");
    }
}

/* ------------------------------------------------------------- statements */

static void emit(rctx *c, const char *p, size_t n) { tsb_put(c->out, p, n); }

/* Python-style unpacking of v into n targets */
static tlist *unpack(rctx *c, const tnode *at, const tv *v, int n)
{
    tlist *l = tpl_iter(c, at, v);
    if ((int)l->n > n) tpl_rfail(c, at, CLENS_E_ARG, "too many values to unpack (expected %d)", n);
    if ((int)l->n < n) tpl_rfail(c, at, CLENS_E_ARG, "not enough values to unpack (expected %d, got %zu)", n, l->n);
    return l;
}

static void assign(rctx *c, const tnode *target, tv v, tframe *f)
{
    switch (target->kind) {
    case N_NAME:
        tpl_frame_set(c, f, target->name, v);
        return;
    case N_TUPLE: case N_LIST: {
        tlist *l = unpack(c, target, &v, target->nv);
        for (int i = 0; i < target->nv; i++) assign(c, target->v[i], l->v[i], f);
        return;
    }
    case N_NSREF: {
        tv *ns = frame_lookup(f, target->name);
        if (!ns || ns->t != TV_NS)
            tpl_rfail(c, target, CLENS_E_ARG, "cannot assign attribute on non-namespace object");
        tv_dict_set(c->ar, ns->u.d, tv_cstr(target->name2), v);
        return;
    }
    default:
        tpl_rfail(c, target, CLENS_E_ARG, "cannot assign to this target");
    }
}

static tv render_to_str(rctx *c, tnode *const *body, int n, tframe *f)
{
    tsb buf;
    tsb_init(&buf, c->ar, c->o->max_output);
    tsb *saved = c->out;
    c->out = &buf;
    exec_body(c, body, n, f);
    c->out = saved;
    return tv_str(buf.p ? buf.p : "", buf.n);
}

/* apply a filter chain parsed with a NULL innermost input to v */
static tv apply_filter_chain(rctx *c, const tnode *chain, tv v, tframe *f)
{
    if (!chain) return v;
    if (chain->a) v = apply_filter_chain(c, chain->a, v, f);
    if (chain->id < 0) tpl_rfail(c, chain, CLENS_E_ARG, "No filter named '%s'.", chain->name);
    targs a;
    eval_args(c, chain, f, &a);
    return tpl_filter(c, chain, chain->id, chain->name, &v, &a);
}

enum { X_NORMAL = 0, X_BREAK, X_CONTINUE };

static int exec_for(rctx *c, const tnode *n, tframe *f)
{
    tv it = eval(c, n->b, f);
    tlist *items = tpl_iter(c, n->b, &it);
    tv *sel = items->v;
    size_t cnt = items->n;
    if (n->c) { /* inline filter: evaluated with only the target bound */
        sel = tpl_alloc(c->ar, sizeof(tv) * (cnt ? cnt : 1));
        size_t k = 0;
        for (size_t i = 0; i < items->n; i++) {
            tframe *fi = frame_new(c, f);
            assign(c, n->a, items->v[i], fi);
            tv t = eval(c, n->c, fi);
            if (tv_truthy(&t)) sel[k++] = items->v[i];
        }
        cnt = k;
    }
    if (cnt == 0) {
        if (n->nw) return exec_body(c, n->w, n->nw, frame_new(c, f));
        return X_NORMAL;
    }
    tloop *lp = tpl_alloc(c->ar, sizeof(tloop));
    lp->length = cnt;
    lp->items = sel;
    /* jinja2 clears its "run the else block" flag only after a body that ran
     * to its end: if every iteration ends in continue, or the first one in
     * break, the else block runs too (jinja2/compiler.py visit_For). */
    int run_else = 1;
    for (size_t i = 0; i < cnt; i++) {
        tframe *fi = frame_new(c, f);
        tloop *li = tpl_alloc(c->ar, sizeof(tloop));
        *li = *lp;
        li->index0 = i;
        tv lv = {0};
        lv.t = TV_LOOP;
        lv.u.lp = li;
        tpl_frame_set(c, fi, "loop", lv);
        assign(c, n->a, sel[i], fi);
        int r = exec_body(c, n->v, n->nv, fi);
        *lp = *li; /* carry loop.changed() state */
        if (r == X_BREAK) break;
        if (r == X_NORMAL) run_else = 0;
    }
    if (run_else && n->nw) return exec_body(c, n->w, n->nw, frame_new(c, f));
    return X_NORMAL;
}

static int exec_stmt(rctx *c, const tnode *n, tframe *f)
{
    step(c, n);
    switch (n->kind) {
    case N_DATA:
        emit(c, n->text, n->text_len);
        return X_NORMAL;
    case N_OUTPUT: {
        tv v = eval(c, n->a, f);
        if (v.t == TV_STR) emit(c, v.u.s.p, v.u.s.n);
        else if (v.t != TV_UNDEF && tv_str_into(c->out, &v) != 0)
            tpl_rfail(c, n, CLENS_E_UNSUPPORTED, "cannot print a %s object (Python prints its address, "
                      "or it is nested too deeply)", tv_type_name(&v));
        return X_NORMAL;
    }
    case N_IF: {
        const tnode *node = n;
        for (;;) {
            int t = 1;
            if (node->a) {
                tv v = eval(c, node->a, f);
                t = tv_truthy(&v);
            }
            if (t) return exec_body(c, node->v, node->nv, f);
            if (node->nw == 1 && node->w[0]->kind == N_IF && node->w[0]->flags == 1) { /* elif */
                node = node->w[0];
                continue;
            }
            return exec_body(c, node->w, node->nw, f);
        }
    }
    case N_FOR: return exec_for(c, n, f);
    case N_SET:
        assign(c, n->a, eval(c, n->b, f), f);
        return X_NORMAL;
    case N_SETBLOCK: {
        tv s = render_to_str(c, n->v, n->nv, frame_new(c, f));
        assign(c, n->a, apply_filter_chain(c, n->b, s, f), f);
        return X_NORMAL;
    }
    case N_MACRO: {
        tmacro *m = tpl_alloc(c->ar, sizeof(tmacro));
        m->def = n;
        m->closure = f;
        m->name = n->name;
        tv v = {0};
        v.t = TV_MACRO;
        v.u.m = m;
        tpl_frame_set(c, f, n->name, v);
        return X_NORMAL;
    }
    case N_CALLBLOCK: {
        tmacro *m = tpl_alloc(c->ar, sizeof(tmacro));
        m->def = n;
        m->closure = f;
        m->name = "caller";
        tv caller = {0};
        caller.t = TV_MACRO;
        caller.u.m = m;
        const tnode *call = n->a;
        enter(c, call);
        tv callee = eval(c, call->a, f);
        targs a;
        eval_args(c, call, f, &a);
        tv *kwv = tpl_alloc(c->ar, sizeof(tv) * (size_t)(a.nkw + 1));
        const char **kwn = tpl_alloc(c->ar, sizeof(char *) * (size_t)(a.nkw + 1));
        memcpy(kwv, a.kwv, sizeof(tv) * (size_t)a.nkw);
        memcpy(kwn, a.kwn, sizeof(char *) * (size_t)a.nkw);
        kwn[a.nkw] = "caller";
        kwv[a.nkw] = caller;
        a.kwn = kwn;
        a.kwv = kwv;
        a.nkw++;
        tv r = tpl_call(c, call, &callee, &a);
        c->depth--;
        tv s = tpl_to_str(c, n, &r);
        emit(c, s.u.s.p, s.u.s.n);
        return X_NORMAL;
    }
    case N_FILTERBLOCK: {
        tv s = render_to_str(c, n->v, n->nv, frame_new(c, f));
        tv r = apply_filter_chain(c, n->a, s, f);
        if (r.t != TV_UNDEF) {
            tv t = tpl_to_str(c, n, &r);
            emit(c, t.u.s.p, t.u.s.n);
        }
        return X_NORMAL;
    }
    case N_WITH: {
        tframe *fi = frame_new(c, f);
        for (int i = 0; i < n->nw; i++) assign(c, n->w[i], eval(c, n->x[i], f), fi);
        return exec_body(c, n->v, n->nv, fi);
    }
    case N_GENERATION: {
        int top = c->out == &c->main;
        size_t start = c->main.n;
        tv s = render_to_str(c, n->v, n->nv, frame_new(c, f));
        emit(c, s.u.s.p, s.u.s.n);
        if (top) {
            if (c->nspans == c->capspans) {
                size_t cap = c->capspans ? c->capspans * 2 : 8;
                c->spans = tpl_realloc(c->ar, c->spans, c->capspans * sizeof(tpl_span), cap * sizeof(tpl_span));
                c->capspans = cap;
            }
            c->spans[c->nspans].start = start;
            c->spans[c->nspans].end = start + s.u.s.n;
            c->nspans++;
        }
        return X_NORMAL;
    }
    case N_BREAK: return X_BREAK;
    case N_CONTINUE: return X_CONTINUE;
    default:
        tpl_rfail(c, n, CLENS_E_UNSUPPORTED, "unsupported statement");
    }
}

static int exec_body(rctx *c, tnode *const *body, int n, tframe *f)
{
    enter(c, n ? body[0] : NULL);
    for (int i = 0; i < n; i++) {
        int r = exec_stmt(c, body[i], f);
        if (r != X_NORMAL) { c->depth--; return r; }
    }
    c->depth--;
    return X_NORMAL;
}

int tpl_render(const tnode *root, tpl_arena *a, tv vars, const tpl_render_opts *o,
               char **out, size_t *out_len, tpl_span **spans, size_t *nspans, clens_error *err)
{
    rctx c;
    memset(&c, 0, sizeof c);
    c.ar = a;
    c.o = o;
    tsb_init(&c.main, a, o->max_output);
    c.out = &c.main;
    c.globals = frame_new(&c, NULL);
    tpl_install_globals(&c, c.globals);
    tframe *ctxf = frame_new(&c, c.globals);
    for (size_t i = 0; i < vars.u.d->n; i++) {
        const tv *k = &vars.u.d->keys[i];
        tpl_frame_set(&c, ctxf, tpl_strndup(a, k->u.s.p, k->u.s.n), vars.u.d->vals[i]);
    }
    tframe *top = frame_new(&c, ctxf);
    exec_body(&c, root->v, root->nv, top);
    char *res = malloc(c.main.n + 1);
    if (!res) return clens_err(err, CLENS_E_NOMEM, "chat template: out of memory");
    if (c.main.n) memcpy(res, c.main.p, c.main.n);
    res[c.main.n] = 0;
    if (spans) {
        *spans = NULL;
        *nspans = c.nspans;
        if (c.nspans) {
            *spans = malloc(c.nspans * sizeof(tpl_span));
            if (!*spans) { free(res); return clens_err(err, CLENS_E_NOMEM, "chat template: out of memory"); }
            memcpy(*spans, c.spans, c.nspans * sizeof(tpl_span));
        }
    }
    *out = res;
    *out_len = c.main.n;
    return CLENS_OK;
}
