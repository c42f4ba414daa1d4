build-clang/obj-pic/src/report/results.o: src/report/results.c \
  src/report/report.h src/base/base.h include/clens.h \
  src/interp/run_internal.h src/interp/stats.h

src/report/report.h:

src/base/base.h:

include/clens.h:

src/interp/run_internal.h:

src/interp/stats.h:
