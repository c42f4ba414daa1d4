build-clang/obj-pic/src/report/svg.o: src/report/svg.c \
  src/report/compare_internal.h src/base/base.h include/clens.h \
  src/report/report.h

src/report/compare_internal.h:

src/base/base.h:

include/clens.h:

src/report/report.h:
