build-clang/obj-pic/src/report/compare.o: src/report/compare.c \
  src/interp/stats.h src/base/base.h include/clens.h \
  src/report/compare_internal.h src/report/report.h

src/interp/stats.h:

src/base/base.h:

include/clens.h:

src/report/compare_internal.h:

src/report/report.h:
