build-clang/obj-pic/src/interp/study_file.o: src/interp/study_file.c \
  src/base/base.h include/clens.h src/base/infile.h \
  src/interp/study_internal.h

src/base/base.h:

include/clens.h:

src/base/infile.h:

src/interp/study_internal.h:
