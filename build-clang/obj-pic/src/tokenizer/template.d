build-clang/obj-pic/src/tokenizer/template.o: src/tokenizer/template.c \
  src/tokenizer/template_internal.h src/base/base.h include/clens.h \
  src/base/infile.h

src/tokenizer/template_internal.h:

src/base/base.h:

include/clens.h:

src/base/infile.h:
