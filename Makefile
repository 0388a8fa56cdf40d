# diffuse: `make` builds build/libdiffuse.a and build/diffuse; `make test` builds and runs every test.
# Knobs: OMP=0 builds without OpenMP; `make debug` builds with AddressSanitizer + UBSan into build-debug/.

CC      ?= cc
OMP     ?= 1
BUILD   ?= build
OPT     ?= -O2
CFLAGS_BASE = -std=c11 -D_POSIX_C_SOURCE=200809L $(OPT) -g -Wall -Wextra -Wpedantic -Werror \
              -Wno-unused-parameter -Wno-format-truncation -Iinclude -Isrc -fno-math-errno
LDLIBS  = -lm
ifeq ($(OMP),1)
CFLAGS_BASE += -fopenmp
LDLIBS  += -fopenmp
endif
CFLAGS  ?=
ALL_CFLAGS = $(CFLAGS_BASE) $(CFLAGS)

LIB_SRC  := $(sort $(wildcard src/*/*.c src/*/*/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_SRC  := $(sort $(wildcard cli/*.c))
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all test debug clean bench
all: $(BUILD)/diffuse

$(BUILD)/%.o: %.c $(wildcard include/*.h src/*/*.h src/*/*/*.h cli/*.h)
	@mkdir -p $(dir $@)
	@echo "CC $<"
	@$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libdiffuse.a: $(LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(BUILD)/diffuse: $(CLI_OBJ) $(BUILD)/libdiffuse.a
	@echo "LD $@"
	@$(CC) $(ALL_CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/test.h $(BUILD)/libdiffuse.a
	@mkdir -p $(dir $@)
	@echo "LD $@"
	@$(CC) $(ALL_CFLAGS) $< $(BUILD)/libdiffuse.a -o $@ $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libdiffuse.a
	@mkdir -p $(dir $@)
	@echo "LD $@"
	@$(CC) $(ALL_CFLAGS) $< $(BUILD)/libdiffuse.a -o $@ $(LDLIBS)

bench: $(BENCH_BIN) $(BUILD)/diffuse

test: $(TEST_BIN) $(BUILD)/diffuse
	@DIFFUSE=$(BUILD)/diffuse sh tests/run.sh $(TEST_BIN)

debug:
	$(MAKE) BUILD=build-debug OPT=-O1 CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	        LDLIBS="-lm -fsanitize=address,undefined $(if $(filter 1,$(OMP)),-fopenmp)" test

clean:
	rm -rf build build-debug
