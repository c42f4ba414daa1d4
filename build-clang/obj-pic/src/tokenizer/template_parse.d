build-clang/obj-pic/src/tokenizer/template_parse.o: \
  src/tokenizer/template_parse.c src/tokenizer/template_internal.h \
  src/base/base.h include/clens.h

src/tokenizer/template_internal.h:

src/base/base.h:

include/clens.h:
