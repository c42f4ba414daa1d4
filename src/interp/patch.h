/* patch.h: the patching API is public: see include/clens.h (patching section). */
#ifndef CLENS_PATCH_H
#define CLENS_PATCH_H
#include "clens.h"
#endif
