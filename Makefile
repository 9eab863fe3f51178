# A thin wrapper over Meson + Ninja. Two build trees:
#   build/       release build: `make`, `make run`, the benchmark
#   build-asan/  AddressSanitizer + UBSan debug build: what `make test` runs
BUILD      ?= build
TEST_BUILD ?= build-asan
LISTEN     ?= 127.0.0.1:8080
DB         ?= ./hookd.db

.PHONY: all deps run test unit clean bench chaos fuzz format

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=release

$(TEST_BUILD)/build.ninja:
	meson setup $(TEST_BUILD) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

deps:
	@scripts/deps.sh build

run: deps all
	./$(BUILD)/hookd serve --listen $(LISTEN) --db $(DB)

test:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory $(TEST_BUILD)/build.ninja >/dev/null
	@ninja -C $(TEST_BUILD) >/dev/null
	@python3 tests/run.py --build $(TEST_BUILD)

clean:
	rm -rf $(BUILD) $(TEST_BUILD) build-fuzz

# The crash loop at length: N kill -9s under a stream of publishes.
N ?= 1000
chaos:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory $(TEST_BUILD)/build.ninja >/dev/null
	@ninja -C $(TEST_BUILD) >/dev/null
	@python3 tests/chaos.py --build $(TEST_BUILD) --kills $(N)

# The benchmark (see bench/run and bench/RESULTS.md).
bench:
	@bench/run

# libFuzzer targets (clang): each runs FUZZ_SECONDS on its checked-in seed
# corpus; new inputs go to build-fuzz/corpus, crashers to build-fuzz/crashes.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = fuzz_json_body fuzz_url fuzz_time fuzz_query fuzz_retry_after fuzz_flags
build-fuzz/build.ninja:
	CC=clang meson setup build-fuzz --buildtype=debugoptimized -Dfuzz=true \
	    -Db_sanitize=address,undefined -Db_lundef=false

fuzz:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory build-fuzz/build.ninja >/dev/null
	@ninja -C build-fuzz $(addprefix fuzz/,$(FUZZ_TARGETS)) >/dev/null
	@mkdir -p build-fuzz/crashes
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p build-fuzz/corpus/$$t; \
	    echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
	    build-fuzz/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=build-fuzz/crashes/$$t- build-fuzz/corpus/$$t fuzz/corpus/$$t \
	        2>&1 | grep -E "^(stat::number_of_executed_units|stat::peak_rss|==.*ERROR|SUMMARY)" || exit 1; \
	done
