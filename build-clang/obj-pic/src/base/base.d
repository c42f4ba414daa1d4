build-clang/obj-pic/src/base/base.o: src/base/base.c src/base/base.h \
  include/clens.h src/base/infile.h

src/base/base.h:

include/clens.h:

src/base/infile.h:
