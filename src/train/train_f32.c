/*
 * train_f32.c: the training math in fp32 (the `clens train` path): the code
 * of train_math.inc with REAL = float and products through cblas_sgemm.
 */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <tgmath.h>

#include "train/train.h"

#define REAL float
#define TR_SUFFIX _f32
#define GEMM cblas_sgemm
#include "train/train_math.inc"
