build-clang/obj-pic/src/interp/onpolicy.o: src/interp/onpolicy.c \
  src/base/base.h include/clens.h src/data/pairs_internal.h \
  src/interp/prompts.h

src/base/base.h:

include/clens.h:

src/data/pairs_internal.h:

src/interp/prompts.h:
