build-clang/obj/src/cli/cmd_merge.o: src/cli/cmd_merge.c src/base/base.h \
  include/clens.h src/cli/cli.h

src/base/base.h:

include/clens.h:

src/cli/cli.h:
