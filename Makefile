# orderflow: `make run` starts the local system, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: venv run services test lint package bench clean

$(STAMP): requirements.txt chalice_app/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)  ## the whole system on http://127.0.0.1:$(PORT)
	$(PY) -m processor local --port $(PORT)

services: $(STAMP)  ## only PostgreSQL + moto, for `cd chalice_app && chalice local`
	$(PY) -m processor local --services-only

lint: $(STAMP)
	$(PY) -m ruff check .

test: $(STAMP) lint
	$(PY) -m pytest

# chalice only bundles its project dir, so db/ and processor/ are copied into vendor/ of a
# throwaway copy of chalice_app/; the source tree is never modified.
package: $(STAMP)  ## Lambda deployment zip + SAM template in build/package
	rm -rf build/src build/package
	mkdir -p build/src
	cp -R chalice_app/. build/src/
	mkdir -p build/src/vendor
	cp -R db processor build/src/vendor/
	find build/src -name __pycache__ -type d -prune -exec rm -rf {} +
	cd build/src && AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} \
		../../$(VENV)/bin/chalice package --stage $${STAGE:-dev} ../package
	@ls -l build/package

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf build .pytest_cache .ruff_cache
