build-clang/obj/src/cli/cmd_activations.o: src/cli/cmd_activations.c \
  src/base/base.h include/clens.h src/cli/cli.h src/formats/formats.h

src/base/base.h:

include/clens.h:

src/cli/cli.h:

src/formats/formats.h:
