/*
 * template_internal.h: internals of the chat-template engine, a Jinja2-subset
 * interpreter written for clens (there is no C Jinja library we could use).
 *
 * Pipeline: template_lex.c turns the source into tokens exactly as jinja2's
 * lexer does with trim_blocks=True, lstrip_blocks=True (the settings
 * transformers uses); template_parse.c builds an AST whose nodes carry
 * line/column positions; template_eval.c walks the AST; template_value.c has
 * the Python-like values (str/repr, equality, ordering, JSON in and out) and
 * template_builtins.c the filters, tests, methods and globals.
 *
 * Memory: every allocation comes from an arena (one per template for the
 * AST, one per render for values), so errors unwind with longjmp and nothing
 * leaks. The arena has a byte limit; exceeding it is an error, not a crash.
 */
#ifndef CLENS_TEMPLATE_INTERNAL_H
#define CLENS_TEMPLATE_INTERNAL_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* ------------------------------------------------------------------ arena */

typedef struct tpl_chunk tpl_chunk;

typedef struct tpl_arena {
    tpl_chunk *head;
    size_t total;        /* bytes obtained from malloc so far */
    size_t limit;        /* error when total would exceed it */
    jmp_buf *jb;         /* where errors unwind to */
    clens_error *err;    /* filled before the longjmp */
} tpl_arena;

void tpl_arena_init(tpl_arena *a, size_t limit, jmp_buf *jb, clens_error *err);
void tpl_arena_free(tpl_arena *a);
void *tpl_alloc(tpl_arena *a, size_t n);           /* zeroed, 16-aligned */
void *tpl_realloc(tpl_arena *a, void *p, size_t old, size_t n);
char *tpl_strndup(tpl_arena *a, const char *s, size_t n); /* NUL-terminated copy */
/* Fills a->err with code and message, then longjmps to a->jb. */
_Noreturn void tpl_throw(tpl_arena *a, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------ string build */

typedef struct tsb {
    tpl_arena *ar;
    char *p;
    size_t n, cap;
    size_t limit;        /* 0 = none; exceeding is an error */
} tsb;

void tsb_init(tsb *b, tpl_arena *ar, size_t limit);
void tsb_put(tsb *b, const char *s, size_t n);
void tsb_puts(tsb *b, const char *s);
void tsb_putc(tsb *b, char c);
void tsb_printf(tsb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tsb_put_cp(tsb *b, uint32_t cp); /* UTF-8 encode */

/* ------------------------------------------------------------------- UTF-8 */

/* Decodes one code point at s[0..n) (input is valid UTF-8); returns its byte
 * length and stores the code point. */
int tpl_utf8_dec(const char *s, size_t n, uint32_t *cp);
/* Byte offset of the first invalid sequence, or -1 if s is valid UTF-8. */
long tpl_utf8_check(const char *s, size_t n);
size_t tpl_utf8_count(const char *s, size_t n);
/* Python's str.isspace() set (Py_UNICODE_ISSPACE). */
int tpl_py_isspace(uint32_t cp);

/* ------------------------------------------------------------------ values */

enum {
    TV_UNDEF = 0, TV_NONE, TV_BOOL, TV_INT, TV_FLOAT, TV_STR,
    TV_LIST, TV_DICT, TV_NS, TV_MACRO, TV_FUNC, TV_LOOP, TV_OBJ
};
/* list kinds (tv.k for TV_LIST) */
enum { LK_LIST = 0, LK_TUPLE, LK_GEN, LK_ITEMS, LK_KEYS, LK_VALUES, LK_RANGE };
/* string kinds (tv.k for TV_STR): SK_MARKUP is markupsafe.Markup, made by
 * the safe / escape filters; "+" and "%" escape plain strings mixed in */
enum { SK_PLAIN = 0, SK_MARKUP = 1 };
/* object kinds (tv.k for TV_OBJ) */
enum { OK_CYCLER = 0, OK_JOINER };

typedef struct tlist tlist;
typedef struct tdict tdict;
typedef struct tundef tundef;
typedef struct tmacro tmacro;
typedef struct tfunc tfunc;
typedef struct tloop tloop;
typedef struct tobj tobj;

typedef struct tv {
    uint8_t t;   /* TV_* */
    uint8_t k;   /* kind for lists / objects */
    union {
        int64_t i;               /* TV_INT, TV_BOOL */
        double f;                /* TV_FLOAT */
        struct { const char *p; size_t n; } s; /* TV_STR: UTF-8, not NUL-terminated */
        tlist *l;                /* TV_LIST */
        tdict *d;                /* TV_DICT, TV_NS (namespace attributes) */
        tundef *u;               /* TV_UNDEF (may be NULL) */
        tmacro *m;               /* TV_MACRO */
        tfunc *fn;               /* TV_FUNC */
        tloop *lp;               /* TV_LOOP */
        tobj *o;                 /* TV_OBJ */
    } u;
} tv;

struct tlist {
    tv *v;
    size_t n, cap;
    size_t pos;          /* LK_GEN: items before pos were consumed */
    int64_t r[3];        /* LK_RANGE: start, stop, step (for printing) */
};

struct tdict {           /* insertion-ordered, Python key equality */
    tv *keys, *vals;
    size_t n, cap;
};

struct tundef {
    const char *name;    /* variable / attribute name, or NULL */
    int name_is_str;     /* 0: name is an element repr (e.g. an index) */
    const char *objtype; /* "dict object", ... or NULL for a plain name */
    const char *hint;    /* explicit message, or NULL */
    int security;        /* 1: unsafe attribute (jinja2 SecurityError) */
};

struct tnode;
struct tframe;

struct tmacro {
    const struct tnode *def;   /* N_MACRO or N_CALLBLOCK node */
    struct tframe *closure;    /* frame where it was defined */
    const char *name;          /* "caller" for call blocks */
};

struct tfunc {
    int id;        /* builtin id (template_builtins.c) */
    tv self;       /* bound object for methods */
    const char *name;
};

struct tloop {
    size_t index0, length;
    tv *items;     /* the loop items (for previtem / nextitem) */
    int has_changed; tv last_changed;
};

struct tobj {
    tlist *items;  /* cycler items */
    size_t pos;    /* cycler position */
    tv sep;        /* joiner separator */
    int used;      /* joiner: called before */
};

/* constructors */
static inline tv tv_undef(void) { tv v = {0}; v.t = TV_UNDEF; return v; }
static inline tv tv_none(void) { tv v = {0}; v.t = TV_NONE; return v; }
static inline tv tv_bool(int b) { tv v = {0}; v.t = TV_BOOL; v.u.i = b ? 1 : 0; return v; }
static inline tv tv_int(int64_t i) { tv v = {0}; v.t = TV_INT; v.u.i = i; return v; }
static inline tv tv_float(double f) { tv v = {0}; v.t = TV_FLOAT; v.u.f = f; return v; }
static inline tv tv_str(const char *p, size_t n) { tv v = {0}; v.t = TV_STR; v.u.s.p = p; v.u.s.n = n; return v; }

tv tv_cstr(const char *s);
tv tv_undef_named(tpl_arena *a, const char *name);
tv tv_undef_attr(tpl_arena *a, const tv *obj, const char *name);
tv tv_undef_item(tpl_arena *a, const tv *obj, const tv *key);
tv tv_undef_hint(tpl_arena *a, const char *hint, int security);
tv tv_list_new(tpl_arena *a, int kind, size_t cap);
void tv_list_push(tpl_arena *a, tv *list, tv item);
tv tv_dict_new(tpl_arena *a, size_t cap);
/* Sets key (replaces the value in place when the key exists). */
void tv_dict_set(tpl_arena *a, tdict *d, tv key, tv val);
tv *tv_dict_get(const tdict *d, const tv *key);
tv *tv_dict_get_str(const tdict *d, const char *key, size_t n);

const char *tv_type_name(const tv *v);     /* Python type name: "str", "dict", ... */
/* jinja2's object_type_repr: "None", "dict object", ... */
const char *tv_object_type_repr(tpl_arena *a, const tv *v);
int tv_truthy(const tv *v);
int tv_is_hashable(const tv *v);
/* Python ==. */
int tv_eq(const tv *a, const tv *b);
/* Python ordering: returns <0, 0, >0; *ok = 0 when the types do not order. */
int tv_cmp(const tv *a, const tv *b, int *ok);

/* str(v) and repr(v) into b. Return 0 on success, -1 if the value has no
 * deterministic text (e.g. a generator object prints its address). */
int tv_str_into(tsb *b, const tv *v);
int tv_repr_into(tsb *b, const tv *v);
void tv_float_repr(tsb *b, double f);
void tv_repr_str(tsb *b, const char *s, size_t n);

/* json.dumps(v, ensure_ascii, indent, separators, sort_keys). indent: NULL =
 * None. Returns 0, or -1 with a Python-style message in *emsg. */
int tv_to_json(tsb *b, const tv *v, int ensure_ascii, const char *indent, int has_indent,
               const char *item_sep, const char *key_sep, int sort_keys, const char **emsg);

/* jansson -> value (generic: object -> dict, array -> list, ...). */
struct json_t;
tv tv_from_json(tpl_arena *a, struct json_t *j);

/* -------------------------------------------------------------------- AST */

enum {
    /* statements */
    N_DATA = 1, N_OUTPUT, N_IF, N_FOR, N_SET, N_SETBLOCK, N_MACRO, N_CALLBLOCK,
    N_FILTERBLOCK, N_WITH, N_BREAK, N_CONTINUE, N_GENERATION,
    /* expressions */
    N_CONST, N_NAME, N_LIST, N_TUPLE, N_DICT, N_GETATTR, N_GETITEM, N_SLICE,
    N_CALL, N_FILTER, N_TEST, N_NOT, N_NEG, N_POS, N_BIN, N_AND, N_OR,
    N_CONCAT, N_CMP, N_COND, N_NSREF
};

/* binary / compare operators */
enum {
    OP_ADD = 1, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW,
    OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOTIN
};

/* macro flags */
enum { MF_VARARGS = 1, MF_KWARGS = 2, MF_CALLER = 4 };

typedef struct tnode tnode;
struct tnode {
    uint8_t kind;
    uint8_t op;
    uint16_t flags;
    int line, col;
    tnode *a, *b, *c, *d;
    tnode **v; int nv;        /* body / items / args / operands */
    tnode **w; int nw;        /* else body / dict values / kwarg values / defaults */
    tnode **x; int nx;        /* with: values */
    const char **names; int nnames; /* kwarg names / macro params */
    uint8_t *ops;             /* N_CMP operators (nv of them) */
    const char *name;         /* identifier, attribute, filter/test name (NUL-terminated) */
    const char *name2;        /* N_NSREF attribute */
    const char *text; size_t text_len; /* N_DATA */
    tv cval;                  /* N_CONST */
    int id;                   /* filter / test id */
};

/* ------------------------------------------------------------------ lexer */

enum {
    TK_EOF = 0, TK_DATA, TK_VAR_BEGIN, TK_VAR_END, TK_BLOCK_BEGIN, TK_BLOCK_END,
    TK_NAME, TK_STRING, TK_INT, TK_FLOAT, TK_OP
};

typedef struct ttok {
    int type;
    int op;              /* TK_OP: operator code (see template_lex.c) */
    int line, col;
    const char *p; size_t n;  /* source text (TK_NAME: NUL-terminated copy) */
    tv val;              /* decoded value for strings / numbers, text for data */
} ttok;

/* operator codes for TK_OP */
enum {
    TO_ADD = 1, TO_SUB, TO_DIV, TO_FLOORDIV, TO_MUL, TO_MOD, TO_POW, TO_TILDE,
    TO_LBRACKET, TO_RBRACKET, TO_LPAREN, TO_RPAREN, TO_LBRACE, TO_RBRACE,
    TO_EQ, TO_NE, TO_GT, TO_GE, TO_LT, TO_LE, TO_ASSIGN, TO_DOT, TO_COLON,
    TO_PIPE, TO_COMMA, TO_SEMICOLON
};

/* Tokenizes src (valid UTF-8) into an arena array; errors longjmp. */
void tpl_lex(tpl_arena *a, const char *src, size_t n, ttok **toks, size_t *ntoks);
const char *tpl_op_text(int op);

/* ----------------------------------------------------------------- parser */

#define TPL_MAX_NEST 200   /* expression / statement nesting limit */

tnode *tpl_parse(tpl_arena *a, const char *src, size_t n);

/* filter / test tables (template_builtins.c) */
int tpl_filter_id(const char *name);   /* -1 unknown, -2 known but unsupported */
int tpl_test_id(const char *name);

/* ------------------------------------------------------------------ render */

typedef struct tpl_span { size_t start, end; } tpl_span;

typedef struct tpl_render_opts {
    size_t max_output;     /* bytes */
    size_t max_memory;     /* arena bytes */
    int max_depth;         /* nested macro calls / expression depth */
    int64_t max_steps;     /* evaluation steps */
    int64_t now;           /* strftime_now time (epoch seconds, UTC), or INT64_MIN = current local */
} tpl_render_opts;

/* Renders the template with the variables of dict `vars` (a TV_DICT made in
 * arena a). The output is a malloc'd NUL-terminated buffer. Generation-block
 * spans (top level only) are malloc'd into *spans when spans != NULL. */
int tpl_render(const tnode *root, tpl_arena *a, tv vars, const tpl_render_opts *o,
               char **out, size_t *out_len, tpl_span **spans, size_t *nspans,
               clens_error *err);

/* -------------------------------------------------- evaluator (internal) */

typedef struct tframe {
    struct tframe *parent;
    const char **names;
    tv *vals;
    int n, cap;
} tframe;

typedef struct rctx {
    tpl_arena *ar;
    tsb *out;                  /* current output buffer */
    tsb main;                  /* the template's output */
    const tpl_render_opts *o;
    int depth;
    int64_t steps;
    tframe *globals;
    tpl_span *spans; size_t nspans, capspans;
} rctx;

/* call arguments */
typedef struct targs {
    tv *pos; int npos;
    const char **kwn; tv *kwv; int nkw;
} targs;

_Noreturn void tpl_rfail(rctx *c, const tnode *at, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Raises the UndefinedError of an undefined value (its hint / name). */
_Noreturn void tpl_undef_fail(rctx *c, const tnode *at, const tv *v);
tv tpl_getattr(rctx *c, const tnode *at, const tv *obj, const char *name);
tv tpl_getitem(rctx *c, const tnode *at, const tv *obj, const tv *key);
/* Iterates v (consuming generators); returns the items as a list. */
tlist *tpl_iter(rctx *c, const tnode *at, const tv *v);
/* str(v) as an arena string. */
tv tpl_to_str(rctx *c, const tnode *at, const tv *v);
tv tpl_call(rctx *c, const tnode *at, const tv *callee, const targs *a);
int tpl_contains(rctx *c, const tnode *at, const tv *container, const tv *item);
/* Python binary operator (OP_*) */
tv tpl_binop(rctx *c, const tnode *at, int op, const tv *a, const tv *b);

/* template_builtins.c */
tv tpl_filter(rctx *c, const tnode *at, int id, const char *name, const tv *in, const targs *a);
int tpl_test(rctx *c, const tnode *at, int id, const char *name, const tv *in, const targs *a);
/* Method or attribute lookup on builtin types; returns 1 and sets *out when
 * obj has attribute name (a bound method or a field). */
int tpl_builtin_attr(rctx *c, const tnode *at, const tv *obj, const char *name, tv *out);
tv tpl_call_builtin(rctx *c, const tnode *at, const tfunc *fn, const targs *a);
/* Installs the global functions (range, dict, namespace, ...) into f. */
void tpl_install_globals(rctx *c, tframe *f);
void tpl_frame_set(rctx *c, tframe *f, const char *name, tv v);
tv tpl_str_percent(rctx *c, const tnode *at, const tv *fmt, const tv *arg);
tv tpl_html_escape(rctx *c, const tv *s); /* markupsafe.escape of a string, as a plain string */

#endif
