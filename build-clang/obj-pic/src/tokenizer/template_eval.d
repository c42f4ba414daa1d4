build-clang/obj-pic/src/tokenizer/template_eval.o: \
  src/tokenizer/template_eval.c src/tokenizer/template_internal.h \
  src/base/base.h include/clens.h

src/tokenizer/template_internal.h:

src/base/base.h:

include/clens.h:
