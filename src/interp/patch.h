/* patch.h: the patcher's internals that the benchmarks read (the patching API
 * itself is public: include/clens.h, patching section). */
#ifndef CLENS_PATCH_H
#define CLENS_PATCH_H
#include "clens.h"

/* Wall seconds of the last clens_patch_begin + clens_patch_sites (fast
 * method) by phase, for bench/patch.sh (issue 24 item 4): the shared prefix,
 * the two KV-cache copies, the suffix batch, the site rows' forward, the
 * unembeddings of all metric rows. Internal, not in the public header. */
enum { PATCH_PH_PREFIX, PATCH_PH_COPY, PATCH_PH_SUFFIX, PATCH_PH_SITES, PATCH_PH_UNEMBED, PATCH_PH_COUNT };
void patch_phase_times(const clens_patcher *p, double out[PATCH_PH_COUNT]);
#endif
