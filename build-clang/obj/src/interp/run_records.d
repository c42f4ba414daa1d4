build-clang/obj/src/interp/run_records.o: src/interp/run_records.c \
  src/base/base.h include/clens.h src/interp/run_internal.h

src/base/base.h:

include/clens.h:

src/interp/run_internal.h:
