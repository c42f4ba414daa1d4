build-clang/obj-pic/src/interp/study.o: src/interp/study.c \
  src/base/base.h include/clens.h src/base/infile.h \
  src/formats/formats.h src/interp/study_internal.h src/report/report.h

src/base/base.h:

include/clens.h:

src/base/infile.h:

src/formats/formats.h:

src/interp/study_internal.h:

src/report/report.h:
