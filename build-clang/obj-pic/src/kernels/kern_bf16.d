build-clang/obj-pic/src/kernels/kern_bf16.o: src/kernels/kern_bf16.c \
  src/kernels/kernels.h include/clens.h src/kernels/kern_internal.h

src/kernels/kernels.h:

include/clens.h:

src/kernels/kern_internal.h:
