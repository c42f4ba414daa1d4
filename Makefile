# clens build. `make` builds the library, the CLI and the tests into $(BUILD).
# `make test` installs missing packages, builds, runs every suite, then reruns
# the C tests under AddressSanitizer + UndefinedBehaviorSanitizer.
# `make demo` runs the main job; `make bench` the benchmarks.

CC      ?= gcc
BUILD   ?= build
SAN     ?= 0
# Portable baseline; faster paths are chosen at run time from CPUID.
ARCH    ?= -march=x86-64-v2 -mtune=generic
OPT     ?= -O2
CFLAGS_BASE = -std=c11 $(OPT) -g $(ARCH) -Wall -Wextra -Werror -fopenmp \
              -D_GNU_SOURCE -Iinclude -Isrc
ifeq ($(SAN),1)
  CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDSAN = -fsanitize=address,undefined
endif
CFLAGS_ALL = $(CFLAGS_BASE) $(CFLAGS)
LIBS    = -ldnnl -lopenblas -lpcre2-8 -lutf8proc -ljansson -lm -lpthread

# Every layer folder under src/ except the CLI is the library.
LIB_SRC  := $(sort $(filter-out src/cli/%,$(wildcard src/*/*.c)))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))
BENCH_SRC:= $(sort $(wildcard bench/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_BIN:= $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
DEPS     := $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)

.PHONY: all deps test test-c test-long demo bench fuzz clean
all: $(BUILD)/clens $(BUILD)/libclens.a $(TEST_BIN)

deps:
	@bash tools/install-deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/libclens.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	ar rcs $@ $^

$(BUILD)/clens: $(CLI_OBJ) $(BUILD)/libclens.a
	$(CC) $(CFLAGS_ALL) $(LDSAN) -o $@ $(CLI_OBJ) $(BUILD)/libclens.a $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libclens.a tests/unit/testutil.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests/unit $(LDSAN) -o $@ $< $(BUILD)/libclens.a $(LIBS) -lcmocka

$(BUILD)/bench/%: bench/%.c $(BUILD)/libclens.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDSAN) -o $@ $< $(BUILD)/libclens.a $(LIBS)

# The whole suite: installs, builds, runs C unit tests and the reference /
# integration suites, then the C tests again under ASan + UBSan.
test: deps
	@$(MAKE) --no-print-directory all
	@bash tests/run.sh

# C unit tests only (used for the sanitizer pass).
test-c: all
	@bash tests/run.sh --c-only

test-long: deps all
	@bash tests/run.sh --long

# The demo installs and builds only what build/clens needs (no torch, no npm).
demo:
	@bash tools/install-deps.sh --build-only
	@$(MAKE) --no-print-directory $(BUILD)/clens
	@CLENS=$(BUILD)/clens bash tools/demo.sh

bench: deps all $(BENCH_BIN)
	@bash bench/run.sh

fuzz: deps
	@bash tests/fuzz/run.sh

clean:
	rm -rf $(BUILD)

-include $(DEPS)
