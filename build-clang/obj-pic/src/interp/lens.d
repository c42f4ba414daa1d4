build-clang/obj-pic/src/interp/lens.o: src/interp/lens.c src/base/base.h \
  include/clens.h src/interp/probe_internal.h src/interp/prompts.h \
  src/interp/run_internal.h src/report/report.h

src/base/base.h:

include/clens.h:

src/interp/probe_internal.h:

src/interp/prompts.h:

src/interp/run_internal.h:

src/report/report.h:
