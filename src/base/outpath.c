/*
 * outpath.c: the one check every command makes before it writes an output
 * file (clens_output_check).
 *
 * Outputs are written atomically: a temp file beside the output, then
 * rename() over it. rename() replaces whatever directory entry is there, so
 * an output path naming a device node (as root, "--out /dev/null" would
 * replace /dev/null), a FIFO, a socket or a symbolic link would be replaced
 * by a regular file, and an output that is one of the command's inputs
 * ("--out" equal to "--data", possibly through another name or a hard
 * link) would destroy the input. So an output must be absent or a regular
 * file (never followed through a link: lstat), must not be the same file
 * (st_dev, st_ino) as any input, and its folder must exist. Writing through
 * to a character device is refused rather than supported: the atomic write
 * is what makes a killed run safe, and a device cannot be renamed over.
 *
 * Output folders (clens_output_dir_check) get the same care one level down:
 * the folder must be absent or a folder (a symbolic link to a folder is
 * written through, which replaces nothing), must not be one of the input
 * folders (train --out MODEL would write config.json over the model's), and
 * every entry already in it must be a regular file or a folder: a FIFO named
 * records.jsonl would block the append forever, and a device or a link named
 * results.json would be replaced by the rename.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base.h"

/* The folder part of path ("." when there is none), into buf. */
static void folder_of(const char *path, char *buf, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (!slash) { snprintf(buf, n, "."); return; }
    size_t k = (size_t)(slash - path);
    if (k == 0) k = 1; /* "/x": the root */
    if (k >= n) k = n - 1;
    memcpy(buf, path, k);
    buf[k] = 0;
}

static const char *kind_of(mode_t m)
{
    if (S_ISDIR(m)) return "a directory";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISSOCK(m)) return "a socket";
    if (S_ISLNK(m)) return "a symbolic link";
    return "not a regular file";
}

int clens_output_check(const char *path, const char *const *inputs, size_t n_inputs,
                       clens_error *err)
{
    struct stat so, si;
    if (!path || !*path) return clens_err(err, CLENS_E_ARG, "output path is empty");
    if (lstat(path, &so) != 0) {
        if (errno != ENOENT) return clens_err(err, CLENS_E_IO, "%s: %s", path, strerror(errno));
        char dir[4096];
        struct stat sd;
        folder_of(path, dir, sizeof dir);
        if (stat(dir, &sd) != 0)
            return clens_err(err, CLENS_E_IO, "%s: the folder %s does not exist", path, dir);
        if (!S_ISDIR(sd.st_mode))
            return clens_err(err, CLENS_E_IO, "%s: %s is not a folder", path, dir);
        /* a new file is no existing input, but it may be another output
         * named the same way: same folder (by inode) and same last name */
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        for (size_t i = 0; i < n_inputs; i++) {
            if (!inputs[i]) continue;
            const char *b2 = strrchr(inputs[i], '/') ? strrchr(inputs[i], '/') + 1 : inputs[i];
            char dir2[4096];
            struct stat sd2;
            folder_of(inputs[i], dir2, sizeof dir2);
            if (strcmp(base, b2) == 0 && stat(dir2, &sd2) == 0 && sd2.st_dev == sd.st_dev &&
                sd2.st_ino == sd.st_ino)
                return clens_err(err, CLENS_E_ARG, "%s: is the same path as %s", path, inputs[i]);
        }
        return CLENS_OK;
    }
    if (!S_ISREG(so.st_mode))
        return clens_err(err, CLENS_E_IO,
                         "%s: is %s; outputs are written as a temp file renamed over the path, "
                         "which would replace it: give a regular file or a new path",
                         path, kind_of(so.st_mode));
    for (size_t i = 0; i < n_inputs; i++) {
        if (!inputs[i] || stat(inputs[i], &si) != 0) continue;
        if (si.st_dev == so.st_dev && si.st_ino == so.st_ino)
            return clens_err(err, CLENS_E_ARG,
                             "%s: is the same file as the input %s; writing it would destroy "
                             "the input", path, inputs[i]);
    }
    return CLENS_OK;
}

int clens_output_dir_check(const char *dir, const char *const *inputs, size_t n_inputs, clens_error *err)
{
    struct stat sd, si;
    if (!dir || !*dir) return clens_err(err, CLENS_E_ARG, "output folder path is empty");
    if (lstat(dir, &sd) != 0) {
        if (errno == ENOENT) return CLENS_OK; /* created by the command */
        return clens_err(err, CLENS_E_IO, "%s: %s", dir, strerror(errno));
    }
    if (S_ISLNK(sd.st_mode) && stat(dir, &sd) != 0)
        return clens_err(err, CLENS_E_IO, "%s: a symbolic link to a missing target, not a folder", dir);
    if (!S_ISDIR(sd.st_mode))
        return clens_err(err, CLENS_E_IO, "%s: is %s, not a folder (the output is a folder)", dir,
                         S_ISREG(sd.st_mode) ? "a regular file" : kind_of(sd.st_mode));
    for (size_t i = 0; i < n_inputs; i++) {
        if (!inputs[i] || stat(inputs[i], &si) != 0) continue;
        if (si.st_dev == sd.st_dev && si.st_ino == sd.st_ino)
            return clens_err(err, CLENS_E_ARG, "%s: is the input folder %s; give another output folder", dir,
                             inputs[i]);
    }
    DIR *d = opendir(dir);
    if (!d) return clens_err(err, CLENS_E_IO, "%s: %s", dir, strerror(errno));
    struct dirent *e;
    int rc = CLENS_OK;
    while (rc == CLENS_OK && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char path[4096];
        struct stat se;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (fstatat(dirfd(d), e->d_name, &se, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (!S_ISREG(se.st_mode) && !S_ISDIR(se.st_mode))
            rc = clens_err(err, CLENS_E_IO,
                           "%s: is %s inside the output folder; clens writes only regular files there "
                           "(a temp file renamed over the path would replace it): remove it or give another "
                           "folder", path, kind_of(se.st_mode));
    }
    closedir(d);
    return rc;
}
