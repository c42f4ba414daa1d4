build-clang/obj/src/cli/cmd_chat.o: src/cli/cmd_chat.c src/base/base.h \
  include/clens.h src/cli/cli.h

src/base/base.h:

include/clens.h:

src/cli/cli.h:
