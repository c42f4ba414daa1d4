build-clang/obj/src/cli/cli.o: src/cli/cli.c src/cli/cli.h \
  include/clens.h src/base/infile.h

src/cli/cli.h:

include/clens.h:

src/base/infile.h:
