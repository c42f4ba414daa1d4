/*
 * template_parse.c: recursive-descent parser from tokens to the AST, a
 * transcription of jinja2 3.1's Parser (jinja2/parser.py) for the subset chat
 * templates use, plus the transformers "generation" tag and the loopcontrols
 * extension (break / continue).
 *
 * Statements: if/elif/else, for (with tuple targets, inline "if" filter and
 * else), set (expression and block form, namespace attributes), macro, call,
 * filter, with, print, generation, break, continue; raw is handled by the
 * lexer. extends/include/import/block/autoescape and "recursive" loops are
 * reported as unsupported. Filters and tests are resolved here so that an
 * unknown or unsupported name is an error at load time with its position.
 */
#include "template_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct parser {
    tpl_arena *ar;
    ttok *t;
    size_t n, i;
    int depth;
    int loop_depth;
    int in_macro;
} parser;

static ttok *cur(parser *P) { return &P->t[P->i]; }
static ttok *peek(parser *P, size_t k) { return P->i + k < P->n ? &P->t[P->i + k] : &P->t[P->n - 1]; }
static ttok *next(parser *P)
{
    ttok *t = cur(P);
    if (P->i + 1 < P->n) P->i++;
    return t;
}

static const char *describe(const ttok *t, char *buf, size_t n)
{
    switch (t->type) {
    case TK_EOF: return "end of template";
    case TK_DATA: return "template data";
    case TK_VAR_BEGIN: return "begin of print statement";
    case TK_VAR_END: return "end of print statement";
    case TK_BLOCK_BEGIN: return "begin of statement block";
    case TK_BLOCK_END: return "end of statement block";
    case TK_NAME: snprintf(buf, n, "'%s'", t->p); return buf;
    case TK_OP: snprintf(buf, n, "'%s'", tpl_op_text(t->op)); return buf;
    case TK_STRING: return "string";
    case TK_INT: return "integer";
    case TK_FLOAT: return "float";
    }
    return "token";
}

_Noreturn static void pfail_at(parser *P, const ttok *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
_Noreturn static void pfail_at(parser *P, const ttok *t, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tpl_throw(P->ar, CLENS_E_FORMAT, "chat template line %d col %d: %s", t->line, t->col, msg);
}

static tnode *mk(parser *P, int kind, const ttok *at)
{
    tnode *n = tpl_alloc(P->ar, sizeof(tnode));
    n->kind = (uint8_t)kind;
    n->line = at->line;
    n->col = at->col;
    return n;
}

/* growable node list */
typedef struct nlist { tnode **v; int n, cap; } nlist;
static void nl_push(parser *P, nlist *l, tnode *x)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 4;
        l->v = tpl_realloc(P->ar, l->v, (size_t)l->cap * sizeof(tnode *), (size_t)cap * sizeof(tnode *));
        l->cap = cap;
    }
    l->v[l->n++] = x;
}
typedef struct slist { const char **v; int n, cap; } slist;
static void sl_push(parser *P, slist *l, const char *x)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 4;
        l->v = tpl_realloc(P->ar, l->v, (size_t)l->cap * sizeof(char *), (size_t)cap * sizeof(char *));
        l->cap = cap;
    }
    l->v[l->n++] = x;
}

static int is_op(parser *P, int op) { return cur(P)->type == TK_OP && cur(P)->op == op; }
static int is_name(parser *P, const char *s) { return cur(P)->type == TK_NAME && strcmp(cur(P)->p, s) == 0; }
static int skip_op(parser *P, int op)
{
    if (!is_op(P, op)) return 0;
    next(P);
    return 1;
}
static int skip_name(parser *P, const char *s)
{
    if (!is_name(P, s)) return 0;
    next(P);
    return 1;
}

static ttok *expect_op(parser *P, int op)
{
    if (!is_op(P, op)) {
        char b[64];
        pfail_at(P, cur(P), "expected token '%s', got %s", tpl_op_text(op), describe(cur(P), b, sizeof b));
    }
    return next(P);
}

static ttok *expect_type(parser *P, int type, const char *what)
{
    if (cur(P)->type != type) {
        char b[64];
        if (cur(P)->type == TK_EOF) pfail_at(P, cur(P), "unexpected end of template, expected %s", what);
        pfail_at(P, cur(P), "expected %s, got %s", what, describe(cur(P), b, sizeof b));
    }
    return next(P);
}

static void enter(parser *P)
{
    if (++P->depth > TPL_MAX_NEST) pfail_at(P, cur(P), "template nested too deeply (limit %d)", TPL_MAX_NEST);
}
static void leave(parser *P) { P->depth--; }

static tnode *parse_expression(parser *P, int with_condexpr);
static tnode *parse_tuple(parser *P, int simplified, int with_condexpr, const char *extra_end, int explicit_parens);
static tnode *parse_unary(parser *P, int with_filter);
static tnode *parse_primary(parser *P);
static tnode *parse_postfix(parser *P, tnode *node);
static tnode *parse_filter_expr(parser *P, tnode *node);
static tnode *parse_filter(parser *P, tnode *node, int start_inline);

static int is_tuple_end(parser *P, const char *extra_end)
{
    int t = cur(P)->type;
    if (t == TK_VAR_END || t == TK_BLOCK_END || (t == TK_OP && cur(P)->op == TO_RPAREN)) return 1;
    if (extra_end && is_name(P, extra_end)) return 1;
    return 0;
}

/* call arguments: ( args, name=value, *dyn, **dyn ) */
static void parse_call_args(parser *P, tnode *n)
{
    ttok *lp = expect_op(P, TO_LPAREN);
    nlist args = {0}, kwv = {0};
    slist kwn = {0};
    int require_comma = 0;
    while (!is_op(P, TO_RPAREN)) {
        if (require_comma) {
            expect_op(P, TO_COMMA);
            if (is_op(P, TO_RPAREN)) break;
        }
        if (is_op(P, TO_MUL)) {
            if (n->c || n->d) pfail_at(P, lp, "invalid syntax for function call expression");
            next(P);
            n->c = parse_expression(P, 1);
        } else if (is_op(P, TO_POW)) {
            if (n->d) pfail_at(P, lp, "invalid syntax for function call expression");
            next(P);
            n->d = parse_expression(P, 1);
        } else if (cur(P)->type == TK_NAME && peek(P, 1)->type == TK_OP && peek(P, 1)->op == TO_ASSIGN) {
            if (n->d) pfail_at(P, lp, "invalid syntax for function call expression");
            const char *key = next(P)->p;
            next(P);
            sl_push(P, &kwn, key);
            nl_push(P, &kwv, parse_expression(P, 1));
        } else {
            if (n->c || n->d || kwn.n) pfail_at(P, lp, "invalid syntax for function call expression");
            nl_push(P, &args, parse_expression(P, 1));
        }
        require_comma = 1;
    }
    expect_op(P, TO_RPAREN);
    n->v = args.v; n->nv = args.n;
    n->w = kwv.v; n->nw = kwv.n;
    n->names = kwn.v; n->nnames = kwn.n;
}

static tnode *parse_call(parser *P, tnode *callee)
{
    tnode *n = mk(P, N_CALL, cur(P));
    n->a = callee;
    parse_call_args(P, n);
    return n;
}

static tnode *parse_subscribed(parser *P)
{
    ttok *at = cur(P);
    tnode *args[3] = {NULL, NULL, NULL};
    if (is_op(P, TO_COLON)) {
        next(P);
    } else {
        tnode *e = parse_expression(P, 1);
        if (!is_op(P, TO_COLON)) return e;
        next(P);
        args[0] = e;
    }
    if (!is_op(P, TO_COLON) && !is_op(P, TO_RBRACKET) && !is_op(P, TO_COMMA)) args[1] = parse_expression(P, 1);
    if (is_op(P, TO_COLON)) {
        next(P);
        if (!is_op(P, TO_RBRACKET) && !is_op(P, TO_COMMA)) args[2] = parse_expression(P, 1);
    }
    tnode *s = mk(P, N_SLICE, at);
    s->a = args[0]; s->b = args[1]; s->c = args[2];
    return s;
}

static tnode *parse_subscript(parser *P, tnode *node)
{
    ttok *tok = next(P);
    if (tok->type == TK_OP && tok->op == TO_DOT) {
        ttok *attr = next(P);
        if (attr->type == TK_NAME) {
            tnode *g = mk(P, N_GETATTR, tok);
            g->a = node;
            g->name = attr->p;
            return g;
        }
        if (attr->type != TK_INT) pfail_at(P, attr, "expected name or number");
        tnode *k = mk(P, N_CONST, attr);
        k->cval = attr->val;
        tnode *g = mk(P, N_GETITEM, tok);
        g->a = node;
        g->b = k;
        return g;
    }
    /* '[' */
    nlist args = {0};
    while (!is_op(P, TO_RBRACKET)) {
        if (args.n) expect_op(P, TO_COMMA);
        nl_push(P, &args, parse_subscribed(P));
    }
    expect_op(P, TO_RBRACKET);
    tnode *g = mk(P, N_GETITEM, tok);
    g->a = node;
    if (args.n == 1) g->b = args.v[0];
    else {
        tnode *t = mk(P, N_TUPLE, tok);
        t->v = args.v; t->nv = args.n;
        g->b = t;
    }
    return g;
}

static tnode *parse_postfix(parser *P, tnode *node)
{
    for (;;) {
        if (is_op(P, TO_DOT) || is_op(P, TO_LBRACKET)) node = parse_subscript(P, node);
        else if (is_op(P, TO_LPAREN)) node = parse_call(P, node);
        else break;
    }
    return node;
}

static const char *dotted_name(parser *P)
{
    ttok *t = expect_type(P, TK_NAME, "name");
    const char *name = t->p;
    while (is_op(P, TO_DOT)) {
        next(P);
        ttok *u = expect_type(P, TK_NAME, "name");
        size_t a = strlen(name), b = strlen(u->p);
        char *s = tpl_alloc(P->ar, a + b + 2);
        memcpy(s, name, a);
        s[a] = '.';
        memcpy(s + a + 1, u->p, b + 1);
        name = s;
    }
    return name;
}

static tnode *parse_filter(parser *P, tnode *node, int start_inline)
{
    while (is_op(P, TO_PIPE) || start_inline) {
        if (!start_inline) next(P);
        ttok *at = cur(P);
        const char *name = dotted_name(P);
        int id = tpl_filter_id(name); /* unknown names are checked by validate() */
        tnode *f = mk(P, N_FILTER, at);
        f->a = node;
        f->name = name;
        f->id = id;
        if (is_op(P, TO_LPAREN)) parse_call_args(P, f);
        node = f;
        start_inline = 0;
    }
    return node;
}

static tnode *parse_test(parser *P, tnode *node)
{
    ttok *is = next(P);
    int negated = skip_name(P, "not");
    ttok *at = cur(P);
    const char *name = dotted_name(P);
    int id = tpl_test_id(name); /* unknown names are checked by validate() */
    (void)at;
    tnode *t = mk(P, N_TEST, is);
    t->a = node;
    t->name = name;
    t->id = id;
    int ct = cur(P)->type;
    if (is_op(P, TO_LPAREN)) {
        parse_call_args(P, t);
    } else if ((ct == TK_NAME || ct == TK_STRING || ct == TK_INT || ct == TK_FLOAT || is_op(P, TO_LPAREN) ||
                is_op(P, TO_LBRACKET) || is_op(P, TO_LBRACE)) &&
               !is_name(P, "else") && !is_name(P, "or") && !is_name(P, "and")) {
        if (is_name(P, "is")) pfail_at(P, cur(P), "You cannot chain multiple tests with is");
        tnode *arg = parse_primary(P);
        arg = parse_postfix(P, arg);
        t->v = tpl_alloc(P->ar, sizeof(tnode *));
        t->v[0] = arg;
        t->nv = 1;
    }
    if (negated) {
        tnode *n = mk(P, N_NOT, is);
        n->a = t;
        return n;
    }
    return t;
}

static tnode *parse_filter_expr(parser *P, tnode *node)
{
    for (;;) {
        if (is_op(P, TO_PIPE)) node = parse_filter(P, node, 0);
        else if (is_name(P, "is")) node = parse_test(P, node);
        else if (is_op(P, TO_LPAREN)) node = parse_call(P, node);
        else break;
    }
    return node;
}

static tnode *parse_list(parser *P)
{
    ttok *at = expect_op(P, TO_LBRACKET);
    nlist items = {0};
    while (!is_op(P, TO_RBRACKET)) {
        if (items.n) expect_op(P, TO_COMMA);
        if (is_op(P, TO_RBRACKET)) break;
        nl_push(P, &items, parse_expression(P, 1));
    }
    expect_op(P, TO_RBRACKET);
    tnode *l = mk(P, N_LIST, at);
    l->v = items.v; l->nv = items.n;
    return l;
}

static tnode *parse_dict(parser *P)
{
    ttok *at = expect_op(P, TO_LBRACE);
    nlist keys = {0}, vals = {0};
    while (!is_op(P, TO_RBRACE)) {
        if (keys.n) expect_op(P, TO_COMMA);
        if (is_op(P, TO_RBRACE)) break;
        nl_push(P, &keys, parse_expression(P, 1));
        expect_op(P, TO_COLON);
        nl_push(P, &vals, parse_expression(P, 1));
    }
    expect_op(P, TO_RBRACE);
    tnode *d = mk(P, N_DICT, at);
    d->v = keys.v; d->nv = keys.n;
    d->w = vals.v; d->nw = vals.n;
    return d;
}

static tnode *parse_primary(parser *P)
{
    ttok *t = cur(P);
    tnode *node;
    enter(P);
    if (t->type == TK_NAME) {
        const char *s = t->p;
        if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "false") || !strcmp(s, "False")) {
            node = mk(P, N_CONST, t);
            node->cval = tv_bool(s[0] == 't' || s[0] == 'T');
        } else if (!strcmp(s, "none") || !strcmp(s, "None")) {
            node = mk(P, N_CONST, t);
            node->cval = tv_none();
        } else {
            node = mk(P, N_NAME, t);
            node->name = s;
        }
        next(P);
    } else if (t->type == TK_STRING) {
        next(P);
        node = mk(P, N_CONST, t);
        if (cur(P)->type == TK_STRING) { /* adjacent literals concatenate */
            tsb b;
            tsb_init(&b, P->ar, 0);
            tsb_put(&b, t->val.u.s.p, t->val.u.s.n);
            while (cur(P)->type == TK_STRING) {
                ttok *u = next(P);
                tsb_put(&b, u->val.u.s.p, u->val.u.s.n);
            }
            node->cval = tv_str(b.p ? b.p : "", b.n);
        } else node->cval = t->val;
    } else if (t->type == TK_INT || t->type == TK_FLOAT) {
        next(P);
        node = mk(P, N_CONST, t);
        node->cval = t->val;
    } else if (is_op(P, TO_LPAREN)) {
        next(P);
        node = parse_tuple(P, 0, 1, NULL, 1);
        expect_op(P, TO_RPAREN);
    } else if (is_op(P, TO_LBRACKET)) {
        node = parse_list(P);
    } else if (is_op(P, TO_LBRACE)) {
        node = parse_dict(P);
    } else {
        char b[64];
        if (t->type == TK_EOF) pfail_at(P, t, "unexpected end of template");
        pfail_at(P, t, "unexpected %s", describe(t, b, sizeof b));
    }
    leave(P);
    return node;
}

