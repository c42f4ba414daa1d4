build-clang/obj-pic/src/interp/run_tokens.o: src/interp/run_tokens.c \
  src/base/base.h include/clens.h src/interp/prompts.h \
  src/interp/run_internal.h

src/base/base.h:

include/clens.h:

src/interp/prompts.h:

src/interp/run_internal.h:
