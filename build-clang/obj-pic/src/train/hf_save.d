build-clang/obj-pic/src/train/hf_save.o: src/train/hf_save.c \
  src/base/base.h include/clens.h src/formats/formats.h \
  src/kernels/kernels.h src/train/train.h

src/base/base.h:

include/clens.h:

src/formats/formats.h:

src/kernels/kernels.h:

src/train/train.h:
