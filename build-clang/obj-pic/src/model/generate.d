build-clang/obj-pic/src/model/generate.o: src/model/generate.c \
  src/base/base.h include/clens.h src/base/infile.h src/model/model.h \
  src/formats/formats.h src/kernels/kernels.h

src/base/base.h:

include/clens.h:

src/base/infile.h:

src/model/model.h:

src/formats/formats.h:

src/kernels/kernels.h:
