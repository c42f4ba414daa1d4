build-clang/obj/src/cli/cmd_logits.o: src/cli/cmd_logits.c src/cli/cli.h \
  include/clens.h src/formats/formats.h

src/cli/cli.h:

include/clens.h:

src/formats/formats.h:
