build-clang/obj/src/train/train_run.o: src/train/train_run.c \
  src/base/base.h include/clens.h src/formats/formats.h \
  src/kernels/kernels.h src/model/model.h src/train/train.h

src/base/base.h:

include/clens.h:

src/formats/formats.h:

src/kernels/kernels.h:

src/model/model.h:

src/train/train.h:
