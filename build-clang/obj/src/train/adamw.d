build-clang/obj/src/train/adamw.o: src/train/adamw.c src/train/train.h \
  include/clens.h

src/train/train.h:

include/clens.h:
