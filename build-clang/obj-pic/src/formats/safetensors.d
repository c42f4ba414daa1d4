build-clang/obj-pic/src/formats/safetensors.o: src/formats/safetensors.c \
  src/formats/formats.h include/clens.h src/base/base.h \
  src/base/infile.h

src/formats/formats.h:

include/clens.h:

src/base/base.h:

src/base/infile.h:
