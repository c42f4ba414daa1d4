build-clang/obj-pic/src/tokenizer/tok_encode.o: \
  src/tokenizer/tok_encode.c src/tokenizer/tok_internal.h \
  include/clens.h src/tokenizer/tok_unicode.h src/base/base.h

src/tokenizer/tok_internal.h:

include/clens.h:

src/tokenizer/tok_unicode.h:

src/base/base.h:
