/*
 * cli.c: shared helpers of the clens subcommands (error printing, id lists).
 */
#include "cli.h"
#include "base/base.h"
#include "base/infile.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int cli_fail(const char *cmd, const clens_error *err)
{
    fprintf(stderr, "clens %s: %s\n", cmd, err->msg[0] ? err->msg : "error");
    return CLI_EXIT_ERR;
}

int cli_errorf(const char *cmd, int code, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "clens %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "clens %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nsee 'clens %s --help'\n", cmd);
    return CLI_EXIT_USAGE;
}

int cli_check_out_file(const char *cmd, const char *out, const char *const *inputs, size_t n)
{
    clens_error err = {0};
    return clens_output_check(out, inputs, n, &err) ? cli_fail(cmd, &err) : 0;
}

int cli_check_out_dir(const char *cmd, const char *dir, const char *const *inputs, size_t n)
{
    clens_error err = {0};
    return clens_output_dir_check(dir, inputs, n, &err) ? cli_fail(cmd, &err) : 0;
}

int cli_is_help(const char *a)
{
    return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0;
}

int cli_parse_ids(const char *s, int32_t **ids, int *n)
{
    int cap = 16, k = 0;
    int32_t *v = malloc(sizeof(*v) * cap);
    const char *p = s;
    if (!v) return -1;
    while (*p) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > INT32_MAX) { free(v); return -1; }
        if (k == cap) {
            int32_t *nv = realloc(v, sizeof(*v) * (cap *= 2));
            if (!nv) { free(v); return -1; }
            v = nv;
        }
        v[k++] = (int32_t)x;
        p = end;
        while (*p == ' ') p++;
        if (*p == ',') p++;
        else if (*p) { free(v); return -1; }
    }
    if (k == 0) { free(v); return -1; }
    *ids = v; *n = k;
    return 0;
}

static int json_ids(json_t *a, int32_t **out, int *n)
{
    size_t m = json_array_size(a);
    int32_t *v = malloc(sizeof(*v) * (m ? m : 1));
    if (!v) return -1;
    for (size_t i = 0; i < m; i++) {
        json_t *x = json_array_get(a, i);
        if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > INT32_MAX) {
            free(v); return -1;
        }
        v[i] = (int32_t)json_integer_value(x);
    }
    *out = v; *n = (int)m;
    return 0;
}

int cli_read_ids_file(const char *path, int32_t ***seqs, int **lens, int *n_seq, clens_error *err)
{
    json_error_t je;
    json_t *root;
    if (clens_json_load_regular(path, 0, &root, &je, err)) return -1; /* err names the path */
    int ok = json_is_array(root) && json_array_size(root) > 0;
    int batch = ok && json_is_array(json_array_get(root, 0));
    int ns = batch ? (int)json_array_size(root) : 1;
    int32_t **s = calloc(ns, sizeof(*s));
    int *l = calloc(ns, sizeof(*l));
    if (!s || !l) ok = 0;
    for (int i = 0; ok && i < ns; i++) {
        json_t *a = batch ? json_array_get(root, i) : root;
        if (!json_is_array(a) || json_ids(a, &s[i], &l[i]) || l[i] == 0) ok = 0;
    }
    json_decref(root);
    if (!ok) {
        for (int i = 0; s && i < ns; i++) free(s[i]);
        free(s); free(l);
        err->code = CLENS_E_FORMAT;
        snprintf(err->msg, sizeof err->msg,
                 "%s: expected a non-empty JSON array of token ids (or an array of such arrays)", path);
        return -1;
    }
    *seqs = s; *lens = l; *n_seq = ns;
    return 0;
}

int cli_parse_int(const char *cmd, const char *flag, const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || end == v || *end || errno || x < lo || x > hi)
        return cli_usage_error(cmd, "%s expects an integer in [%ld, %ld], got '%s'", flag, lo, hi,
                               v ? v : "(nothing)");
    *out = x;
    return 0;
}

int cli_parse_float(const char *cmd, const char *flag, const char *v, double *out)
{
    char *end;
    errno = 0;
    double x = v ? strtod(v, &end) : 0;
    if (!v || end == v || *end || errno)
        return cli_usage_error(cmd, "%s expects a number, got '%s'", flag, v ? v : "(nothing)");
    /* strtod accepts "nan" and "inf": no option means them (a NaN threshold
     * drops everything, a NaN temperature samples token 0). */
    if (!isfinite(x)) return cli_usage_error(cmd, "%s expects a finite number, got '%s'", flag, v);
    *out = x;
    return 0;
}

int cli_missing_value(const char *cmd, const char *flag, const char *known)
{
    size_t n = strlen(flag);
    for (const char *p = known; (p = strstr(p, flag)) != NULL; p += n)
        if ((p == known || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0))
            return cli_usage_error(cmd, "%s needs a value", flag);
    return cli_usage_error(cmd, "unknown option '%s'", flag);
}

int cli_open_model(const char *cmd, const char *path, const char *kernel, int threads, clens_model **m)
{
    clens_model_params mp = clens_model_default_params();
    clens_error err = {0};
    mp.n_threads = threads;
    if (kernel) {
        if (strcmp(kernel, "default") == 0) mp.matmul = CLENS_MATMUL_DEFAULT;
        else if (strcmp(kernel, "portable") == 0) mp.matmul = CLENS_MATMUL_PORTABLE;
        else if (strcmp(kernel, "bf16") == 0) mp.matmul = CLENS_MATMUL_BF16;
        else return cli_usage_error(cmd, "--matmul expects default, portable or bf16, got '%s'", kernel);
    }
    if (clens_model_open(m, path, &mp, &err)) return cli_fail(cmd, &err);
    /* --threads is the process's choice: the model's contexts carry it, and
     * the work outside them (unembedding rows, statistics) follows it too. */
    if (threads > 0) omp_set_num_threads(threads);
    return 0;
}

int cli_get_ids(const char *cmd, const char *ids, const char *ids_file, int32_t ***seqs, int **lens, int *n_seq)
{
    if (!!ids == !!ids_file) return cli_usage_error(cmd, "give exactly one of --ids and --ids-file");
    if (ids) {
        int32_t *v;
        int n;
        if (cli_parse_ids(ids, &v, &n)) return cli_usage_error(cmd, "--ids expects comma-separated token ids, got '%s'", ids);
        *seqs = malloc(sizeof **seqs);
        *lens = malloc(sizeof **lens);
        if (!*seqs || !*lens) { free(v); free(*seqs); free(*lens); return cli_errorf(cmd, 1, "out of memory"); }
        (*seqs)[0] = v;
        (*lens)[0] = n;
        *n_seq = 1;
        return 0;
    }
    clens_error err = {0};
    if (cli_read_ids_file(ids_file, seqs, lens, n_seq, &err)) return cli_fail(cmd, &err);
    return 0;
}

void cli_free_ids(int32_t **seqs, int *lens, int n_seq)
{
    for (int i = 0; seqs && i < n_seq; i++) free(seqs[i]);
    free(seqs);
    free(lens);
}