static tnode *parse_unary(parser *P, int with_filter)
{
    ttok *at = cur(P);
    tnode *node;
    enter(P);
    if (is_op(P, TO_SUB) || is_op(P, TO_ADD)) {
        int neg = cur(P)->op == TO_SUB;
        next(P);
        node = mk(P, neg ? N_NEG : N_POS, at);
        node->a = parse_unary(P, 0);
    } else node = parse_primary(P);
    node = parse_postfix(P, node);
    if (with_filter) node = parse_filter_expr(P, node);
    leave(P);
    return node;
}

static tnode *bin(parser *P, const ttok *at, int op, tnode *a, tnode *b)
{
    tnode *n = mk(P, N_BIN, at);
    n->op = (uint8_t)op;
    n->a = a;
    n->b = b;
    return n;
}

static tnode *parse_pow(parser *P)
{
    tnode *left = parse_unary(P, 1);
    while (is_op(P, TO_POW)) {
        ttok *at = next(P);
        left = bin(P, at, OP_POW, left, parse_unary(P, 1));
    }
    return left;
}

static tnode *parse_math2(parser *P)
{
    tnode *left = parse_pow(P);
    for (;;) {
        int op = is_op(P, TO_MUL) ? OP_MUL : is_op(P, TO_DIV) ? OP_DIV : is_op(P, TO_FLOORDIV) ? OP_FLOORDIV
               : is_op(P, TO_MOD) ? OP_MOD : 0;
        if (!op) break;
        ttok *at = next(P);
        left = bin(P, at, op, left, parse_pow(P));
    }
    return left;
}

static tnode *parse_concat(parser *P)
{
    ttok *at = cur(P);
    tnode *first = parse_math2(P);
    if (!is_op(P, TO_TILDE)) return first;
    nlist args = {0};
    nl_push(P, &args, first);
    while (is_op(P, TO_TILDE)) {
        next(P);
        nl_push(P, &args, parse_math2(P));
    }
    tnode *c = mk(P, N_CONCAT, at);
    c->v = args.v; c->nv = args.n;
    return c;
}

static tnode *parse_math1(parser *P)
{
    tnode *left = parse_concat(P);
    while (is_op(P, TO_ADD) || is_op(P, TO_SUB)) {
        int op = cur(P)->op == TO_ADD ? OP_ADD : OP_SUB;
        ttok *at = next(P);
        left = bin(P, at, op, left, parse_concat(P));
    }
    return left;
}

static tnode *parse_compare(parser *P)
{
    ttok *at = cur(P);
    tnode *expr = parse_math1(P);
    nlist ops = {0};
    uint8_t opc[64];
    uint8_t *opv = opc;
    int cap = 64;
    for (;;) {
        int op = 0;
        if (is_op(P, TO_EQ)) op = OP_EQ;
        else if (is_op(P, TO_NE)) op = OP_NE;
        else if (is_op(P, TO_LT)) op = OP_LT;
        else if (is_op(P, TO_LE)) op = OP_LE;
        else if (is_op(P, TO_GT)) op = OP_GT;
        else if (is_op(P, TO_GE)) op = OP_GE;
        if (op) next(P);
        else if (skip_name(P, "in")) op = OP_IN;
        else if (is_name(P, "not") && peek(P, 1)->type == TK_NAME && !strcmp(peek(P, 1)->p, "in")) {
            next(P);
            next(P);
            op = OP_NOTIN;
        } else break;
        if (ops.n == cap) {
            uint8_t *nv = tpl_alloc(P->ar, (size_t)cap * 2);
            memcpy(nv, opv, (size_t)cap);
            opv = nv;
            cap *= 2;
        }
        opv[ops.n] = (uint8_t)op;
        nl_push(P, &ops, parse_math1(P));
    }
    if (!ops.n) return expr;
    tnode *c = mk(P, N_CMP, at);
    c->a = expr;
    c->v = ops.v; c->nv = ops.n;
    c->ops = tpl_alloc(P->ar, (size_t)ops.n);
    memcpy(c->ops, opv, (size_t)ops.n);
    return c;
}

static tnode *parse_not(parser *P)
{
    if (is_name(P, "not")) {
        ttok *at = next(P);
        enter(P);
        tnode *n = mk(P, N_NOT, at);
        n->a = parse_not(P);
        leave(P);
        return n;
    }
    return parse_compare(P);
}

static tnode *parse_and(parser *P)
{
    tnode *left = parse_not(P);
    while (is_name(P, "and")) {
        ttok *at = next(P);
        tnode *n = mk(P, N_AND, at);
        n->a = left;
        n->b = parse_not(P);
        left = n;
    }
    return left;
}

static tnode *parse_or(parser *P)
{
    tnode *left = parse_and(P);
    while (is_name(P, "or")) {
        ttok *at = next(P);
        tnode *n = mk(P, N_OR, at);
        n->a = left;
        n->b = parse_and(P);
        left = n;
    }
    return left;
}

static tnode *parse_condexpr(parser *P)
{
    enter(P);
    tnode *expr1 = parse_or(P);
    while (is_name(P, "if")) {
        ttok *at = next(P);
        tnode *expr2 = parse_or(P);
        tnode *expr3 = NULL;
        if (skip_name(P, "else")) expr3 = parse_condexpr(P);
        tnode *c = mk(P, N_COND, at);
        c->a = expr2;
        c->b = expr1;
        c->c = expr3;
        expr1 = c;
    }
    leave(P);
    return expr1;
}

static tnode *parse_expression(parser *P, int with_condexpr)
{
    return with_condexpr ? parse_condexpr(P) : parse_or(P);
}

static tnode *parse_tuple(parser *P, int simplified, int with_condexpr, const char *extra_end, int explicit_parens)
{
    ttok *at = cur(P);
    nlist args = {0};
    int is_tuple = 0;
    for (;;) {
        if (args.n) expect_op(P, TO_COMMA);
        if (is_tuple_end(P, extra_end)) break;
        tnode *e = simplified ? parse_primary(P) : parse_expression(P, with_condexpr);
        nl_push(P, &args, e);
        if (is_op(P, TO_COMMA)) is_tuple = 1;
        else break;
    }
    if (!is_tuple) {
        if (args.n) return args.v[0];
        if (!explicit_parens) {
            char b[64];
            pfail_at(P, cur(P), "Expected an expression, got %s", describe(cur(P), b, sizeof b));
        }
    }
    tnode *t = mk(P, N_TUPLE, at);
    t->v = args.v; t->nv = args.n;
    return t;
}

/* ------------------------------------------------------------- statements */

static int can_assign(const tnode *t)
{
    if (t->kind == N_NAME) {
        const char *s = t->name;
        return strcmp(s, "true") && strcmp(s, "false") && strcmp(s, "none") && strcmp(s, "True") &&
               strcmp(s, "False") && strcmp(s, "None");
    }
    if (t->kind == N_TUPLE || t->kind == N_LIST) {
        for (int i = 0; i < t->nv; i++)
            if (!can_assign(t->v[i])) return 0;
        return 1;
    }
    return t->kind == N_NSREF;
}

static tnode *parse_assign_target(parser *P, int with_tuple, int name_only, const char *extra_end, int with_ns)
{
    ttok *at = cur(P);
    tnode *target;
    if (with_ns && cur(P)->type == TK_NAME && peek(P, 1)->type == TK_OP && peek(P, 1)->op == TO_DOT) {
        ttok *nm = next(P);
        next(P);
        ttok *attr = expect_type(P, TK_NAME, "name");
        target = mk(P, N_NSREF, nm);
        target->name = nm->p;
        target->name2 = attr->p;
    } else if (name_only) {
        ttok *nm = expect_type(P, TK_NAME, "name");
        target = mk(P, N_NAME, nm);
        target->name = nm->p;
    } else if (with_tuple) {
        target = parse_tuple(P, 1, 1, extra_end, 0);
    } else {
        target = parse_primary(P);
    }
    if (!can_assign(target)) {
        const char *k = target->kind == N_CONST ? "const" : target->kind == N_TUPLE ? "tuple" : "expression";
        pfail_at(P, at, "can't assign to '%s'", k);
    }
    return target;
}

static tnode **subparse(parser *P, const char *const *end_tokens, int *nout);

/* parse_statements: optional ':', block_end, body up to one of end_tokens. */
static tnode **parse_statements(parser *P, const char *const *end_tokens, int drop_needle, int *nout)
{
    skip_op(P, TO_COLON);
    expect_type(P, TK_BLOCK_END, "end of statement block");
    tnode **body = subparse(P, end_tokens, nout);
    if (cur(P)->type == TK_EOF) {
        char want[200] = "";
        for (int i = 0; end_tokens[i]; i++) {
            if (i) strncat(want, " or ", sizeof want - strlen(want) - 1);
            strncat(want, "'", sizeof want - strlen(want) - 1);
            strncat(want, end_tokens[i], sizeof want - strlen(want) - 1);
            strncat(want, "'", sizeof want - strlen(want) - 1);
        }
        pfail_at(P, cur(P), "unexpected end of template, expected %s", want);
    }
    if (drop_needle) next(P);
    return body;
}

static void parse_signature(parser *P, tnode *n)
{
    slist names = {0};
    nlist defs = {0};
    int seen_default = 0;
    expect_op(P, TO_LPAREN);
    while (!is_op(P, TO_RPAREN)) {
        if (names.n) expect_op(P, TO_COMMA);
        tnode *arg = parse_assign_target(P, 0, 1, NULL, 0);
        tnode *d = NULL;
        if (skip_op(P, TO_ASSIGN)) {
            d = parse_expression(P, 1);
            seen_default = 1;
        } else if (seen_default) pfail_at(P, cur(P), "non-default argument follows default argument");
        sl_push(P, &names, arg->name);
        nl_push(P, &defs, d);
    }
    expect_op(P, TO_RPAREN);
    n->names = names.v; n->nnames = names.n;
    n->w = defs.v; n->nw = defs.n;
}

/* Marks which of varargs / kwargs / caller a macro body reads. */
static void scan_names(tnode *n, uint16_t *flags, int top)
{
    if (!n) return;
    if (n->kind == N_MACRO && !top) return;
    if (n->kind == N_NAME) {
        if (!strcmp(n->name, "varargs")) *flags |= MF_VARARGS;
        else if (!strcmp(n->name, "kwargs")) *flags |= MF_KWARGS;
        else if (!strcmp(n->name, "caller")) *flags |= MF_CALLER;
    }
    scan_names(n->a, flags, 0);
    scan_names(n->b, flags, 0);
    scan_names(n->c, flags, 0);
    scan_names(n->d, flags, 0);
    for (int i = 0; i < n->nv; i++) scan_names(n->v[i], flags, 0);
    for (int i = 0; i < n->nw; i++) scan_names(n->w[i], flags, 0);
    for (int i = 0; i < n->nx; i++) scan_names(n->x[i], flags, 0);
}

static tnode *parse_statement(parser *P)
{
    ttok *tag = cur(P);
    if (tag->type != TK_NAME) pfail_at(P, tag, "tag name expected");
    const char *s = tag->p;
    enter(P);
    tnode *n = NULL;
    if (!strcmp(s, "if")) {
        next(P);
        n = mk(P, N_IF, tag);
        tnode *node = n;
        static const char *const ends[] = {"elif", "else", "endif", NULL};
        static const char *const endif[] = {"endif", NULL};
        for (;;) {
            node->a = parse_tuple(P, 0, 0, NULL, 0);
            node->v = parse_statements(P, ends, 0, &node->nv);
            ttok *t = next(P);
            if (!strcmp(t->p, "elif")) {
                tnode *e = mk(P, N_IF, cur(P));
                e->flags = 1; /* elif */
                node->w = tpl_alloc(P->ar, sizeof(tnode *));
                node->w[0] = e;
                node->nw = 1;
                node = e;
                continue;
            }
            if (!strcmp(t->p, "else")) node->w = parse_statements(P, endif, 1, &node->nw);
            break;
        }
    } else if (!strcmp(s, "for")) {
        next(P);
        n = mk(P, N_FOR, tag);
        n->a = parse_assign_target(P, 1, 0, "in", 0);
        if (!skip_name(P, "in")) {
            char b[64];
            pfail_at(P, cur(P), "expected 'in', got %s", describe(cur(P), b, sizeof b));
        }
        n->b = parse_tuple(P, 0, 0, "recursive", 0);
        if (skip_name(P, "if")) n->c = parse_expression(P, 1);
        if (is_name(P, "recursive")) pfail_at(P, cur(P), "recursive for loops are not supported by clens");
        static const char *const ends[] = {"endfor", "else", NULL};
        static const char *const endfor[] = {"endfor", NULL};
        P->loop_depth++;
        n->v = parse_statements(P, ends, 0, &n->nv);
        P->loop_depth--;
        ttok *t = next(P);
        if (!strcmp(t->p, "else")) n->w = parse_statements(P, endfor, 1, &n->nw);
    } else if (!strcmp(s, "set")) {
        next(P);
        tnode *target = parse_assign_target(P, 1, 0, NULL, 1);
        if (skip_op(P, TO_ASSIGN)) {
            n = mk(P, N_SET, tag);
            n->a = target;
            n->b = parse_tuple(P, 0, 1, NULL, 0);
        } else {
            static const char *const ends[] = {"endset", NULL};
            n = mk(P, N_SETBLOCK, tag);
            n->a = target;
            n->b = is_op(P, TO_PIPE) ? parse_filter(P, NULL, 0) : NULL;
            n->v = parse_statements(P, ends, 1, &n->nv);
        }
    } else if (!strcmp(s, "macro")) {
        next(P);
        n = mk(P, N_MACRO, tag);
        n->name = parse_assign_target(P, 0, 1, NULL, 0)->name;
        parse_signature(P, n);
        static const char *const ends[] = {"endmacro", NULL};
        int saved = P->loop_depth;
        P->loop_depth = 0;
        n->v = parse_statements(P, ends, 1, &n->nv);
        P->loop_depth = saved;
        scan_names(n, &n->flags, 1);
    } else if (!strcmp(s, "call")) {
        next(P);
        n = mk(P, N_CALLBLOCK, tag);
        n->name = "caller";
        if (is_op(P, TO_LPAREN)) parse_signature(P, n);
        ttok *at = cur(P);
        n->a = parse_expression(P, 1);
        if (n->a->kind != N_CALL) pfail_at(P, at, "expected call");
        static const char *const ends[] = {"endcall", NULL};
        int saved = P->loop_depth;
        P->loop_depth = 0;
        n->v = parse_statements(P, ends, 1, &n->nv);
        P->loop_depth = saved;
        /* the caller body's own varargs / kwargs use */
        uint16_t fl = 0;
        for (int i = 0; i < n->nv; i++) scan_names(n->v[i], &fl, 0);
        n->flags = fl & (MF_VARARGS | MF_KWARGS);
    } else if (!strcmp(s, "filter")) {
        next(P);
        n = mk(P, N_FILTERBLOCK, tag);
        n->a = parse_filter(P, NULL, 1);
        static const char *const ends[] = {"endfilter", NULL};
        n->v = parse_statements(P, ends, 1, &n->nv);
    } else if (!strcmp(s, "with")) {
        next(P);
        n = mk(P, N_WITH, tag);
        nlist targets = {0}, values = {0};
        while (cur(P)->type != TK_BLOCK_END) {
            if (targets.n) expect_op(P, TO_COMMA);
            nl_push(P, &targets, parse_assign_target(P, 1, 0, NULL, 0));
            expect_op(P, TO_ASSIGN);
            nl_push(P, &values, parse_expression(P, 1));
        }
        n->w = targets.v; n->nw = targets.n;
        n->x = values.v; n->nx = values.n;
        static const char *const ends[] = {"endwith", NULL};
        n->v = parse_statements(P, ends, 1, &n->nv);
    } else if (!strcmp(s, "print")) {
        next(P);
        nlist items = {0};
        while (cur(P)->type != TK_BLOCK_END) {
            if (items.n) expect_op(P, TO_COMMA);
            nl_push(P, &items, parse_expression(P, 1));
        }
        /* a list of outputs wrapped in an always-true if without test */
        n = mk(P, N_IF, tag);
        n->a = NULL;
        n->flags = 2;
        n->v = tpl_alloc(P->ar, sizeof(tnode *) * (size_t)(items.n ? items.n : 1));
        for (int i = 0; i < items.n; i++) {
            tnode *o = mk(P, N_OUTPUT, tag);
            o->a = items.v[i];
            n->v[i] = o;
        }
        n->nv = items.n;
    } else if (!strcmp(s, "generation")) {
        next(P);
        n = mk(P, N_GENERATION, tag);
        static const char *const ends[] = {"endgeneration", NULL};
        int saved = P->loop_depth;
        n->v = parse_statements(P, ends, 1, &n->nv);
        P->loop_depth = saved;
    } else if (!strcmp(s, "break") || !strcmp(s, "continue")) {
        next(P);
        if (P->loop_depth == 0) pfail_at(P, tag, "'%s' outside of a loop", s);
        n = mk(P, s[0] == 'b' ? N_BREAK : N_CONTINUE, tag);
    } else if (!strcmp(s, "block") || !strcmp(s, "extends") || !strcmp(s, "include") || !strcmp(s, "import") ||
               !strcmp(s, "from") || !strcmp(s, "autoescape") || !strcmp(s, "do") || !strcmp(s, "trans")) {
        pfail_at(P, tag, "the '%s' tag is not supported by clens", s);
    } else {
        pfail_at(P, tag, "Encountered unknown tag '%s'", s);
    }
    leave(P);
    return n;
}

static int in_list(const char *s, const char *const *l)
{
    for (int i = 0; l && l[i]; i++)
        if (!strcmp(s, l[i])) return 1;
    return 0;
}

static tnode **subparse(parser *P, const char *const *end_tokens, int *nout)
{
    nlist body = {0};
    for (;;) {
        ttok *t = cur(P);
        if (t->type == TK_EOF) break;
        if (t->type == TK_DATA) {
            tnode *d = mk(P, N_DATA, t);
            d->text = t->val.u.s.p;
            d->text_len = t->val.u.s.n;
            nl_push(P, &body, d);
            next(P);
        } else if (t->type == TK_VAR_BEGIN) {
            next(P);
            tnode *o = mk(P, N_OUTPUT, t);
            o->a = parse_tuple(P, 0, 1, NULL, 0);
            expect_type(P, TK_VAR_END, "end of print statement");
            nl_push(P, &body, o);
        } else if (t->type == TK_BLOCK_BEGIN) {
            next(P);
            if (end_tokens && cur(P)->type == TK_NAME && in_list(cur(P)->p, end_tokens)) {
                *nout = body.n;
                return body.v;
            }
            if (cur(P)->type == TK_NAME && !end_tokens && strncmp(cur(P)->p, "end", 3) == 0)
                pfail_at(P, cur(P), "Encountered unknown tag '%s'", cur(P)->p);
            if (cur(P)->type == TK_NAME && end_tokens &&
                (!strcmp(cur(P)->p, "else") || !strcmp(cur(P)->p, "elif") || !strncmp(cur(P)->p, "end", 3))) {
                char want[160] = "";
                for (int i = 0; end_tokens[i]; i++) {
                    if (i) strncat(want, " or ", sizeof want - strlen(want) - 1);
                    strncat(want, "'", sizeof want - strlen(want) - 1);
                    strncat(want, end_tokens[i], sizeof want - strlen(want) - 1);
                    strncat(want, "'", sizeof want - strlen(want) - 1);
                }
                pfail_at(P, cur(P), "Encountered unknown tag '%s'. Jinja was looking for: %s", cur(P)->p, want);
            }
            nl_push(P, &body, parse_statement(P));
            expect_type(P, TK_BLOCK_END, "end of statement block");
        } else {
            char b[64];
            pfail_at(P, t, "unexpected %s", describe(t, b, sizeof b));
        }
    }
    *nout = body.n;
    return body.v;
}

/* Unknown filter and test names: jinja2 fails at compile time unless the
 * filter sits in an if statement (test, body, elif, else) or an inline
 * if-expression ("soft" frames, jinja2/compiler.py Frame.soft), where it
 * only fails when executed. Loop, macro, call, with, set-block, filter-block
 * and generation bodies start a new, non-soft frame. */
static void validate(parser *P, const tnode *n, int soft, int depth)
{
    if (!n) return;
    if (depth > 4 * TPL_MAX_NEST) pfail_at(P, &P->t[0], "template nested too deeply");
    int inner = soft;
    switch (n->kind) {
    case N_FILTER: case N_TEST:
        if (n->id < 0 && !soft) {
            ttok at = {0};
            at.line = n->line;
            at.col = n->col;
            const char *what = n->kind == N_FILTER ? "filter" : "test";
            if (n->id == -2) pfail_at(P, &at, "%s '%s' is not supported by clens", what, n->name);
            pfail_at(P, &at, "no %s named '%s'", what, n->name);
        }
        break;
    case N_IF:
        if (n->flags != 2) inner = 1;
        validate(P, n->a, inner, depth + 1);
        for (int i = 0; i < n->nv; i++) validate(P, n->v[i], inner, depth + 1);
        for (int i = 0; i < n->nw; i++) validate(P, n->w[i], inner, depth + 1);
        return;
    case N_COND:
        inner = 1;
        break;
    case N_FOR:
        validate(P, n->a, soft, depth + 1);
        validate(P, n->b, soft, depth + 1);
        validate(P, n->c, 0, depth + 1);
        for (int i = 0; i < n->nv; i++) validate(P, n->v[i], 0, depth + 1);
        for (int i = 0; i < n->nw; i++) validate(P, n->w[i], soft, depth + 1);
        return;
    case N_SETBLOCK: case N_MACRO: case N_FILTERBLOCK: case N_GENERATION:
        validate(P, n->a, n->kind == N_SETBLOCK ? soft : 0, depth + 1);
        validate(P, n->b, 0, depth + 1);
        for (int i = 0; i < n->nv; i++) validate(P, n->v[i], 0, depth + 1);
        for (int i = 0; i < n->nw; i++) validate(P, n->w[i], 0, depth + 1);
        return;
    case N_CALLBLOCK:
        validate(P, n->a, soft, depth + 1);
        for (int i = 0; i < n->nv; i++) validate(P, n->v[i], 0, depth + 1);
        for (int i = 0; i < n->nw; i++) validate(P, n->w[i], 0, depth + 1);
        return;
    case N_WITH:
        for (int i = 0; i < n->nx; i++) validate(P, n->x[i], soft, depth + 1);
        for (int i = 0; i < n->nv; i++) validate(P, n->v[i], 0, depth + 1);
        return;
    default:
        break;
    }
    validate(P, n->a, inner, depth + 1);
    validate(P, n->b, inner, depth + 1);
    validate(P, n->c, inner, depth + 1);
    validate(P, n->d, inner, depth + 1);
    for (int i = 0; i < n->nv; i++) validate(P, n->v[i], inner, depth + 1);
    for (int i = 0; i < n->nw; i++) validate(P, n->w[i], inner, depth + 1);
    for (int i = 0; i < n->nx; i++) validate(P, n->x[i], inner, depth + 1);
}

tnode *tpl_parse(tpl_arena *a, const char *src, size_t n)
{
    parser P;
    memset(&P, 0, sizeof P);
    P.ar = a;
    tpl_lex(a, src, n, &P.t, &P.n);
    ttok *first = &P.t[0];
    tnode *root = mk(&P, N_IF, first); /* template body: an if without test */
    root->flags = 2;
    root->v = subparse(&P, NULL, &root->nv);
    if (cur(&P)->type != TK_EOF) pfail_at(&P, cur(&P), "unexpected token after template end");
    validate(&P, root, 0, 0);
    return root;
}
