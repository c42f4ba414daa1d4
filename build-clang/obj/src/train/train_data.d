build-clang/obj/src/train/train_data.o: src/train/train_data.c \
  src/base/base.h include/clens.h src/train/train.h

src/base/base.h:

include/clens.h:

src/train/train.h:
