build-clang/obj/src/train/checkpoint.o: src/train/checkpoint.c \
  src/base/base.h include/clens.h src/train/train.h

src/base/base.h:

include/clens.h:

src/train/train.h:
