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
else
CFLAGS_BASE += -Wno-unknown-pragmas
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

.PHONY: all test debug clean bench fuzz
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

# Fuzzing (clang's libFuzzer): `make fuzz FUZZ_TIME=30` runs every target in fuzz/ for that many
# seconds from the seed corpus in fuzz/corpus/<target>; findings land in build-fuzz/.
# FUZZ_RUNS=N stops each target after N inputs instead (with FUZZ_TIME=0: no time limit), and
# FUZZ_ONLY="npy png" runs only the targets named.
FUZZ_CC    ?= clang
FUZZ_TIME  ?= 30
FUZZ_RUNS  ?= -1
FUZZ_ONLY  ?=
FUZZ_FLAGS  = -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -Iinclude -Isrc -Ifuzz -fno-omit-frame-pointer \
              -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_SRC   := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BIN   := $(FUZZ_SRC:fuzz/%.c=build-fuzz/%)
FUZZ_OBJ   := $(LIB_SRC:%.c=build-fuzz/%.o)

build-fuzz/%.o: %.c $(wildcard include/*.h src/*/*.h src/*/*/*.h)
	@mkdir -p $(dir $@)
	@echo "CC (fuzz) $<"
	@$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

# the command-line target also links the subcommands (everything in cli/ but main)
FUZZ_CLI_OBJ := $(filter-out build-fuzz/cli/main.o,$(CLI_SRC:%.c=build-fuzz/%.o))

build-fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_common.h $(FUZZ_OBJ) $(FUZZ_CLI_OBJ)
	@echo "LD $@"
	@$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $< $(FUZZ_OBJ) $(FUZZ_CLI_OBJ) -o $@ -lm

# keep the sanitizer-built objects between runs
.SECONDARY: $(FUZZ_OBJ) $(FUZZ_CLI_OBJ)

FUZZ_RUN_BIN := $(if $(FUZZ_ONLY),$(FUZZ_ONLY:%=build-fuzz/fuzz_%),$(FUZZ_BIN))

fuzz: $(FUZZ_RUN_BIN)
	@for t in $(FUZZ_RUN_BIN); do \
	    name=$${t#build-fuzz/fuzz_}; mkdir -p build-fuzz/corpus/$$name build-fuzz/findings; \
	    echo "fuzzing $$name: at most $(FUZZ_TIME) s and $(FUZZ_RUNS) inputs (0 and -1: no limit)"; \
	    ./$$t -max_total_time=$(FUZZ_TIME) -runs=$(FUZZ_RUNS) -max_len=65536 -close_fd_mask=3 -print_final_stats=1 -artifact_prefix=$(CURDIR)/build-fuzz/findings/$$name- \
	        $(CURDIR)/build-fuzz/corpus/$$name $(CURDIR)/fuzz/corpus/$$name 2>build-fuzz/$$name.log || { tail -40 build-fuzz/$$name.log; exit 1; }; \
	    grep -E "stat::number_of_executed_units|stat::peak_rss" build-fuzz/$$name.log | tr '\n' ' '; echo; \
	done

debug:
	$(MAKE) BUILD=build-debug OPT=-O1 CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	        LDLIBS="-lm -fsanitize=address,undefined $(if $(filter 1,$(OMP)),-fopenmp)" test

clean:
	rm -rf build build-debug build-fuzz
