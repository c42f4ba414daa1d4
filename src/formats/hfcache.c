/*
 * hfcache.c: resolution of model arguments. A folder is used as is; an
 * `org/name[@revision]` is looked up offline in the Hugging Face hub cache
 * layout: <cache>/models--org--name/snapshots/<commit>/, where refs/<rev>
 * holds the commit of a branch or tag (huggingface_hub "Manage cache").
 */
#include "base/alloc.h"
#include "formats/formats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base.h"
#include "base/infile.h"

static int is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static void cache_root(char *buf, size_t n)
{
    const char *e;
    if ((e = getenv("HF_HUB_CACHE")) && *e) snprintf(buf, n, "%s", e);
    else if ((e = getenv("HF_HOME")) && *e) snprintf(buf, n, "%s/hub", e);
    else snprintf(buf, n, "%s/.cache/huggingface/hub", getenv("HOME") ? getenv("HOME") : ".");
}

int hf_resolve_model(const char *arg, char **out, clens_error *err)
{
    if (is_dir(arg)) {
        *out = clens_strdup(arg);
        return *out ? CLENS_OK : clens_err(err, CLENS_E_NOMEM, "out of memory");
    }
    char repo[512], rev[256] = "main", root[2048], dir[4096], ref[4600];
    const char *at = strchr(arg, '@');
    size_t rl = at ? (size_t)(at - arg) : strlen(arg);
    const char *slash = memchr(arg, '/', rl);
    if (!slash || rl >= sizeof repo || slash == arg || slash + 1 == arg + rl ||
        memchr(slash + 1, '/', rl - (slash + 1 - arg)) || strstr(arg, ".."))
        return clens_err(err, CLENS_E_IO, "%s: not a folder, and not an org/name[@revision] model id", arg);
    memcpy(repo, arg, rl);
    repo[rl] = 0;
    if (at) snprintf(rev, sizeof rev, "%s", at + 1);
    cache_root(root, sizeof root);
    repo[slash - arg] = 0;
    snprintf(dir, sizeof dir, "%s/models--%s--%s", root, repo, repo + (slash - arg) + 1);
    if (!is_dir(dir))
        return clens_err(err, CLENS_E_IO, "%s: not a folder, and not in the Hugging Face cache (looked for %s)", arg, dir);
    char commit[256];
    snprintf(ref, sizeof ref, "%s/refs/%s", dir, rev);
    FILE *f;
    if (clens_fopen_regular(ref, &f, NULL) == CLENS_OK) {
        if (!fgets(commit, sizeof commit, f)) commit[0] = 0;
        fclose(f);
        commit[strcspn(commit, "\r\n")] = 0;
    } else {
        snprintf(commit, sizeof commit, "%s", rev); /* a commit hash given directly */
    }
    snprintf(ref, sizeof ref, "%s/snapshots/%s", dir, commit);
    if (!commit[0] || strchr(commit, '/') || !is_dir(ref))
        return clens_err(err, CLENS_E_IO, "%s: revision '%s' not in the cache (looked for %s)", arg, rev, ref);
    *out = clens_strdup(ref);
    return *out ? CLENS_OK : clens_err(err, CLENS_E_NOMEM, "out of memory");
}
