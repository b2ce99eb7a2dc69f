# The two commands a newcomer needs, on a fresh machine:
#   make demo   the whole pipeline on this machine (no Docker), with a summary
#   make test   formatting, lints, unit and integration tests (the emulator installs itself)
SHELL := /bin/bash
CARGO ?= cargo
# Debug info doubles target/ and slows cold builds; tests do not need it.
export CARGO_PROFILE_DEV_DEBUG ?= 0

.PHONY: demo test lint build bench up down clean

demo:
	$(CARGO) local demo

test: lint
	$(CARGO) build --bins
	$(CARGO) test --workspace --no-fail-fast

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

build:
	$(CARGO) build --release --bins

# Benchmarks with their baseline in the same run; reports go to bench/results/.
bench:
	$(CARGO) run --release -p snapglow-bench -- likes --events $${BENCH_EVENTS:-5000} --repeats $${BENCH_REPEATS:-3}
	$(CARGO) run --release -p snapglow-bench -- notifier

up:
	$(CARGO) local up

down:
	$(CARGO) local down

clean: down
	rm -rf .local
