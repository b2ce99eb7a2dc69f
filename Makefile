# The two commands a newcomer needs, on a fresh machine:
#   make demo   the whole pipeline on this machine (no Docker), with a summary
#   make test   formatting, lints, unit and integration tests (the emulator installs itself)
SHELL := /bin/bash
CARGO ?= cargo
# Debug info doubles target/ and slows cold builds; tests do not need it.
export CARGO_PROFILE_DEV_DEBUG ?= 0

.PHONY: demo photos test lint iac build package bench up down clean

demo: photos
	$(CARGO) local demo

# Real photographs for the demo: Debian's lomiri-wallpapers (2.6 MB). Without root or apt the
# demo generates its images instead.
photos:
	@if ! dpkg -s lomiri-wallpapers >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing lomiri-wallpapers for the demo's photographs"; \
	  { apt-get install -y -qq --no-install-recommends lomiri-wallpapers || \
	    { apt-get update -qq && apt-get install -y -qq --no-install-recommends lomiri-wallpapers; }; } >/dev/null 2>&1 || \
	  echo "could not install lomiri-wallpapers: the demo generates its images"; \
	fi

test: lint iac
	$(CARGO) build --bins
	$(CARGO) test --workspace --no-fail-fast

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# template.yaml: cfn-lint (what `sam validate --lint` runs) and checkov (security); each checkov
# suppression carries its reason in the template, next to the resource.
IAC_VENV := .local/iac-venv
iac: $(IAC_VENV)/.installed
	$(IAC_VENV)/bin/cfn-lint template.yaml
	$(IAC_VENV)/bin/checkov --file template.yaml --framework cloudformation --compact --quiet --skip-download

$(IAC_VENV)/.installed: local/iac-requirements.txt
	python3 -m venv $(IAC_VENV)
	$(IAC_VENV)/bin/pip install --quiet --disable-pip-version-check -r local/iac-requirements.txt
	touch $@

# What `sam build` (BuildMethod: rust-cargolambda) does, without SAM: arm64 bootstrap zips.
LAMBDA_VENV := .local/lambda-venv
package: $(LAMBDA_VENV)/.installed
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/$(LAMBDA_VENV)/bin:$$PATH" $(CARGO) lambda build --release --arm64 --output-format zip \
	  --bin resize --bin like-counter --bin notifier --bin relay --bin api
	@for f in resize like-counter notifier relay api; do \
	  printf '%-14s bootstrap %9s bytes, bootstrap.zip %9s bytes\n' $$f \
	    $$(python3 -c "import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).getinfo('bootstrap').file_size)" target/lambda/$$f/bootstrap.zip) \
	    $$(stat -c %s target/lambda/$$f/bootstrap.zip); \
	done

$(LAMBDA_VENV)/.installed:
	python3 -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/pip install --quiet --disable-pip-version-check cargo-lambda==1.9.2 ziglang==0.17.0
	touch $@

build:
	$(CARGO) build --release --bins

# Benchmarks with their baseline in the same run; reports go to bench/results/.
# The render benchmark needs real photographs and the tools it is compared with.
BENCH_PACKAGES := lomiri-wallpapers gnome-backgrounds libvips-tools imagemagick gnuplot-nox time util-linux
bench:
	@if ! dpkg -s $(BENCH_PACKAGES) >/dev/null 2>&1; then \
	  apt-get install -y -qq --no-install-recommends $(BENCH_PACKAGES) >/dev/null 2>&1 || \
	  { apt-get update -qq && apt-get install -y -qq --no-install-recommends $(BENCH_PACKAGES); }; fi
	$(CARGO) run --release -p snapglow-bench -- render --repeats $${BENCH_REPEATS:-5}
	$(CARGO) run --release -p snapglow-bench -- likes --events $${BENCH_EVENTS:-2000} --repeats $${BENCH_REPEATS:-3}
	$(CARGO) run --release -p snapglow-bench -- notifier
	$(CARGO) run --release -p snapglow-bench -- api --likes $${BENCH_API_LIKES:-500} --repeats $${BENCH_REPEATS:-3}
	$(CARGO) run --release -p snapglow-bench -- drills --images $${BENCH_DRILL_IMAGES:-40} --likes $${BENCH_DRILL_LIKES:-2000}

up:
	$(CARGO) local up

down:
	$(CARGO) local down

clean: down
	rm -rf .local
