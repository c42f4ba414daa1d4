build-clang/obj-pic/src/interp/stats.o: src/interp/stats.c \
  src/interp/stats.h src/base/base.h include/clens.h

src/interp/stats.h:

src/base/base.h:

include/clens.h:
