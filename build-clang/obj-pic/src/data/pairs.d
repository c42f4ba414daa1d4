build-clang/obj-pic/src/data/pairs.o: src/data/pairs.c include/clens.h \
  src/base/base.h src/data/latex_arith.h src/data/pairs_internal.h

include/clens.h:

src/base/base.h:

src/data/latex_arith.h:

src/data/pairs_internal.h:
