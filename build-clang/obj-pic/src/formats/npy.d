build-clang/obj-pic/src/formats/npy.o: src/formats/npy.c \
  src/formats/formats.h include/clens.h src/base/base.h

src/formats/formats.h:

include/clens.h:

src/base/base.h:
