build-clang/obj-pic/src/kernels/kern_avx512.o: src/kernels/kern_avx512.c \
  src/kernels/kernels.h include/clens.h src/kernels/kern_internal.h \
  src/kernels/kern_simd.inc

src/kernels/kernels.h:

include/clens.h:

src/kernels/kern_internal.h:

src/kernels/kern_simd.inc:
