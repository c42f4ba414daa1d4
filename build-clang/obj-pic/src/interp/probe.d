build-clang/obj-pic/src/interp/probe.o: src/interp/probe.c \
  src/base/base.h include/clens.h src/formats/formats.h \
  src/interp/probe_internal.h src/interp/stats.h src/report/report.h

src/base/base.h:

include/clens.h:

src/formats/formats.h:

src/interp/probe_internal.h:

src/interp/stats.h:

src/report/report.h:
