# vmseal - the commands people type. CMake presets do the real work
# (CMakePresets.json); this file only strings them together.
#
#   make            build the dev preset (gcc, -O1 -g)
#   make run        build the release preset and run vmseal on its defaults
#   make test       build the asan preset and run the whole suite under CTest
#   make bench      build the release preset and run the benchmarks
#   make fuzz       build the fuzz preset and fuzz each target for a while
#   make format     clang-format the C sources in place
#
# make run and make test install missing Debian packages first
# (scripts/deps.sh, which needs root or sudo).

FUZZ_SECONDS ?= 300
CMAKE ?= cmake
CTEST ?= ctest

.PHONY: all deps build release run test bench fuzz format clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@$(CMAKE) --preset dev >/dev/null
	@$(CMAKE) --build --preset dev

release: deps
	@$(CMAKE) --preset release >/dev/null
	@$(CMAKE) --build --preset release

run: release
	@scripts/run.sh

test: deps
	@$(CMAKE) --preset asan >/dev/null
	@$(CMAKE) --build --preset asan
	@scripts/test.sh asan

bench: release
	@bench/run.sh build/release

fuzz: deps
	@$(CMAKE) --preset fuzz >/dev/null
	@$(CMAKE) --build --preset fuzz
	@for t in build/fuzz/tests/fuzz/fuzz_*; do \
	  name=$$(basename $$t); \
	  echo "== $$name for $(FUZZ_SECONDS)s"; \
	  scripts/fuzz-run.sh $$t tests/fuzz/corpus/$${name#fuzz_} $(FUZZ_SECONDS) || exit 1; \
	done

format:
	@find src tests bench -name '*.[ch]' ! -name crypto_vectors.h -print0 | \
	  xargs -0 clang-format -i --style=file

clean:
	rm -rf build
