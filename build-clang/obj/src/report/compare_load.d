build-clang/obj/src/report/compare_load.o: src/report/compare_load.c \
  src/interp/stats.h src/base/base.h include/clens.h \
  src/report/compare_internal.h src/report/report.h

src/interp/stats.h:

src/base/base.h:

include/clens.h:

src/report/compare_internal.h:

src/report/report.h:
