build-clang/obj-pic/src/report/compare_md.o: src/report/compare_md.c \
  src/report/compare_internal.h src/base/base.h include/clens.h \
  src/report/report.h

src/report/compare_internal.h:

src/base/base.h:

include/clens.h:

src/report/report.h:
