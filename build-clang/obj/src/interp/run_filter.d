build-clang/obj/src/interp/run_filter.o: src/interp/run_filter.c \
  src/base/base.h include/clens.h

src/base/base.h:

include/clens.h:
