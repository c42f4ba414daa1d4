build-clang/obj/src/cli/cmd_generate.o: src/cli/cmd_generate.c \
  src/base/base.h include/clens.h src/cli/cli.h

src/base/base.h:

include/clens.h:

src/cli/cli.h:
