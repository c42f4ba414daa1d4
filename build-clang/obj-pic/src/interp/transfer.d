build-clang/obj-pic/src/interp/transfer.o: src/interp/transfer.c \
  src/base/base.h include/clens.h src/base/infile.h \
  src/formats/formats.h src/interp/probe_internal.h src/interp/stats.h \
  src/report/report.h

src/base/base.h:

include/clens.h:

src/base/infile.h:

src/formats/formats.h:

src/interp/probe_internal.h:

src/interp/stats.h:

src/report/report.h:
