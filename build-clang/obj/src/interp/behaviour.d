build-clang/obj/src/interp/behaviour.o: src/interp/behaviour.c \
  include/clens.h src/base/base.h src/interp/prompts.h

include/clens.h:

src/base/base.h:

src/interp/prompts.h:
