/*
 * template_lex.c: the chat-template lexer. It reproduces jinja2 3.1's
 * Lexer.tokeniter (jinja2/lexer.py) for the environment transformers uses:
 * default delimiters, trim_blocks=True, lstrip_blocks=True,
 * keep_trailing_newline=False, newline_sequence "\n".
 *
 *  - newlines (\r\n, \r, \n) are normalised to \n and one trailing newline
 *    of the source is dropped;
 *  - "{%-", "{{-", "{#-" strip all whitespace (Python str.isspace) before the
 *    tag, "-%}", "-}}", "-#}" all whitespace after it;
 *  - lstrip_blocks: spaces/tabs between a line start and "{%" or "{#" are
 *    removed (not before "{{", and not with "{%+");
 *  - trim_blocks: one newline directly after "%}" or "#}" is removed (not
 *    after "+%}");
 *  - {% raw %}...{% endraw %} is data;
 *  - inside tags: whitespace, floats, integers, names, strings (with
 *    Python unicode-escape decoding), operators; "%}" / "}}" only end a tag
 *    when brackets are balanced.
 * Positions are 1-based line and column (in code points).
 */
#include "template_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct lexer {
    tpl_arena *ar;
    const char *s;        /* normalised source */
    size_t n;
    /* incremental position -> line/col */
    size_t lc_pos;
    int lc_line, lc_col;
    ttok *toks;
    size_t ntoks, cap;
    char bal[TPL_MAX_NEST + 1]; /* bracket stack: expected closers */
    int nbal;
} lexer;

static const struct { const char *s; int op; } OPS[] = {
    {"//", TO_FLOORDIV}, {"**", TO_POW}, {"==", TO_EQ}, {"!=", TO_NE}, {">=", TO_GE}, {"<=", TO_LE},
    {"+", TO_ADD}, {"-", TO_SUB}, {"/", TO_DIV}, {"*", TO_MUL}, {"%", TO_MOD}, {"~", TO_TILDE},
    {"[", TO_LBRACKET}, {"]", TO_RBRACKET}, {"(", TO_LPAREN}, {")", TO_RPAREN}, {"{", TO_LBRACE},
    {"}", TO_RBRACE}, {">", TO_GT}, {"<", TO_LT}, {"=", TO_ASSIGN}, {".", TO_DOT}, {":", TO_COLON},
    {"|", TO_PIPE}, {",", TO_COMMA}, {";", TO_SEMICOLON},
};

const char *tpl_op_text(int op)
{
    for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++)
        if (OPS[i].op == op) return OPS[i].s;
    return "?";
}

static void linecol(lexer *L, size_t pos, int *line, int *col)
{
    if (pos < L->lc_pos) { L->lc_pos = 0; L->lc_line = 1; L->lc_col = 1; }
    while (L->lc_pos < pos) {
        unsigned char c = (unsigned char)L->s[L->lc_pos++];
        if (c == '\n') { L->lc_line++; L->lc_col = 1; }
        else if ((c & 0xC0) != 0x80) L->lc_col++;
    }
    *line = L->lc_line;
    *col = L->lc_col;
}

_Noreturn static void lex_fail(lexer *L, size_t pos, const char *fmt, const char *arg)
{
    int line, col;
    linecol(L, pos, &line, &col);
    char msg[300];
    snprintf(msg, sizeof msg, fmt, arg ? arg : "");
    tpl_throw(L->ar, CLENS_E_FORMAT, "chat template line %d col %d: %s", line, col, msg);
}

static ttok *push(lexer *L, int type, size_t pos, size_t n)
{
    if (L->ntoks == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        L->toks = tpl_realloc(L->ar, L->toks, L->cap * sizeof(ttok), cap * sizeof(ttok));
        L->cap = cap;
    }
    ttok *t = &L->toks[L->ntoks++];
    memset(t, 0, sizeof *t);
    t->type = type;
    t->p = L->s + pos;
    t->n = n;
    linecol(L, pos, &t->line, &t->col);
    return t;
}

/* length of the whitespace run (Python \s) at pos */
static size_t ws_len(const lexer *L, size_t pos)
{
    size_t i = pos;
    while (i < L->n) {
        uint32_t cp;
        int k = tpl_utf8_dec(L->s + i, L->n - i, &cp);
        if (!tpl_py_isspace(cp)) break;
        i += (size_t)k;
    }
    return i - pos;
}

static int starts(const lexer *L, size_t pos, const char *lit)
{
    size_t k = strlen(lit);
    return pos + k <= L->n && memcmp(L->s + pos, lit, k) == 0;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_name0(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_name1(char c) { return is_name0(c) || is_digit(c); }

/* Text before a tag: apply "-" stripping or lstrip_blocks, emit data. */
static void emit_text(lexer *L, size_t from, size_t to, char sign, int is_var, int line_starting)
{
    size_t end = to;
    if (sign == '-') {
        /* str.rstrip(): strip trailing Python whitespace */
        while (end > from) {
            size_t k = 1;
            while (k < 4 && end - k > from && (((unsigned char)L->s[end - k]) & 0xC0) == 0x80) k++;
            uint32_t cp;
            tpl_utf8_dec(L->s + end - k, k, &cp);
            if (!tpl_py_isspace(cp)) break;
            end -= k;
        }
    } else if (sign != '+' && !is_var) {
        size_t lpos = to;
        while (lpos > from && L->s[lpos - 1] != '\n') lpos--;
        if ((lpos > from || line_starting) && lpos < to && ws_len(L, lpos) == to - lpos) end = lpos;
    }
    if (end > from) {
        ttok *t = push(L, TK_DATA, from, end - from);
        t->val = tv_str(L->s + from, end - from);
    }
}

/* Python unicode-escape decoding of a string literal body (after the
 * backslashreplace step: non-ASCII characters stay as themselves, except
 * right after a lone backslash where they print as their \x/\u/\U escape). */
static tv decode_string(lexer *L, size_t pos, const char *p, size_t n)
{
    tsb b;
    tsb_init(&b, L->ar, 0);
    size_t i = 0;
    while (i < n) {
        if (p[i] != '\\') {
            size_t j = i;
            while (j < n && p[j] != '\\') j++;
            tsb_put(&b, p + i, j - i);
            i = j;
            continue;
        }
        if (i + 1 >= n) { tsb_putc(&b, '\\'); i++; continue; }
        char c = p[i + 1];
        i += 2;
        switch (c) {
        case '\n': break;
        case '\\': tsb_putc(&b, '\\'); break;
        case '\'': tsb_putc(&b, '\''); break;
        case '"': tsb_putc(&b, '"'); break;
        case 'a': tsb_putc(&b, 7); break;
        case 'b': tsb_putc(&b, 8); break;
        case 'f': tsb_putc(&b, 12); break;
        case 'n': tsb_putc(&b, '\n'); break;
        case 'r': tsb_putc(&b, '\r'); break;
        case 't': tsb_putc(&b, '\t'); break;
        case 'v': tsb_putc(&b, 11); break;
        case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
            uint32_t v = (uint32_t)(c - '0');
            for (int k = 0; k < 2 && i < n && p[i] >= '0' && p[i] <= '7'; k++) v = v * 8 + (uint32_t)(p[i++] - '0');
            tsb_put_cp(&b, v);
            break;
        }
        case 'x': case 'u': case 'U': {
            int want = c == 'x' ? 2 : c == 'u' ? 4 : 8;
            uint32_t v = 0;
            for (int k = 0; k < want; k++) {
                char h = i < n ? p[i] : 0;
                int d = (h >= '0' && h <= '9') ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                      : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
                if (d < 0) {
                    static const char *msgs[] = {"truncated \\xXX escape", "truncated \\uXXXX escape",
                                                 "truncated \\UXXXXXXXX escape"};
                    lex_fail(L, pos, "%s", msgs[c == 'x' ? 0 : c == 'u' ? 1 : 2]);
                }
                v = v * 16 + (uint32_t)d;
                i++;
            }
            if (v > 0x10FFFF) lex_fail(L, pos, "%s", "illegal Unicode character");
            if (v >= 0xD800 && v <= 0xDFFF) lex_fail(L, pos, "%s", "surrogate escapes are not supported");
            tsb_put_cp(&b, v);
            break;
        }
        case 'N': lex_fail(L, pos, "%s", "\\N{...} escapes are not supported");
        default:
            if ((unsigned char)c >= 0x80) {
                /* backslash + the backslashreplace form of the character */
                uint32_t cp;
                int k = tpl_utf8_dec(p + i - 1, n - (i - 1), &cp);
                tsb_putc(&b, '\\');
                if (cp <= 0xFF) tsb_printf(&b, "x%02x", cp);
                else if (cp <= 0xFFFF) tsb_printf(&b, "u%04x", cp);
                else tsb_printf(&b, "U%08x", cp);
                i = i - 1 + (size_t)k;
            } else {
                tsb_putc(&b, '\\');
                tsb_putc(&b, c);
            }
        }
    }
    return tv_str(b.p ? b.p : "", b.n);
}

/* (\d+_)*\d+ at pos: returns length (0 if no digit) */
static size_t digits_us(const lexer *L, size_t pos)
{
    size_t i = pos;
    if (i >= L->n || !is_digit(L->s[i])) return 0;
    while (i < L->n) {
        if (is_digit(L->s[i])) i++;
        else if (L->s[i] == '_' && i + 1 < L->n && is_digit(L->s[i + 1])) i++;
        else break;
    }
    return i - pos;
}

static size_t match_float(const lexer *L, size_t pos)
{
    if (pos > 0 && L->s[pos - 1] == '.') return 0;
    size_t k = digits_us(L, pos);
    if (!k) return 0;
    size_t i = pos + k;
    /* alternative 1: optional fraction, then exponent */
    size_t j = i;
    if (j < L->n && L->s[j] == '.') {
        size_t f = digits_us(L, j + 1);
        if (f) j += 1 + f;
    }
    if (j < L->n && (L->s[j] == 'e' || L->s[j] == 'E')) {
        size_t e = j + 1;
        if (e < L->n && (L->s[e] == '+' || L->s[e] == '-')) e++;
        size_t d = digits_us(L, e);
        if (d) return e + d - pos;
    }
    /* alternative 2: required fraction */
    if (i < L->n && L->s[i] == '.') {
        size_t f = digits_us(L, i + 1);
        if (f) return i + 1 + f - pos;
    }
    return 0;
}

static size_t match_int(const lexer *L, size_t pos, int *base)
{
    const char *s = L->s;
    size_t n = L->n;
    if (s[pos] == '0' && pos + 1 < n) {
        char x = s[pos + 1];
        int bb = (x == 'b' || x == 'B') ? 2 : (x == 'o' || x == 'O') ? 8 : (x == 'x' || x == 'X') ? 16 : 0;
        if (bb) {
            size_t i = pos + 2, cnt = 0;
            for (;;) {
                size_t j = i;
                if (j < n && s[j] == '_') j++;
                if (j >= n) break;
                char c = s[j];
                int ok = bb == 2 ? (c == '0' || c == '1') : bb == 8 ? (c >= '0' && c <= '7')
                       : (is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'));
                if (!ok) break;
                i = j + 1;
                cnt++;
            }
            if (cnt) { *base = bb; return i - pos; }
        }
    }
    *base = 10;
    if (s[pos] >= '1' && s[pos] <= '9') {
        size_t i = pos + 1;
        for (;;) {
            size_t j = i;
            if (j < n && s[j] == '_') j++;
            if (j < n && is_digit(s[j])) i = j + 1;
            else break;
        }
        return i - pos;
    }
    if (s[pos] == '0') {
        size_t i = pos + 1;
        for (;;) {
            size_t j = i;
            if (j < n && s[j] == '_') j++;
            if (j < n && s[j] == '0') i = j + 1;
            else break;
        }
        return i - pos;
    }
    return 0;
}

/* Lexes the inside of a {% %} or {{ }} tag from *pos; returns after the end
 * tag, setting *line_starting. */
static void lex_tag(lexer *L, size_t *ppos, int is_block, int *line_starting)
{
    size_t pos = *ppos;
    L->nbal = 0;
    for (;;) {
        if (L->nbal == 0) {
            size_t end = 0;
            if (is_block) {
                if (starts(L, pos, "+%}")) end = pos + 3;
                else if (starts(L, pos, "-%}")) { end = pos + 3; end += ws_len(L, end); }
                else if (starts(L, pos, "%}")) { end = pos + 2; if (end < L->n && L->s[end] == '\n') end++; }
            } else {
                if (starts(L, pos, "-}}")) { end = pos + 3; end += ws_len(L, end); }
                else if (starts(L, pos, "}}")) end = pos + 2;
            }
            if (end) {
                push(L, is_block ? TK_BLOCK_END : TK_VAR_END, pos, end - pos);
                *line_starting = L->s[end - 1] == '\n';
                *ppos = end;
                return;
            }
        }
        if (pos >= L->n) { *ppos = pos; return; } /* EOF inside a tag: the parser reports it */
        size_t k = ws_len(L, pos);
        if (k) { pos += k; continue; }
        char c = L->s[pos];
        if ((k = match_float(L, pos)) != 0) {
            ttok *t = push(L, TK_FLOAT, pos, k);
            char buf[128];
            size_t m = 0;
            for (size_t i = 0; i < k && m < sizeof buf - 1; i++)
                if (L->s[pos + i] != '_') buf[m++] = L->s[pos + i];
            buf[m] = 0;
            t->val = tv_float(strtod(buf, NULL));
            pos += k;
            continue;
        }
        int base;
        if (is_digit(c) && (k = match_int(L, pos, &base)) != 0) {
            ttok *t = push(L, TK_INT, pos, k);
            uint64_t v = 0;
            size_t i = pos + (base == 10 ? 0 : 2);
            for (; i < pos + k; i++) {
                char d = L->s[i];
                if (d == '_') continue;
                int dv = is_digit(d) ? d - '0' : (d | 0x20) - 'a' + 10;
                if (v > (UINT64_MAX - (uint64_t)dv) / (uint64_t)base || v * (uint64_t)base + (uint64_t)dv > (uint64_t)INT64_MAX)
                    lex_fail(L, pos, "%s", "integer literal too large (only 64-bit integers are supported)");
                v = v * (uint64_t)base + (uint64_t)dv;
            }
            t->val = tv_int((int64_t)v);
            pos += k;
            continue;
        }
        if (is_name0(c)) {
            size_t i = pos + 1;
            while (i < L->n && is_name1(L->s[i])) i++;
            if (i < L->n && ((unsigned char)L->s[i]) >= 0x80)
                lex_fail(L, pos, "%s", "non-ASCII identifiers are not supported");
            ttok *t = push(L, TK_NAME, pos, i - pos);
            t->p = tpl_strndup(L->ar, L->s + pos, i - pos);
            pos = i;
            continue;
        }
        if (c == '\'' || c == '"') {
            size_t i = pos + 1;
            while (i < L->n && L->s[i] != c) i += L->s[i] == '\\' ? 2 : 1;
            if (i < L->n) {
                ttok *t = push(L, TK_STRING, pos, i + 1 - pos);
                t->val = decode_string(L, pos, L->s + pos + 1, i - pos - 1);
                pos = i + 1;
                continue;
            }
        }
        for (size_t o = 0; o < sizeof OPS / sizeof OPS[0]; o++) {
            if (!starts(L, pos, OPS[o].s)) continue;
            int op = OPS[o].op;
            if (op == TO_LBRACE || op == TO_LPAREN || op == TO_LBRACKET) {
                if (L->nbal >= TPL_MAX_NEST) lex_fail(L, pos, "%s", "brackets nested too deeply");
                L->bal[L->nbal++] = op == TO_LBRACE ? '}' : op == TO_LPAREN ? ')' : ']';
            } else if (op == TO_RBRACE || op == TO_RPAREN || op == TO_RBRACKET) {
                char got = *OPS[o].s;
                if (L->nbal == 0) {
                    char m[2] = {got, 0};
                    lex_fail(L, pos, "unexpected '%s'", m);
                }
                char want = L->bal[--L->nbal];
                if (want != got) {
                    char m[16];
                    snprintf(m, sizeof m, "%c', expected '%c", got, want);
                    lex_fail(L, pos, "unexpected '%s'", m);
                }
            }
            ttok *t = push(L, TK_OP, pos, strlen(OPS[o].s));
            t->op = op;
            pos += strlen(OPS[o].s);
            goto next;
        }
        {
            char m[8] = {0};
            uint32_t cp;
            int kk = tpl_utf8_dec(L->s + pos, L->n - pos, &cp);
            memcpy(m, L->s + pos, (size_t)kk);
            lex_fail(L, pos, "unexpected char '%s'", m);
        }
    next:;
    }
}

/* Matches "{%" sign? ws* WORD ws* ("-%}" ws* | "%}") at pos (raw_begin), or
 * with endraw's end "+%}" | "-%}" ws* | "%}\n?". Returns the end or 0. */
static size_t match_raw_tag(const lexer *L, size_t pos, const char *word, int endraw, char *sign)
{
    if (!starts(L, pos, "{%")) return 0;
    size_t i = pos + 2;
    *sign = 0;
    if (i < L->n && (L->s[i] == '-' || L->s[i] == '+')) *sign = L->s[i++];
    i += ws_len(L, i);
    if (!starts(L, i, word)) return 0;
    i += strlen(word);
    i += ws_len(L, i);
    if (endraw && starts(L, i, "+%}")) return i + 3;
    if (starts(L, i, "-%}")) { i += 3; return i + ws_len(L, i); }
    if (starts(L, i, "%}")) {
        i += 2;
        if (endraw && i < L->n && L->s[i] == '\n') i++;
        return i;
    }
    return 0;
}

void tpl_lex(tpl_arena *a, const char *src, size_t n, ttok **toks, size_t *ntoks)
{
    lexer L;
    memset(&L, 0, sizeof L);
    L.ar = a;
    L.lc_line = 1;
    L.lc_col = 1;
    /* normalise newlines, drop one trailing newline */
    char *s = tpl_alloc(a, n + 1);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '\r') {
            s[m++] = '\n';
            if (i + 1 < n && src[i + 1] == '\n') i++;
        } else s[m++] = src[i];
    }
    if (m > 0 && s[m - 1] == '\n') m--;
    s[m] = 0;
    L.s = s;
    L.n = m;

    size_t pos = 0;
    int line_starting = 1;
    while (pos < L.n) {
        /* find the next tag start */
        size_t q = pos;
        int kind = 0; /* '%', '#', '{' */
        for (;;) {
            const char *br = memchr(L.s + q, '{', L.n - q);
            if (!br) { q = L.n; break; }
            q = (size_t)(br - L.s);
            if (q + 1 < L.n && (L.s[q + 1] == '%' || L.s[q + 1] == '#' || L.s[q + 1] == '{')) {
                kind = L.s[q + 1];
                break;
            }
            q++;
        }
        if (!kind) { /* the rest is data */
            ttok *t = push(&L, TK_DATA, pos, L.n - pos);
            t->val = tv_str(L.s + pos, L.n - pos);
            break;
        }
        char rs;
        size_t rend = kind == '%' ? match_raw_tag(&L, q, "raw", 0, &rs) : 0;
        if (rend) {
            emit_text(&L, pos, q, rs, 0, line_starting);
            line_starting = L.s[rend - 1] == '\n';
            /* raw body: up to the first {% endraw %} */
            size_t r = rend, eend = 0;
            char es = 0;
            for (;;) {
                const char *br = memchr(L.s + r, '{', L.n - r);
                if (!br) lex_fail(&L, q, "%s", "Missing end of raw directive");
                r = (size_t)(br - L.s);
                if ((eend = match_raw_tag(&L, r, "endraw", 1, &es)) != 0) break;
                r++;
            }
            emit_text(&L, rend, r, es, 0, line_starting);
            line_starting = L.s[eend - 1] == '\n';
            pos = eend;
            continue;
        }
        size_t after = q + 2;
        char sign = 0;
        if (after < L.n && (L.s[after] == '-' || L.s[after] == '+')) sign = L.s[after++];
        emit_text(&L, pos, q, sign, kind == '{', line_starting);
        line_starting = 0;
        if (kind == '#') {
            size_t c = after, end = 0;
            for (;;) {
                if (c >= L.n) lex_fail(&L, q, "%s", "Missing end of comment tag");
                if (starts(&L, c, "+#}")) { end = c + 3; break; }
                if (starts(&L, c, "-#}")) { end = c + 3; end += ws_len(&L, end); break; }
                if (starts(&L, c, "#}")) { end = c + 2; if (end < L.n && L.s[end] == '\n') end++; break; }
                c++;
            }
            line_starting = L.s[end - 1] == '\n';
            pos = end;
            continue;
        }
        push(&L, kind == '%' ? TK_BLOCK_BEGIN : TK_VAR_BEGIN, q, after - q);
        pos = after;
        lex_tag(&L, &pos, kind == '%', &line_starting);
    }
    push(&L, TK_EOF, L.n, 0);
    *toks = L.toks;
    *ntoks = L.ntoks;
}
