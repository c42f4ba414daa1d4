/*
 * base.c: error formatting, file helpers and SHA-256 (FIPS 180-4).
 */
#include "base/alloc.h"
#include "base/base.h"
#include "base/infile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int clens_err(clens_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *clens_status_name(int code)
{
    static const char *names[] = {"ok", "io", "format", "unsupported", "argument", "nomem", "state", "nonfinite"};
    return code >= 0 && code < (int)(sizeof names / sizeof names[0]) ? names[code] : "unknown";
}

int clens_read_file(const char *path, char **data, size_t *len, clens_error *err)
{
    FILE *f;
    char *buf = NULL;
    long n;
    int rc = clens_fopen_regular(path, &f, err); /* infile.c: never blocks, refuses non-files */
    if (rc) return rc;
    if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
        fclose(f);
        return clens_err(err, CLENS_E_IO, "%s: cannot determine size", path);
    }
    buf = clens_malloc((size_t)n + 1);
    if (!buf) { fclose(f); return clens_err(err, CLENS_E_NOMEM, "%s: out of memory", path); }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf); fclose(f);
        return clens_err(err, CLENS_E_IO, "%s: read failed", path);
    }
    fclose(f);
    buf[n] = 0;
    *data = buf;
    if (len) *len = (size_t)n;
    return CLENS_OK;
}

static void fsync_dir_of(const char *path)
{
    char *tmp = clens_strdup(path);
    if (!tmp) return;
    int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) { fsync(fd); close(fd); }
    free(tmp);
}

int clens_write_file_atomic(const char *path, const void *data, size_t len, clens_error *err)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return clens_err(err, CLENS_E_IO, "%s: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            close(fd); unlink(tmp);
            return clens_err(err, CLENS_E_IO, "%s: write failed: %s", tmp, strerror(errno));
        }
        p += w; left -= (size_t)w;
    }
    if (fsync(fd) || close(fd)) {
        unlink(tmp);
        return clens_err(err, CLENS_E_IO, "%s: fsync failed: %s", tmp, strerror(errno));
    }
    if (rename(tmp, path)) {
        unlink(tmp);
        return clens_err(err, CLENS_E_IO, "%s: rename failed: %s", path, strerror(errno));
    }
    fsync_dir_of(path);
    return CLENS_OK;
}

int clens_append_line_durable(const char *path, const char *line, clens_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) return clens_err(err, CLENS_E_IO, "%s: %s", path, strerror(errno));
    size_t n = strlen(line);
    char *buf = clens_malloc(n + 1);
    if (!buf) { close(fd); return clens_err(err, CLENS_E_NOMEM, "out of memory"); }
    memcpy(buf, line, n);
    buf[n] = '\n';
    /* One write() of the whole line: O_APPEND makes it land contiguously. */
    ssize_t w = write(fd, buf, n + 1);
    free(buf);
    if (w != (ssize_t)(n + 1) || fsync(fd)) {
        close(fd);
        return clens_err(err, CLENS_E_IO, "%s: append failed: %s", path, strerror(errno));
    }
    close(fd);
    return CLENS_OK;
}

int clens_mkdir_p(const char *dir, clens_error *err)
{
    char buf[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof buf) return clens_err(err, CLENS_E_ARG, "bad folder name '%s'", dir);
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++)
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) && errno != EEXIST)
                return clens_err(err, CLENS_E_IO, "%s: cannot create folder: %s", buf, strerror(errno));
            buf[i] = c;
        }
    return CLENS_OK;
}

double clens_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------- SHA-256 */

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64], a, b, c, d, e, f, g, hh;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4]; f = h[5]; g = h[6]; hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

void clens_sha256_init(clens_sha256 *s)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, iv, sizeof iv);
    s->len = 0;
    s->nbuf = 0;
}

void clens_sha256_update(clens_sha256 *s, const void *data, size_t n)
{
    const uint8_t *p = data;
    s->len += n;
    while (n) {
        size_t k = 64 - s->nbuf < n ? 64 - s->nbuf : n;
        memcpy(s->buf + s->nbuf, p, k);
        s->nbuf += k; p += k; n -= k;
        if (s->nbuf == 64) { sha256_block(s->h, s->buf); s->nbuf = 0; }
    }
}

void clens_sha256_final(clens_sha256 *s, uint8_t out[32])
{
    uint64_t bits = s->len * 8;
    uint8_t pad = 0x80, zero = 0, lenb[8];
    clens_sha256_update(s, &pad, 1);
    while (s->nbuf != 56) clens_sha256_update(s, &zero, 1);
    for (int i = 0; i < 8; i++) lenb[i] = (uint8_t)(bits >> (56 - 8 * i));
    clens_sha256_update(s, lenb, 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24); out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8); out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

static void to_hex(const uint8_t d[32], char hex[65])
{
    static const char *x = "0123456789abcdef";
    for (int i = 0; i < 32; i++) { hex[2 * i] = x[d[i] >> 4]; hex[2 * i + 1] = x[d[i] & 15]; }
    hex[64] = 0;
}

void clens_sha256_hex(const void *data, size_t n, char hex[65])
{
    clens_sha256 s;
    uint8_t d[32];
    clens_sha256_init(&s);
    clens_sha256_update(&s, data, n);
    clens_sha256_final(&s, d);
    to_hex(d, hex);
}

int clens_sha256_file_hex(const char *path, char hex[65], clens_error *err)
{
    FILE *f;
    int rc = clens_fopen_regular(path, &f, err);
    if (rc) return rc;
    clens_sha256 s;
    uint8_t buf[1 << 16], d[32];
    size_t n;
    clens_sha256_init(&s);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) clens_sha256_update(&s, buf, n);
    int bad = ferror(f);
    fclose(f);
    if (bad) return clens_err(err, CLENS_E_IO, "%s: read failed", path);
    clens_sha256_final(&s, d);
    to_hex(d, hex);
    return CLENS_OK;
}

clens_mem clens_mem_usage(void)
{
    clens_mem m = {0, 0, 0};
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    if (!f) return m;
    while (fgets(line, sizeof line, f)) {
        long long kb;
        if (sscanf(line, "VmHWM: %lld", &kb) == 1) m.peak = kb * 1024;
        else if (sscanf(line, "RssFile: %lld", &kb) == 1) m.file = kb * 1024;
        else if (sscanf(line, "RssAnon: %lld", &kb) == 1) m.anon = kb * 1024;
    }
    fclose(f);
    return m;
}
