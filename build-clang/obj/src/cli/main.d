build-clang/obj/src/cli/main.o: src/cli/main.c src/cli/cli.h \
  include/clens.h

src/cli/cli.h:

include/clens.h:
