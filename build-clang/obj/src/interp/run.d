build-clang/obj/src/interp/run.o: src/interp/run.c src/base/base.h \
  include/clens.h src/interp/prompts.h src/interp/run_internal.h

src/base/base.h:

include/clens.h:

src/interp/prompts.h:

src/interp/run_internal.h:
