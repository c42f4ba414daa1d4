build-clang/obj-pic/src/tokenizer/tok_decode.o: \
  src/tokenizer/tok_decode.c src/tokenizer/tok_internal.h \
  include/clens.h src/tokenizer/tok_unicode.h src/base/base.h

src/tokenizer/tok_internal.h:

include/clens.h:

src/tokenizer/tok_unicode.h:

src/base/base.h:
