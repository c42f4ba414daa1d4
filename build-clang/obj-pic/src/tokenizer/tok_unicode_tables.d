build-clang/obj-pic/src/tokenizer/tok_unicode_tables.o: \
  src/tokenizer/tok_unicode_tables.c src/tokenizer/tok_unicode.h

src/tokenizer/tok_unicode.h:
