# orderflow: `make run` starts the local system, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000
# The local processor: lambda (the Chalice SQS handler, as in the cloud), worker (Fargate-style)
# or none (no consumer, no outbox sweeper), e.g. `make services PROCESSOR=none`.
PROCESSOR ?= lambda

.PHONY: venv run services test lint package bench clean chaos openapi capacity spectral browser

# The repository itself is installed editable (db, processor), so `chalice local` and any other
# tool run from the venv import them without PYTHONPATH; pyproject.toml changes reinstall it.
$(STAMP): requirements.txt chalice_app/requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade 'pip<26.3'  # chalice 1.34 requires pip<26.3
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-build-isolation --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)  ## the whole system on http://127.0.0.1:$(PORT)
	$(PY) -m processor local --port $(PORT) --processor $(PROCESSOR)

services: $(STAMP)  ## everything but the API, for `cd chalice_app && chalice local`
	$(PY) -m processor local --services-only --port $(PORT) --processor $(PROCESSOR)

# ruff everywhere; mypy --strict on processor/, db/, chalice_app/ and pulumi/ (pyproject.toml).
# A cold mypy cache takes about a minute (pulumi-aws's stubs); .mypy_cache makes it seconds.
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

test: $(STAMP) lint spectral browser
	$(PY) -m pytest

# Spectral (npm) lints the OpenAPI document in tests/reliability/test_spectral.py. Installed
# from the lock file into tools/spectral/ (git-ignored node_modules); npm itself comes from
# Debian when missing and we are root (CI), else the test says how to get it and skips.
SPECTRAL_STAMP := tools/spectral/node_modules/.installed
$(SPECTRAL_STAMP): tools/spectral/package.json tools/spectral/package-lock.json
	@command -v npm >/dev/null || [ "$$(id -u)" != 0 ] || \
		{ apt-get update -qq && apt-get install -y -qq npm >/dev/null; }
	@if command -v npm >/dev/null; then cd tools/spectral && npm ci --silent && touch ../../$@; \
	else echo "npm not found: the Spectral test will skip (install Node.js and npm)"; fi

spectral: $(SPECTRAL_STAMP)

# Headless Chromium for the /docs browser test (tests/reliability/test_api_docs.py); Debian's
# package, installed when missing and we are root (CI), else that test skips outside CI.
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || [ "$$(id -u)" != 0 ] || \
		{ apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; }

# chalice only bundles its project dir, so db/ and processor/ are copied into vendor/ of a
# throwaway copy of chalice_app/; the source tree is never modified. processor/devstack/ (the
# local supervisor, emulators, embedded database) is development only and never ships.
package: $(STAMP)  ## Lambda deployment zip + SAM template in build/package
	rm -rf build/src build/package
	mkdir -p build/src
	cp -R chalice_app/. build/src/
	mkdir -p build/src/vendor
	cp -R db processor build/src/vendor/
	rm -rf build/src/vendor/processor/devstack
	cd build/src && ../../$(PY) -m chalicelib.docs vendor vendor
	find build/src -name __pycache__ -type d -prune -exec rm -rf {} +
	cd build/src && AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} \
		../../$(VENV)/bin/chalice package --stage $${STAGE:-dev} ../package
	# Ship bytecode: Lambda's code directory is read-only, so without .pyc files every cold
	# start compiles every module. Fixed timestamps keep the zip identical for identical code.
	rm -rf build/bundle && mkdir -p build/bundle
	cd build/bundle && unzip -q ../package/deployment.zip
	$(PY) -m compileall -q -j 0 --invalidation-mode unchecked-hash build/bundle
	find build/bundle -exec touch -h -d 1980-01-02T00:00:00 {} +
	rm build/package/deployment.zip
	cd build/bundle && zip -q -r -X -D ../package/deployment.zip .
	@ls -l build/package

bench: $(STAMP)
	$(PY) -m bench

capacity: $(STAMP)  ## CAPACITY.md from BENCHMARKS.json, bench/prices.py and Pulumi.*.yaml
	$(PY) -m bench.capacity

chaos: $(STAMP)  ## fault injection at scale; rewrites RELIABILITY.md (fails on any violation)
	$(PY) -m tests.reliability.chaos run --scale large --output RELIABILITY.md

openapi: $(STAMP)  ## regenerate docs/openapi.json from the pydantic models
	$(PY) -m processor.api.openapi docs/openapi.json

clean:
	rm -rf build .pytest_cache .ruff_cache
