build-clang/obj/src/train/train_plan.o: src/train/train_plan.c \
  src/base/base.h include/clens.h src/train/train.h

src/base/base.h:

include/clens.h:

src/train/train.h:
