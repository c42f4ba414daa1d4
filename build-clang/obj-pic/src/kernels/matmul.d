build-clang/obj-pic/src/kernels/matmul.o: src/kernels/matmul.c \
  src/kernels/kernels.h include/clens.h src/kernels/kern_internal.h

src/kernels/kernels.h:

include/clens.h:

src/kernels/kern_internal.h:
