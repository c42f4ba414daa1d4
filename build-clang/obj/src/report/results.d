build-clang/obj/src/report/results.o: src/report/results.c \
  src/report/report.h src/base/base.h include/clens.h src/interp/stats.h

src/report/report.h:

src/base/base.h:

include/clens.h:

src/interp/stats.h:
