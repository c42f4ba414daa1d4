build-clang/obj-pic/src/interp/capture.o: src/interp/capture.c \
  src/base/base.h include/clens.h src/formats/formats.h \
  src/interp/probe_internal.h src/interp/prompts.h \
  src/interp/run_internal.h

src/base/base.h:

include/clens.h:

src/formats/formats.h:

src/interp/probe_internal.h:

src/interp/prompts.h:

src/interp/run_internal.h:
