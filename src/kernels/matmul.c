/*
 * matmul.c: dispatch of Y = X W^T + b to the kernel path in use.
 * Fast paths are added beside the portable twin; until a path has its own
 * kernel it runs the portable one.
 */
#include "kernels/kernels.h"
#include "kernels/kern_internal.h"

void kern_matmul(float *Y, const float *X, const kern_weight *W, const float *bias, int M,
                 kern_path path)
{
    switch (path) {
    default:
        kern_matmul_portable(Y, X, W, bias, M);
        break;
    }
}

int kern_weight_prepare(kern_weight *W, kern_path path)
{
    (void)W; (void)path;
    return 0;
}

void kern_weight_release(kern_weight *W)
{
    (void)W;
}
