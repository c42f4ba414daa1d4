build-clang/obj-pic/src/formats/hfcache.o: src/formats/hfcache.c \
  src/formats/formats.h include/clens.h src/base/base.h \
  src/base/infile.h

src/formats/formats.h:

include/clens.h:

src/base/base.h:

src/base/infile.h:
