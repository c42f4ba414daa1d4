build-clang/obj-pic/src/tokenizer/tok_regex.o: src/tokenizer/tok_regex.c \
  src/tokenizer/tok_internal.h include/clens.h \
  src/tokenizer/tok_unicode.h src/base/base.h

src/tokenizer/tok_internal.h:

include/clens.h:

src/tokenizer/tok_unicode.h:

src/base/base.h:
