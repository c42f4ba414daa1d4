build-clang/obj/src/cli/cmd_train.o: src/cli/cmd_train.c src/cli/cli.h \
  include/clens.h

src/cli/cli.h:

include/clens.h:
