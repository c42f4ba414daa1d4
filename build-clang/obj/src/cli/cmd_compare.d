build-clang/obj/src/cli/cmd_compare.o: src/cli/cmd_compare.c \
  src/cli/cli.h include/clens.h

src/cli/cli.h:

include/clens.h:
