# clens build. `make` builds the library, the CLI and the tests into $(BUILD).
# `make test` installs missing packages, builds, runs every suite, then reruns
# the C tests under AddressSanitizer + UndefinedBehaviorSanitizer.
# `make demo` runs the main job; `make bench` the benchmarks.

CC      ?= gcc
BUILD   ?= build
SAN     ?= 0
# -Wvla: no stack arrays sized at run time (a caller's n_seq, max_rows or
# site count would size them); scratch is owned by the context instead.
# Portable baseline; faster paths are chosen at run time from CPUID.
ARCH    ?= -march=x86-64-v2 -mtune=generic
OPT     ?= -O2
# assert() stays on in every build (no -DNDEBUG): the library's assertions are
# internal preconditions of the forward pass and the patcher (shapes, rows,
# layers, buffers), a few integer compares per row or per call, and a broken
# one should stop at the assertion, not as silently wrong numbers
# (docs/reliability.md). Building with CFLAGS=-DNDEBUG removes them.
CFLAGS_BASE = -std=c11 $(OPT) -g $(ARCH) -Wall -Wextra -Wvla -Werror -fopenmp \
              -D_GNU_SOURCE -Iinclude -Isrc
ifeq ($(SAN),1)
  CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDSAN = -fsanitize=address,undefined
  SO_NOUNDEF =
else
  # every symbol of libclens.so resolved at link time (sanitizer runtimes are not, with clang)
  SO_NOUNDEF = -Wl,--no-undefined
endif
CFLAGS_ALL = $(CFLAGS_BASE) $(CFLAGS)
LIBS    = -ldnnl -lopenblas -llinear -lpcre2-8 -lutf8proc -ljansson -lm -lpthread
# GSL for the dynamics fits (its cblas calls resolve to OpenBLAS's cblas, linked above)
LIBS   += -lgsl

# Every layer folder under src/ except the CLI is the library.
LIB_SRC  := $(sort $(filter-out src/cli/%,$(wildcard src/*/*.c)))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))
BENCH_SRC:= $(sort $(wildcard bench/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_BIN:= $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
# The shared library: the same sources as -fPIC objects with hidden
# visibility, so only the declarations marked CLENS_API in include/clens.h
# are exported; soname libclens.so.MAJOR, file libclens.so.MAJOR.MINOR.PATCH.
VERSION  := $(shell sed -n 's/^\#define CLENS_VERSION "\(.*\)"/\1/p' include/clens.h)
SOMAJOR  := $(firstword $(subst ., ,$(VERSION)))
SONAME   := libclens.so.$(SOMAJOR)
PIC_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj-pic/%.o)
DEPS     := $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(PIC_OBJ:.o=.d)

.PHONY: all deps test test-c test-long demo bench fuzz clean python
# (the sanitizer build skips the shared library: nothing runs it, and it would double the build)
SHARED_LIB := $(if $(filter 1,$(SAN)),,$(BUILD)/libclens.so)
# The benchmarks too: a library change must not leave stale bench binaries
# behind for an A/B run (it did once), nor break `make bench` unseen.
all: $(BUILD)/clens $(BUILD)/libclens.a $(SHARED_LIB) $(TEST_BIN) $(BENCH_BIN)

deps:
	@bash tools/install-deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/libclens.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	ar rcs $@ $^

$(BUILD)/obj-pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -fPIC -fvisibility=hidden -MMD -MP -c $< -o $@

$(BUILD)/libclens.so.$(VERSION): $(PIC_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDSAN) -shared -Wl,-soname,$(SONAME) $(SO_NOUNDEF) -o $@ $^ $(LIBS)

$(BUILD)/libclens.so: $(BUILD)/libclens.so.$(VERSION)
	ln -sf libclens.so.$(VERSION) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $@

# The Python binding (python/, docs/python.md): installs the package for
# /usr/bin/python3 offline, for the current user; it loads $(BUILD)/libclens.so.
PYTHON ?= /usr/bin/python3
python: $(BUILD)/libclens.so
	$(PYTHON) -m pip install --no-build-isolation --no-index --user --break-system-packages ./python
	rm -rf python/build python/clens.egg-info

$(BUILD)/clens: $(CLI_OBJ) $(BUILD)/libclens.a
	$(CC) $(CFLAGS_ALL) $(LDSAN) -o $@ $(CLI_OBJ) $(BUILD)/libclens.a $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libclens.a tests/unit/testutil.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests/unit $(LDSAN) -o $@ $< $(BUILD)/libclens.a $(LIBS) -lcmocka

$(BUILD)/bench/%: bench/%.c bench/bench_mem.h $(BUILD)/libclens.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDSAN) -o $@ $< $(BUILD)/libclens.a $(LIBS)

# The whole suite: installs, builds (all: the benchmarks too), runs C unit
# tests and the reference / integration suites, then the C tests again under
# ASan + UBSan.
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

bench: deps all
	@bash bench/run.sh

fuzz: deps
	@bash tests/fuzz/run.sh

clean:
	rm -rf $(BUILD)

-include $(DEPS)
