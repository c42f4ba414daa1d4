build-clang/obj/src/cli/cmd_organism.o: src/cli/cmd_organism.c \
  src/base/base.h include/clens.h src/cli/cli.h

src/base/base.h:

include/clens.h:

src/cli/cli.h:
