build-clang/obj-pic/src/kernels/attention.o: src/kernels/attention.c \
  src/kernels/kernels.h include/clens.h src/kernels/kern_internal.h

src/kernels/kernels.h:

include/clens.h:

src/kernels/kern_internal.h:
