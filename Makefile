# The two commands a newcomer needs, on a fresh machine:
#   make demo   the whole pipeline on this machine (no Docker), with a summary
#   make test   formatting, lints, unit and integration tests (the emulator installs itself)
SHELL := /bin/bash
CARGO ?= cargo
# Debug info doubles target/ and slows cold builds; tests do not need it.
export CARGO_PROFILE_DEV_DEBUG ?= 0

.PHONY: demo photos test lint iac web browser build package publish-web bench up down clean

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

test: lint iac web
	$(CARGO) build --bins
	$(CARGO) test --workspace --no-fail-fast

# The web client's tooling: its unit tests (Node), Playwright (pinned in web/package-lock.json,
# no browser download) and Debian's chromium for tests/web.rs. Chromium is Debian's current
# build, not a pinned version: Debian replaces it with every security update, so a pinned
# version would vanish from the mirror.
web: browser
	cd web && npm ci --no-audit --no-fund --loglevel=error
	cd web && npm test --silent

browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || \
	      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; }; \
	  else echo "the browser tests need chromium: apt-get install chromium (or set CHROMIUM_PATH)"; fi; \
	fi

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

# The README's deploy path, up to `sam deploy`: `sam validate --lint` and `sam build`, which
# builds each function with cargo-lambda and Zig for arm64 into .aws-sam/build/<Function>/.
# SAM CLI, cargo-lambda and Zig come pinned from PyPI (local/lambda-requirements.txt).
LAMBDA_VENV := .local/lambda-venv
SAM := PATH="$(CURDIR)/$(LAMBDA_VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 $(LAMBDA_VENV)/bin/sam
package: $(LAMBDA_VENV)/.installed
	rustup target add aarch64-unknown-linux-gnu
	$(SAM) validate --lint
	$(SAM) build
	@for f in ResizeFunction LikeCounterFunction NotifierFunction RelayFunction ApiFunction; do \
	  printf '%-20s bootstrap %9s bytes (%s)\n' $$f $$(stat -c %s .aws-sam/build/$$f/bootstrap) \
	    "$$(file -b .aws-sam/build/$$f/bootstrap 2>/dev/null | cut -d, -f1-2)"; \
	done

$(LAMBDA_VENV)/.installed: local/lambda-requirements.txt
	python3 -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/pip install --quiet --disable-pip-version-check -r local/lambda-requirements.txt
	touch $@

# The web client on AWS, after `sam deploy`: web/ (without its test tooling) and a config.json
# made from the stack's outputs go to the WebBucket, then CloudFront is invalidated. Needs the
# AWS CLI and credentials; STACK and REGION as deployed.
STACK ?= snapglow
REGION ?= us-east-1
publish-web:
	@out() { aws cloudformation describe-stacks --region $(REGION) --stack-name $(STACK) \
	  --query "Stacks[0].Outputs[?OutputKey=='$$1'].OutputValue" --output text; }; \
	bucket=$$(out WebBucketName) && api=$$(out ApiUrl) && client=$$(out UserPoolClientId) && dist=$$(out WebDistributionId) && \
	mkdir -p .local && \
	printf '{"apiUrl":"%s","cognito":{"endpoint":"https://cognito-idp.%s.amazonaws.com/","clientId":"%s","region":"%s"},"demoUsers":[]}\n' \
	  "$$api" "$(REGION)" "$$client" "$(REGION)" > .local/config.json && \
	aws s3 sync web/ "s3://$$bucket/" --region $(REGION) --delete --exclude 'node_modules/*' --exclude 'tests/*' \
	  --exclude 'package*.json' --exclude '.gitignore' --exclude 'README.md' --exclude 'config.json' && \
	aws s3 cp .local/config.json "s3://$$bucket/config.json" --region $(REGION) --cache-control no-cache && \
	aws cloudfront create-invalidation --distribution-id "$$dist" --paths '/*' >/dev/null && \
	echo "published: $$(out SiteUrl)"

build:
	$(CARGO) build --release --bins

# Benchmarks with their baseline in the same run; reports go to bench/results/.
# The render benchmark needs real photographs and the tools it is compared with.
BENCH_PACKAGES := lomiri-wallpapers gnome-backgrounds libvips-tools imagemagick gnuplot-nox time util-linux
bench:
	@if ! dpkg -s $(BENCH_PACKAGES) >/dev/null 2>&1; then \
	  apt-get install -y -qq --no-install-recommends $(BENCH_PACKAGES) >/dev/null 2>&1 || \
	  { apt-get update -qq && apt-get install -y -qq --no-install-recommends $(BENCH_PACKAGES); }; fi
	cd bench/peers/sharp && npm ci --no-audit --no-fund --loglevel=error
	$(CARGO) run --release -p snapglow-bench -- render --repeats $${BENCH_REPEATS:-5}
	$(CARGO) run --release -p snapglow-bench -- likes --events $${BENCH_EVENTS:-2000} --repeats $${BENCH_REPEATS:-3}
	$(CARGO) run --release -p snapglow-bench -- shard --events $${BENCH_SHARD_EVENTS:-100000} --batches 100,1000
	$(CARGO) run --release -p snapglow-bench -- notifier
	$(CARGO) run --release -p snapglow-bench -- api --likes $${BENCH_API_LIKES:-500} --repeats $${BENCH_REPEATS:-3}
	$(CARGO) run --release -p snapglow-bench -- drills --images $${BENCH_DRILL_IMAGES:-40} --likes $${BENCH_DRILL_LIKES:-2000}

up:
	$(CARGO) local up

down:
	$(CARGO) local down

clean: down
	rm -rf .local
