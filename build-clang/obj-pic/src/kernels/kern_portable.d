build-clang/obj-pic/src/kernels/kern_portable.o: \
  src/kernels/kern_portable.c src/kernels/kernels.h include/clens.h \
  src/kernels/kern_internal.h

src/kernels/kernels.h:

include/clens.h:

src/kernels/kern_internal.h:
