build-clang/obj-pic/src/model/forward.o: src/model/forward.c \
  src/base/base.h include/clens.h src/model/model.h \
  src/formats/formats.h src/kernels/kernels.h

src/base/base.h:

include/clens.h:

src/model/model.h:

src/formats/formats.h:

src/kernels/kernels.h:
