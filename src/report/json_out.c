/*
 * json_out.c: the deterministic JSON writer of the report layer: a jansson
 * value written with object keys sorted (byte order), one key per line,
 * arrays of scalars on one line, strings and numbers in the formats of
 * base/strbuf.h. results.json, compare.json and the study files are written
 * with it, so equal values give equal bytes.
 */
#include "report/report.h"

#include <stdlib.h>
#include <string.h>

void clens_sb_indent(clens_sb *b, int indent)
{
    static const char sp[] = "                                ";
    while (indent > 0) {
        int k = indent < 32 ? indent : 32;
        clens_sb_put(b, sp, (size_t)k);
        indent -= k;
    }
}

static int is_scalar(const json_t *v) { return !json_is_object(v) && !json_is_array(v); }

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void json_value(clens_sb *b, const json_t *v, int indent, int sort);

void clens_sb_json_value(clens_sb *b, const json_t *v, int indent) { json_value(b, v, indent, 1); }

void clens_sb_json_value_ordered(clens_sb *b, const json_t *v, int indent) { json_value(b, v, indent, 0); }

/* As clens_sb_json_value; sort = 0 keeps the objects' own key order. */
static void json_value(clens_sb *b, const json_t *v, int indent, int sort)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v);
        if (n == 0) { clens_sb_puts(b, "{}"); return; }
        const char **keys = malloc(sizeof(char *) * n);
        if (!keys) { b->oom = 1; return; }
        size_t k = 0;
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val) keys[k++] = key;
        if (sort) qsort(keys, k, sizeof(char *), cmp_str);
        clens_sb_puts(b, "{\n");
        for (size_t i = 0; i < k; i++) {
            clens_sb_indent(b, indent + 2);
            clens_sb_json_str(b, keys[i]);
            clens_sb_puts(b, ": ");
            json_value(b, json_object_get(v, keys[i]), indent + 2, sort);
            clens_sb_puts(b, i + 1 < k ? ",\n" : "\n");
        }
        clens_sb_indent(b, indent);
        clens_sb_puts(b, "}");
        free(keys);
        return;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        int flat = 1;
        for (size_t i = 0; i < n; i++)
            if (!is_scalar(json_array_get(v, i))) flat = 0;
        if (flat) {
            clens_sb_puts(b, "[");
            for (size_t i = 0; i < n; i++) {
                if (i) clens_sb_puts(b, ", ");
                json_value(b, json_array_get(v, i), indent, sort);
            }
            clens_sb_puts(b, "]");
            return;
        }
        clens_sb_puts(b, "[\n");
        for (size_t i = 0; i < n; i++) {
            clens_sb_indent(b, indent + 2);
            json_value(b, json_array_get(v, i), indent + 2, sort);
            clens_sb_puts(b, i + 1 < n ? ",\n" : "\n");
        }
        clens_sb_indent(b, indent);
        clens_sb_puts(b, "]");
        return;
    }
    case JSON_STRING: clens_sb_json_str(b, json_string_value(v)); return;
    case JSON_INTEGER: clens_sb_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); return;
    case JSON_REAL: clens_sb_json_num(b, json_real_value(v)); return;
    case JSON_TRUE: clens_sb_puts(b, "true"); return;
    case JSON_FALSE: clens_sb_puts(b, "false"); return;
    case JSON_NULL: clens_sb_puts(b, "null"); return;
    }
}

int clens_json_write_atomic(const char *path, const json_t *doc, clens_error *err)
{
    clens_sb b = {0};
    clens_sb_json_value(&b, doc, 0);
    clens_sb_puts(&b, "\n");
    char *text = clens_sb_take(&b);
    if (!text) return clens_err(err, CLENS_E_NOMEM, "%s: out of memory", path);
    int rc = clens_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}
