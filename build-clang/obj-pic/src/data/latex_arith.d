build-clang/obj-pic/src/data/latex_arith.o: src/data/latex_arith.c \
  src/data/latex_arith.h

src/data/latex_arith.h:
