/*
 * strbuf.h: the one growable text buffer of libclens, with the JSON string
 * and number writer every JSON output shares.
 *
 * A buffer starts as {0}. An allocation failure sets `oom` and turns every
 * later append into a no-op, so a writer appends without checking and tests
 * `oom` (or the NULL from clens_sb_take) once at the end.
 *
 * Number format: a finite double is printed with the fewest significant
 * digits, 15 to 17, whose "%.*g" text reads back (strtod) to the same double;
 * ".0" is appended when the text has no '.', 'e', so a real stays a real
 * (Python's float repr would agree on the digits for most values); -0 prints
 * as 0.0; a non-finite value prints as null. glibc's printf and strtod are
 * exact, so the text is a deterministic function of the double. Assumes the
 * "C" numeric locale (the CLI never calls setlocale).
 *
 * String format: '"', '\\' and the control characters below 0x20 are
 * escaped (\n \r \t \b \f by name, the rest as \u00XX); every other byte,
 * UTF-8 included, is copied as is (RFC 8259's minimal escaping).
 */
#ifndef CLENS_BASE_STRBUF_H
#define CLENS_BASE_STRBUF_H

#include <stddef.h>

typedef struct clens_sb {
    char *p;      /* NUL-terminated when len > 0 */
    size_t len, cap;
    int oom;      /* an allocation failed: contents are incomplete */
} clens_sb;

void clens_sb_put(clens_sb *b, const char *s, size_t n);
void clens_sb_puts(clens_sb *b, const char *s);
void clens_sb_printf(clens_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal of s (NUL-terminated) / of s[0, n) (which may hold NULs). */
void clens_sb_json_str(clens_sb *b, const char *s);
void clens_sb_json_strn(clens_sb *b, const char *s, size_t n);
/* A JSON number in the format above (null if not finite). */
void clens_sb_json_num(clens_sb *b, double x);
/* Returns the malloc'd text (caller frees; "" when nothing was appended) and
 * resets b; NULL (and b freed) if b->oom. */
char *clens_sb_take(clens_sb *b);
void clens_sb_free(clens_sb *b);

/* Formats x as above into buf (>= 32 bytes); returns buf. */
char *clens_fmt_double(char *buf, size_t n, double x);

#endif
