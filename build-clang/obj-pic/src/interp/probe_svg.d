build-clang/obj-pic/src/interp/probe_svg.o: src/interp/probe_svg.c \
  src/interp/probe_internal.h include/clens.h src/report/report.h \
  src/base/base.h

src/interp/probe_internal.h:

include/clens.h:

src/report/report.h:

src/base/base.h:
