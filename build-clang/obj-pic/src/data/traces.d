build-clang/obj-pic/src/data/traces.o: src/data/traces.c include/clens.h \
  src/base/base.h

include/clens.h:

src/base/base.h:
