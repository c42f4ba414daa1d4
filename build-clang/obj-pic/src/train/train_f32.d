build-clang/obj-pic/src/train/train_f32.o: src/train/train_f32.c \
  src/train/train.h include/clens.h src/train/train_math.inc

src/train/train.h:

include/clens.h:

src/train/train_math.inc:
