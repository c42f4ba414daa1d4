build-clang/obj/src/cli/cmd_probe.o: src/cli/cmd_probe.c src/cli/cli.h \
  include/clens.h

src/cli/cli.h:

include/clens.h:
