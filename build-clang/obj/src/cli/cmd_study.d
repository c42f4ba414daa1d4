build-clang/obj/src/cli/cmd_study.o: src/cli/cmd_study.c src/base/base.h \
  include/clens.h src/cli/cli.h

src/base/base.h:

include/clens.h:

src/cli/cli.h:
