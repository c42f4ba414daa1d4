build-clang/obj/src/cli/cmd_tokenize.o: src/cli/cmd_tokenize.c \
  src/base/base.h include/clens.h src/cli/cli.h

src/base/base.h:

include/clens.h:

src/cli/cli.h:
