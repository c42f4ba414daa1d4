/*
 * path.h: joining a folder and a file name, the one way libclens builds
 * "DIR/NAME" paths it keeps (fixed-size stack paths use snprintf directly).
 */
#ifndef CLENS_BASE_PATH_H
#define CLENS_BASE_PATH_H

/* "dir/name" in a malloc'd string (caller frees); NULL when out of memory.
 * No normalisation: "a/" + "b" gives "a//b", which the kernel reads as "a/b". */
char *clens_path_join(const char *dir, const char *name);

#endif
