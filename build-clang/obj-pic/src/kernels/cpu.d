build-clang/obj-pic/src/kernels/cpu.o: src/kernels/cpu.c \
  src/kernels/kernels.h include/clens.h

src/kernels/kernels.h:

include/clens.h:
