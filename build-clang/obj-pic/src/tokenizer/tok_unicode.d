build-clang/obj-pic/src/tokenizer/tok_unicode.o: \
  src/tokenizer/tok_unicode.c src/tokenizer/tok_unicode.h

src/tokenizer/tok_unicode.h:
