build-clang/obj-pic/src/model/hooks.o: src/model/hooks.c \
  src/model/model.h include/clens.h src/formats/formats.h \
  src/kernels/kernels.h

src/model/model.h:

include/clens.h:

src/formats/formats.h:

src/kernels/kernels.h:
