/*
 * appendlog.c: clens_appendlog_read (contract in appendlog.h). The torn
 * tail is removed from the file itself, not only skipped, so the next
 * append starts on a line of its own.
 */
#include "base/appendlog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"

json_t *clens_appendlog_next_json(const char *data, size_t len, size_t *at)
{
    const char *nl = memchr(data + *at, '\n', len - *at);
    size_t end = nl ? (size_t)(nl - data) : len;
    json_t *o = json_loadb(data + *at, end - *at, 0, NULL);
    *at = end + 1;
    return o;
}

int clens_appendlog_read(const char *path, char **data, size_t *len, size_t *torn, clens_error *err)
{
    *data = NULL;
    *len = *torn = 0;
    if (access(path, F_OK) != 0) return CLENS_OK;
    size_t n = 0;
    int rc = clens_read_file(path, data, &n, err);
    if (rc) return rc;
    size_t keep = n;
    while (keep > 0 && (*data)[keep - 1] != '\n') keep--;
    if (keep < n) {
        if (truncate(path, (off_t)keep) != 0) {
            rc = clens_err(err, CLENS_E_IO, "%s: cannot drop the unfinished last line: %s", path, strerror(errno));
            free(*data);
            *data = NULL;
            return rc;
        }
        (*data)[keep] = '\0';
        *torn = n - keep;
    }
    *len = keep;
    return CLENS_OK;
}
