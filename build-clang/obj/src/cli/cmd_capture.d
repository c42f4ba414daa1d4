build-clang/obj/src/cli/cmd_capture.o: src/cli/cmd_capture.c \
  src/cli/cli.h include/clens.h

src/cli/cli.h:

include/clens.h:
