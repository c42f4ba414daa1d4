build-clang/obj/src/cli/cmd_info.o: src/cli/cmd_info.c src/base/base.h \
  include/clens.h src/cli/cli.h

src/base/base.h:

include/clens.h:

src/cli/cli.h:
