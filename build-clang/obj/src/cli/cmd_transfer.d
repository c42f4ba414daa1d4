build-clang/obj/src/cli/cmd_transfer.o: src/cli/cmd_transfer.c \
  src/cli/cli.h include/clens.h

src/cli/cli.h:

include/clens.h:
