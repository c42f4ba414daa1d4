/* kern_internal.h: per-path kernel entry points, selected by kern_matmul. */
#ifndef CLENS_KERN_INTERNAL_H
#define CLENS_KERN_INTERNAL_H

#include "kernels/kernels.h"

void kern_matmul_portable(float *Y, const float *X, const kern_weight *W, const float *bias, int M);

#endif
