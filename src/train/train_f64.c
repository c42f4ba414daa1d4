/*
 * train_f64.c: the training math in fp64, the same code as the fp32 path
 * (train_math.inc with REAL = double, products through cblas_dgemm), for the
 * gradient check against central finite differences (tests/unit/test_train.c).
 */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <tgmath.h>

#include "train/train.h"

#define REAL double
#define TR_SUFFIX _f64
#define GEMM cblas_dgemm
#include "train/train_math.inc"
