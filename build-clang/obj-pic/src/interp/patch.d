build-clang/obj-pic/src/interp/patch.o: src/interp/patch.c \
  src/base/base.h include/clens.h src/interp/patch.h

src/base/base.h:

include/clens.h:

src/interp/patch.h:
