build-clang/obj-pic/src/base/infile.o: src/base/infile.c \
  src/base/infile.h include/clens.h src/base/base.h

src/base/infile.h:

include/clens.h:

src/base/base.h:
