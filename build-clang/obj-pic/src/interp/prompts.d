build-clang/obj-pic/src/interp/prompts.o: src/interp/prompts.c \
  src/base/base.h include/clens.h src/interp/prompts.h

src/base/base.h:

include/clens.h:

src/interp/prompts.h:
