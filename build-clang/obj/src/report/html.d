build-clang/obj/src/report/html.o: src/report/html.c \
  src/report/compare_internal.h src/base/base.h include/clens.h \
  src/report/report.h

src/report/compare_internal.h:

src/base/base.h:

include/clens.h:

src/report/report.h:
