build-clang/obj-pic/src/tokenizer/tokenizer.o: src/tokenizer/tokenizer.c \
  src/tokenizer/tok_internal.h include/clens.h \
  src/tokenizer/tok_unicode.h src/base/base.h src/base/infile.h \
  src/formats/formats.h

src/tokenizer/tok_internal.h:

include/clens.h:

src/tokenizer/tok_unicode.h:

src/base/base.h:

src/base/infile.h:

src/formats/formats.h:
