build-clang/obj/src/cli/cmd_detokenize.o: src/cli/cmd_detokenize.c \
  src/base/base.h include/clens.h src/cli/cli.h

src/base/base.h:

include/clens.h:

src/cli/cli.h:
