build-clang/obj-pic/src/data/organism_vocab.o: src/data/organism_vocab.c \
  include/clens.h src/base/base.h

include/clens.h:

src/base/base.h:
