# pinrelay: the two commands are `make demo` and `make test`; everything else supports them.
SHELL := /bin/bash
CARGO ?= cargo
PYENV := $(CURDIR)/target/pyenv
PY := $(PYENV)/bin/python
# Test tools (moto_server, cfn-lint) live in a private virtualenv, installed on first use.
export PATH := $(PYENV)/bin:$(PATH)
# Where cargo puts the binaries, as cargo itself decides (CARGO_TARGET_DIR, .cargo/config.toml).
TARGET_DIR = $(shell python3 scripts/cargo_target.py)

.PHONY: demo test fmt-check clippy unit-and-integration lambda-path template-lint cdk-parity cdk-deps tools browser-deps bench chaos chaos-lambda package lambda-binaries bundle-sizes init-times cost fuzz clean release release-upload release-template-check

## The relay on this machine, fed Shopify's sample webhooks, printing what goes to Pinterest.
demo:
	$(CARGO) build --quiet -p pinrelay-cli
	python3 scripts/demo.py --bin $(TARGET_DIR)/debug/pinrelay

## Everything CI checks: format, lints, unit and integration tests, the Lambda path as a black box,
## template lint (template.yaml and the release's dist/template.yaml), CDK/SAM parity.
test: fmt-check clippy unit-and-integration lambda-path template-lint cdk-parity

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

unit-and-integration: tools browser-deps
	$(CARGO) test --workspace --all-features

## The AWS path as a black box (about 30 s): the real ingest and dispatch binaries under the Runtime
## API emulator, on moto behind scripts/moto_limits.py, a fake Pinterest that hangs past dispatch's
## request timeout (in doubt), `pinrelay replay --in-doubt` twice, and messages and records of the
## previous format.
lambda-path: tools
	$(CARGO) build --quiet -p ingest -p dispatch -p pinrelay-cli
	$(PY) scripts/lambda_path.py --ingest $(TARGET_DIR)/debug/ingest --dispatch $(TARGET_DIR)/debug/dispatch --cli $(TARGET_DIR)/debug/pinrelay

template-lint: tools release-template-check
	cfn-lint template.yaml

## The release template (what `make release` writes to dist/template.yaml) from template.yaml with
## a dummy bucket, without building anything: the transformation, the SAM translator's expansion of
## each function to its S3 bundle, the SAR check, and cfn-lint (a few seconds).
release-template-check: tools
	$(PY) scripts/release.py --template-only --bucket example-bucket --out target/release-check
	cfn-lint target/release-check/template.yaml

## The CDK app (infra/cdk) must synthesize the stack template.yaml transforms to, resource by
## resource (offline: bundling skipped, no AWS credentials).
cdk-parity: tools cdk-deps
	cd infra/cdk && npx tsc
	$(PY) infra/cdk/test/parity.py

## The CDK app's npm dependencies, exactly as infra/cdk/package-lock.json pins them.
cdk-deps: infra/cdk/node_modules/.installed

infra/cdk/node_modules/.installed: infra/cdk/package-lock.json
	cd infra/cdk && npm ci --no-audit --no-fund
	touch $@

tools: $(PYENV)/.installed

## The storefront pixel test's browser: Debian's Chromium (apt) and the pinned playwright-core (npm).
## PINRELAY_SKIP_BROWSER_TESTS=1 skips both the install and the test.
browser-deps:
	@if [ "$$PINRELAY_SKIP_BROWSER_TESTS" = 1 ]; then echo "browser test skipped (PINRELAY_SKIP_BROWSER_TESTS=1)"; \
	else scripts/install-browser-test-deps.sh; fi

$(PYENV)/.installed: scripts/requirements-test.txt
	python3 -m venv $(PYENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
	touch $@

## Criterion benchmarks; figures go to BENCHMARKS.md.
bench:
	$(CARGO) bench -p pinrelay
	$(CARGO) build --release -p pinrelay-cli
	python3 scripts/bench_serve.py --bin $(TARGET_DIR)/release/pinrelay

## Chaos figures: SIGKILLs of serve and a seeded Pinterest fault mix; lost and duplicated events.
## Not part of `make test` (about 30 s). CHAOS_ARGS passes options, e.g. CHAOS_ARGS="--seed 14 --keep".
chaos:
	$(CARGO) build --release -p pinrelay-cli
	python3 scripts/chaos.py --bin $(TARGET_DIR)/release/pinrelay $(CHAOS_ARGS)

## Chaos on the AWS path: ingest and dispatch (release) under the emulator on moto, SIGKILLs of
## dispatch mid-batch, the seeded Pinterest fault mix, SQS visibility and receive counts, then
## `pinrelay replay --in-doubt` twice. Not part of `make test` (a few minutes); figures in BENCHMARKS.md.
## CHAOS_ARGS passes options, e.g. CHAOS_ARGS="--orders 300 --seed 14 --keep".
chaos-lambda: tools
	$(CARGO) build --release -p ingest -p dispatch -p pinrelay-cli
	$(PY) scripts/chaos_lambda.py --ingest $(TARGET_DIR)/release/ingest --dispatch $(TARGET_DIR)/release/dispatch --cli $(TARGET_DIR)/release/pinrelay $(CHAOS_ARGS)

## Build the Lambda bundles (ingest, dispatch, watch) with SAM + cargo-lambda (x86_64 here; ARCH=arm64 needs the aarch64 target).
# The build tools get their own virtualenv: aws-sam-cli would otherwise move the pinned cfn-lint.
ARCH ?= x86_64
PKGENV := $(CURDIR)/target/pyenv-package
package:
	python3 -m venv $(PKGENV)
	$(PKGENV)/bin/python -m pip install --quiet --disable-pip-version-check -r scripts/requirements-package.txt
	PATH=$(PKGENV)/bin:$$PATH SAM_CLI_TELEMETRY=0 sam build --parameter-overrides Architecture=$(ARCH)
	scripts/check_package.sh

## The Lambda binaries as cargo-lambda builds them for x86_64 (each package alone, so each
## function links only the library features it enables).
LAMBDA_TARGET ?= x86_64-unknown-linux-gnu
LAMBDA_BIN := target/$(LAMBDA_TARGET)/release
lambda-binaries:
	$(CARGO) build --release --target $(LAMBDA_TARGET) -p ingest
	$(CARGO) build --release --target $(LAMBDA_TARGET) -p dispatch
	$(CARGO) build --release --target $(LAMBDA_TARGET) -p watch

## Zipped bundle sizes (fails above 3 MiB); figures in BENCHMARKS.md.
bundle-sizes:
	scripts/bundle_sizes.sh $(LAMBDA_TARGET)

## Init of each function: process start to its first Runtime API `next` (fails above 15 ms).
init-times: lambda-binaries
	python3 scripts/init_time.py --ingest $(LAMBDA_BIN)/ingest --dispatch $(LAMBDA_BIN)/dispatch

## $ per million orders, counted from N orders through both binaries on moto (README's table).
cost: tools lambda-binaries
	$(PY) scripts/cost.py --ingest $(LAMBDA_BIN)/ingest --dispatch $(LAMBDA_BIN)/dispatch --moto $(PYENV)/bin/moto_server

## Deploy without Rust: dist/ with the Lambda bundles (ingest, dispatch, watch) for x86_64 and
## arm64, the Linux CLI archives, template.yaml reading the bundles from s3://BUCKET/PREFIX/, and
## SHA256SUMS. Not part of `make test` (a release build of 8 binaries). No AWS credentials needed;
## `make release-upload` copies the bundles to the bucket. PREFIX defaults to pinrelay/<version>.
RELENV := $(CURDIR)/target/pyenv-release
release: tools $(RELENV)/.installed
	@if [ -z "$(BUCKET)" ]; then echo "make release needs BUCKET=<S3 bucket> (and optionally PREFIX=<key prefix>), e.g. make release BUCKET=my-bucket" >&2; exit 2; fi
	PATH=$(RELENV)/bin:$$PATH $(PY) scripts/release.py --bucket $(BUCKET) $(if $(PREFIX),--prefix $(PREFIX)) --out dist
	cfn-lint dist/template.yaml
	cd dist && sha256sum -c --quiet SHA256SUMS

## Copies dist/'s bundles, template.yaml and SHA256SUMS to the bucket and prefix `make release` was
## given (AWS CLI and credentials needed).
release-upload:
	$(PY) scripts/release.py --upload --out dist

$(RELENV)/.installed: scripts/requirements-release.txt
	python3 -m venv $(RELENV)
	$(RELENV)/bin/python -m pip install --quiet --disable-pip-version-check -r scripts/requirements-release.txt
	touch $@

## Bounded fuzzing of translate, envelope decoding and the browser parser (FUZZ_SECONDS each).
fuzz:
	scripts/fuzz.sh

clean:
	$(CARGO) clean
	rm -rf .aws-sam dist
