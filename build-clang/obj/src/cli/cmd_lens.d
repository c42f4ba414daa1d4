build-clang/obj/src/cli/cmd_lens.o: src/cli/cmd_lens.c src/cli/cli.h \
  include/clens.h

src/cli/cli.h:

include/clens.h:
