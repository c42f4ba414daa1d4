build-clang/obj-pic/src/tokenizer/template_tok.o: \
  src/tokenizer/template_tok.c include/clens.h

include/clens.h:
