build-clang/obj-pic/src/tokenizer/tok_bpe.o: src/tokenizer/tok_bpe.c \
  src/tokenizer/tok_internal.h include/clens.h \
  src/tokenizer/tok_unicode.h

src/tokenizer/tok_internal.h:

include/clens.h:

src/tokenizer/tok_unicode.h:
