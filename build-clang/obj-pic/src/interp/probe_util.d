build-clang/obj-pic/src/interp/probe_util.o: src/interp/probe_util.c \
  src/base/base.h include/clens.h src/base/infile.h \
  src/interp/probe_internal.h src/interp/run_internal.h \
  src/interp/stats.h

src/base/base.h:

include/clens.h:

src/base/infile.h:

src/interp/probe_internal.h:

src/interp/run_internal.h:

src/interp/stats.h:
