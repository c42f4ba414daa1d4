build-clang/obj/src/cli/cmd_patch.o: src/cli/cmd_patch.c src/base/base.h \
  include/clens.h src/cli/cli.h src/interp/prompts.h

src/base/base.h:

include/clens.h:

src/cli/cli.h:

src/interp/prompts.h:
