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
