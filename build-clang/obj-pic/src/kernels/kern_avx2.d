build-clang/obj-pic/src/kernels/kern_avx2.o: src/kernels/kern_avx2.c \
  src/kernels/kernels.h include/clens.h src/kernels/kern_internal.h \
  src/kernels/kern_simd.inc

src/kernels/kernels.h:

include/clens.h:

src/kernels/kern_internal.h:

src/kernels/kern_simd.inc:
