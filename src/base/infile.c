/*
 * infile.c: open an input file only if it is a regular file, without ever
 * blocking. open(2) of a FIFO for reading blocks until a writer appears, so
 * the open is O_NONBLOCK; fstat then rejects anything but a regular file
 * (FIFOs, character and block devices, sockets, folders), and only a regular
 * file has its O_NONBLOCK flag cleared for ordinary reads. Folders are named
 * as such: reading one used to fail as "out of memory" (ftell of a folder
 * gives LONG_MAX on some file systems).
 */
#include "base/infile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"

static const char *kind_name(mode_t m)
{
    if (S_ISDIR(m)) return "is a folder, not a file";
    if (S_ISFIFO(m)) return "is a FIFO (named pipe), not a regular file";
    if (S_ISCHR(m)) return "is a character device, not a regular file";
    if (S_ISBLK(m)) return "is a block device, not a regular file";
    if (S_ISSOCK(m)) return "is a socket, not a regular file";
    return "is not a regular file";
}

int clens_open_regular(const char *path, int *fd, size_t *size, clens_error *err)
{
    struct stat sb;
    int d = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    *fd = -1;
    if (d < 0) return clens_err(err, CLENS_E_IO, "%s: %s", path, strerror(errno));
    if (fstat(d, &sb) != 0) {
        int e = errno;
        close(d);
        return clens_err(err, CLENS_E_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(d);
        return clens_err(err, CLENS_E_IO, "%s: %s", path, kind_name(sb.st_mode));
    }
    int fl = fcntl(d, F_GETFL);
    if (fl < 0 || fcntl(d, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(d);
        return clens_err(err, CLENS_E_IO, "%s: %s", path, strerror(e));
    }
    *fd = d;
    if (size) *size = (size_t)sb.st_size;
    return CLENS_OK;
}

int clens_fopen_regular(const char *path, FILE **f, clens_error *err)
{
    int fd, rc = clens_open_regular(path, &fd, NULL, err);
    *f = NULL;
    if (rc) return rc;
    if (!(*f = fdopen(fd, "rb"))) {
        int e = errno;
        close(fd);
        return clens_err(err, CLENS_E_IO, "%s: %s", path, strerror(e));
    }
    return CLENS_OK;
}

int clens_json_load_regular(const char *path, size_t flags, json_t **out, json_error_t *je, clens_error *err)
{
    char *data;
    size_t len;
    *out = NULL;
    memset(je, 0, sizeof *je);
    int rc = clens_read_file(path, &data, &len, err);
    if (rc) {
        snprintf(je->text, sizeof je->text, "%.150s", err ? err->msg : "cannot read the file");
        return rc;
    }
    *out = json_loadb(data, len, flags, je);
    free(data);
    /* jansson fails without a message only when an allocation fails */
    if (!*out && (json_error_code(je) == json_error_out_of_memory || !je->text[0]))
        return clens_err(err, CLENS_E_NOMEM, "%s: out of memory while parsing", path);
    if (!*out) return clens_err(err, CLENS_E_FORMAT, "%s:%d:%d: %s", path, je->line, je->column, je->text);
    return CLENS_OK;
}
